//! lra: a declarative experiment language and its interpreter for long-sequence models on the
//! Long Range Arena. See docs/ARCHITECTURE.md and the README for the tour.
//!
//! The pipeline, one module per phase: [`syntax`] (text → AST) → [`check`] (AST → [`spec`])
//! → [`engine`] and training. [`estimate`] prices a spec; [`diagnostic`] renders every error.
//! [`batch`] expands YAML batches into checked points and runs them. [`results`] indexes run folders in SQLite; [`report`] turns them into tables and plots.
//! [`slurm`] submits a batch's points to a Slurm cluster as job arrays.

#[macro_use]
mod named;

pub mod batch;
pub mod check;
pub mod commands;
pub mod data;
pub mod diagnostic;
pub mod engine;
pub mod estimate;
mod reference;
pub mod report;
pub mod results;
pub mod rundir;
pub mod slurm;
pub mod spec;
pub mod syntax;
pub mod train;
