//! The SQLite index of a runs folder, `<out>/index.sqlite`: a cache of the run folders, which
//! stay the truth. [`sync`] brings it up to date in one transaction: a run whose files changed
//! since they were indexed is read again, a run folder that disappeared is dropped. Deleting
//! the index and syncing again gives the same rows (the tests hold this).
//!
//! Concurrency: a sync takes SQLite's write lock (`BEGIN IMMEDIATE`) for its whole update, so
//! two `lra report`s never interleave their writes; in WAL mode readers see the last committed
//! state, never half of an update. A run that finishes while a sync reads it changes its
//! files' fingerprint, so the next sync reads it again: nothing is lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::error::{sqlite, Result, ResultsError};
use super::folder::{self, RunFolder};

/// The index's file name inside a runs folder.
pub const INDEX_FILE: &str = "index.sqlite";

/// Bumped whenever [`SCHEMA`] changes: an index of another version is rebuilt from the run
/// folders (it is only a cache of them).
pub const SCHEMA_VERSION: i64 = 2;

/// The tables. docs/RESULTS.md describes each column.
const SCHEMA: &str = "
CREATE TABLE runs (
    folder       TEXT PRIMARY KEY,
    experiment   TEXT NOT NULL,
    seed         INTEGER,
    digest       TEXT NOT NULL,
    state        TEXT NOT NULL,
    started      REAL,
    ended        REAL,
    seconds      REAL,
    tokens_per_s REAL,
    parameters   INTEGER,
    error        TEXT,
    problems     TEXT,
    fingerprint  TEXT NOT NULL
);
CREATE TABLE spec_values (
    folder TEXT NOT NULL REFERENCES runs(folder) ON DELETE CASCADE,
    path   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (folder, path)
);
CREATE TABLE metrics (
    folder       TEXT NOT NULL REFERENCES runs(folder) ON DELETE CASCADE,
    line         INTEGER NOT NULL,
    phase        TEXT NOT NULL,
    split        TEXT NOT NULL,
    step         INTEGER NOT NULL,
    epoch        REAL NOT NULL,
    loss         REAL NOT NULL,
    accuracy     REAL NOT NULL,
    mae          REAL,
    r2           REAL,
    lr           REAL,
    tokens_per_s REAL,
    PRIMARY KEY (folder, line)
);
CREATE TABLE results (
    folder          TEXT PRIMARY KEY REFERENCES runs(folder) ON DELETE CASCADE,
    test_accuracy   REAL NOT NULL,
    test_loss       REAL NOT NULL,
    test_examples   INTEGER,
    selected_step   INTEGER,
    selected_value  REAL,
    finetune_steps  INTEGER,
    pretrained_from TEXT
);
CREATE TABLE batch_runs (
    batch  TEXT NOT NULL,
    point  INTEGER NOT NULL,
    folder TEXT NOT NULL REFERENCES runs(folder) ON DELETE CASCADE,
    PRIMARY KEY (batch, point)
);
CREATE INDEX spec_values_by_path ON spec_values(path, value);
";

const TABLES: [&str; 5] = ["batch_runs", "results", "metrics", "spec_values", "runs"];

/// What a sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Runs read again because their files changed (or were new).
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
    /// The index was rebuilt from scratch (missing, or another schema version).
    pub rebuilt: bool,
}

/// An open index.
pub struct Index {
    pub path: PathBuf,
    conn: Connection,
}

/// Opens (creating if needed) the index of the runs folder `out` and brings it up to date.
/// Returns it with what changed. Problems inside run folders are kept in the index
/// (`runs.problems`), not returned as errors: one bad folder never hides the others.
pub fn sync(out: &Path) -> Result<(Index, SyncStats)> {
    if !out.is_dir() {
        return Err(ResultsError::Empty {
            path: out.to_path_buf(),
        });
    }
    let index = Index::open(&out.join(INDEX_FILE))?;
    let stats = index.update(out)?;
    Ok((index, stats))
}

