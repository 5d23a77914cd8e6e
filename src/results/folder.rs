//! Reading one run folder as `lra run` writes it (README, "A run folder"): `spec.json`,
//! `metrics.jsonl`, `summary.json`. The folder is the truth; this module only reads it, and
//! a problem in one file (a corrupt line) never hides what the rest of the folder says.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::Deserialize;
use serde_json::Value;

use super::error::{io, Result, ResultsError};
use super::paths::spec_paths;
use crate::train::metrics::Record;

/// The files of a run folder that the index reads; a change to any of them re-reads the run.
pub(crate) const INDEXED_FILES: [&str; 4] =
    ["spec.json", "metrics.jsonl", "summary.json", "failed.json"];

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunState {
    /// `summary.json` written: tested.
    Done,
    /// Started, not finished (in flight, or killed and resumable with `--resume`).
    Partial,
    /// A file the report needs cannot be read; the run is listed with the reason.
    Unreadable,
    /// Stopped with an error, recorded in `failed.json` (`runs.error`).
    Failed,
    /// A live process holds the folder's lock.
    Running,
}

impl RunState {
    pub fn name(self) -> &'static str {
        match self {
            RunState::Done => "done",
            RunState::Partial => "partial",
            RunState::Unreadable => "unreadable",
            RunState::Failed => "failed",
            RunState::Running => "running",
        }
    }
}

/// `summary.json`, as far as the report needs it. Unknown fields are allowed: a later lra may
/// add some without making older reports fail.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Summary {
    pub test_accuracy: f64,
    pub test_loss: f64,
    #[serde(default)]
    pub test_examples: Option<u64>,
    #[serde(default)]
    pub selected_step: Option<u64>,
    #[serde(default)]
    pub selected_value: Option<f64>,
    #[serde(default)]
    pub finetune_steps: Option<u64>,
    #[serde(default)]
    pub parameters: Option<u64>,
    #[serde(default)]
    pub pretrained_from: Option<PathBuf>,
    #[serde(default)]
    pub seconds: Option<f64>,
    /// The lra that wrote the folder, where it says so (see [`check_version`]).
    #[serde(default)]
    pub lra_version: Option<String>,
}

/// A metrics line with its 1-based line number in `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NumberedRecord {
    pub line: usize,
    pub record: Record,
}

/// Everything the index keeps of one run folder.
#[derive(Debug)]
pub(crate) struct RunFolder {
    /// Relative to the runs folder, `/`-separated: the run's key in the index.
    pub key: String,
    pub experiment: String,
    pub seed: Option<u64>,
    /// The digest part of the folder name (`seed0-1a2b3c4d` → `1a2b3c4d`).
    pub digest: String,
    pub state: RunState,
    /// When the resolved spec was recorded (the run's start) and the summary written (its
    /// end), in seconds since 1970, from the files' modification times: `lra run` records no
    /// clock times of its own.
    pub started: Option<f64>,
    pub ended: Option<f64>,
    pub spec_values: Vec<(String, String)>,
    pub metrics: Vec<NumberedRecord>,
    pub summary: Option<Summary>,
    /// What went wrong reading the folder, each naming its file (and line).
    pub problems: Vec<ResultsError>,
    /// Why the run failed, as `failed.json` records it.
    pub error: Option<String>,
}

