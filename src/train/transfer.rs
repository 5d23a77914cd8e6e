//! Pretrained weights → the fine-tuning model (docs/METHOD.md: load every pretrained weight except
//! the prediction head and the extra mask-indicator input column), verified tensor by tensor.

use std::path::Path;

use safetensors::SafeTensors;
use serde_json::Value;

use super::error::{io, Result, RunError};
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;
use crate::spec::ExperimentSpec;

/// Parameters that are not transferred: the pretraining head, and the classifier the
/// fine-tuning phase trains from its initialisation.
pub(crate) const NOT_TRANSFERRED: [&str; 2] = ["pretrain_head.", "head."];

/// The continuous input encoder, whose pretraining copy may have the mask-indicator row.
const INPUT_ENCODER: &str = "encoder.weight";

/// Model settings that do not change what a weight means: they may differ between the
/// pretraining and the fine-tuning.
const TRAINING_ONLY: [&str; 2] = ["dropout", "pool"];

/// Refuses a pretrained run whose model differs from `x`'s in a setting that changes what
/// its weights mean (heads, position kind, layers, …), even where the shapes would fit.
pub(crate) fn require_same_model(source_run: &Path, x: &ExperimentSpec) -> Result<()> {
    let path = source_run.join("spec.json");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let source: Value = serde_json::from_str(&text)
        .map_err(|e| super::rundir::damaged(&path, format!("it is not JSON ({e})")))?;
    let ours = serde_json::to_value(&x.model).unwrap_or_default();
    let mut differences = Vec::new();
    differ("", &source["model"], &ours, &mut differences);
    if differences.is_empty() {
        return Ok(());
    }
    Err(RunError::PretrainedModelDiffers {
        path: source_run.to_path_buf(),
        differences: differences.join("; "),
    })
}

/// Collects `field: there → here` for every leaf where `there` and `here` differ.
fn differ(at: &str, there: &Value, here: &Value, out: &mut Vec<String>) {
    match (there, here) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                if TRAINING_ONLY.contains(&key.as_str()) {
                    continue;
                }
                let field = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                let missing = Value::Null;
                differ(
                    &field,
                    a.get(key).unwrap_or(&missing),
                    b.get(key).unwrap_or(&missing),
                    out,
                );
            }
        }
        _ if there != here => out.push(format!("{at} is {there} there, {here} here")),
        _ => {}
    }
}

fn mismatch(name: &str, detail: String) -> RunError {
    RunError::Transfer {
        name: name.to_string(),
        detail,
    }
}

/// Copies every transferable tensor of the checkpoint at `path` into `store` and checks that
/// each arrived unchanged. Returns how many tensors were transferred.
pub fn load_pretrained<D: EngineDevice>(path: &Path, store: &mut ParamStore<D>) -> Result<usize> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| mismatch("(file)", format!("{}: {e}", path.display())))?;
    let ids: Vec<_> = store
        .iter()
        .map(|(id, p)| (id, p.name.clone(), p.shape.clone()))
        .collect();
    let mut transferred = 0;
    for (id, name, shape) in ids {
        if NOT_TRANSFERRED
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            continue;
        }
        let view = file
            .tensor(&name)
            .map_err(|_| mismatch(&name, "missing from the pretrained checkpoint".into()))?;
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let wanted: usize = shape.iter().product();
        let source = if view.shape() == shape.as_slice() {
            values
        } else if name == INPUT_ENCODER
            && view.shape().len() == 2
            && shape.len() == 2
            && view.shape()[1] == shape[1]
            && view.shape()[0] > shape[0]
        {
            // Rows are input channels: keep the value channel(s), drop the mask indicator.
            values[..wanted].to_vec()
        } else {
            return Err(mismatch(
                &name,
                format!(
                    "pretrained shape {:?}, fine-tuning shape {shape:?}",
                    view.shape()
                ),
            ));
        };
        store.set_values(id, &source)?;
        if store.values(id) != source {
            return Err(mismatch(
                &name,
                "the values read back differ from the checkpoint".into(),
            ));
        }
        transferred += 1;
    }
    Ok(transferred)
}
