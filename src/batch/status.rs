//! Where each point of a plan stands, read from its run folder (the truth): new, partial,
//! done, failed, running, or blocked (its shared pretraining failed).

use super::plan::{Plan, Point};
use crate::rundir::state::{self, FolderState};

#[derive(Clone, Debug, PartialEq)]
pub enum PointState {
    Folder(FolderState),
    /// The point whose pretraining it reuses failed.
    Blocked {
        by: usize,
    },
}

impl PointState {
    pub fn name(&self) -> &'static str {
        match self {
            PointState::Folder(s) => s.name(),
            PointState::Blocked { .. } => "blocked",
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, PointState::Folder(FolderState::Done))
    }
}

pub fn of(plan: &Plan, point: &Point) -> PointState {
    let own = state::of(&point.run_dir);
    if let (Some(leader), FolderState::New | FolderState::Partial) = (point.pretrained_by, &own) {
        if let FolderState::Failed(_) = state::of(&plan.points_by_index(leader).run_dir) {
            return PointState::Blocked { by: leader };
        }
    }
    PointState::Folder(own)
}

/// What the state says beside a point: the test accuracy of a finished run, the first line
/// of a failure, the holder of a running one.
pub fn detail(point: &Point, state: &PointState) -> String {
    match state {
        PointState::Folder(FolderState::Done) => {
            accuracy(point).map_or_else(String::new, |a| format!("test accuracy {:.2}%", a * 100.0))
        }
        PointState::Folder(FolderState::Failed(f)) => {
            f.error.lines().next().unwrap_or_default().to_string()
        }
        PointState::Folder(FolderState::Running(holder)) => format!("{holder}"),
        PointState::Blocked { by } => format!("its pretraining, point {by}, failed"),
        _ => String::new(),
    }
}

/// The test accuracy a finished point's summary reports.
pub fn accuracy(point: &Point) -> Option<f64> {
    let text = std::fs::read_to_string(point.run_dir.join("summary.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("test_accuracy")?.as_f64()
}

/// Counts of points by state name, in a fixed order.
pub fn counts(states: &[PointState]) -> Vec<(&'static str, usize)> {
    ["done", "running", "partial", "new", "failed", "blocked"]
        .into_iter()
        .map(|name| (name, states.iter().filter(|s| s.name() == name).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}
