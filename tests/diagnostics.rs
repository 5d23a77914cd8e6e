//! Snapshot tests of rendered diagnostics: one bad spec per fixture under `fixtures/bad/`.

mod common;

use common::{check_file, relative, rendered};

#[test]
fn bad_specs_render_their_diagnostics() {
    insta::glob!("fixtures/bad/*.lra", |path| {
        let checked = check_file(relative(path));
        assert!(
            !checked.diagnostics.is_empty(),
            "{} should produce diagnostics",
            path.display()
        );
        insta::assert_snapshot!(rendered(&checked));
    });
}

#[test]
fn every_diagnostic_has_a_code_and_a_label() {
    insta::glob!("fixtures/bad/*.lra", |path| {
        for d in check_file(relative(path)).diagnostics {
            assert!(d.code.starts_with("lra::"), "{}: {:?}", path.display(), d);
            assert!(d.primary.is_some(), "{}: {:?}", path.display(), d);
        }
    });
}

#[test]
fn several_mistakes_are_all_reported_in_order() {
    let checked = check_file(std::path::Path::new(
        "tests/fixtures/bad/several-mistakes.lra",
    ));
    let codes: Vec<&str> = checked.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        [
            "lra::rule::max-len-beyond-task",
            "lra::rule::heads-divide-d-model",
            "lra::unknown-field",
            "lra::rule::causal-pretraining-needs-causal-model",
            "lra::unknown-field",
            "lra::rule::steps-epochs-exclusive",
            "lra::rule::unknown-metric",
        ]
    );
    let lines: Vec<usize> = checked
        .diagnostics
        .iter()
        .map(|d| {
            let label = d.primary.as_ref().unwrap();
            checked
                .sources
                .get(label.span.file)
                .line_col(label.span.start)
                .0
        })
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}
