//! The papers' published test accuracies, `experiments/reference/published.csv` (entered by
//! hand from the papers; docs/RESULTS.md gives the sources). Built into the binary, so a
//! report prints them from any working directory; the file in the repository stays the one
//! place they are written.

use serde::{Deserialize, Serialize};

use super::error::{ReportError, Result};
use crate::spec::TaskKind;

/// The file as built into lra, and the name errors give it.
pub(crate) const PUBLISHED_CSV: &str = include_str!("../../experiments/reference/published.csv");
pub(crate) const PUBLISHED_PATH: &str = "experiments/reference/published.csv";

/// The pseudo-task of a row holding a paper's average over tasks.
pub(crate) const AVERAGE: &str = "average";

/// The training objectives a row may name: `scratch` is no pretraining.
pub(crate) const OBJECTIVES: [&str; 3] = ["scratch", "masked", "causal"];

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct PublishedRow {
    pub source: String,
    pub table: String,
    /// A task name of the language, or [`AVERAGE`].
    pub task: String,
    pub model: String,
    pub objective: String,
    pub metric: String,
    /// Percent.
    pub value: f64,
    #[serde(default)]
    pub note: String,
}

#[derive(Clone, Debug)]
pub struct Published {
    pub rows: Vec<PublishedRow>,
}

impl Published {
    /// The figures built into lra.
    pub fn builtin() -> Result<Published> {
        Published::parse(PUBLISHED_CSV, PUBLISHED_PATH)
    }

    /// Parses the CSV; `path` names it in errors, with the line of the bad row.
    pub fn parse(text: &str, path: &str) -> Result<Published> {
        let tasks = || {
            let mut names: Vec<&str> = TaskKind::ALL.iter().map(|t| t.name()).collect();
            names.push(AVERAGE);
            names.join("|")
        };
        let error = |line: usize, reason: String| ReportError::Published {
            path: path.to_string(),
            line,
            reason,
            tasks: tasks(),
        };
        let rows = crate::reference::read_rows(text, |row: &PublishedRow| {
            if row.task != AVERAGE && TaskKind::from_name(&row.task).is_none() {
                Some(format!("unknown task `{}`", row.task))
            } else if let Some(reason) = crate::reference::unknown_model(&row.model) {
                Some(reason)
            } else if !OBJECTIVES.contains(&row.objective.as_str()) {
                Some(format!("unknown objective `{}`", row.objective))
            } else if !(0.0..=100.0).contains(&row.value) {
                Some(format!("{} is not a percentage", row.value))
            } else {
                None
            }
        })
        .map_err(|bad| error(bad.line, bad.reason))?;
        Ok(Published { rows })
    }

    /// The figure for a task (or [`AVERAGE`]), model kind and objective: the first row of the
    /// file that matches. The file lists the SPT paper's rows first, so its figures win over
    /// the LRA and state-space papers' where both exist.
    pub fn lookup(&self, task: &str, model: &str, objective: &str) -> Option<&PublishedRow> {
        self.rows
            .iter()
            .find(|r| r.task == task && r.model == model && r.objective == objective)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_row_is_named_by_its_line() {
        let text = "source,table,task,model,objective,metric,value,note\n\
                    p,T1,listops,transformer,scratch,test accuracy,36.37,\n\
                    p,T1,listopz,transformer,scratch,test accuracy,36.37,\n";
        let err = Published::parse(text, "p.csv").unwrap_err().to_string();
        assert!(err.starts_with("p.csv:3: unknown task `listopz`"), "{err}");
    }

    #[test]
    fn the_first_matching_row_wins() {
        let published = Published::builtin().unwrap();
        let row = published.lookup(AVERAGE, "transformer", "scratch").unwrap();
        assert!(row.source.starts_with("Amos"));
        assert_eq!(row.value, 53.60);
    }
}
