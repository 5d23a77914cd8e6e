//! What every writer of a run folder needs, whoever drives the run (`lra run` today, a batch
//! runner or a cluster worker later): files written so that a kill never leaves half of one
//! ([`atomic`]), and one process at a time per folder ([`lock`]).

pub mod atomic;
pub mod lock;
pub mod state;

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

pub use atomic::{append_synced, write_atomic};
pub use lock::{Holder, RunLock};

#[derive(Debug, Error, Diagnostic)]
pub enum RunDirError {
    #[error("cannot write {path}: {source}")]
    #[diagnostic(
        code(lra::rundir::io),
        help("check that the runs folder is writable and that its disk has room")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("run folder {folder} is in use by {holder}")]
    #[diagnostic(
        code(lra::rundir::locked),
        help("wait for that run to end, or stop it; a lock whose holder has died is taken over by the next run (at once on the same host, after {stale_after_s} s without a heartbeat from another host)")
    )]
    Locked {
        folder: PathBuf,
        holder: Holder,
        stale_after_s: u64,
    },
}

pub type Result<T, E = RunDirError> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RunDirError {
    let path = path.into();
    move |source| RunDirError::Io { path, source }
}
