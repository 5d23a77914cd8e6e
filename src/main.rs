//! The `lra` command line. This branch carries the `data` commands; the others (`check`,
//! `explain`, `run`, ...) join it from the front end.

use clap::{Parser, Subcommand};
use lra::data::cli::DataCommand;

#[derive(Debug, Parser)]
#[command(
    name = "lra",
    version,
    about = "Declarative, fair long-sequence experiments on the Long Range Arena"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make, describe and draw LRA data.
    #[command(subcommand)]
    Data(DataCommand),
}

fn main() -> miette::Result<()> {
    match Cli::parse().command {
        Command::Data(cmd) => lra::data::cli::run(cmd),
    }
}
