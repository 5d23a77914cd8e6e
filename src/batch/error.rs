//! The mistakes a batch file can hold, as data, each rendered as a diagnostic at its place in
//! the YAML (codes `lra::batch::…`). Rules a point breaks come from the spec checker.

use crate::diagnostic::{Diagnostic, Span};

#[derive(Clone, Debug, PartialEq)]
pub enum BatchError {
    Syntax {
        span: Span,
        message: String,
    },
    NotAMapping {
        span: Span,
        found: String,
    },
    UnknownKey {
        span: Span,
        key: String,
        within: String,
        expected: Vec<&'static str>,
        suggestion: Option<String>,
    },
    DuplicateKey {
        span: Span,
        first: Span,
        key: String,
    },
    MissingKey {
        span: Span,
        key: &'static str,
        example: &'static str,
    },
    Version {
        span: Span,
        found: String,
    },
    WrongType {
        span: Span,
        key: String,
        expected: &'static str,
        found: String,
    },
    BadName {
        span: Span,
        reason: String,
    },
    BadGlob {
        span: Span,
        pattern: String,
        reason: String,
    },
    NoMatch {
        span: Span,
        pattern: String,
        folder: String,
    },
    OnlyNoMatch {
        span: Span,
        pattern: String,
        names: Vec<String>,
    },
    UnknownPath {
        span: Span,
        path: String,
        suggestion: Option<String>,
    },
    PathTwice {
        span: Span,
        first: Span,
        path: String,
    },
    SeedInSettings {
        span: Span,
    },
    EmptyAxis {
        span: Span,
        path: String,
    },
    ZipLengths {
        span: Span,
        first: Span,
        path: String,
        len: usize,
        first_path: String,
        first_len: usize,
    },
    ExcludeNotAnAxis {
        span: Span,
        path: String,
    },
    ExcludeValueNotOnAxis {
        span: Span,
        axis: Span,
        path: String,
        value: String,
    },
    PretrainValue {
        span: Span,
        value: String,
    },
    EmptyProduct {
        span: Span,
        why: String,
    },
    Executor {
        span: Span,
        message: String,
        help: String,
    },
    Alias {
        span: Span,
    },
    SpecUnreadable {
        span: Span,
        path: String,
        reason: String,
    },
}

