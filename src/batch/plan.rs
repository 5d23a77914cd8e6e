//! A batch file → its plan: every point checked by the spec checker with its settings laid
//! over the experiment, each with its resolved spec and run folder, and the points that share
//! one pretraining. Every mistake of the file and of every point is collected; a plan exists
//! only when there is none.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::diagnostics::Diagnostics;
use super::error::BatchError;
use super::expand::{self, Combination};
use super::file::{self, BatchFile, Executor, Located};
use super::{layer, yaml};
use crate::check::{self, Context};
use crate::diagnostic::{SourceMap, Span};
use crate::spec::ExperimentSpec;
use crate::syntax::ast::Item;
use crate::train::rundir::RunDir;

/// One run of the batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    /// Position in the plan, from 0; what `lra batch worker` and Slurm's array index name.
    pub index: usize,
    /// The spec file, as found from the batch file's folder.
    pub spec_file: PathBuf,
    pub experiment: String,
    /// What sets this point apart: its seed and axis values (`seed 1, model.d_model 64`).
    pub label: String,
    pub spec: ExperimentSpec,
    pub run_dir: PathBuf,
    /// The point whose pretraining this one fine-tunes from (same data, model, pretraining
    /// and seed): it runs first.
    pub pretrained_by: Option<usize>,
}

/// A checked batch: what `lra batch plan` shows and `lra batch run` freezes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    /// The batch file, as named on the command line.
    pub source: PathBuf,
    /// The runs folder (of the first point; `--out` sets every point's).
    pub out: PathBuf,
    /// `<out>/batches/<name>/`
    pub batch_dir: PathBuf,
    pub points: Vec<Point>,
    /// Combinations that made the same run as an earlier one, counted once.
    #[serde(default)]
    pub duplicates: usize,
    #[serde(skip)]
    pub executor: Option<Executor>,
}

impl Plan {
    /// Point `index` (points are numbered by position).
    pub(crate) fn points_by_index(&self, index: usize) -> &Point {
        &self.points[index]
    }
}

/// The outcome of planning: the plan when the file and every point are free of errors, and
/// every diagnostic, rendered.
pub struct Planned {
    pub plan: Option<Plan>,
    pub diagnostics: Diagnostics,
}

