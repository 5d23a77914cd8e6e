//! The batch folder keeps the plan it last ran (`plan.json`: every point with its resolved
//! spec and run folder). Workers run exactly that plan; `lra batch plan` shows how an edited
//! batch file differs from it. A finished point is never changed: a point whose settings
//! change is another point, with another run folder, and the old folder stays.

use std::path::{Path, PathBuf};

use super::plan::{Plan, Point};
use crate::rundir::RunDirError;

pub(crate) const PLAN_FILE: &str = "plan.json";
/// The plan before the last `lra batch run` that changed it.
pub(crate) const PREVIOUS_FILE: &str = "plan.previous.json";

pub fn path(batch_dir: &Path) -> PathBuf {
    batch_dir.join(PLAN_FILE)
}

/// The frozen plan of a batch folder, if it has one.
pub fn load(batch_dir: &Path) -> Result<Option<Plan>, String> {
    let file = path(batch_dir);
    match std::fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not a plan this lra wrote ({e})", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// Freezes `plan` in its batch folder, keeping the previous plan when it differs.
pub fn save(plan: &Plan) -> Result<(), RunDirError> {
    std::fs::create_dir_all(&plan.batch_dir).map_err(crate::rundir::io(&plan.batch_dir))?;
    let json = serde_json::to_string_pretty(plan).unwrap_or_default();
    let file = path(&plan.batch_dir);
    if let Ok(before) = std::fs::read_to_string(&file) {
        if before == json {
            return Ok(());
        }
        crate::rundir::write_atomic(&plan.batch_dir.join(PREVIOUS_FILE), before.as_bytes())?;
    }
    crate::rundir::write_atomic(&file, json.as_bytes())
}

/// How the plan of the batch file differs from the frozen one, by run folder.
#[derive(Debug, Default)]
pub struct Difference<'a> {
    /// Points of the file that the frozen plan lacks.
    pub added: Vec<&'a Point>,
    /// Points of the frozen plan the file no longer has (their folders are kept).
    pub removed: Vec<&'a Point>,
}

pub fn difference<'a>(frozen: &'a Plan, current: &'a Plan) -> Difference<'a> {
    let has = |plan: &Plan, point: &Point| plan.points.iter().any(|p| p.run_dir == point.run_dir);
    Difference {
        added: current.points.iter().filter(|p| !has(frozen, p)).collect(),
        removed: frozen.points.iter().filter(|p| !has(current, p)).collect(),
    }
}
