//! Runs → groups: filter by `--where`, group by `--by` (dotted paths as `lra explain` prints
//! them), and summarise each group's test accuracy over seeds, with the seeds stuck at chance
//! counted apart and the published figure for the same task, model and objective beside.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::error::{ReportError, Result};
use super::published::{Published, PublishedRow};
use crate::results::IndexedRun;

/// The default grouping: task × model kind × objective, as the papers' tables.
pub const DEFAULT_BY: [&str; 3] = ["task", "model", "pretrain"];

/// A seed whose test accuracy is within this many points of the task's chance level has not
/// learnt the task; it is flagged and left out of the mean (the SPT paper's S5 Path-X had such
/// seeds).
pub(crate) const CHANCE_MARGIN: f64 = 2.0;

/// One `--where` condition: `path=value` or `path!=value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub path: String,
    pub value: String,
    pub negated: bool,
}

impl Condition {
    /// Parses `model.d_model=64` or `pretrain!=none`.
    pub fn parse(text: &str) -> Result<Condition> {
        let bad = || ReportError::BadWhere {
            given: text.to_string(),
        };
        let (path, value, negated) = match text.split_once("!=") {
            Some((p, v)) => (p, v, true),
            None => text
                .split_once('=')
                .map(|(p, v)| (p, v, false))
                .ok_or_else(bad)?,
        };
        let (path, value) = (path.trim(), value.trim());
        if path.is_empty() || value.is_empty() {
            return Err(bad());
        }
        Ok(Condition {
            path: path.to_string(),
            value: value.to_string(),
            negated,
        })
    }

    fn holds(&self, run: &IndexedRun) -> bool {
        let actual = group_value(run, &self.path);
        same_value(&actual, &self.value) != self.negated
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = if self.negated { "!=" } else { "=" };
        write!(f, "{}{op}{}", self.path, self.value)
    }
}

/// Values compare as numbers where both are (`1e-3` = `0.001`), else as text.
fn same_value(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// A run's value for a grouping path. `experiment` is the run's name; a run without
/// pretraining has no `pretrain` section, which reads `scratch` (the papers' word); any other
/// absent field reads `-`.
pub(crate) fn group_value(run: &IndexedRun, path: &str) -> String {
    match (path, run.value(path)) {
        ("experiment", _) => run.experiment.clone(),
        (_, Some(value)) => value.to_string(),
        ("pretrain", None) => "scratch".to_string(),
        _ => "-".to_string(),
    }
}

/// The summary of one group's finished runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroupStats {
    /// Finished runs counted in the mean.
    pub seeds: usize,
    /// Test accuracy in percent over those runs: mean, and sample standard deviation (none
    /// for a single run).
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// Seeds of finished runs stuck at chance, left out of the mean.
    pub at_chance: Vec<u64>,
    /// Runs without a test result yet (in flight, killed, or unreadable).
    pub unfinished: usize,
    /// Runs whose folder had a problem (a corrupt metrics line, …).
    pub with_problems: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Group {
    /// `(path, value)` for each `--by` path (a JSON object in `--format json`).
    #[serde(serialize_with = "key_as_object")]
    pub key: Vec<(String, String)>,
    /// What the published figure is looked up by, where every run of the group agrees.
    pub task: Option<String>,
    pub model: Option<String>,
    pub objective: Option<String>,
    pub stats: GroupStats,
    pub published: Option<PublishedRow>,
    /// Every run of the group (in JSON: folder, seed, state and test accuracy).
    #[serde(serialize_with = "runs_in_brief")]
    pub runs: Vec<IndexedRun>,
}

fn key_as_object<S: serde::Serializer>(
    key: &[(String, String)],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(key.len()))?;
    for (path, value) in key {
        map.serialize_entry(path, value)?;
    }
    map.end()
}

fn runs_in_brief<S: serde::Serializer>(
    runs: &[IndexedRun],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = serializer.serialize_seq(Some(runs.len()))?;
    for run in runs {
        seq.serialize_element(&serde_json::json!({
            "folder": run.folder,
            "seed": run.seed,
            "state": run.state,
            "test_accuracy": run.test.as_ref().map(|t| t.accuracy * 100.0),
            "at_chance": at_chance(run),
            "problems": run.problems,
        }))?;
    }
    seq.end()
}

impl Group {
    /// Measured mean minus the published figure, in points.
    pub fn difference(&self) -> Option<f64> {
        Some(self.stats.mean? - self.published.as_ref()?.value)
    }