/// Reads, expands and checks the batch file at `path`. `out` overrides the runs folder of
/// every point (as `lra run --out` does).
pub fn plan(path: &Path, context: &Context, out: Option<&Path>) -> std::io::Result<Planned> {
    let text = check::read_spec_file(path)?;
    let mut sources = SourceMap::default();
    sources.add(path.to_path_buf(), text.clone());
    let mut diagnostics = Diagnostics::default();
    let mut errors = Vec::new();
    let file = match yaml::parse(check::Layer::FILE, &text) {
        Err(e) => {
            errors.push(BatchError::Syntax {
                span: e.span,
                message: e.message,
            });
            None
        }
        Ok(None) => {
            errors.push(BatchError::NotAMapping {
                span: Span::new(check::Layer::FILE, 0, 0),
                found: "an empty document".into(),
            });
            None
        }
        Ok(Some(root)) => file::read(&root, &mut errors),
    };
    let Some(file) = file else {
        diagnostics.add_file(&sources, errors.iter().map(BatchError::to_diagnostic));
        return Ok(Planned {
            plan: None,
            diagnostics,
        });
    };
    expand::check_exclusions(&file, &mut errors);
    let folder = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let spec_files = find_specs(&file, &folder, &mut errors);
    let experiments = list_experiments(&spec_files, &file, context, &mut diagnostics, &mut errors);
    let clean_file = errors.is_empty();
    diagnostics.add_file(&sources, errors.iter().map(BatchError::to_diagnostic));
    if !clean_file {
        return Ok(Planned {
            plan: None,
            diagnostics,
        });
    }

    let combinations = expand::combinations(&file);
    let mut points = Vec::new();
    let mut index = 0;
    for (spec_file, spec_text, experiment) in &experiments {
        for combination in &combinations {
            for seed in seeds_of(&file) {
                if expand::excluded(combination, seed.map(|s| s.value), &file.exclude) {
                    continue;
                }
                let label = point_label(seed, combination);
                let layered = layer::build(
                    path,
                    &text,
                    experiment,
                    combination,
                    seed.map(|s| (s.value, s.span)),
                );
                let checked = layered.map(|layer| {
                    check::check_layered(spec_file, spec_text.clone(), context, Some(&layer))
                });
                diagnostics.add_point(&sources, index, &label, &checked);
                if let Some(mut spec) = checked
                    .ok()
                    .and_then(|c| c.spec)
                    .and_then(|s| s.experiments.into_iter().next())
                {
                    if let Some(out) = out {
                        spec.out = out.to_path_buf();
                    }
                    points.push(Point {
                        index,
                        spec_file: spec_file.clone(),
                        experiment: experiment.clone(),
                        label: if label.is_empty() {
                            format!("seed {}", spec.seed)
                        } else {
                            label
                        },
                        run_dir: PathBuf::new(),
                        pretrained_by: None,
                        spec,
                    });
                }
                index += 1;
            }
        }
    }
    if index == 0 {
        diagnostics.add_file(
            &sources,
            [BatchError::EmptyProduct {
                span: file.name.span,
                why: "every combination is excluded".into(),
            }
            .to_diagnostic()],
        );
    }
    if diagnostics.has_errors() {
        return Ok(Planned {
            plan: None,
            diagnostics,
        });
    }
    // Two combinations can make the same run (`pretrain: none` of an experiment without
    // pretraining, say): it is one point.
    let expanded = points.len();
    let mut seen = std::collections::HashSet::new();
    points.retain(|p| seen.insert(serde_json::to_string(&p.spec).unwrap_or_default()));
    for (position, point) in points.iter_mut().enumerate() {
        point.index = position;
    }
    share_pretraining(&mut points);
    let out_dir = points
        .first()
        .map_or_else(|| PathBuf::from("runs"), |p| p.spec.out.clone());
    Ok(Planned {
        plan: Some(Plan {
            name: file.name.value.clone(),
            source: path.to_path_buf(),
            batch_dir: out_dir.join("batches").join(&file.name.value),
            out: out_dir,
            duplicates: expanded - points.len(),
            points,
            executor: Some(file.executor.clone()),
        }),
        diagnostics,
    })
}

/// The seeds to run each combination with: the batch's, or the experiment's own (`None`).
fn seeds_of(file: &BatchFile) -> Vec<Option<&Located<u64>>> {
    match &file.seeds {
        Some(seeds) => seeds.iter().map(Some).collect(),
        None => vec![None],
    }
}

/// `seed 1, model.d_model 64`: what sets a point apart from the others of its experiment.
fn point_label(seed: Option<&Located<u64>>, combination: &Combination) -> String {
    let seed = seed.map(|s| format!("seed {}", s.value));
    let axes = Some(combination.label()).filter(|l| !l.is_empty());
    [seed, axes]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
}

/// The spec files the `specs` patterns match, in the order written (each pattern's matches
/// sorted), each once.
fn find_specs(
    file: &BatchFile,
    folder: &Path,
    errors: &mut Vec<BatchError>,
) -> Vec<(PathBuf, Span)> {
    let mut found: Vec<(PathBuf, Span)> = Vec::new();
    for pattern in &file.specs {
        let full = folder.join(&pattern.value);
        let full_text = full.to_string_lossy().into_owned();
        let matches = match glob::glob(&full_text) {
            Ok(paths) => {
                let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                paths.sort();
                paths
            }
            Err(e) => {
                errors.push(BatchError::BadGlob {
                    span: pattern.span,
                    pattern: pattern.value.clone(),
                    reason: e.msg.to_string(),
                });
                continue;
            }
        };
        if matches.is_empty() {
            errors.push(BatchError::NoMatch {
                span: pattern.span,
                pattern: pattern.value.clone(),
                folder: if folder.as_os_str().is_empty() {
                    "the current folder".into()
                } else {
                    folder.display().to_string()
                },
            });
        }
        for path in matches {
            if !found.iter().any(|(p, _)| *p == path) {
                found.push((path, pattern.span));
            }
        }
    }
    found
}

