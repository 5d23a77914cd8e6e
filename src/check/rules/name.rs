//! Rules on the experiment's name, which becomes a folder under the runs folder.

use super::Context;
use crate::check::resolved::ResolvedExperiment;
use crate::diagnostic::Diagnostic;

/// Why `name` cannot be a folder path under the runs folder, if it cannot.
fn unsafe_path(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.starts_with('/') {
        return Some("it is an absolute path: the run would be written outside `out`");
    }
    if name.contains('\\') {
        return Some("it holds a `\\`: folders are separated by `/`");
    }
    if name.chars().any(char::is_control) {
        return Some("it holds a control character");
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.contains(&"..") {
        return Some("it climbs out with `..`: the run would be written outside `out`");
    }
    if parts.contains(&".") {
        return Some("it holds a `.` folder");
    }
    if parts.contains(&"") {
        return Some("it holds an empty folder name (`//` or a `/` at an end)");
    }
    None
}

/// An experiment's name must be a safe relative path: its runs go to `<out>/<name>/`.
pub(crate) fn experiment_name_is_a_relative_path(
    x: &ResolvedExperiment,
    _: &Context,
) -> Vec<Diagnostic> {
    let Some(why) = unsafe_path(&x.name) else {
        return vec![];
    };
    vec![Diagnostic::error(
        "lra::rule::experiment-name-path",
        format!("the experiment name \"{}\" is not a folder name", x.name.escape_debug()),
    )
    .label(x.name_span, why)
    .help("the name is the run's folder under `out`: use words separated by `/`, such as \"listops/transformer\"")]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{context, resolve};
    use super::*;

    fn codes(name: &str) -> Vec<&'static str> {
        let x = resolve(&format!(
            "experiment \"{name}\" {{ task listops {{ }} model transformer {{ }} finetune {{ epochs 1 }} }}"
        ));
        experiment_name_is_a_relative_path(&x, &context())
            .into_iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn names_that_leave_the_runs_folder_are_refused() {
        for name in [
            "../../x",
            "/tmp/x",
            "a/../../b",
            "a//b",
            "a/",
            "./a",
            "a\\\\b",
        ] {
            assert_eq!(codes(name), ["lra::rule::experiment-name-path"], "{name:?}");
        }
    }

    #[test]
    fn relative_folder_names_are_accepted() {
        for name in [
            "listops",
            "listops/transformer/masked-spt",
            "a.b/c_d",
            "x..y",
        ] {
            assert!(codes(name).is_empty(), "{name:?}");
        }
    }
}
