//! The `lra` command line: a thin layer over the library's phases.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lra::commands;

#[derive(Parser)]
#[command(
    name = "lra",
    version,
    about = "Declarative, fair long-sequence experiments on the Long Range Arena"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check spec files: every mistake at its place, and what each run will cost.
    Check {
        /// `.lra` files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Don't look for data folders.
        #[arg(long)]
        no_data: bool,
    },
    /// Train the experiments of a spec file and test the selected checkpoints.
    Run {
        file: PathBuf,
        /// Run only the experiment(s) with this name.
        #[arg(long)]
        only: Vec<String>,
        /// Override the spec's device: cpu, cuda or cuda:N.
        #[arg(long, value_parser = commands::run::parse_device)]
        device: Option<lra::spec::Device>,
        /// Worker threads (default: the spec's `threads`, else every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Train this many experiments at once, the threads shared among them (small models
        /// on few cores finish sooner side by side than one after the other).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        jobs: u64,
        /// Override the spec's runs folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue a killed run where it stopped.
        #[arg(long)]
        resume: bool,
        /// Start over: an existing run folder is moved aside (to `<run-id>.old-N`), not
        /// deleted.
        #[arg(long, conflicts_with = "resume")]
        restart: bool,
        /// Fine-tune from the finished pretraining of this run folder (sweeps of fine-tuning
        /// settings share one pretraining).
        #[arg(long, value_name = "RUN_DIR")]
        from_pretrained: Option<PathBuf>,
        /// No progress bar or log lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Batches of specs: sweeps, seeds and shared pretraining, run locally or on Slurm.
    #[command(subcommand)]
    Batch(commands::batch::BatchCommand),
    /// Make, describe and draw LRA data.
    #[command(subcommand)]
    Data(lra::commands::data::DataCommand),
    /// Tables of finished runs beside the papers' numbers, and learning-curve plots.
    Report(commands::report::ReportArgs),
    /// Print the fully resolved spec, each value with where it came from.
    Explain {
        file: PathBuf,
        /// Print JSON (the resolved spec and every value's origin).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    lra::engine::allocator::retain_freed_memory();
    restore_default_sigpipe();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check { files, no_data } => commands::check::run(&files, !no_data),
        Command::Explain { file, json } => commands::explain::run(&file, json),
        Command::Report(args) => commands::report::run(&args),
        Command::Batch(command) => commands::batch::run(command),
        Command::Data(command) => match lra::commands::data::run(command) {
            Ok(()) => commands::EXIT_OK,
            Err(report) => {
                eprintln!("{report:?}");
                commands::EXIT_ERRORS
            }
        },
        Command::Run {
            file,
            only,
            device,
            threads,
            jobs,
            out,
            resume,
            restart,
            from_pretrained,
            quiet,
        } => commands::run::run(&commands::run::RunArgs {
            file,
            only,
            device,
            threads,
            jobs: jobs as usize,
            out,
            resume,
            restart,
            quiet,
            from_pretrained,
        }),
    };
    ExitCode::from(code)
}

/// `lra data stats … | head` should end quietly when `head` closes the pipe, as Unix tools
/// do, instead of panicking on the failed print: Rust ignores SIGPIPE by default.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first in `main`, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