impl RunFolder {
    /// Mean training throughput of the fine-tuning phase (the phase every run has), as the
    /// training reports in `metrics.jsonl` give it.
    pub fn tokens_per_s(&self) -> Option<f64> {
        let rates: Vec<f64> = self
            .metrics
            .iter()
            .filter(|m| m.record.phase == "finetune")
            .filter_map(|m| m.record.tokens_per_s)
            .collect();
        (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
    }
}

/// A fingerprint of the indexed files (size and modification time of each): equal
/// fingerprints mean the index holds the folder's current content. Taken before the files are
/// read, so a file that changes while it is read makes the next fingerprint differ.
pub(crate) fn fingerprint(dir: &Path) -> String {
    // The lock beside the folder too: a run starting, beating or ending changes its state.
    let lock = crate::rundir::lock::lock_path(dir);
    INDEXED_FILES
        .iter()
        .map(|name| dir.join(name))
        .chain(std::iter::once(lock))
        .map(|path| {
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            match std::fs::metadata(&path) {
                Ok(meta) => {
                    let nanos = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    format!("{name}:{}:{nanos}", meta.len())
                }
                Err(_) => format!("{name}:-"),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every run folder under `out` (a folder holding `spec.json`), sorted, as keys relative to
/// `out`. Experiment names may contain `/`, so run folders sit at any depth.
pub fn find_run_folders(out: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if is_moved_aside(&dir) {
            continue;
        }
        if dir.join("spec.json").is_file() {
            found.push(key_of(out, &dir));
            continue;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A folder removed while scanning (a fresh run replacing an unfinished one).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir != out => continue,
            Err(e) => return Err(io(&dir)(e)),
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A run folder renamed to `<run-id>.old-N` when its run was started over (the run-folder
/// convention of `lra run --restart`): an earlier attempt, not a run of its own, so counting
/// it would count its seed twice.
fn is_moved_aside(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once(".old-"))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The batches whose frozen plans lie in `<out>/batches/`: each batch's name and its points'
/// (index, run folder key). A plan that cannot be read is skipped: batches are extra
/// information, the run folders are the truth.
pub(crate) fn batch_members(out: &Path) -> Vec<(String, Vec<(usize, String)>)> {
    let Ok(entries) = std::fs::read_dir(out.join("batches")) else {
        return Vec::new();
    };
    let mut batches = Vec::new();
    for entry in entries.flatten() {
        let Ok(Some(plan)) = crate::batch::frozen::load(&entry.path()) else {
            continue;
        };
        // The plan names folders as its runs folder was written (relative or not).
        let root = out.canonicalize().unwrap_or_else(|_| out.to_path_buf());
        let members = plan
            .points
            .iter()
            .filter_map(|p| Some((p.index, key_of(&root, &p.run_dir.canonicalize().ok()?))))
            .collect();
        batches.push((plan.name, members));
    }
    batches.sort();
    batches
}

fn key_of(out: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(out).unwrap_or(dir);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn mtime(path: &Path) -> Option<f64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(modified.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
}

/// Reads the run folder `out/key`.
pub(crate) fn read_run_folder(out: &Path, key: &str) -> RunFolder {
    let dir = out.join(key);
    let name = key.rsplit('/').next().unwrap_or(key);
    let digest = name.split_once('-').map_or(name, |(_, d)| d).to_string();
    let mut run = RunFolder {
        key: key.to_string(),
        experiment: key.rsplit_once('/').map_or("", |(e, _)| e).to_string(),
        seed: None,
        digest,
        state: RunState::Partial,
        started: mtime(&dir.join("spec.json")),
        ended: None,
        spec_values: Vec::new(),
        metrics: Vec::new(),
        summary: None,
        problems: Vec::new(),
        error: None,
    };
    match read_spec(&dir.join("spec.json")) {
        Ok(spec) => {
            if let Some(name) = spec.get("name").and_then(Value::as_str) {
                run.experiment = name.to_string();
            }
            run.seed = spec.get("seed").and_then(Value::as_u64);
            run.spec_values = spec_paths(&spec);
        }
        Err(e) => {
            run.state = RunState::Unreadable;
            run.problems.push(e);
        }
    }
    let summary_path = dir.join("summary.json");
    let summary = match std::fs::read_to_string(&summary_path) {
        Ok(text) => Some(parse_summary(&summary_path, &text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(io(&summary_path)(e))),
    };
    match summary {
        Some(Ok(summary)) => {
            if run.state != RunState::Unreadable {
                run.state = RunState::Done;
            }
            run.ended = mtime(&summary_path);
            run.summary = Some(summary);
        }
        Some(Err(e)) => {
            run.state = RunState::Unreadable;
            run.problems.push(e);
        }
        None => {}
    }
    if run.state == RunState::Partial {
        match crate::rundir::state::of(&dir) {
            crate::rundir::state::FolderState::Running(_) => run.state = RunState::Running,
            crate::rundir::state::FolderState::Failed(failure) => {
                run.state = RunState::Failed;
                run.error = Some(failure.error);
            }
            _ => {}
        }
    }
    let metrics_path = dir.join("metrics.jsonl");
    match std::fs::read_to_string(&metrics_path) {
        Ok(text) => {
            let finished = run.state == RunState::Done;
            let (records, problems) = parse_metrics(&metrics_path, &text, finished);
            run.metrics = records;
            run.problems.extend(problems);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => run.problems.push(io(&metrics_path)(e)),
    }
    run
}

fn read_spec(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let spec: Value = serde_json::from_str(&text).map_err(|e| ResultsError::CorruptFile {
        path: path.to_path_buf(),
        reason: format!("not the JSON `lra run` writes ({e})"),
    })?;
    if !spec.is_object() {
        return Err(ResultsError::CorruptFile {
            path: path.to_path_buf(),
            reason: "expected a JSON object (the resolved spec)".into(),
        });
    }
    Ok(spec)
}

/// `summary.json`, refused when a newer lra wrote it: its fields may mean something this lra
/// does not know.
fn parse_summary(path: &Path, text: &str) -> Result<Summary> {
    let summary: Summary = serde_json::from_str(text).map_err(|e| ResultsError::CorruptFile {
        path: path.to_path_buf(),
        reason: format!("not a summary as `lra run` writes it ({e})"),
    })?;
    check_version(path, summary.lra_version.as_deref())?;
    Ok(summary)
}

/// Refuses a folder that names a newer lra than this one. A folder that names no version was
/// written before versions were recorded, so by an older lra.
pub(crate) fn check_version(path: &Path, version: Option<&str>) -> Result<()> {
    let ours = env!("CARGO_PKG_VERSION");
    match version {
        Some(theirs) if version_key(theirs) > version_key(ours) => {
            Err(ResultsError::NewerRunFolder {
                path: path.to_path_buf(),
                version: theirs.to_string(),
                ours,
            })
        }
        _ => Ok(()),
    }
}

/// `1.10.2` → `[1, 10, 2]`, so versions compare numerically.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['.', '-', '+'])
        .map_while(|part| part.parse().ok())
        .collect()
}

/// The records of `metrics.jsonl` and a problem for each line that is not one. The last line
/// of a run still in flight may be half-written (it has no newline yet): it is left for the
/// next read rather than reported.
pub(crate) fn parse_metrics(
    path: &Path,
    text: &str,
    finished: bool,
) -> (Vec<NumberedRecord>, Vec<ResultsError>) {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let complete = if finished || text.ends_with('\n') {
        text
    } else {
        text.rsplit_once('\n').map_or("", |(done, _)| done)
    };
    for (index, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(record) => records.push(NumberedRecord {
                line: index + 1,
                record,
            }),
            Err(e) => problems.push(ResultsError::CorruptLine {
                path: path.to_path_buf(),
                line: index + 1,
                reason: format!("not a metrics record ({e})"),
            }),
        }
    }
    (records, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        r#"{"phase":"finetune","split":"val","step":10,"epoch":1.0,"loss":0.69,"accuracy":0.5}"#;

    #[test]
    fn a_corrupt_line_is_named_by_its_line_and_the_others_are_kept() {
        let text = format!("{GOOD}\n{{\"phase\": \n{GOOD}\n");
        let (records, problems) = parse_metrics(Path::new("m.jsonl"), &text, true);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].line, 3);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().starts_with("m.jsonl:2: "));
    }

    #[test]
    fn a_half_written_last_line_of_a_run_in_flight_is_not_corrupt() {
        let text = format!("{GOOD}\n{{\"phase\":\"fine");
        let (records, problems) = parse_metrics(Path::new("m.jsonl"), &text, false);
        assert_eq!((records.len(), problems.len()), (1, 0));
        let (_, problems) = parse_metrics(Path::new("m.jsonl"), &text, true);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn run_folders_are_found_at_any_depth_and_moved_aside_ones_skipped() {
        let out = tempfile::tempdir().unwrap();
        for folder in ["a/b/seed0-1", "a/b/seed0-1.old-1", "c/seed1-2"] {
            let dir = out.path().join(folder);
            std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
            std::fs::write(dir.join("spec.json"), "{}").unwrap();
        }
        let found = find_run_folders(out.path()).unwrap();
        assert_eq!(found, ["a/b/seed0-1", "c/seed1-2"]);
    }

    #[test]
    fn newer_versions_are_refused_and_older_ones_read() {
        let path = Path::new("summary.json");
        assert!(check_version(path, None).is_ok());
        assert!(check_version(path, Some("0.0.1")).is_ok());
        assert!(check_version(path, Some(env!("CARGO_PKG_VERSION"))).is_ok());
        let err = check_version(path, Some("99.0.0")).unwrap_err();
        assert!(matches!(err, ResultsError::NewerRunFolder { .. }));
    }
}
