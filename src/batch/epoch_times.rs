//! The training times per epoch that the sources report, `experiments/reference/epoch-times.csv`
//! (entered by hand; each row names the file it comes from). `lra batch plan` prints them
//! beside its own estimate for a GPU run of the same task and model, so a researcher can see
//! how far the estimate's assumed throughput is from a measured one. Built into the binary,
//! like the published accuracies.

use serde::Deserialize;

use crate::spec::{ModelKind, TaskKind};

/// The file as built into lra, and the name errors give it.
pub(crate) const EPOCH_TIMES_CSV: &str =
    include_str!("../../experiments/reference/epoch-times.csv");
pub(crate) const EPOCH_TIMES_PATH: &str = "experiments/reference/epoch-times.csv";

/// One reported time: a whole training epoch of `model` on `task` on one GPU.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct ReportedEpoch {
    pub source: String,
    pub task: String,
    pub model: String,
    /// The GPU the source names, or `unstated`.
    pub gpu: String,
    pub seconds_per_epoch: f64,
    #[serde(default)]
    pub note: String,
}

/// A row of the file that does not parse or names what lra does not know.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EpochTimesError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for EpochTimesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{EPOCH_TIMES_PATH}:{}: {}", self.line, self.reason)
    }
}

/// The reported times built into lra.
pub(crate) fn builtin() -> Result<Vec<ReportedEpoch>, EpochTimesError> {
    parse(EPOCH_TIMES_CSV)
}

/// Parses the CSV, checking every task and model name and that each time is positive.
pub(crate) fn parse(text: &str) -> Result<Vec<ReportedEpoch>, EpochTimesError> {
    crate::reference::read_rows(text, |row: &ReportedEpoch| {
        if TaskKind::from_name(&row.task).is_none() {
            Some(format!("unknown task `{}`", row.task))
        } else if let Some(reason) = crate::reference::unknown_model(&row.model) {
            Some(reason)
        } else if !(row.seconds_per_epoch.is_finite() && row.seconds_per_epoch > 0.0) {
            Some(format!(
                "seconds_per_epoch {} is not a positive number",
                row.seconds_per_epoch
            ))
        } else {
            None
        }
    })
    .map_err(|bad| EpochTimesError {
        line: bad.line,
        reason: bad.reason,
    })
}

/// The first reported time for `task` and `model`.
pub(crate) fn reported(
    rows: &[ReportedEpoch],
    task: TaskKind,
    model: ModelKind,
) -> Option<&ReportedEpoch> {
    rows.iter()
        .find(|r| r.task == task.name() && r.model == model.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_file_parses_and_holds_s4_on_every_task() {
        let rows = builtin().expect("the built-in file parses");
        for task in TaskKind::ALL {
            let row = reported(&rows, *task, ModelKind::S4)
                .unwrap_or_else(|| panic!("no S4 time for {}", task.name()));
            assert!(row.source.contains("state-spaces/s4"), "{row:?}");
        }
        // The S4 repository's table: 2 minutes per epoch for LRA Image on an A100.
        let image = reported(&rows, TaskKind::Image, ModelKind::S4).unwrap();
        assert_eq!(
            (image.gpu.as_str(), image.seconds_per_epoch),
            ("A100", 120.0)
        );
    }

    #[test]
    fn a_bad_row_is_named_by_line() {
        let header = "source,task,model,gpu,seconds_per_epoch,note\n";
        let good = "s,image,s4,A100,120,\n";
        let err = parse(&format!("{header}{good}s,imagenet,s4,A100,1,\n")).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().contains("unknown task `imagenet`"), "{err}");
        let err = parse(&format!("{header}s,image,s4,A100,-5,\n")).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("not a positive number"), "{err}");
        let err = parse(&format!("{header}s,image,s4,A100,fast,\n")).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }
}
