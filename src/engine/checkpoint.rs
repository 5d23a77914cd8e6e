//! Saving and loading parameters and optimizer state as safetensors.
//!
//! Parameters and buffers (batch-norm running statistics) keep their dotted names and
//! logical shapes; the optimizer's moments are stored
//! as `optim.m.<name>` and `optim.v.<name>`, the per-parameter step counts as
//! `optim.steps.<name>` (a one-element f32 would lose precision, so they are u64 in the
//! metadata). The file is written under a temporary name in the same folder and renamed, so a
//! run killed mid-write never leaves a truncated checkpoint.

use std::collections::HashMap;
use std::path::Path;

use dfdx::prelude::*;
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};

use super::error::{EngineError, Result};
use super::optim::Optimizer;
use super::params::ParamStore;

const FORMAT: &str = "lra-engine/1";

fn checkpoint_error(path: &Path, detail: impl Into<String>) -> EngineError {
    EngineError::Checkpoint {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn bytes_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Writes every parameter and, when given, the optimizer state to `path`.
pub fn save<D: Device<f32>>(
    path: &Path,
    store: &ParamStore<D>,
    optimizer: Option<&Optimizer<D>>,
) -> Result<()> {
    let mut entries: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut metadata = HashMap::from([("format".to_string(), FORMAT.to_string())]);
    for (id, p) in store.iter() {
        entries.push((
            p.name.clone(),
            p.shape.clone(),
            f32_bytes(&store.values(id)),
        ));
    }
    for (id, b) in store.buffers() {
        entries.push((
            b.name.clone(),
            b.shape.clone(),
            f32_bytes(&store.buffer_values(id)),
        ));
    }
    if let Some(opt) = optimizer {
        metadata.insert("optim.step".into(), opt.step.to_string());
        for ((_, p), moments) in store.iter().zip(opt.moments()) {
            entries.push((
                format!("optim.m.{}", p.name),
                p.shape.clone(),
                f32_bytes(&moments.m.as_vec()),
            ));
            entries.push((
                format!("optim.v.{}", p.name),
                p.shape.clone(),
                f32_bytes(&moments.v.as_vec()),
            ));
            metadata.insert(format!("optim.steps.{}", p.name), moments.steps.to_string());
        }
    }
    let views = entries
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(StDtype::F32, shape.clone(), bytes)
                .map(|view| (name.as_str(), view))
                .map_err(|e| checkpoint_error(path, e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, &Some(metadata))
        .map_err(|e| checkpoint_error(path, e.to_string()))?;
    crate::rundir::write_atomic(path, &bytes).map_err(|e| match e {
        crate::rundir::RunDirError::Io { source, .. } => EngineError::Io {
            path: path.display().to_string(),
            source,
        },
        other => checkpoint_error(path, other.to_string()),
    })
}

/// A file that is not a whole safetensors checkpoint: cut short or overwritten.
fn damaged(path: &Path, e: safetensors::SafeTensorError) -> EngineError {
    use safetensors::SafeTensorError as E;
    let detail = match e {
        E::MetadataIncompleteBuffer | E::HeaderTooSmall => {
            "it is cut short (a write that did not finish)".to_string()
        }
        E::InvalidHeader
        | E::InvalidHeaderStart
        | E::InvalidHeaderDeserialization
        | E::InvalidHeaderLength
        | E::HeaderTooLarge => "its header is not a safetensors header".to_string(),
        other => format!("it cannot be read as safetensors ({other})"),
    };
    EngineError::DamagedCheckpoint {
        path: path.display().to_string(),
        detail,
    }
}

/// Which parameters `load` takes from the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadFilter<'a> {
    /// Every parameter of the store must be in the file.
    All,
    /// Parameters whose names start with one of these prefixes keep their current values
    /// (e.g. the prediction head when fine-tuning from a pretrained checkpoint).
    Except(&'a [&'a str]),
}

/// Reads parameters (and, when given, the optimizer state) saved by [`save`]. Shapes must
/// match exactly; a missing or misshapen tensor is an error naming it.
pub fn load<D: Device<f32>>(
    path: &Path,
    store: &mut ParamStore<D>,
    optimizer: Option<&mut Optimizer<D>>,
    filter: LoadFilter<'_>,
) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|source| EngineError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| damaged(path, e))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| damaged(path, e))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    if metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(checkpoint_error(
            path,
            format!("not an {FORMAT} checkpoint"),
        ));
    }
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let view = file
            .tensor(name)
            .map_err(|_| checkpoint_error(path, format!("missing tensor `{name}`")))?;
        if view.dtype() != StDtype::F32 || view.shape() != shape {
            return Err(checkpoint_error(
                path,
                format!(
                    "tensor `{name}` is {:?} {:?}, the model expects F32 {shape:?}",
                    view.dtype(),
                    view.shape()
                ),
            ));
        }
        Ok(bytes_f32(view.data()))
    };
    let skipped = |name: &str| match filter {
        LoadFilter::All => false,
        LoadFilter::Except(prefixes) => prefixes.iter().any(|p| name.starts_with(p)),
    };
    let params: Vec<_> = store
        .iter()
        .map(|(id, p)| (id, p.name.clone(), p.shape.clone()))
        .collect();
    for (id, name, shape) in &params {
        if !skipped(name) {
            let values = read(name, shape)?;
            store.set_values(*id, &values)?;
        }
    }
    let buffers: Vec<_> = store
        .buffers()
        .map(|(id, b)| (id, b.name.clone(), b.shape.clone()))
        .collect();
    for (id, name, shape) in &buffers {
        if !skipped(name) {
            store.set_buffer(*id, &read(name, shape)?)?;
        }
    }
    if let Some(opt) = optimizer {
        let step = metadata
            .get("optim.step")
            .ok_or_else(|| checkpoint_error(path, "no optimizer state"))?;
        opt.step = step
            .parse()
            .map_err(|_| checkpoint_error(path, "optimizer step is not an integer"))?;
        for ((_, name, shape), moments) in params.iter().zip(&mut opt.moments) {
            if skipped(name) {
                continue;
            }
            let numel = shape.iter().product::<usize>();
            for (moment, key) in [(&mut moments.m, "m"), (&mut moments.v, "v")] {
                let values = read(&format!("optim.{key}.{name}"), shape)?;
                *moment = store
                    .device()
                    .try_tensor_from_vec(values, (numel,))
                    .map_err(EngineError::device)?;
            }
            moments.steps = metadata
                .get(&format!("optim.steps.{name}"))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| checkpoint_error(path, format!("no step count for `{name}`")))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::optim::OptimizerConfig;
    use crate::engine::params::{Init, ParamGrads, DEFAULT_GROUP};

    fn store(seed: u64) -> ParamStore<Cpu> {
        let mut store = ParamStore::new(Cpu::default(), seed);
        store
            .add(
                "layers.0.w",
                &[2, 3],
                Init::Normal { std: 1.0 },
                DEFAULT_GROUP,
            )
            .unwrap();
        store
            .add("head.b", &[3], Init::Normal { std: 1.0 }, DEFAULT_GROUP)
            .unwrap();
        store
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lra-engine-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("ckpt.safetensors")
    }

    #[test]
    fn round_trip_restores_parameters_and_moments() {
        let mut a = store(1);
        let mut opt = Optimizer::new(OptimizerConfig::adamw(0.1), &a).unwrap();
        let grads =
            ParamGrads::from_host(a.device(), vec![Some(vec![0.1; 6]), Some(vec![-0.2; 3])]);
        opt.step(&mut a, &grads, 1.0).unwrap();
        let path = temp_path("round-trip");
        save(&path, &a, Some(&opt)).unwrap();
        assert!(!path.with_extension("safetensors.tmp").exists());

        let mut b = store(2);
        let mut opt_b = Optimizer::new(OptimizerConfig::adamw(0.1), &b).unwrap();
        load(&path, &mut b, Some(&mut opt_b), LoadFilter::All).unwrap();
        for ((ia, _), (ib, _)) in a.iter().zip(b.iter()) {
            assert_eq!(a.values(ia), b.values(ib));
        }
        for (mb, ma) in opt_b.moments().iter().zip(opt.moments()) {
            assert_eq!(mb.m.as_vec(), ma.m.as_vec());
            assert_eq!(mb.v.as_vec(), ma.v.as_vec());
            assert_eq!(mb.steps, ma.steps);
        }
        assert_eq!(opt_b.step, 1);
    }

    #[test]
    fn filter_keeps_the_excluded_parameters() {
        let a = store(1);
        let path = temp_path("filter");
        save(&path, &a, None).unwrap();
        let mut b = store(2);
        let head = b.find("head.b").unwrap();
        let before = b.values(head);
        load(&path, &mut b, None, LoadFilter::Except(&["head."])).unwrap();
        assert_eq!(b.values(head), before);
        let w = b.find("layers.0.w").unwrap();
        assert_eq!(b.values(w), a.values(a.find("layers.0.w").unwrap()));
    }

    #[test]
    fn shape_mismatch_names_the_tensor() {
        let a = store(1);
        let path = temp_path("mismatch");
        save(&path, &a, None).unwrap();
        let mut c = ParamStore::new(Cpu::default(), 0);
        c.add("layers.0.w", &[3, 2], Init::Zeros, DEFAULT_GROUP)
            .unwrap();
        let err = load(&path, &mut c, None, LoadFilter::All).unwrap_err();
        assert!(err.to_string().contains("layers.0.w"), "{err}");
    }
}