    /// A label such as `pathfinder / transformer / masked`.
    pub fn label(&self) -> String {
        let values: Vec<&str> = self.key.iter().map(|(_, v)| v.as_str()).collect();
        values.join(" / ")
    }
}

/// The chance level of a run's task in percent: one over its number of classes.
pub(crate) fn chance_level(run: &IndexedRun) -> Option<f64> {
    let task = crate::spec::TaskKind::from_name(run.value("task")?)?;
    Some(100.0 / task.n_classes() as f64)
}

/// Whether a finished run's test accuracy is within [`CHANCE_MARGIN`] of chance.
pub fn at_chance(run: &IndexedRun) -> bool {
    match (&run.test, chance_level(run)) {
        (Some(test), Some(chance)) => (test.accuracy * 100.0 - chance).abs() <= CHANCE_MARGIN,
        _ => false,
    }
}

/// Checks that every path names a field some run has, with a did-you-mean otherwise.
pub(crate) fn check_paths<'a>(
    runs: &[IndexedRun],
    paths: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<()> {
    let known: BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.values.keys().map(String::as_str))
        .chain(["experiment", "pretrain"])
        .collect();
    for (given, path) in paths {
        if known.contains(path) {
            continue;
        }
        let nearest = known
            .iter()
            .map(|k| (strsim::jaro_winkler(k, path), *k))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let help = match nearest {
            Some((_, k)) => format!("did you mean `{k}`? `lra explain FILE` prints every path"),
            None => "use a path as `lra explain FILE` prints it, e.g. `model.d_model`".into(),
        };
        return Err(ReportError::UnknownPath {
            given: given.to_string(),
            path: path.to_string(),
            help,
        });
    }
    Ok(())
}

/// Filters `runs` by `conditions`, groups them by `by` and summarises each group. Groups come
/// sorted by their key values.
pub fn build(
    runs: &[IndexedRun],
    by: &[String],
    conditions: &[Condition],
    published: &Published,
) -> Result<Vec<Group>> {
    check_paths(
        runs,
        by.iter().map(|p| (p.as_str(), p.as_str())).chain(
            conditions
                .iter()
                .map(|c| (c.path.as_str(), c.path.as_str())),
        ),
    )?;
    let selected: Vec<&IndexedRun> = runs
        .iter()
        .filter(|r| conditions.iter().all(|c| c.holds(r)))
        .collect();
    if selected.is_empty() {
        let text: Vec<String> = conditions.iter().map(|c| format!("`{c}`")).collect();
        return Err(ReportError::NothingMatches {
            conditions: text.join(" and "),
            runs: runs.len(),
        });
    }
    let mut grouped: BTreeMap<Vec<String>, Vec<IndexedRun>> = BTreeMap::new();
    for run in selected {
        let key = by.iter().map(|p| group_value(run, p)).collect();
        grouped.entry(key).or_default().push(run.clone());
    }
    Ok(grouped
        .into_iter()
        .map(|(values, runs)| {
            let key = by.iter().cloned().zip(values).collect();
            summarise(key, runs, published)
        })
        .collect())
}

/// The value every run of a group shares at `path`, if they do.
fn shared(runs: &[IndexedRun], path: &str) -> Option<String> {
    let first = group_value(runs.first()?, path);
    runs.iter()
        .all(|r| group_value(r, path) == first)
        .then_some(first)
}

fn summarise(key: Vec<(String, String)>, runs: Vec<IndexedRun>, published: &Published) -> Group {
    let mut stats = GroupStats::default();
    let mut counted = Vec::new();
    for run in &runs {
        if run.problems.is_some() {
            stats.with_problems += 1;
        }
        match &run.test {
            None => stats.unfinished += 1,
            Some(_) if at_chance(run) => stats.at_chance.push(run.seed.unwrap_or_default()),
            Some(test) => counted.push(test.accuracy * 100.0),
        }
    }
    stats.seeds = counted.len();
    stats.mean = mean(&counted);
    stats.std = sample_std(&counted);
    let task = shared(&runs, "task");
    let model = shared(&runs, "model");
    let objective = shared(&runs, "pretrain");
    let published = match (&task, &model, &objective) {
        (Some(t), Some(m), Some(o)) => published.lookup(t, m, o).cloned(),
        _ => None,
    };
    Group {
        key,
        task,
        model,
        objective,
        stats,
        published,
        runs,
    }
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The sample standard deviation (n − 1), as papers report over seeds.
pub(crate) fn sample_std(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    (values.len() > 1).then(|| {
        let ss: f64 = values.iter().map(|v| (v - m).powi(2)).sum();
        (ss / (values.len() - 1) as f64).sqrt()
    })
}
