//! `lra report [RUNS_DIR | BATCH.yaml] [--by …] [--where …] [--format …] [--plots DIR]` and
//! `lra report RUN_A RUN_B --diff`.

use std::io::IsTerminal;
use std::path::PathBuf;

use miette::{GraphicalReportHandler, GraphicalTheme};

use super::{EXIT_ERRORS, EXIT_OK, EXIT_USAGE, WIDTH};
use crate::report::{self, Condition, Format, ReportOptions};

/// `lra report`'s command line.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// A runs folder (default `runs`) or a batch file (its points' runs), or two run folders
    /// with `--diff`.
    pub paths: Vec<PathBuf>,
    /// Group by these dotted paths, comma-separated (default task,model,pretrain).
    #[arg(long)]
    pub by: Option<String>,
    /// Keep runs whose field has this value: `model.d_model=64`, `pretrain!=scratch`.
    #[arg(long = "where", value_name = "PATH=VALUE")]
    pub conditions: Vec<String>,
    /// `paper`: markdown shaped like the papers' tables (tasks as columns, and the average).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write validation curves and a test-accuracy summary here, as PNG and SVG.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Compare two run folders: what differs in their resolved specs and results.
    #[arg(long)]
    pub diff: bool,
}

/// Prints an error (or warning) of the report with miette, the one renderer of diagnostics:
/// in colour on a terminal unless `NO_COLOR` is set, and with lines unwrapped, so a
/// `file:line` stays whole for editors and grep.
fn print(diagnostic: impl miette::Diagnostic) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(WIDTH)
        .with_wrap_lines(false);
    let mut text = String::new();
    let _ = handler.render_report(&mut text, &diagnostic);
    eprint!("{text}");
}

pub fn run(args: &ReportArgs) -> u8 {
    if args.diff {
        let [a, b] = args.paths.as_slice() else {
            eprintln!("error: `--diff` compares two run folders: lra report RUN_A RUN_B --diff");
            return EXIT_USAGE;
        };
        return match report::diff::diff(a, b) {
            Ok(text) => {
                print!("{text}");
                EXIT_OK
            }
            Err(e) => {
                print(e);
                EXIT_ERRORS
            }
        };
    }
    let out = match args.paths.as_slice() {
        [] => PathBuf::from("runs"),
        [one] => one.clone(),
        _ => {
            eprintln!("error: name one runs folder (two run folders need `--diff`)");
            return EXIT_USAGE;
        }
    };
    let mut options = ReportOptions {
        format: args.format,
        plots: args.plots.clone(),
        ..ReportOptions::default()
    };
    // A batch file: its points' runs, in its runs folder.
    let out = if matches!(
        out.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    ) {
        let plan = match super::batch::plan_quietly(&out) {
            Ok(plan) => plan,
            Err(code) => return code,
        };
        options.batch = Some(plan.name);
        plan.out
    } else {
        out
    };
    if let Some(by) = &args.by {
        options.by = by
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
    }
    for text in &args.conditions {
        match Condition::parse(text) {
            Ok(c) => options.conditions.push(c),
            Err(e) => {
                print(e);
                return EXIT_USAGE;
            }
        }
    }
    match report::report(&out, &options) {
        Ok(result) => {
            for run in &result.problems {
                for problem in &run.problems {
                    print(RunWarning {
                        folder: run.folder.clone(),
                        problem: problem.clone(),
                    });
                }
            }
            print!("{}", result.text);
            for path in &result.plots {
                eprintln!("wrote {}", path.display());
            }
            EXIT_OK
        }
        Err(e) => {
            print(e);
            EXIT_ERRORS
        }
    }
}

/// A problem found in a run folder while indexing it; the report still prints.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{problem}")]
#[diagnostic(
    code("lra::report::run-problem"),
    severity(Warning),
    help("run {folder} is reported from what could be read (marked in the notes column); fix or delete the bad part of its folder")
)]
struct RunWarning {
    folder: String,
    problem: String,
}
