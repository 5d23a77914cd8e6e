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
    /// Print the fully resolved spec, each value with where it came from.
    Explain {
        file: PathBuf,
        /// Print JSON (the resolved spec and every value's origin).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check { files, no_data } => commands::check::run(&files, !no_data),
        Command::Explain { file, json } => commands::explain::run(&file, json),
    };
    ExitCode::from(code)
}