/// The experiments of the spec files that `only` keeps: (file, its text, experiment name).
/// A spec file that does not parse is checked whole, so its errors are reported once.
fn list_experiments(
    spec_files: &[(PathBuf, Span)],
    file: &BatchFile,
    context: &Context,
    diagnostics: &mut Diagnostics,
    errors: &mut Vec<BatchError>,
) -> Vec<(PathBuf, String, String)> {
    let mut patterns = Vec::new();
    for only in &file.only {
        match glob::Pattern::new(&only.value) {
            Ok(p) => patterns.push((p, only, false)),
            Err(e) => errors.push(BatchError::BadGlob {
                span: only.span,
                pattern: only.value.clone(),
                reason: e.msg.to_string(),
            }),
        }
    }
    let mut out = Vec::new();
    let mut all_names = Vec::new();
    for (path, span) in spec_files {
        let text = match check::read_spec_file(path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(BatchError::SpecUnreadable {
                    span: *span,
                    path: path.display().to_string(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let Ok(parsed) = crate::syntax::parse(0, &text) else {
            let checked = check::check_source(path, text, context);
            diagnostics.add_checked(&checked);
            continue;
        };
        for item in parsed.items {
            let Item::Experiment(experiment) = item else {
                continue;
            };
            let name = experiment.name.value;
            all_names.push(name.clone());
            let mut kept = patterns.is_empty();
            for (pattern, _, used) in patterns.iter_mut() {
                if pattern.matches(&name) {
                    *used = true;
                    kept = true;
                }
            }
            if kept {
                out.push((path.clone(), text.clone(), name));
            }
        }
    }
    for (_, only, used) in &patterns {
        if !used && !all_names.is_empty() {
            errors.push(BatchError::OnlyNoMatch {
                span: only.span,
                pattern: only.value.clone(),
                names: all_names.clone(),
            });
        }
    }
    if out.is_empty() && errors.is_empty() && !diagnostics.has_errors() {
        errors.push(BatchError::EmptyProduct {
            span: file.name.span,
            why: "the spec files hold no experiment that `only` keeps".into(),
        });
    }
    out
}

/// Points that differ only in fine-tuning share one pretraining: the first of them runs it,
/// the others fine-tune from its pretrained checkpoint. Then every point's run folder.
fn share_pretraining(points: &mut [Point]) {
    let mut first_of: HashMap<String, usize> = HashMap::new();
    for point in points.iter_mut() {
        if point.spec.pretrain.is_none() {
            continue;
        }
        let key = pretraining_key(&point.spec);
        match first_of.get(&key) {
            Some(&leader) => point.pretrained_by = Some(leader),
            None => {
                first_of.insert(key, point.index);
            }
        }
    }
    let folders: HashMap<usize, PathBuf> = points
        .iter()
        .filter(|p| p.pretrained_by.is_none())
        .map(|p| (p.index, RunDir::new(&p.spec.out, &p.spec, None).path))
        .collect();
    for point in points.iter_mut() {
        point.run_dir = match point.pretrained_by {
            None => folders[&point.index].clone(),
            Some(leader) => RunDir::new(&point.spec.out, &point.spec, Some(&folders[&leader])).path,
        };
    }
}

/// What a pretraining depends on: the data, the model, the pretraining phase, the seed and
/// the device.
fn pretraining_key(spec: &ExperimentSpec) -> String {
    serde_json::json!({
        "task": spec.task,
        "model": spec.model,
        "pretrain": spec.pretrain,
        "seed": spec.seed,
        "device": spec.device,
        "out": spec.out,
    })
    .to_string()
}
