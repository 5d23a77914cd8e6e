//! `lra report`: the runs of a runs folder as the papers' tables, beside the published
//! figures, and learning-curve plots. Entry point: [`report`] (and [`diff::diff`] for two
//! runs). The run folders are read through the results index ([`crate::results`]).

pub mod diff;
pub mod error;
pub mod groups;
pub mod plots;
pub mod published;
pub mod render;

use std::path::{Path, PathBuf};

pub use error::{ReportError, Result};
pub use groups::{Condition, Group, DEFAULT_BY};
pub use published::Published;
pub use render::Format;

use crate::results::{self, IndexedRun, SyncStats};

#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Grouping paths (`task`, `model.d_model`, …).
    pub by: Vec<String>,
    pub conditions: Vec<Condition>,
    pub format: Format,
    /// Where to write the figures, if anywhere.
    pub plots: Option<PathBuf>,
    /// Only the runs of this batch (its frozen plan in `<out>/batches/<name>/`).
    pub batch: Option<String>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            by: DEFAULT_BY.iter().map(|s| s.to_string()).collect(),
            conditions: Vec::new(),
            format: Format::Table,
            plots: None,
            batch: None,
        }
    }
}

/// A run whose folder had problems, and what they are (one per line).
#[derive(Clone, Debug, PartialEq)]
pub struct RunProblems {
    pub folder: String,
    pub problems: Vec<String>,
}

/// What `lra report` prints and writes.
#[derive(Debug)]
pub struct Report {
    pub text: String,
    pub problems: Vec<RunProblems>,
    pub plots: Vec<PathBuf>,
    pub sync: SyncStats,
    pub groups: Vec<Group>,
}

/// Brings the index of `out` up to date and reports its runs.
pub fn report(out: &Path, options: &ReportOptions) -> Result<Report> {
    if let (Some(name), false) = (&options.batch, out.is_dir()) {
        return Err(ReportError::BatchNotRun {
            name: name.clone(),
            out: out.to_path_buf(),
        });
    }
    let (index, sync) = results::sync(out)?;
    let mut runs = results::load(&index)?;
    if let Some(name) = &options.batch {
        let members = results::batch_folders(&index, name)?;
        runs.retain(|r| members.contains(&r.folder));
        if runs.is_empty() {
            return Err(ReportError::BatchNotRun {
                name: name.clone(),
                out: out.to_path_buf(),
            });
        }
    }
    if runs.is_empty() {
        return Err(results::ResultsError::Empty {
            path: out.to_path_buf(),
        }
        .into());
    }
    let published = Published::builtin()?;
    // The paper-shaped view is by task, model and objective whatever `--by` says.
    let by = if options.format == Format::Paper {
        DEFAULT_BY.iter().map(|s| s.to_string()).collect()
    } else {
        options.by.clone()
    };
    let groups = groups::build(&runs, &by, &options.conditions, &published)?;
    let text = render::render(&groups, options.format, &published);
    let plots = match &options.plots {
        Some(dir) => plots::write_plots(&groups, dir)?,
        None => Vec::new(),
    };
    Ok(Report {
        text,
        problems: problems(&runs, &groups),
        plots,
        sync,
        groups,
    })
}

/// The problems of the runs that made it into the report.
fn problems(runs: &[IndexedRun], groups: &[Group]) -> Vec<RunProblems> {
    let reported = |folder: &str| {
        groups
            .iter()
            .any(|g| g.runs.iter().any(|r| r.folder == folder))
    };
    runs.iter()
        .filter(|r| reported(&r.folder))
        .filter_map(|r| {
            let text = r.problems.as_ref()?;
            Some(RunProblems {
                folder: r.folder.clone(),
                problems: text.lines().map(String::from).collect(),
            })
        })
        .collect()
}
