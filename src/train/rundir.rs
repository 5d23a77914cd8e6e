//! The run directory: `<out>/<experiment>/<run-id>/` holding the spec as given, the resolved
//! spec, the vocabulary, `metrics.jsonl`, checkpoints, the resume state and the summary.
//! Every file is written under a temporary name, synced and renamed ([`crate::rundir`]), and
//! one process at a time works in a folder (its lock, `<run-id>.lock`, lies beside it).
//! A user's run folder is never deleted: `--restart` moves it aside.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{io, Result, RunError};
use super::RunSummary;
use crate::rundir::lock::{Acquired, RunLock};
use crate::spec::ExperimentSpec;

pub struct RunDir {
    pub path: PathBuf,
}

/// How `lra run` treats a run folder that already exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Start {
    /// Only into a new folder: an unfinished one is refused, never replaced.
    #[default]
    New,
    /// Continue where a killed run stopped.
    Resume,
    /// Move the existing folder aside and start over.
    Restart,
}

/// What opening a run folder found.
pub enum Opened {
    /// The run had finished: its summary.
    Finished(RunSummary),
    /// The folder is this process's to train in, for as long as the lock is held.
    Ready(RunLock),
}

/// A run's identity: the seed and a digest of the resolved spec (and of the run whose
/// pretraining it fine-tunes from, if any), so the same experiment maps to the same folder
/// (re-running finds it; `--resume` continues it) and any change makes a new one.
fn run_id(spec: &ExperimentSpec, origin: &str) -> String {
    let json = serde_json::to_string(spec).unwrap_or_default();
    let digest = Sha256::digest(format!("{json}\n{origin}").as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("seed{}-{hex}", spec.seed)
}

/// The error for a run-folder file that cannot be read back as what was written.
pub fn damaged(path: &Path, reason: String) -> RunError {
    RunError::DamagedFile {
        path: path.to_path_buf(),
        reason,
        what_to_do: "it was not written by this version of lra, or was changed since: restore \
                     it, or start the run over with `--restart` (the old folder is moved aside)"
            .into(),
    }
}

impl RunDir {
    /// The folder of `spec` under the runs folder `out`; `pretrained` is the run folder
    /// whose pretraining it fine-tunes from (`--from-pretrained`, a batch's shared
    /// pretraining). That run is named by its folder's name, itself a digest of its spec, so
    /// moving the runs folder keeps every identity.
    pub fn new(out: &Path, spec: &ExperimentSpec, pretrained: Option<&Path>) -> Self {
        let origin = pretrained.map_or(String::new(), |run| {
            let name = run.file_name().map_or_else(
                || run.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            format!("pretrained:{name}")
        });
        RunDir {
            path: out.join(&spec.name).join(run_id(spec, &origin)),
        }
    }

    /// Locks the folder and applies `start`: a finished run is returned as its summary (unless
    /// restarted), an unfinished one is continued only when resuming. `note` tells the user
    /// of a lock taken over or a folder moved aside. `spec` is the spec file as the user
    /// named it, for the hints.
    pub fn open(&self, start: Start, spec: &str, note: impl Fn(String)) -> Result<Opened> {
        let Acquired { lock, took_over } = RunLock::acquire(&self.path)?;
        if let Some(holder) = took_over {
            note(format!(
                "took over the lock of {} on {}: it is no longer running",
                self.path.display(),
                holder
            ));
        }
        if start == Start::Restart && self.path.exists() {
            let aside = self.move_aside()?;
            note(format!(
                "moved the earlier run folder {} aside to {}",
                self.path.display(),
                aside.display()
            ));
        }
        if self.path.exists() {
            for folder in [self.path.clone(), self.checkpoints()] {
                crate::rundir::atomic::remove_leftovers(&folder);
            }
            match (self.summary(), start) {
                (Ok(Some(summary)), _) => return Ok(Opened::Finished(summary)),
                (Ok(None), Start::Resume) => {}
                (Ok(None), _) => {
                    return Err(RunError::UnfinishedRun {
                        path: self.path.clone(),
                        spec: spec.to_string(),
                    })
                }
                // Resuming a finished run whose summary is unreadable tests it again.
                (Err(_), Start::Resume) => {}
                (Err(reason), _) => {
                    return Err(RunError::DamagedFile {
                        path: self.file("summary.json"),
                        reason,
                        what_to_do: format!(
                            "`lra run {spec} --resume` tests the selected checkpoint again and \
                             rewrites it; `lra run {spec} --restart` starts over (the old \
                             folder is moved aside)"
                        ),
                    })
                }
            }
        }
        self.create()?;
        Ok(Opened::Ready(lock))
    }

    /// The summary of a finished run: `Ok(None)` when the run has not finished, `Err` with
    /// the reason when `summary.json` cannot be read.
    fn summary(&self) -> std::result::Result<Option<RunSummary>, String> {
        let path = self.file("summary.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("it is not a run summary ({e})")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Renames the folder to the first free `<run-id>.old-N` beside it.
    fn move_aside(&self) -> Result<PathBuf> {
        let name = self
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let aside = (1..)
            .map(|n| self.path.with_file_name(format!("{name}.old-{n}")))
            .find(|p| !p.exists())
            .expect("an unbounded range has a free name");
        std::fs::rename(&self.path, &aside).map_err(io(&self.path))?;
        Ok(aside)
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
        Ok(crate::rundir::write_atomic(&self.file(name), contents)?)
    }

    /// Records why the run failed (`failed.json`: the error's first line and code), best
    /// effort: the error itself is what the caller reports.
    pub(crate) fn record_failure(&self, error: &RunError) {
        if !self.path.exists() {
            return;
        }
        let failure = crate::rundir::state::Failure {
            error: error.to_string(),
            code: miette::Diagnostic::code(error).map(|c| c.to_string()),
            at: crate::rundir::lock::now(),
        };
        let json = serde_json::to_string_pretty(&failure).unwrap_or_default();
        let _ = self.write(crate::rundir::state::FAILURE_FILE, json.as_bytes());
    }

    /// Forgets an earlier failure once the run has finished.
    pub(crate) fn clear_failure(&self) {
        let _ = std::fs::remove_file(self.file(crate::rundir::state::FAILURE_FILE));
    }

    /// Records the spec: the source as given and the resolved spec. On resume the resolved
    /// spec must be the one that started the run.
    pub(crate) fn record_spec(
        &self,
        source: &str,
        spec: &ExperimentSpec,
        resume: bool,
    ) -> Result<()> {
        let resolved = serde_json::to_string_pretty(spec).unwrap_or_default();
        let existing = self.file("spec.json");
        if resume && existing.exists() {
            let before = std::fs::read_to_string(&existing).map_err(io(&existing))?;
            if before != resolved {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(&before) {
                    return Err(damaged(&existing, format!("it is not JSON ({e})")));
                }
                return Err(RunError::ResumeMismatch {
                    path: self.path.clone(),
                });
            }
        }
        self.write("spec.lra", source.as_bytes())?;
        self.write("spec.json", resolved.as_bytes())
    }
}
