//! The batch file's contract (docs/BATCHES.md), read from the located YAML tree: each key
//! typed and checked where it is written, every mistake collected, nothing stops at the first.

use super::error::BatchError;
use super::paths::{self, Target};
use super::yaml::{Node, NodeKind};
use crate::diagnostic::Span;

/// A value and where it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub span: Span,
}

/// `path: value` of `set` or of an exclusion.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub path: Located<String>,
    pub value: Node,
}

/// `path: [v1, v2, …]` of `sweep` or a `zip` group.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub path: Located<String>,
    pub values: Vec<Node>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Executor {
    Local {
        jobs: Option<Located<usize>>,
    },
    /// The options as written; the Slurm executor types them.
    Slurm {
        options: serde_yaml::Value,
        span: Span,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct BatchFile {
    /// The whole document, for diagnostics about the batch as a whole.
    pub span: Span,
    pub name: Located<String>,
    pub specs: Vec<Located<String>>,
    pub only: Vec<Located<String>>,
    pub seeds: Option<Vec<Located<u64>>>,
    pub set: Vec<Setting>,
    pub sweep: Vec<Axis>,
    pub zip: Vec<Vec<Axis>>,
    pub exclude: Vec<Vec<Setting>>,
    pub executor: Executor,
}

const TOP_KEYS: &[&str] = &[
    "version", "name", "specs", "only", "seeds", "set", "sweep", "zip", "exclude", "executor",
];

/// Reads the document; `None` (with the reasons in `errors`) when it cannot be used.
pub fn read(root: &Node, errors: &mut Vec<BatchError>) -> Option<BatchFile> {
    let entries = as_map(root, "the batch file", errors)?;
    let mut version = None;
    let mut name = None;
    let mut specs = None;
    let mut file = BatchFile {
        span: root.span,
        name: Located {
            value: String::new(),
            span: root.span,
        },
        specs: Vec::new(),
        only: Vec::new(),
        seeds: None,
        set: Vec::new(),
        sweep: Vec::new(),
        zip: Vec::new(),
        exclude: Vec::new(),
        executor: Executor::Local { jobs: None },
    };
    for (key, value) in unique_keys(entries, "the batch file", TOP_KEYS, errors) {
        match key.value.as_str() {
            "version" => version = Some((value.scalar().map(str::to_string), value.span)),
            "name" => name = string(value, "name", errors),
            "specs" => specs = Some(strings(value, "specs", errors)),
            "only" => file.only = strings(value, "only", errors),
            "seeds" => file.seeds = Some(seeds(value, errors)),
            "set" => file.set = settings(value, "set", errors),
            "sweep" => file.sweep = axes(value, "sweep", errors),
            "zip" => file.zip = zip_groups(value, errors),
            "exclude" => file.exclude = exclusions(value, errors),
            "executor" => file.executor = executor(value, errors),
            _ => {}
        }
    }
    match version {
        None => errors.push(BatchError::MissingKey {
            span: start_of(root),
            key: "version",
            example: "version: 1",
        }),
        Some((text, span)) if text.as_deref() != Some("1") => errors.push(BatchError::Version {
            span,
            found: text.unwrap_or_else(|| "a collection".into()),
        }),
        Some(_) => {}
    }
    match name {
        Some(name) => {
            if let Err(reason) = check_name(&name.value) {
                errors.push(BatchError::BadName {
                    span: name.span,
                    reason,
                });
            }
            file.name = name;
        }
        None => errors.push(BatchError::MissingKey {
            span: start_of(root),
            key: "name",
            example: "name: my-sweep",
        }),
    }
    match specs {
        Some(specs) => file.specs = specs,
        None => errors.push(BatchError::MissingKey {
            span: start_of(root),
            key: "specs",
            example: "specs: [../listops/transformer-scratch.lra]",
        }),
    }
    check_paths_once(&file, errors);
    Some(file)
}

/// Where a missing key is reported: the start of the first key written, else of the file.
fn start_of(node: &Node) -> Span {
    let at = match &node.kind {
        NodeKind::Map(entries) => entries.first().map_or(0, |(k, _)| k.span.start),
        _ => 0,
    };
    Span::new(node.span.file, at, at)
}

/// A batch name names a folder: one or more safe path components.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err("it starts or ends with `/`".into());
    }
    for part in name.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!("`{part}` cannot be part of a folder path"));
        }
        if let Some(c) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!("`{c}` is not allowed in a folder name"));
        }
    }
    Ok(())
}