impl Index {
    fn open(path: &Path) -> Result<Index> {
        let err = || sqlite(path);
        let conn = Connection::open(path).map_err(err())?;
        // Writers wait for each other rather than fail; WAL lets readers go on meanwhile.
        conn.busy_timeout(Duration::from_secs(60)).map_err(err())?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err())?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(err())?;
        Ok(Index {
            path: path.to_path_buf(),
            conn,
        })
    }

    fn update(&self, out: &Path) -> Result<SyncStats> {
        let err = || sqlite(&self.path);
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(err())?;
        let mut stats = SyncStats::default();
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(err())?;
        if version != SCHEMA_VERSION {
            for table in TABLES {
                tx.execute_batch(&format!("DROP TABLE IF EXISTS {table};"))
                    .map_err(err())?;
            }
            tx.execute_batch("DROP INDEX IF EXISTS spec_values_by_path;")
                .map_err(err())?;
            tx.execute_batch(SCHEMA).map_err(err())?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err())?;
            stats.rebuilt = true;
        }
        let mut indexed: BTreeMap<String, String> = BTreeMap::new();
        {
            let mut query = tx
                .prepare("SELECT folder, fingerprint FROM runs")
                .map_err(err())?;
            let rows = query
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(err())?;
            for row in rows {
                let (key, print) = row.map_err(err())?;
                indexed.insert(key, print);
            }
        }
        let on_disk = folder::find_run_folders(out)?;
        for key in &on_disk {
            let print = folder::fingerprint(&out.join(key));
            if indexed.get(key) == Some(&print) {
                stats.unchanged += 1;
                continue;
            }
            let run = folder::read_run_folder(out, key);
            write_run(&tx, &run, &print).map_err(err())?;
            stats.updated += 1;
        }
        for key in indexed.keys() {
            if on_disk.binary_search(key).is_err() {
                tx.execute("DELETE FROM runs WHERE folder = ?1", [key])
                    .map_err(err())?;
                stats.removed += 1;
            }
        }
        write_batches(&tx, out, &on_disk).map_err(err())?;
        tx.commit().map_err(err())?;
        Ok(stats)
    }

    /// The connection, for the report's queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Every table's rows in a fixed order, as text: two indexes with equal dumps hold the
    /// same content (the rebuild test compares them). The fingerprint is left out: it records
    /// when files were read, not what they say.
    pub fn dump(&self) -> Result<String> {
        let err = || sqlite(&self.path);
        let mut out = String::new();
        for table in TABLES.iter().rev() {
            let mut query = self
                .conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
                .map_err(err())?;
            let names: Vec<String> = query.column_names().iter().map(|s| s.to_string()).collect();
            let rows = query
                .query_map([], |row| {
                    let mut cells = Vec::new();
                    for (i, name) in names.iter().enumerate() {
                        if name == "fingerprint" {
                            continue;
                        }
                        let value: rusqlite::types::Value = row.get(i)?;
                        cells.push(format!("{name}={value:?}"));
                    }
                    Ok(cells.join(" "))
                })
                .map_err(err())?;
            out.push_str(&format!("[{table}]\n"));
            for row in rows {
                out.push_str(&row.map_err(err())?);
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// The schema version stored in the file.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .optional()
            .map(|v| v.unwrap_or(0))
            .map_err(sqlite(&self.path))
    }
}

/// Batch membership, from the frozen plans of `<out>/batches/*/plan.json` (rewritten whole:
/// a plan is small), for the runs that have a folder.
fn write_batches(tx: &Connection, out: &Path, on_disk: &[String]) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM batch_runs", [])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO batch_runs (batch, point, folder) VALUES (?1, ?2, ?3)",
    )?;
    for (name, folders) in folder::batch_members(out) {
        for (point, key) in folders {
            if on_disk.binary_search(&key).is_ok() {
                insert.execute(params![name, point as i64, key])?;
            }
        }
    }
    Ok(())
}

/// Replaces everything the index holds of one run.
fn write_run(tx: &Connection, run: &RunFolder, fingerprint: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM runs WHERE folder = ?1", [&run.key])?;
    let problems: Vec<String> = run.problems.iter().map(|p| p.to_string()).collect();
    let summary = run.summary.as_ref();
    tx.execute(
        "INSERT INTO runs (folder, experiment, seed, digest, state, started, ended, seconds,
                           tokens_per_s, parameters, error, problems, fingerprint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            run.key,
            run.experiment,
            run.seed.map(|s| s as i64),
            run.digest,
            run.state.name(),
            run.started,
            run.ended,
            summary.and_then(|s| s.seconds),
            run.tokens_per_s(),
            summary.and_then(|s| s.parameters).map(|p| p as i64),
            run.error,
            (!problems.is_empty()).then(|| problems.join("\n")),
            fingerprint,
        ],
    )?;
    let mut insert_value =
        tx.prepare_cached("INSERT INTO spec_values (folder, path, value) VALUES (?1, ?2, ?3)")?;
    for (path, value) in &run.spec_values {
        insert_value.execute(params![run.key, path, value])?;
    }
    let mut insert_metric = tx.prepare_cached(
        "INSERT INTO metrics (folder, line, phase, split, step, epoch, loss, accuracy, mae, r2,
                              lr, tokens_per_s)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for m in &run.metrics {
        let r = &m.record;
        insert_metric.execute(params![
            run.key,
            m.line as i64,
            r.phase,
            r.split,
            r.step as i64,
            r.epoch,
            r.loss,
            r.accuracy,
            r.mae,
            r.r2,
            r.lr,
            r.tokens_per_s
        ])?;
    }
    if let Some(s) = summary {
        tx.execute(
            "INSERT INTO results (folder, test_accuracy, test_loss, test_examples, selected_step,
                                  selected_value, finetune_steps, pretrained_from)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                run.key,
                s.test_accuracy,
                s.test_loss,
                s.test_examples.map(|n| n as i64),
                s.selected_step.map(|n| n as i64),
                s.selected_value,
                s.finetune_steps.map(|n| n as i64),
                s.pretrained_from
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
            ],
        )?;
    }
    Ok(())
}
