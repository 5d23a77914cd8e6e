//! Phase 2: AST → resolved, typed [`Spec`], or every diagnostic of the file at once, sorted by
//! position. Entry point: [`check`] (or [`check_source`] for text already in memory).

pub mod build;
pub mod derive;
pub mod error;
pub mod resolved;
pub mod rules;
pub mod schema;

mod defaults;
mod imports;
mod resolve;
mod typecheck;

use std::path::Path;

pub use imports::read_spec_file;
pub use rules::Context;

use crate::diagnostic::{self, Diagnostic, SourceMap};
use crate::spec::Spec;
use crate::syntax::ast::Item;
use error::CheckError;
use resolve::{Resolver, Scope};
use resolved::ResolvedExperiment;

/// Settings laid over an experiment after its own, as if written last in its body (a batch
/// point's overrides). Their spans lie in `text`, which the checker adds to the source map
/// first, as file [`Layer::FILE`], so diagnostics point at the batch file and the spec alike.
pub struct Layer {
    pub path: std::path::PathBuf,
    pub text: String,
    /// The entries, spans in file [`Layer::FILE`].
    pub block: crate::syntax::ast::Block,
    /// Root sections removed after the entries (`pretrain: none`).
    pub remove: Vec<String>,
    /// Check only this experiment of the file.
    pub experiment: String,
}

impl Layer {
    /// The file id of the layer's source in the source map of a layered check.
    pub(crate) const FILE: crate::diagnostic::FileId = 0;
}

/// The outcome of checking one file.
pub struct Checked {
    pub sources: SourceMap,
    /// Errors and warnings, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    pub experiments: Vec<ResolvedExperiment>,
    /// The resolved spec, when there is no error.
    pub spec: Option<Spec>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads and checks `path`. An unreadable file is an I/O error (a usage error for the CLI).
pub fn check(path: &Path, context: &Context) -> std::io::Result<Checked> {
    let text = imports::read_spec_file(path)?;
    Ok(check_source(path, text, context))
}

/// Checks `text` as if read from `path` (imports resolve relative to it).
pub fn check_source(path: &Path, text: String, context: &Context) -> Checked {
    check_layered(path, text, context, None)
}

/// Checks one experiment of `text` with `layer` laid over it, or the whole file without one.
pub(crate) fn check_layered(
    path: &Path,
    text: String,
    context: &Context,
    layer: Option<&Layer>,
) -> Checked {
    let mut sources = SourceMap::default();
    if let Some(layer) = layer {
        let id = sources.add(layer.path.clone(), layer.text.clone());
        debug_assert_eq!(id, Layer::FILE);
    }
    let mut diagnostics = Vec::new();
    let loaded = imports::load(path, text, &mut sources, &mut diagnostics);
    let mut errors: Vec<CheckError> = Vec::new();

    let mut scope = Scope::default();
    for (_, file) in &loaded.files {
        let presets = file.items.iter().filter_map(|i| match i {
            Item::Preset(p) => Some(p),
            _ => None,
        });
        scope.add(presets, &mut errors);
    }

    let mut resolver = Resolver::new(&scope);
    let mut presets: Vec<_> = scope.presets().collect();
    presets.sort_by_key(|p| p.span);
    for preset in presets {
        resolver.check_preset(preset);
    }

    let root_experiments = loaded
        .files
        .iter()
        .filter(|(id, _)| *id == loaded.root)
        .flat_map(|(_, f)| &f.items)
        .filter_map(|i| match i {
            Item::Experiment(e) => Some(e),
            _ => None,
        })
        .filter(|e| layer.is_none_or(|l| l.experiment == e.name.value));
    let mut experiments = Vec::new();
    let mut names: Vec<(&str, crate::diagnostic::Span)> = Vec::new();
    for experiment in root_experiments {
        if let Some((_, first)) = names.iter().find(|(n, _)| *n == experiment.name.value) {
            errors.push(CheckError::DuplicateExperiment {
                span: experiment.name.span,
                first: *first,
                name: experiment.name.value.clone(),
            });
        }
        names.push((&experiment.name.value, experiment.name.span));
        let mut x = resolver.experiment(experiment);
        if let Some(layer) = layer {
            resolver.layer(&mut x.root, layer);
        }
        derive::derive(&mut x.root);
        // Rules run even after structural errors (a rejected value is absent, and rules skip
        // what is absent), so one check shows every mistake.
        diagnostics.extend(rules::run(&x, context));
        experiments.push(x);
    }
    errors.extend(resolver.errors);
    diagnostics.extend(errors.iter().map(CheckError::to_diagnostic));

    let mut specs = Vec::new();
    let clean = !diagnostics.iter().any(Diagnostic::is_error);
    if clean {
        for x in &experiments {
            match build::build(x) {
                Ok(spec) => {
                    diagnostics.extend(rules::memory(x, &spec, context));
                    specs.push(spec);
                }
                Err(gap) => diagnostics.push(
                    CheckError::Lowering {
                        span: x.name_span,
                        field: gap.0,
                    }
                    .to_diagnostic(),
                ),
            }
        }
    }
    if experiments.is_empty() && !diagnostics.iter().any(Diagnostic::is_error) {
        diagnostics.push(
            Diagnostic::warning(
                "lra::no-experiment",
                "this file holds no experiment: `lra run` has nothing to train",
            )
            .label(
                crate::diagnostic::Span::new(loaded.root, 0, 0),
                "no `experiment` here",
            )
            .help(
                "add `experiment \"name\" { … }`; a file of presets alone is meant to be imported",
            ),
        );
    }
    dedup(&mut diagnostics);
    diagnostic::sort(&mut diagnostics);
    let spec = (!diagnostics.iter().any(Diagnostic::is_error)).then(|| Spec {
        source: path.to_path_buf(),
        experiments: specs,
    });
    Checked {
        sources,
        diagnostics,
        experiments,
        spec,
    }
}

/// A preset used by several experiments is checked once on its own and again in each use;
/// report each problem once.
fn dedup(diagnostics: &mut Vec<Diagnostic>) {
    let mut kept: Vec<Diagnostic> = Vec::with_capacity(diagnostics.len());
    for d in diagnostics.drain(..) {
        if !kept.contains(&d) {
            kept.push(d);
        }
    }
    *diagnostics = kept;
}