fn as_map<'n>(
    node: &'n Node,
    what: &str,
    errors: &mut Vec<BatchError>,
) -> Option<&'n [(Node, Node)]> {
    match &node.kind {
        NodeKind::Map(entries) => Some(entries),
        NodeKind::Alias => {
            errors.push(BatchError::Alias { span: node.span });
            None
        }
        _ if what == "the batch file" => {
            errors.push(BatchError::NotAMapping {
                span: node.span,
                found: node.found(),
            });
            None
        }
        _ => {
            errors.push(BatchError::WrongType {
                span: node.span,
                key: what.into(),
                expected: "a mapping",
                found: node.found(),
            });
            None
        }
    }
}

/// The entries of a mapping whose keys must be among `allowed` (empty: any key), each once.
fn unique_keys<'n>(
    entries: &'n [(Node, Node)],
    within: &str,
    allowed: &'static [&'static str],
    errors: &mut Vec<BatchError>,
) -> Vec<(Located<String>, &'n Node)> {
    let mut seen: Vec<Located<String>> = Vec::new();
    let mut out = Vec::new();
    for (key, value) in entries {
        let Some(text) = key.scalar() else {
            errors.push(BatchError::WrongType {
                span: key.span,
                key: within.into(),
                expected: "plain keys",
                found: key.found(),
            });
            continue;
        };
        if let Some(first) = seen.iter().find(|k| k.value == text) {
            errors.push(BatchError::DuplicateKey {
                span: key.span,
                first: first.span,
                key: text.into(),
            });
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&text) {
            errors.push(BatchError::UnknownKey {
                span: key.span,
                key: text.into(),
                within: within.into(),
                expected: allowed.to_vec(),
                suggestion: crate::check::error::suggest(text, allowed.iter().copied()),
            });
            continue;
        }
        let key = Located {
            value: text.to_string(),
            span: key.span,
        };
        seen.push(key.clone());
        if matches!(value.kind, NodeKind::Alias) {
            errors.push(BatchError::Alias { span: value.span });
            continue;
        }
        out.push((key, value));
    }
    out
}

fn string(node: &Node, key: &str, errors: &mut Vec<BatchError>) -> Option<Located<String>> {
    match &node.kind {
        NodeKind::Scalar { text, .. } if !node.is_null() => Some(Located {
            value: text.clone(),
            span: node.span,
        }),
        _ => {
            errors.push(BatchError::WrongType {
                span: node.span,
                key: key.into(),
                expected: "a string",
                found: node.found(),
            });
            None
        }
    }
}

/// A list of strings, or one string standing for a list of one.
fn strings(node: &Node, key: &str, errors: &mut Vec<BatchError>) -> Vec<Located<String>> {
    match &node.kind {
        NodeKind::Seq(items) => items
            .iter()
            .filter_map(|item| string(item, key, errors))
            .collect(),
        _ => string(node, key, errors).into_iter().collect(),
    }
}

fn seeds(node: &Node, errors: &mut Vec<BatchError>) -> Vec<Located<u64>> {
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut seeds: Vec<Located<u64>> = Vec::new();
    for item in items {
        match item.scalar().and_then(|t| t.parse::<u32>().ok()) {
            Some(seed) if !seeds.iter().any(|s| s.value == u64::from(seed)) => {
                seeds.push(Located {
                    value: u64::from(seed),
                    span: item.span,
                })
            }
            Some(_) => errors.push(BatchError::DuplicateKey {
                span: item.span,
                first: seeds
                    .iter()
                    .find(|s| Some(s.value.to_string().as_str()) == item.scalar())
                    .map_or(item.span, |s| s.span),
                key: format!("seed {}", item.scalar().unwrap_or_default()),
            }),
            None => errors.push(BatchError::WrongType {
                span: item.span,
                key: "seeds".into(),
                expected: "integers from 0 to 4294967295",
                found: item.found(),
            }),
        }
    }
    if seeds.is_empty() && matches!(&node.kind, NodeKind::Seq(items) if items.is_empty()) {
        errors.push(BatchError::EmptyAxis {
            span: node.span,
            path: "seeds".into(),
        });
    }
    seeds
}

