//! `lra batch plan|run|status|cancel|worker`: batches of specs (docs/BATCHES.md).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use super::run::EXIT_INTERRUPTED;
use super::{machine, EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use crate::batch::cost::{self, PointCost, Speeds};
use crate::batch::local::{self, LocalOptions, Outcome};
use crate::batch::plan::{self, Plan, Planned};
use crate::batch::status::{self, PointState};
use crate::batch::{epoch_times, file::Executor, frozen};
use crate::estimate::{human, human_bytes};
use crate::spec::Device;

#[derive(Subcommand)]
pub enum BatchCommand {
    /// The points of a batch file, each with its state, and what the batch will cost.
    Plan {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the points that are not done: partial ones resume, failed ones wait for
    /// `--retry-failed`, one failure never stops the others.
    Run {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Points trained at once (default: the batch file's `executor.jobs`, else 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        jobs: Option<u64>,
        /// Where the points run (default: the batch file's `executor.kind`).
        #[arg(long)]
        executor: Option<ExecutorKind>,
        /// Run points that failed before again.
        #[arg(long)]
        retry_failed: bool,
        /// No per-point lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Where each point stands, from its run folder.
    Status {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel the batch's cluster jobs.
    Cancel {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Run one point of a frozen plan (what each Slurm array task runs).
    Worker {
        /// The batch folder (`<out>/batches/<name>`).
        batch_dir: PathBuf,
        index: usize,
        /// Worker threads (default: every core, or SLURM_CPUS_PER_TASK).
        #[arg(long)]
        threads: Option<usize>,
    },
}

#[derive(Args)]
pub struct Common {
    /// Override the runs folder of every point (as `lra run --out` does).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Threads for the batch (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    Local,
    Slurm,
}

pub fn run(command: BatchCommand) -> u8 {
    match command {
        BatchCommand::Plan { file, common, json } => plan_command(&file, &common, json),
        BatchCommand::Run {
            file,
            common,
            jobs,
            executor,
            retry_failed,
            quiet,
        } => run_command(&file, &common, jobs, executor, retry_failed, quiet),
        BatchCommand::Status { file, common, json } => status_command(&file, &common, json),
        BatchCommand::Cancel { file, common } => cancel_command(&file, &common),
        BatchCommand::Worker {
            batch_dir,
            index,
            threads,
        } => worker_command(&batch_dir, index, threads),
    }
}

/// Plans `file`, printing its diagnostics; `Err` is the exit code when there is no plan.
fn planned(file: &Path, common: &Common) -> Result<Plan, u8> {
    planned_with(file, common, true)
}

fn planned_with(file: &Path, common: &Common, check_data: bool) -> Result<Plan, u8> {
    let context = machine::context(check_data);
    let Planned { plan, diagnostics } = match plan::plan(file, &context, common.out.as_deref()) {
        Ok(planned) => planned,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return Err(EXIT_USAGE);
        }
    };
    if !diagnostics.is_empty() {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        eprint!("{}", diagnostics.render(color));
    }
    match plan {
        Some(plan) => Ok(plan),
        None => {
            let n = diagnostics.errors();
            eprintln!(
                "error: {} has {n} error{}; nothing runs until every point checks",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
            Err(EXIT_ERRORS)
        }
    }
}

/// The plan of a batch file for other commands (`lra report BATCH.yaml`): diagnostics
/// printed, data folders not required.
pub(crate) fn plan_quietly(file: &Path) -> Result<Plan, u8> {
    let common = Common {
        out: None,
        threads: None,
    };
    planned_with(file, &common, false)
}

fn threads(common: &Common) -> usize {
    common.threads.unwrap_or_else(rayon::current_num_threads)
}

fn local_jobs(plan: &Plan, jobs: Option<u64>) -> usize {
    let from_file = match &plan.executor {
        Some(Executor::Local { jobs: Some(j) }) => j.value,
        _ => 1,
    };
    jobs.map_or(from_file, |j| j as usize)
}

fn plan_command(file: &Path, common: &Common, json: bool) -> u8 {
    let plan = match planned(file, common) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let jobs = local_jobs(&plan, None);
    let threads_per_point = (threads(common) / jobs.max(1)).max(1);
    let speeds = Speeds::measure(&plan.points);
    let rows: Vec<(PointState, PointCost)> = plan
        .points
        .iter()
        .map(|p| {
            (
                status::of(&plan, p),
                cost::of(
                    &p.spec,
                    p.pretrained_by.is_none(),
                    threads_per_point,
                    &speeds,
                ),
            )
        })
        .collect();
    let frozen = frozen::load(&plan.batch_dir).unwrap_or_else(|e| {
        eprintln!("warning: {e}");
        None
    });
    let difference = frozen.as_ref().map(|f| frozen::difference(f, &plan));
    if json {
        let points: Vec<serde_json::Value> = plan
            .points
            .iter()
            .zip(&rows)
            .map(|(p, (state, c))| {
                serde_json::json!({
                    "index": p.index, "experiment": p.experiment, "label": p.label,
                    "spec_file": p.spec_file, "run_dir": p.run_dir, "state": state.name(),
                    "pretrained_by": p.pretrained_by, "parameters": c.params, "flops": c.flops,
                    "steps": c.steps, "seconds": c.seconds, "measured": c.measured,
                    "checkpoint_bytes": c.checkpoint_bytes,
                })
            })
            .collect();
        let total = totals(&rows);
        let value = serde_json::json!({
            "name": plan.name, "batch_dir": plan.batch_dir, "points": points,
            "total": { "flops": total.flops, "seconds": total.seconds,
                       "checkpoint_bytes": total.checkpoint_bytes },
            "added": difference.as_ref().map(|d| d.added.iter().map(|p| p.index).collect::<Vec<_>>()),
            "removed": difference.as_ref().map(|d| d.removed.iter().map(|p| &p.run_dir).collect::<Vec<_>>()),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return EXIT_OK;
    }
    print!("{}", header(&plan));
    let mut table = String::from(
        "| # | experiment | point | state | pretraining | parameters | FLOPs | time |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (p, (state, c)) in plan.points.iter().zip(&rows) {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} | {}{} |",
            p.index,
            p.experiment,
            p.label,
            state.name(),
            pretraining(p),
            human(c.params as f64),
            human(c.flops),
            duration(c.seconds),
            if c.measured { "" } else { "*" }
        );
    }
    print!("{table}");
    println!("{}", cost_line(&plan, &rows, jobs, threads_per_point));
    if let Some(table) = reported_epochs(&plan, &rows, threads_per_point, &speeds) {
        print!("{table}");
    }
    if let Some(d) = difference {
        if d.added.is_empty() && d.removed.is_empty() {
            println!(
                "the frozen plan in {} is the same",
                plan.batch_dir.display()
            );
        } else {
            println!(
                "since the frozen plan in {}: {} point(s) added, {} removed (their run folders are kept):",
                plan.batch_dir.display(),
                d.added.len(),
                d.removed.len()
            );
            for p in &d.added {
                println!("  + {} {} ({})", p.index, p.experiment, p.label);
            }
            for p in &d.removed {
                println!("  - {} ({}) {}", p.experiment, p.label, p.run_dir.display());
            }
        }
    }
    EXIT_OK
}

/// For the points still to run on a GPU: one fine-tuning epoch as estimated here, beside the
/// time a source reports for the same task and model (`experiments/reference/epoch-times.csv`),
/// one row per task and model, for those a source gives.
fn reported_epochs(
    plan: &Plan,
    rows: &[(PointState, PointCost)],
    threads: usize,
    speeds: &Speeds,
) -> Option<String> {
    let reported = match epoch_times::builtin() {
        Ok(reported) => reported,
        Err(e) => {
            return Some(format!(
                "\n(the sources' times per epoch are left out: {e})\n"
            ))
        }
    };
    let mut seen = Vec::new();
    let mut table = String::new();
    for (p, (state, _)) in plan.points.iter().zip(rows) {
        let key = (p.spec.task.kind, p.spec.model.kind);
        if state.is_done() || !matches!(p.spec.device, Device::Cuda(_)) || seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let Some(source) = epoch_times::reported(&reported, key.0, key.1) else {
            continue;
        };
        let (estimated, measured) = cost::epoch_seconds(&p.spec, threads, speeds);
        let _ = writeln!(
            table,
            "| {} | {} | {} | {}{} | {} ({}) | {}; {} |",
            key.0.name(),
            key.1.name(),
            p.experiment,
            duration(estimated),
            if measured { "" } else { "*" },
            duration(source.seconds_per_epoch),
            source.gpu,
            source.source,
            source.note
        );
    }
    (!table.is_empty()).then(|| {
        format!(
            "\none fine-tuning epoch on one GPU, estimated here beside the time a source reports for \
             the same task and model ({}):\n\n| task | model | first point | estimated | reported | source |\n\
             |---|---|---|---|---|---|\n{table}",
            epoch_times::EPOCH_TIMES_PATH
        )
    })
}

/// `40 s`, `12 min`, `3.4 h`, `2.1 days`.
fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else if seconds < 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 48.0 * 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86400.0)
    }
}

fn header(plan: &Plan) -> String {
    let files: std::collections::BTreeSet<&PathBuf> =
        plan.points.iter().map(|p| &p.spec_file).collect();
    let duplicates = match plan.duplicates {
        0 => String::new(),
        n => format!(
            " ({n} more combination{} made the same run as an earlier point)",
            if n == 1 { "" } else { "s" }
        ),
    };
    format!(
        "batch {}: {} point{} from {} spec file{}{duplicates}; batch folder {}\n\n",
        plan.name,
        plan.points.len(),
        if plan.points.len() == 1 { "" } else { "s" },
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        plan.batch_dir.display()
    )
}

fn pretraining(p: &plan::Point) -> String {
    match (&p.spec.pretrain, p.pretrained_by) {
        (None, _) => "none".into(),
        (Some(_), None) => "runs it".into(),
        (Some(_), Some(leader)) => format!("from point {leader}"),
    }
}

fn totals(rows: &[(PointState, PointCost)]) -> PointCost {
    rows.iter()
        .filter(|(state, _)| !state.is_done())
        .fold(PointCost::default(), |mut t, (_, c)| {
            t.flops += c.flops;
            t.seconds += c.seconds;
            t.steps += c.steps;
            t.checkpoint_bytes += c.checkpoint_bytes;
            t
        })
}

/// The whole batch's cost (what is not done), on its executor.
fn cost_line(plan: &Plan, rows: &[(PointState, PointCost)], jobs: usize, threads: usize) -> String {
    let total = totals(rows);
    let measured = rows.iter().filter(|(_, c)| c.measured).count();
    let hours = total.seconds / 3600.0;
    let wall = duration(total.seconds / jobs.max(1) as f64);
    let on_gpu = plan
        .points
        .iter()
        .any(|p| matches!(p.spec.device, Device::Cuda(_)));
    let executor = match &plan.executor {
        Some(Executor::Slurm { .. }) => {
            let unit = if on_gpu { "GPU" } else { "node" };
            format!("≈{hours:.1} {unit}-hours on Slurm (one {unit} per point)")
        }
        _ => format!(
            "≈{wall} on this machine ({jobs} at a time, {threads} thread{} each)",
            if threads == 1 { "" } else { "s" }
        ),
    };
    let counts = status::counts(&rows.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>())
        .into_iter()
        .map(|(name, n)| format!("{n} {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "\nto run: {} training FLOPs, {executor}, checkpoints ≈{} ({counts})\n{}",
        human(total.flops),
        human_bytes(total.checkpoint_bytes),
        if measured == rows.len() {
            "times from speeds measured in the run folders".to_string()
        } else {
            format!(
                "* time estimated from FLOPs at an assumed throughput (docs/ESTIMATES.md); \
                 {measured} of {} from measured speeds",
                rows.len()
            )
        }
    )
}

fn run_command(
    file: &Path,
    common: &Common,
    jobs: Option<u64>,
    executor: Option<ExecutorKind>,
    retry_failed: bool,
    quiet: bool,
) -> u8 {
    let plan = match planned(file, common) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let kind = executor.unwrap_or(match plan.executor {
        Some(Executor::Slurm { .. }) => ExecutorKind::Slurm,
        _ => ExecutorKind::Local,
    });
    // The workers, local or on compute nodes, read the frozen plan.
    if let Err(e) = frozen::save(&plan) {
        eprintln!("{:?}", miette::Report::new(e));
        return EXIT_ERRORS;
    }
    if kind == ExecutorKind::Slurm {
        return super::batch_slurm::run(&plan, retry_failed);
    }
    let options = LocalOptions {
        jobs: local_jobs(&plan, jobs),
        threads: threads(common),
        retry_failed,
        quiet,
    };
    if !quiet {
        eprint!("{}", header(&plan));
    }
    let interrupt = super::run::interrupt_flag();
    let outcomes = local::run(&plan, &options, &interrupt);
    print!("{}", summary(&plan, &outcomes));
    if outcomes.contains(&Outcome::Interrupted) {
        EXIT_INTERRUPTED
    } else if outcomes.iter().any(|o| matches!(o, Outcome::Failed(_))) {
        EXIT_ERRORS
    } else {
        EXIT_OK
    }
}

/// The closing table, and each failure with the first line of its error.
fn summary(plan: &Plan, outcomes: &[Outcome]) -> String {
    let mut out = String::from("\n| # | experiment | point | outcome |\n|---|---|---|---|\n");
    for (p, o) in plan.points.iter().zip(outcomes) {
        let what = match o {
            Outcome::Done { accuracy } => format!("{:.2}%", accuracy * 100.0),
            Outcome::Skipped(why) => why.clone(),
            Outcome::Failed(_) => "failed".into(),
            Outcome::Interrupted => "interrupted".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {what} |",
            p.index, p.experiment, p.label
        );
    }
    let failed: Vec<(&plan::Point, &String)> = plan
        .points
        .iter()
        .zip(outcomes)
        .filter_map(|(p, o)| match o {
            Outcome::Failed(why) => Some((p, why)),
            _ => None,
        })
        .collect();
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Done { .. }))
        .count();
    let _ = writeln!(
        out,
        "\n{done} of {} points done, {} failed",
        outcomes.len(),
        failed.len()
    );
    for (p, why) in failed {
        let _ = writeln!(
            out,
            "  point {} {} ({}): {why}",
            p.index, p.experiment, p.label
        );
    }
    out
}

fn status_command(file: &Path, common: &Common, json: bool) -> u8 {
    let plan = match planned(file, common) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let states: Vec<PointState> = plan.points.iter().map(|p| status::of(&plan, p)).collect();
    // Run folders are the truth; Slurm says what it is doing about the others.
    let slurm_states = super::batch_slurm::states(&plan);
    if json {
        let points: Vec<serde_json::Value> = plan
            .points
            .iter()
            .zip(&states)
            .map(|(p, s)| {
                serde_json::json!({
                    "index": p.index, "experiment": p.experiment, "label": p.label,
                    "state": s.name(), "detail": status::detail(p, s), "run_dir": p.run_dir,
                    "slurm": slurm_states.as_ref().and_then(|states| states.get(&p.index)),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "name": plan.name, "points": points })
            )
            .unwrap_or_default()
        );
        return EXIT_OK;
    }
    print!("{}", header(&plan));
    let mut table = match &slurm_states {
        Some(_) => String::from(
            "| # | experiment | point | state | detail | slurm |\n|---|---|---|---|---|---|\n",
        ),
        None => {
            String::from("| # | experiment | point | state | detail |\n|---|---|---|---|---|\n")
        }
    };
    for (p, s) in plan.points.iter().zip(&states) {
        let slurm = slurm_states
            .as_ref()
            .map(|states| format!(" {} |", super::batch_slurm::column(states, p.index)))
            .unwrap_or_default();
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} |{slurm}",
            p.index,
            p.experiment,
            p.label,
            s.name(),
            status::detail(p, s)
        );
    }
    print!("{table}");
    let counts = status::counts(&states)
        .into_iter()
        .map(|(name, n)| format!("{n} {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("\n{counts}");
    EXIT_OK
}

fn cancel_command(file: &Path, common: &Common) -> u8 {
    let plan = match planned(file, common) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if let Some(code) = super::batch_slurm::cancel(&plan) {
        return code;
    }
    eprintln!(
        "error: batch {} has no cluster jobs to cancel: a local batch stops with Ctrl-C in the \
         terminal running it (its points keep their checkpoints)",
        plan.name
    );
    EXIT_USAGE
}

fn worker_command(batch_dir: &Path, index: usize, threads: Option<usize>) -> u8 {
    let threads = threads
        .or_else(|| {
            std::env::var("SLURM_CPUS_PER_TASK")
                .ok()
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(rayon::current_num_threads);
    let interrupt = super::run::interrupt_flag();
    match crate::batch::worker(batch_dir, index, threads, &interrupt) {
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
        Ok(Outcome::Done { accuracy }) => {
            println!("point {index}: test accuracy {:.2}%", accuracy * 100.0);
            EXIT_OK
        }
        // Not run here (another process holds it): not a success for the scheduler.
        Ok(Outcome::Skipped(why)) => {
            eprintln!("error: point {index} was not run: {why}");
            EXIT_ERRORS
        }
        Ok(Outcome::Failed(why)) => {
            eprintln!("error: point {index} failed: {why}");
            EXIT_ERRORS
        }
        Ok(Outcome::Interrupted) => {
            eprintln!("point {index} interrupted; its checkpoint is saved");
            EXIT_INTERRUPTED
        }
    }
}
