//! What a resumed run needs besides the checkpoint: where the phase stands, the best
//! evaluation so far, and the training statistics since the last evaluation.

use serde::{Deserialize, Serialize};

use super::error::{io, Result};
use super::objective::Stats;
use super::rundir::{damaged, RunDir};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Best {
    pub step: u64,
    pub value: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PhaseState {
    pub phase: String,
    /// Optimiser steps done.
    pub step: u64,
    pub best: Option<Best>,
    /// Evaluations since the best one (for `patience`).
    pub evals_since_best: usize,
    /// Statistics of the training batches since the last evaluation.
    pub sums: Stats,
    /// The phase ran to its end (budget or patience).
    pub finished: bool,
    /// The checkpoint holding the parameters and optimiser at `step`.
    pub checkpoint: Option<String>,
}

impl PhaseState {
    fn file(dir: &RunDir, phase: &str) -> std::path::PathBuf {
        dir.file(&Self::name(phase))
    }

    fn name(phase: &str) -> String {
        format!("{phase}-state.json")
    }

    pub fn load(dir: &RunDir, phase: &str) -> Result<Option<PhaseState>> {
        let path = Self::file(dir, phase);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        // A state that cannot be read is never taken for a fresh start: that would silently
        // throw the phase's progress away.
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| damaged(&path, format!("it is not a phase state ({e})")))
    }

    pub fn save(&self, dir: &RunDir) -> Result<()> {
        let json = serde_json::to_string_pretty(self).unwrap_or_default();
        dir.write(&Self::name(&self.phase), json.as_bytes())
    }
}
