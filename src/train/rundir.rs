//! The run directory (README, "A run folder"): `<out>/<experiment>/<run-id>/` holding the spec as given,
//! the resolved spec, the vocabulary, `metrics.jsonl`, checkpoints, the resume state and the
//! summary. Every file is written under a temporary name and renamed.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{io, Result, RunError};
use crate::spec::ExperimentSpec;

pub struct RunDir {
    pub path: PathBuf,
}

/// A run's identity: the seed and a digest of the resolved spec (and of the pretrained
/// checkpoint it starts from, if any), so the same experiment maps to the same folder
/// (re-running finds it; `--resume` continues it) and any change makes a new one.
pub fn run_id(spec: &ExperimentSpec, origin: &str) -> String {
    let json = serde_json::to_string(spec).unwrap_or_default();
    let digest = Sha256::digest(format!("{json}\n{origin}").as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("seed{}-{hex}", spec.seed)
}

impl RunDir {
    pub fn new(out: &Path, spec: &ExperimentSpec, origin: &str) -> Self {
        RunDir {
            path: out.join(&spec.name).join(run_id(spec, origin)),
        }
    }

    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(self.checkpoints()).map_err(io(self.checkpoints()))
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.path.join("checkpoints")
    }

    pub fn checkpoint(&self, phase: &str, which: &str) -> PathBuf {
        self.checkpoints()
            .join(format!("{phase}-{which}.safetensors"))
    }

    pub fn vocab(&self) -> PathBuf {
        self.file("vocab.json")
    }

    pub fn metrics(&self) -> PathBuf {
        self.file("metrics.jsonl")
    }

    /// Writes `contents` to `name` atomically.
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<()> {
        write_atomic(&self.file(name), contents)
    }

    /// Records the spec: the source as given and the resolved spec. On resume the resolved
    /// spec must be the one that started the run.
    pub fn record_spec(&self, source: &str, spec: &ExperimentSpec, resume: bool) -> Result<()> {
        let resolved = serde_json::to_string_pretty(spec).unwrap_or_default();
        let existing = self.file("spec.json");
        if resume && existing.exists() {
            let before = std::fs::read_to_string(&existing).map_err(io(&existing))?;
            if before != resolved {
                return Err(RunError::ResumeMismatch {
                    path: self.path.clone(),
                });
            }
        }
        self.write("spec.lra", source.as_bytes())?;
        self.write("spec.json", resolved.as_bytes())
    }
}

pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}
