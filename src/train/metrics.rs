//! `metrics.jsonl`: one JSON object per line, appended as training goes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{io, Result};

/// One evaluation or training report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub phase: String,
    /// `train`, `val` or `test`.
    pub split: String,
    pub step: u64,
    pub epoch: f64,
    pub loss: f64,
    pub accuracy: f64,
    /// Regression (L1) objectives only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mae: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub r2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tokens_per_s: Option<f64>,
}

pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    pub fn new(path: &Path) -> Self {
        MetricsLog {
            path: path.to_path_buf(),
        }
    }

    pub fn append(&self, record: &Record) -> Result<()> {
        let line = serde_json::to_string(record).unwrap_or_default();
        Ok(crate::rundir::append_synced(&self.path, &line)?)
    }

    /// Records the test result in place of any earlier one: a run killed after testing
    /// (while writing its summary) tests again when resumed, and must not log twice.
    pub(crate) fn replace_test(&self, record: &Record) -> Result<()> {
        self.rewrite(|r| r.split != "test")?;
        self.append(record)
    }

    /// Keeps the records up to `step` of `phase` (and every other phase's), dropping what a
    /// killed run wrote after its last saved state, so a resumed run's log reads as if it had
    /// never stopped.
    pub(crate) fn truncate_after(&self, phase: &str, step: u64) -> Result<()> {
        self.rewrite(|r| r.phase != phase || r.step <= step)
    }

    /// Keeps the records `keep` accepts (and drops a line torn by a kill), atomically.
    fn rewrite(&self, keep: impl Fn(&Record) -> bool) -> Result<()> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&self.path)(e)),
        };
        let kept: Vec<&str> = text
            .lines()
            .filter(|line| serde_json::from_str::<Record>(line).is_ok_and(|r| keep(&r)))
            .collect();
        let mut out = kept.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        Ok(crate::rundir::write_atomic(&self.path, out.as_bytes())?)
    }

    pub fn read(&self) -> Vec<Record> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