/// Checks a dotted path against the language; `seed` is refused (it has `seeds:`).
fn known_path(key: &Located<String>, errors: &mut Vec<BatchError>) -> bool {
    if key.value == "seed" {
        errors.push(BatchError::SeedInSettings { span: key.span });
        return false;
    }
    match paths::lookup(&key.value) {
        Ok(_) => true,
        Err(suggestion) => {
            errors.push(BatchError::UnknownPath {
                span: key.span,
                path: key.value.clone(),
                suggestion,
            });
            false
        }
    }
}

/// The value of one path: a scalar (the `.lra` value as text), checked for `pretrain`.
fn value_ok(path: &str, value: &Node, errors: &mut Vec<BatchError>) -> bool {
    let Some(text) = value.scalar().filter(|_| !value.is_null()) else {
        errors.push(BatchError::WrongType {
            span: value.span,
            key: path.into(),
            expected: "one value (a tuple is written as text: \"(0.9, 0.98)\")",
            found: value.found(),
        });
        return false;
    };
    if path == paths::PRETRAIN {
        let objective = matches!(
            paths::lookup(path),
            Ok(Target::Section(def)) if def.kind(text).is_some()
        );
        if !(objective || text == "keep" || text == "none") {
            errors.push(BatchError::PretrainValue {
                span: value.span,
                value: text.into(),
            });
            return false;
        }
    }
    true
}

fn settings(node: &Node, key: &str, errors: &mut Vec<BatchError>) -> Vec<Setting> {
    let Some(entries) = as_map(node, key, errors) else {
        return Vec::new();
    };
    unique_keys(entries, &format!("`{key}`"), &[], errors)
        .into_iter()
        .filter(|(path, value)| known_path(path, errors) & value_ok(&path.value, value, errors))
        .map(|(path, value)| Setting {
            path,
            value: value.clone(),
        })
        .collect()
}

fn axes(node: &Node, key: &str, errors: &mut Vec<BatchError>) -> Vec<Axis> {
    let Some(entries) = as_map(node, key, errors) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, value) in unique_keys(entries, &format!("`{key}`"), &[], errors) {
        let known = known_path(&path, errors);
        let NodeKind::Seq(values) = &value.kind else {
            errors.push(BatchError::WrongType {
                span: value.span,
                key: path.value.clone(),
                expected: "a list of values, e.g. `[64, 128]`",
                found: value.found(),
            });
            continue;
        };
        if values.is_empty() {
            errors.push(BatchError::EmptyAxis {
                span: value.span,
                path: path.value.clone(),
            });
            continue;
        }
        let mut fine = known;
        for v in values {
            fine &= value_ok(&path.value, v, errors);
        }
        if fine {
            out.push(Axis {
                span: Span::new(path.span.file, path.span.start, value.span.end),
                path,
                values: values.clone(),
            });
        }
    }
    out
}

fn zip_groups(node: &Node, errors: &mut Vec<BatchError>) -> Vec<Vec<Axis>> {
    let NodeKind::Seq(groups) = &node.kind else {
        errors.push(BatchError::WrongType {
            span: node.span,
            key: "zip".into(),
            expected: "a list of groups, e.g. `- { a: [1, 2], b: [3, 4] }`",
            found: node.found(),
        });
        return Vec::new();
    };
    let mut out = Vec::new();
    for group in groups {
        let axes = axes(group, "zip", errors);
        if let Some(first) = axes.first() {
            for axis in &axes[1..] {
                if axis.values.len() != first.values.len() {
                    errors.push(BatchError::ZipLengths {
                        span: axis.span,
                        first: first.span,
                        path: axis.path.value.clone(),
                        len: axis.values.len(),
                        first_path: first.path.value.clone(),
                        first_len: first.values.len(),
                    });
                }
            }
            out.push(axes);
        }
    }
    out
}

