//! Defaults that depend on other fields, set after the experiment's own fields are known.
//! Each keeps a value the user (or a preset) wrote.

use super::resolved::{Origin, RSection};
use crate::spec::TaskKind;
use crate::syntax::ast::ValueKind;

pub fn derive(root: &mut RSection) {
    let task_kind = root
        .section("task")
        .and_then(|t| t.kind_name())
        .and_then(TaskKind::from_name);

    if let Some(task) = root.section_mut("task") {
        if task.is_kind("image") || task.is_kind("pathfinder") {
            // Square images read pixel by pixel: one position per pixel. `resolution` has its
            // default by now; 32 only guards a kind whose default table lacks it.
            let resolution = task.int("resolution").unwrap_or(32);
            let how = Origin::Derived("resolution²".into());
            task.set_if_default("max_len", ValueKind::Int(resolution * resolution), how);
        }
        if task.is_kind("pathfinder") {
            let resolution = task.int("resolution").unwrap_or(32);
            task.set_if_default(
                "data",
                ValueKind::Str(format!("data/pathfinder{resolution}")),
                Origin::Derived("resolution".into()),
            );
        }
    }

    if let Some(model) = root.section_mut("model") {
        if model.is_kind("transformer") {
            let d_model = model.int("d_model").unwrap_or(128);
            model.set_if_default(
                "ffn",
                ValueKind::Int(4 * d_model),
                Origin::Derived("4 × d_model".into()),
            );
        }
        // The SPT paper pools causal models at the last position (docs/METHOD.md).
        if is_causal(model) {
            model.set_if_default(
                "pool",
                ValueKind::Ident("last".into()),
                Origin::Derived("causal model".into()),
            );
        }
    }

    if let (Some(task), Some(pretrain)) = (task_kind, root.section_mut("pretrain")) {
        if pretrain.is_kind("masked") {
            pretrain.set_if_default(
                "rate",
                ValueKind::Float(masking_rate(task)),
                Origin::TaskPreset(task.name()),
            );
        }
    }
}

/// Whether position t of the model sees only inputs up to t.
pub(crate) fn is_causal(model: &RSection) -> bool {
    if model.is_kind("transformer") {
        model.bool("causal") == Some(true)
    } else {
        model.bool("bidirectional") == Some(false)
    }
}

/// The masking rates of the SPT paper (Amos, Berant & Gupta 2024, appendix; docs/METHOD.md):
/// 0.5 for Image, Pathfinder and Path-X; 0.15 for Text and Retrieval; 0.1 for ListOps.
pub(crate) fn masking_rate(task: TaskKind) -> f64 {
    match task {
        TaskKind::ListOps => 0.1,
        TaskKind::Text | TaskKind::Retrieval => 0.15,
        TaskKind::Image | TaskKind::Pathfinder | TaskKind::PathX => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn image_task(fields: &str) -> crate::check::Checked {
        let text = format!(
            "experiment \"x\" {{ task image {{ {fields} }} model s4d {{ layers 1 d_model 8 }} \
             finetune {{ steps 1 batch 2 }} }}"
        );
        crate::check::check_source(
            Path::new("x.lra"),
            text,
            &crate::check::rules::test_support::context(),
        )
    }

    #[test]
    fn an_image_task_reads_one_position_per_pixel_of_its_resolution() {
        for (fields, resolution, max_len) in [("", 32, 1024), ("resolution 16", 16, 256)] {
            let checked = image_task(fields);
            let spec = checked.spec.expect("a valid spec");
            let task = &spec.experiments[0].task;
            assert_eq!((task.resolution, task.max_len), (Some(resolution), max_len));
        }
        // A max_len other than the pixel count is a mistake the length rule names.
        let checked = image_task("resolution 8  max_len 100");
        assert!(checked.spec.is_none());
        let shown = format!("{:?}", checked.diagnostics);
        assert!(shown.contains("64"), "{shown}");
    }

    #[test]
    fn an_image_resolution_that_does_not_divide_the_release_is_refused() {
        let checked = image_task("resolution 12");
        assert!(checked.spec.is_none());
        let shown = format!("{:?}", checked.diagnostics);
        // The value's span is labelled and the accepted values are named.
        assert!(
            checked.diagnostics.iter().any(|d| d.primary.is_some()),
            "{shown}"
        );
        assert!(shown.contains("16"), "{shown}");
    }
}
