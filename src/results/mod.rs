//! The results index (docs/RESULTS.md): every run folder under a runs folder, indexed in SQLite at
//! `<out>/index.sqlite` for `lra report` and for queries from outside (`sqlite3`; schema in
//! docs/RESULTS.md). Entry point: [`sync`]; [`load`] reads the index back for the report.

pub mod error;
pub mod folder;
pub mod index;
pub mod paths;

use std::collections::BTreeMap;

pub use error::{Result, ResultsError};
pub use index::{sync, Index, SyncStats, INDEX_FILE, SCHEMA_VERSION};
pub use paths::spec_paths;

use error::sqlite;

/// One evaluation of a run, as the index holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub phase: String,
    pub split: String,
    pub step: u64,
    pub loss: f64,
    pub accuracy: f64,
}

/// The test result of a finished run.
#[derive(Clone, Debug, PartialEq)]
pub struct TestResult {
    /// A fraction in [0, 1], as `summary.json` holds it.
    pub accuracy: f64,
    pub loss: f64,
}

/// One run as the report sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexedRun {
    pub folder: String,
    pub experiment: String,
    pub seed: Option<u64>,
    pub state: String,
    /// Problems met reading the folder, one per line (corrupt metrics lines, …).
    pub problems: Option<String>,
    pub values: BTreeMap<String, String>,
    pub test: Option<TestResult>,
    pub evaluations: Vec<Evaluation>,
}

impl IndexedRun {
    /// A spec value by its dotted path (`model.d_model`).
    pub fn value(&self, path: &str) -> Option<&str> {
        self.values.get(path).map(String::as_str)
    }
}

/// The run folders (keys) of batch `name`.
pub(crate) fn batch_folders(
    index: &Index,
    name: &str,
) -> Result<std::collections::BTreeSet<String>> {
    let conn = index.connection();
    let err = || sqlite(&index.path);
    let mut query = conn
        .prepare("SELECT folder FROM batch_runs WHERE batch = ?1")
        .map_err(err())?;
    let rows = query
        .query_map([name], |row| row.get::<_, String>(0))
        .map_err(err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(err())
}

/// Every run of the index, sorted by folder, with its spec values, test result and
/// evaluations (validation and test; training reports are left in the index).
pub fn load(index: &Index) -> Result<Vec<IndexedRun>> {
    let conn = index.connection();
    let err = || sqlite(&index.path);
    // One read transaction: the runs, values and metrics are of the same committed state.
    conn.execute_batch("BEGIN DEFERRED").map_err(err())?;
    let loaded = load_in_transaction(conn);
    conn.execute_batch("COMMIT").map_err(err())?;
    loaded.map_err(err())
}

fn load_in_transaction(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<IndexedRun>> {
    let mut runs: BTreeMap<String, IndexedRun> = BTreeMap::new();
    let mut query = conn.prepare(
        "SELECT r.folder, r.experiment, r.seed, r.state, r.problems, t.test_accuracy, t.test_loss
         FROM runs r LEFT JOIN results t ON t.folder = r.folder",
    )?;
    let rows = query.query_map([], |row| {
        let accuracy: Option<f64> = row.get(5)?;
        let loss: Option<f64> = row.get(6)?;
        Ok(IndexedRun {
            folder: row.get(0)?,
            experiment: row.get(1)?,
            seed: row.get::<_, Option<i64>>(2)?.map(|s| s as u64),
            state: row.get(3)?,
            problems: row.get(4)?,
            values: BTreeMap::new(),
            test: accuracy
                .zip(loss)
                .map(|(accuracy, loss)| TestResult { accuracy, loss }),
            evaluations: Vec::new(),
        })
    })?;
    for run in rows {
        let run = run?;
        runs.insert(run.folder.clone(), run);
    }
    let mut query = conn.prepare("SELECT folder, path, value FROM spec_values")?;
    let mut rows = query.query([])?;
    while let Some(row) = rows.next()? {
        let folder: String = row.get(0)?;
        if let Some(run) = runs.get_mut(&folder) {
            run.values.insert(row.get(1)?, row.get(2)?);
        }
    }
    let mut query = conn.prepare(
        "SELECT folder, phase, split, step, loss, accuracy FROM metrics
         WHERE split != 'train' ORDER BY folder, line",
    )?;
    let mut rows = query.query([])?;
    while let Some(row) = rows.next()? {
        let folder: String = row.get(0)?;
        if let Some(run) = runs.get_mut(&folder) {
            run.evaluations.push(Evaluation {
                phase: row.get(1)?,
                split: row.get(2)?,
                step: row.get::<_, i64>(3)? as u64,
                loss: row.get(4)?,
                accuracy: row.get(5)?,
            });
        }
    }
    Ok(runs.into_values().collect())
}
