//! Defaults that depend on other fields, set after the experiment's own fields are known.
//! Each keeps a value the user (or a preset) wrote.

use super::resolved::{Origin, RSection};
use crate::syntax::ast::ValueKind;

pub fn derive(root: &mut RSection) {
    let task_kind = root.section("task").and_then(|t| t.kind_name());

    if let Some(task) = root.section_mut("task") {
        if task.is_kind("pathfinder") {
            let resolution = task.int("resolution").unwrap_or(32);
            let how = || Origin::Derived("resolution²".into());
            task.set_if_default("max_len", ValueKind::Int(resolution * resolution), how());
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
        // REFERENCE.md: pooling is last for causal models.
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
            if let Some(rate) = masking_rate(task) {
                pretrain.set_if_default("rate", ValueKind::Float(rate), Origin::TaskPreset(task));
            }
        }
    }
}

/// Whether position t of the model sees only inputs up to t.
pub fn is_causal(model: &RSection) -> bool {
    if model.is_kind("transformer") {
        model.bool("causal") == Some(true)
    } else {
        model.bool("bidirectional") == Some(false)
    }
}

/// REFERENCE.md, "Self-pretraining, exactly": 0.5 for Image, Pathfinder and Path-X; 0.15 for
/// Text and Retrieval; 0.1 for ListOps.
pub fn masking_rate(task: &str) -> Option<f64> {
    match task {
        "listops" => Some(0.1),
        "text" | "retrieval" => Some(0.15),
        "image" | "pathfinder" | "pathx" => Some(0.5),
        _ => None,
    }
}
