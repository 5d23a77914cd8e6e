//! Pretrained weights → the fine-tuning model (docs/METHOD.md: load every pretrained weight except
//! the prediction head and the extra mask-indicator input column), verified tensor by tensor.

use std::path::Path;

use safetensors::SafeTensors;

use super::error::{io, Result, RunError};
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;

/// Parameters that are not transferred: the pretraining head, and the classifier the
/// fine-tuning phase trains from its initialisation.
pub const NOT_TRANSFERRED: [&str; 2] = ["pretrain_head.", "head."];

/// The continuous input encoder, whose pretraining copy may have the mask-indicator row.
const INPUT_ENCODER: &str = "encoder.weight";

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
