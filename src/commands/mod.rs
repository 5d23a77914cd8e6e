//! The commands behind the CLI. Each returns the process exit code: 0 success, 1 when the
//! input has errors, 2 for usage errors (an unreadable file).

pub mod batch;
pub mod batch_slurm;
pub mod check;
pub mod data;
pub mod explain;
pub mod interrupt;
pub mod jobs;
pub mod machine;
pub mod report;
pub mod run;

use std::io::IsTerminal;

use crate::check::Checked;
use crate::diagnostic;

pub const EXIT_OK: u8 = 0;
pub const EXIT_ERRORS: u8 = 1;
pub(crate) const EXIT_USAGE: u8 = 2;

/// Width of rendered diagnostics.
const WIDTH: usize = 100;

/// Prints a file's diagnostics to stderr, in colour on a terminal unless `NO_COLOR` is set.
pub(crate) fn print_diagnostics(checked: &Checked) {
    if checked.diagnostics.is_empty() {
        return;
    }
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    eprint!(
        "{}",
        diagnostic::render(&checked.sources, &checked.diagnostics, color, WIDTH)
    );
}
