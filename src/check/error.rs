//! The checker's structural errors, as data. Cross-field rules build their diagnostics in
//! `rules/`; everything is rendered by [`crate::diagnostic::render`].

use crate::diagnostic::{Diagnostic, Span};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CheckError {
    ImportNotFound {
        span: Span,
        path: String,
        reason: String,
    },
    ImportCycle {
        span: Span,
        chain: Vec<String>,
    },
    NotAPresetSection {
        span: Span,
        name: String,
        suggestion: Option<String>,
    },
    DuplicatePreset {
        span: Span,
        first: Span,
        section: String,
        name: String,
    },
    PresetShadowsKind {
        span: Span,
        section: String,
        name: String,
    },
    PresetCycle {
        span: Span,
        name: String,
    },
    DuplicateExperiment {
        span: Span,
        first: Span,
        name: String,
    },
    UnknownKind {
        span: Span,
        section: String,
        name: String,
        options: String,
        suggestion: Option<String>,
    },
    MissingKind {
        span: Span,
        section: String,
        options: String,
    },
    UnknownField {
        span: Span,
        section: String,
        kind: Option<String>,
        name: String,
        suggestion: Option<String>,
        other_kinds: Vec<String>,
    },
    DuplicateField {
        span: Span,
        first: Span,
        name: String,
    },
    NotASection {
        span: Span,
        name: String,
        expected: String,
    },
    WrongType {
        span: Span,
        field: String,
        expected: String,
        found: String,
    },
    OutOfRange {
        span: Span,
        field: String,
        expected: String,
    },
    UnknownValue {
        span: Span,
        field: String,
        value: String,
        options: String,
        suggestion: Option<String>,
    },
    MissingSection {
        span: Span,
        section: String,
        example: String,
    },
    /// A checked experiment whose lowering into a spec found no value for `field`: a gap
    /// between the schema, the defaults and the lowering, i.e. a bug in lra.
    Lowering {
        span: Span,
        field: String,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map_or(String::new(), |s| format!("did you mean `{s}`? "))
}

impl CheckError {
    pub(crate) fn to_diagnostic(&self) -> Diagnostic {
        use CheckError::*;
        match self {
            ImportNotFound { span, path, reason } => Diagnostic::error(
                "lra::import::not-found",
                format!("cannot read imported file `{path}`"),
            )
            .label(*span, reason.clone())
            .help("import paths are relative to the importing file"),
            ImportCycle { span, chain } => Diagnostic::error(
                "lra::import::cycle",
                format!("import cycle: {}", chain.join(" → ")),
            )
            .label(*span, "this import leads back to a file that imports it")
            .help("move the shared presets into a file that imports neither"),
            NotAPresetSection {
                span,
                name,
                suggestion,
            } => Diagnostic::error(
                "lra::preset::unknown-section",
                format!("`{name}` is not a section that can be a preset"),
            )
            .label(*span, "not a section")
            .help(format!(
                "{}presets are `SECTION NAME = KIND {{ … }}` for {}",
                did_you_mean(suggestion),
                super::schema::ticked(super::schema::PRESET_SECTIONS)
            )),
            DuplicatePreset {
                span,
                first,
                section,
                name,
            } => Diagnostic::error(
                "lra::preset::duplicate",
                format!("{section} preset `{name}` is defined twice"),
            )
            .label(*span, "defined again here")
            .secondary(Some(*first), "first defined here")
            .help("rename one of them; presets share one scope across imports"),
            PresetShadowsKind {
                span,
                section,
                name,
            } => Diagnostic::error(
                "lra::preset::shadows-kind",
                format!("preset `{name}` has the name of a {section} kind"),
            )
            .label(*span, "already a kind")
            .help(format!("give the preset another name, such as `my_{name}`")),
            PresetCycle { span, name } => Diagnostic::error(
                "lra::preset::cycle",
                format!("preset `{name}` refines itself"),
            )
            .label(*span, "this base leads back to the preset")
            .help("a preset's base must be a kind or a preset that does not depend on it"),
            DuplicateExperiment { span, first, name } => Diagnostic::error(
                "lra::experiment::duplicate",
                format!("experiment \"{name}\" is defined twice"),
            )
            .label(*span, "defined again here")
            .secondary(Some(*first), "first defined here")
            .help("experiment names name run folders, so they must be unique"),
            UnknownKind {
                span,
                section,
                name,
                options,
                suggestion,
            } => Diagnostic::error(
                "lra::unknown-kind",
                format!("unknown {section} kind or preset `{name}`"),
            )
            .label(*span, "not a kind or preset in scope")
            .help(format!(
                "{}{section} kinds are {options}",
                did_you_mean(suggestion)
            )),
            MissingKind {
                span,
                section,
                options,
            } => Diagnostic::error(
                "lra::missing-kind",
                format!("this {section} section needs a kind"),
            )
            .label(*span, "kind missing")
            .help(format!(
                "write `{section} KIND {{ … }}` with KIND one of {options}"
            )),
            UnknownField {
                span,
                section,
                kind,
                name,
                suggestion,
                other_kinds,
            } => {
                let place = match kind {
                    Some(k) => format!("{section} {k}"),
                    None => section.clone(),
                };
                let help = if other_kinds.is_empty() {
                    format!(
                        "{}see `lra explain` for every field of {place}",
                        did_you_mean(suggestion)
                    )
                } else {
                    format!(
                        "{}`{name}` belongs to {section} {}",
                        did_you_mean(suggestion),
                        super::schema::ticked(
                            &other_kinds.iter().map(|s| s.as_str()).collect::<Vec<_>>()
                        )
                    )
                };
                Diagnostic::error(
                    "lra::unknown-field",
                    format!("unknown field `{name}` in {place}"),
                )
                .label(*span, "unknown field")
                .help(help)
            }
            DuplicateField { span, first, name } => {
                Diagnostic::error("lra::duplicate-field", format!("`{name}` is given twice"))
                    .label(*span, "given again here")
                    .secondary(Some(*first), "first given here")
                    .help("remove one of them")
            }
            NotASection {
                span,
                name,
                expected,
            } => Diagnostic::error(
                "lra::not-a-section",
                format!("`{name}` is a field, not a section"),
            )
            .label(*span, "written as a section")
            .help(format!("write `{name} VALUE` with {expected}")),
            WrongType {
                span,
                field,
                expected,
                found,
            } => Diagnostic::error(
                "lra::wrong-type",
                format!("`{field}` expects {expected}, found {found}"),
            )
            .label(*span, format!("expected {expected}")),
            OutOfRange {
                span,
                field,
                expected,
            } => Diagnostic::error("lra::out-of-range", format!("`{field}` is out of range"))
                .label(*span, format!("must be {expected}")),
            Lowering { span, field } => Diagnostic::error(
                "lra::internal::lowering",
                format!("internal error: the checked experiment has no usable value for `{field}`"),
            )
            .label(
                *span,
                "this experiment passed every check but cannot be built",
            )
            .help("this is a bug in lra, not in the spec: please report it with this file"),
            UnknownValue {
                span,
                field,
                value,
                options,
                suggestion,
            } => Diagnostic::error(
                "lra::unknown-value",
                format!("`{value}` is not a valid `{field}`"),
            )
            .label(*span, "unknown value")
            .help(format!(
                "{}`{field}` is {options}",
                did_you_mean(suggestion)
            )),
            MissingSection {
                span,
                section,
                example,
            } => Diagnostic::error(
                "lra::missing-section",
                format!("this experiment has no `{section}` section"),
            )
            .label(*span, format!("`{section}` missing"))
            .help(format!("add one, for example `{example}`")),
        }
    }
}

/// The closest name to `name` among `options`, if any is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    name: &str,
    options: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let limit = (name.len() / 3).max(2);
    options
        .into_iter()
        .map(|o| (strsim::damerau_levenshtein(name, o), o))
        .filter(|(d, o)| *d <= limit && *d < o.len().max(name.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o.to_string())
}

#[cfg(test)]
mod tests {
    use super::suggest;

    #[test]
    fn suggestions_find_typos_and_ignore_strangers() {
        assert_eq!(
            suggest("d_modle", ["d_model", "layers"]),
            Some("d_model".into())
        );
        assert_eq!(suggest("lenght", ["length"]), Some("length".into()));
        assert_eq!(suggest("xyz", ["d_model", "layers"]), None);
    }
}
