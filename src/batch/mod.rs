//! Batches: a YAML file of specs, seeds, settings and sweeps (docs/BATCHES.md) → a plan of
//! points, each checked by the spec checker → runs, locally or on a cluster, resumable, one
//! failure never stopping the others. Entry point: [`plan::plan`]; then [`local::run`] or a
//! worker per point ([`worker`]).
//!
//! Stages: the YAML is read into a located tree ([`yaml`]), typed ([`file`]), expanded into
//! combinations ([`expand`]), each laid over its experiment ([`layer`]) and checked, then
//! frozen in the batch folder ([`frozen`]); run folders say where each point stands
//! ([`status`]); [`cost`] says what the batch will cost.

pub mod cost;
pub mod diagnostics;
pub mod epoch_times;
pub mod error;
pub mod expand;
pub mod file;
pub mod frozen;
pub mod layer;
pub mod local;
pub mod paths;
pub mod plan;
pub mod status;
pub mod yaml;

use std::path::Path;
use std::sync::atomic::AtomicBool;

pub use plan::{Plan, Point};

/// `lra batch worker BATCH_DIR INDEX`: runs point `index` of the frozen plan in `batch_dir`
/// (what a Slurm array task runs). Its outcome, or why the plan cannot be read.
pub fn worker(
    batch_dir: &Path,
    index: usize,
    threads: usize,
    interrupt: &AtomicBool,
) -> Result<local::Outcome, String> {
    let plan = frozen::load(batch_dir)?.ok_or_else(|| {
        format!(
            "{} has no plan: `lra batch run` writes it before starting workers",
            batch_dir.display()
        )
    })?;
    let point = plan.points.get(index).ok_or_else(|| {
        format!(
            "the plan in {} has {} points, so there is no point {index}",
            batch_dir.display(),
            plan.points.len()
        )
    })?;
    let options = local::LocalOptions {
        jobs: 1,
        threads,
        retry_failed: true,
        quiet: true,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| format!("cannot start {threads} worker threads: {e}"))?;
    Ok(pool.install(|| local::run_point(&plan, point, &options, interrupt)))
}
