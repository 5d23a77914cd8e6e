//! What a run folder says about its run: not started, partly trained, finished, failed (the
//! error recorded), or in training now (its lock held). The folder is the truth; batches and
//! the results index read it here.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::lock::{Holder, RunLock};

/// The file a failed run leaves in its folder.
pub(crate) const FAILURE_FILE: &str = "failed.json";

/// `failed.json`: why a run stopped with an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The error's message (its first line says what went wrong).
    pub error: String,
    /// The error's code, e.g. `lra::run::diverged`.
    pub code: Option<String>,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FolderState {
    /// No folder yet.
    New,
    /// Trained in part (checkpoints, no summary): resumable.
    Partial,
    /// Finished: `summary.json` is there.
    Done,
    /// Stopped with an error, recorded in `failed.json`.
    Failed(Failure),
    /// A live process holds its lock.
    Running(Holder),
}

impl FolderState {
    pub fn name(&self) -> &'static str {
        match self {
            FolderState::New => "new",
            FolderState::Partial => "partial",
            FolderState::Done => "done",
            FolderState::Failed(_) => "failed",
            FolderState::Running(_) => "running",
        }
    }
}

/// The state of the run folder `folder`.
pub fn of(folder: &Path) -> FolderState {
    if let Some(holder) = RunLock::holder(folder) {
        return FolderState::Running(holder);
    }
    if !folder.exists() {
        return FolderState::New;
    }
    if folder.join("summary.json").is_file() {
        return FolderState::Done;
    }
    match failure(folder) {
        Some(failure) => FolderState::Failed(failure),
        None => FolderState::Partial,
    }
}

/// The failure recorded in `folder`, if any (an unreadable record still counts as one).
pub fn failure(folder: &Path) -> Option<Failure> {
    let path = folder.join(FAILURE_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| Failure {
        error: format!("{} is unreadable ({e})", path.display()),
        code: None,
        at: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("seed0-abcd");
        assert_eq!(of(&run), FolderState::New);
        std::fs::create_dir_all(run.join("checkpoints")).unwrap();
        assert_eq!(of(&run), FolderState::Partial);
        let failure = Failure {
            error: "training diverged".into(),
            code: Some("lra::run::diverged".into()),
            at: 1,
        };
        std::fs::write(
            run.join(FAILURE_FILE),
            serde_json::to_string(&failure).unwrap(),
        )
        .unwrap();
        assert_eq!(of(&run), FolderState::Failed(failure));
        let lock = RunLock::acquire(&run).unwrap();
        assert!(matches!(of(&run), FolderState::Running(h) if h.pid == std::process::id()));
        drop(lock);
        std::fs::write(run.join("summary.json"), "{}").unwrap();
        assert_eq!(of(&run), FolderState::Done);
    }
}
