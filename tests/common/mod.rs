//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use lra::check::{check, Checked, Context};

/// A fixed machine, so snapshots do not depend on where the tests run.
pub fn context() -> Context {
    Context {
        machine_memory: 24 << 30,
        gpu_memory: None,
        check_data: false,
        cuda_built: false,
    }
}

/// Checks a file given relative to the crate root.
pub fn check_file(relative: &Path) -> Checked {
    check(relative, &context()).expect("fixture is readable")
}

/// Diagnostics as the CLI prints them, without colour, at a fixed width.
pub fn rendered(checked: &Checked) -> String {
    lra::diagnostic::render(&checked.sources, &checked.diagnostics, false, 100)
}

/// `path` relative to the crate root (tests run there).
pub fn relative(path: &Path) -> &Path {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
}