impl BatchError {
    pub(crate) fn to_diagnostic(&self) -> Diagnostic {
        use BatchError::*;
        match self {
            Syntax { span, message } => {
                Diagnostic::error("lra::batch::syntax", "the batch file is not valid YAML")
                    .label(*span, message.clone())
                    .help("batch files are YAML mappings; see docs/BATCHES.md for the format")
            }
            NotAMapping { span, found } => Diagnostic::error(
                "lra::batch::not-a-mapping",
                format!("a batch file is a mapping of keys, found {found}"),
            )
            .label(*span, "expected `key: value` lines here")
            .help("start with `version: 1`, `name: …` and `specs: [ … ]`"),
            UnknownKey {
                span,
                key,
                within,
                expected,
                suggestion,
            } => Diagnostic::error(
                "lra::batch::unknown-key",
                format!("`{key}` is not a key of {within}"),
            )
            .label(*span, "unknown key")
            .help(format!(
                "{}{within} takes {}",
                did_you_mean(suggestion),
                crate::check::schema::ticked(expected)
            )),
            DuplicateKey { span, first, key } => Diagnostic::error(
                "lra::batch::duplicate-key",
                format!("`{key}` is written twice"),
            )
            .label(*span, "written again here")
            .secondary(Some(*first), "first written here")
            .help("keep one of them"),
            MissingKey { span, key, example } => Diagnostic::error(
                "lra::batch::missing-key",
                format!("the batch file has no `{key}`"),
            )
            .label(*span, format!("`{key}` is required"))
            .help(format!("add `{example}`")),
            Version { span, found } => Diagnostic::error(
                "lra::batch::version",
                format!("batch file version `{found}` is not one this lra reads"),
            )
            .label(*span, "unsupported version")
            .help("this lra reads `version: 1` batch files"),
            WrongType {
                span,
                key,
                expected,
                found,
            } => Diagnostic::error(
                "lra::batch::wrong-type",
                format!("`{key}` takes {expected}, found {found}"),
            )
            .label(*span, format!("expected {expected}"))
            .help("see docs/BATCHES.md for the format of each key"),
            BadName { span, reason } => {
                Diagnostic::error("lra::batch::name", format!("bad batch name: {reason}"))
                    .label(*span, "the batch's folder is named after it")
                    .help("use letters, digits, `-`, `_` and `.`, e.g. `name: transformer-vs-s4d`")
            }
            BadGlob {
                span,
                pattern,
                reason,
            } => Diagnostic::error(
                "lra::batch::bad-glob",
                format!("`{pattern}` is not a valid pattern: {reason}"),
            )
            .label(*span, "bad pattern")
            .help("patterns use `*`, `?` and `[abc]`, e.g. `../listops/*.lra`"),
            NoMatch {
                span,
                pattern,
                folder,
            } => Diagnostic::error(
                "lra::batch::no-match",
                format!("`{pattern}` matches no file"),
            )
            .label(*span, format!("nothing matches in {folder}"))
            .help("spec paths are relative to the batch file's folder"),
            OnlyNoMatch {
                span,
                pattern,
                names,
            } => Diagnostic::error(
                "lra::batch::only-no-match",
                format!("`{pattern}` matches no experiment of the spec files"),
            )
            .label(*span, "keeps nothing")
            .help(format!(
                "`only` keeps experiments by name; the spec files hold {}",
                crate::check::schema::ticked(
                    &names.iter().map(String::as_str).collect::<Vec<_>>()
                )
            )),
            UnknownPath {
                span,
                path,
                suggestion,
            } => Diagnostic::error(
                "lra::batch::unknown-path",
                format!("`{path}` is not a field of a spec"),
            )
            .label(*span, "unknown path")
            .help(format!(
                "{}paths are the fields as `lra explain` prints them, e.g. `model.d_model` or \
                 `finetune.optimizer.lr`",
                did_you_mean(suggestion)
            )),
            PathTwice { span, first, path } => Diagnostic::error(
                "lra::batch::path-twice",
                format!("`{path}` is set in two places"),
            )
            .label(*span, "set again here")
            .secondary(Some(*first), "first set here")
            .help("a path is set once: in `set`, as a `sweep` axis or in one `zip` group"),
            SeedInSettings { span } => Diagnostic::error(
                "lra::batch::seed-path",
                "the seed is chosen with `seeds:`, not as a path",
            )
            .label(*span, "use `seeds:` instead")
            .help("write `seeds: [0, 1, 2]` at the top level"),
            EmptyAxis { span, path } => Diagnostic::error(
                "lra::batch::empty-axis",
                format!("the axis `{path}` has no values"),
            )
            .label(*span, "an empty list makes the product empty")
            .help("give at least one value, or remove the axis"),
            ZipLengths {
                span,
                first,
                path,
                len,
                first_path,
                first_len,
            } => Diagnostic::error(
                "lra::batch::zip-lengths",
                format!(
                    "zipped axes advance together, but `{path}` has {len} values and \
                     `{first_path}` {first_len}"
                ),
            )
            .label(*span, format!("{len} values"))
            .secondary(Some(*first), format!("{first_len} values"))
            .help("give every axis of a `zip` group the same number of values"),
            ExcludeNotAnAxis { span, path } => Diagnostic::error(
                "lra::batch::exclude-path",
                format!("`{path}` is not an axis, so excluding by it matches nothing"),
            )
            .label(*span, "not a `sweep` or `zip` axis")
            .help("exclusions name values of the `sweep` and `zip` axes (or `seed`)"),
            ExcludeValueNotOnAxis {
                span,
                axis,
                path,
                value,
            } => Diagnostic::error(
                "lra::batch::exclude-value",
                format!("`{value}` is not a value of the axis `{path}`, so this exclusion matches nothing"),
            )
            .label(*span, "not among the axis's values")
            .secondary(Some(*axis), "the axis")
            .help("write one of the axis's values as it is written there"),
            PretrainValue { span, value } => Diagnostic::error(
                "lra::batch::pretrain-value",
                format!("`pretrain` takes `keep`, `none` or an objective, found `{value}`"),
            )
            .label(*span, "not a pretraining choice")
            .help(
                "`keep` leaves the spec's pretraining, `none` removes it (the scratch twin), \
                 `masked` or `causal` picks the objective",
            ),
            EmptyProduct { span, why } => Diagnostic::error(
                "lra::batch::empty",
                format!("the batch has no point to run: {why}"),
            )
            .label(*span, "this batch")
            .help("check `only`, `exclude` and the spec globs"),
            Executor {
                span,
                message,
                help,
            } => Diagnostic::error("lra::batch::executor", message.clone())
                .label(*span, "here")
                .help(help.clone()),
            Alias { span } => Diagnostic::error(
                "lra::batch::alias",
                "YAML aliases (`*name`) are not used in batch files",
            )
            .label(*span, "alias")
            .help("write the value out"),
            SpecUnreadable { span, path, reason } => Diagnostic::error(
                "lra::batch::spec-unreadable",
                format!("cannot read the spec file {path}: {reason}"),
            )
            .label(*span, "matched here")
            .help("check the file's permissions, or narrow the pattern"),
        }
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map_or(String::new(), |s| format!("did you mean `{s}`? "))
}