fn exclusions(node: &Node, errors: &mut Vec<BatchError>) -> Vec<Vec<Setting>> {
    let NodeKind::Seq(items) = &node.kind else {
        errors.push(BatchError::WrongType {
            span: node.span,
            key: "exclude".into(),
            expected: "a list of mappings, e.g. `- { model.d_model: 128 }`",
            found: node.found(),
        });
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let Some(entries) = as_map(item, "exclude", errors) else {
                return Vec::new();
            };
            unique_keys(entries, "an exclusion", &[], errors)
                .into_iter()
                .filter(|(path, value)| {
                    (path.value == "seed" || known_path(path, errors))
                        && value_ok(&path.value, value, errors)
                })
                .map(|(path, value)| Setting {
                    path,
                    value: value.clone(),
                })
                .collect()
        })
        .collect()
}

fn executor(node: &Node, errors: &mut Vec<BatchError>) -> Executor {
    let local = Executor::Local { jobs: None };
    let Some(entries) = as_map(node, "executor", errors) else {
        return local;
    };
    let kind = entries
        .iter()
        .find(|(k, _)| k.scalar() == Some("kind"))
        .map(|(_, v)| v);
    match kind.and_then(Node::scalar) {
        Some("local") => {
            let mut jobs = None;
            for (key, value) in unique_keys(entries, "a local executor", &["kind", "jobs"], errors)
            {
                if key.value == "jobs" {
                    match value.scalar().and_then(|t| t.parse::<usize>().ok()) {
                        Some(n) if n >= 1 => {
                            jobs = Some(Located {
                                value: n,
                                span: value.span,
                            })
                        }
                        _ => errors.push(BatchError::WrongType {
                            span: value.span,
                            key: "jobs".into(),
                            expected: "an integer ≥ 1",
                            found: value.found(),
                        }),
                    }
                }
            }
            Executor::Local { jobs }
        }
        Some("slurm") => {
            let options = node.to_serde();
            // Typed now, so a bad Slurm setting is reported with the batch file's other
            // mistakes, before anything is submitted.
            if let Err(message) = crate::slurm::SlurmOptions::from_executor(&options) {
                errors.push(BatchError::Executor {
                    span: node.span,
                    message: format!("the Slurm executor's settings: {message}"),
                    help: "it takes partition, account, qos, time (\"12:00:00\"), cpus, mem \
                           (\"32G\"), gpus, parallel and sbatch_args (docs/SLURM.md)"
                        .into(),
                });
            }
            Executor::Slurm {
                options,
                span: node.span,
            }
        }
        other => {
            errors.push(BatchError::Executor {
                span: kind.map_or(node.span, |k| k.span),
                message: match other {
                    Some(word) => format!("`{word}` is not an executor"),
                    None => "the executor has no `kind`".into(),
                },
                help: "write `executor: { kind: local, jobs: 2 }` or `executor: { kind: slurm, \
                       partition: gpu, time: \"12:00:00\" }`"
                    .into(),
            });
            local
        }
    }
}

/// A path is set in one place only: `set`, one `sweep` axis, or one `zip` group's axis.
fn check_paths_once(file: &BatchFile, errors: &mut Vec<BatchError>) {
    let mut seen: Vec<&Located<String>> = Vec::new();
    let written = file
        .set
        .iter()
        .map(|s| &s.path)
        .chain(file.sweep.iter().map(|a| &a.path))
        .chain(file.zip.iter().flatten().map(|a| &a.path));
    for path in written {
        if let Some(first) = seen.iter().find(|p| p.value == path.value) {
            errors.push(BatchError::PathTwice {
                span: path.span,
                first: first.span,
                path: path.value.clone(),
            });
        } else {
            seen.push(path);
        }
    }
}

impl BatchFile {
    /// Every axis, sweep first, then the zip groups' axes.
    pub(crate) fn axes(&self) -> impl Iterator<Item = &Axis> {
        self.sweep.iter().chain(self.zip.iter().flatten())
    }
}
