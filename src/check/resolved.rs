//! The resolved tree: every section of an experiment with each field's value and where it came
//! from. Rules read it (they need spans); `build` turns it into the typed [`crate::spec`].

use std::collections::BTreeMap;

use super::schema::{KindDef, SectionDef};
use crate::diagnostic::{SourceMap, Span};
use crate::syntax::ast::ValueKind;

/// Where a resolved value came from, as `lra explain` prints it.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// The built-in default of the section or kind.
    Default,
    /// The task's preset (the settings docs/METHOD.md gives for that task).
    TaskPreset(&'static str),
    /// Computed from other fields.
    Derived(String),
    /// A named preset, at the span where the value is written.
    Preset { name: String, span: Span },
    /// The experiment itself.
    File { span: Span },
}

impl Origin {
    /// The span of the text that set the value, if a user wrote it.
    pub fn span(&self) -> Option<Span> {
        match self {
            Origin::Preset { span, .. } | Origin::File { span } => Some(*span),
            _ => None,
        }
    }

    pub fn describe(&self, sources: &SourceMap) -> String {
        match self {
            Origin::Default => "default".into(),
            Origin::TaskPreset(task) => format!("task preset `{task}`"),
            Origin::Derived(how) => format!("derived: {how}"),
            Origin::Preset { name, span } => {
                format!("preset `{name}`, {}", sources.location(*span))
            }
            Origin::File { span } => sources.location(*span),
        }
    }

    pub(crate) fn is_default(&self) -> bool {
        matches!(self, Origin::Default)
    }
}

#[derive(Clone, Debug)]
pub struct RField {
    pub value: ValueKind,
    pub origin: Origin,
}

#[derive(Clone, Debug)]
pub struct RSection {
    pub def: &'static SectionDef,
    pub kind: Option<&'static KindDef>,
    pub kind_origin: Origin,
    /// Where the section is written (the experiment header for a defaulted section), so rules
    /// about a defaulted field still point somewhere useful.
    pub span: Span,
    pub fields: BTreeMap<&'static str, RField>,
    pub sections: BTreeMap<&'static str, RSection>,
}

impl RSection {
    pub fn new(def: &'static SectionDef, kind: Option<&'static KindDef>, span: Span) -> Self {
        RSection {
            def,
            kind,
            kind_origin: Origin::Default,
            span,
            fields: BTreeMap::new(),
            sections: BTreeMap::new(),
        }
    }

    pub fn kind_name(&self) -> Option<&'static str> {
        self.kind.map(|k| k.name)
    }

    pub(crate) fn is_kind(&self, name: &str) -> bool {
        self.kind_name() == Some(name)
    }

    pub fn get(&self, name: &str) -> Option<&RField> {
        self.fields.get(name)
    }

    pub fn section(&self, name: &str) -> Option<&RSection> {
        self.sections.get(name)
    }

    pub(crate) fn section_mut(&mut self, name: &str) -> Option<&mut RSection> {
        self.sections.get_mut(name)
    }

    /// The best span for a label about field `name`: where it was written, else the
    /// section's kind (`task listops`), else the whole section.
    pub(crate) fn span_of(&self, name: &str) -> Span {
        self.get(name)
            .and_then(|f| f.origin.span())
            .unwrap_or_else(|| self.header_span())
    }

    /// The kind as written (`listops` in `task listops { … }`), else the section.
    pub(crate) fn header_span(&self) -> Span {
        self.kind_origin.span().unwrap_or(self.span)
    }

    /// Like [`span_of`](Self::span_of), but `None` when the value was not written by a user.
    pub(crate) fn written_span(&self, name: &str) -> Option<Span> {
        self.get(name).and_then(|f| f.origin.span())
    }

    pub fn set(&mut self, name: &'static str, value: ValueKind, origin: Origin) {
        self.fields.insert(name, RField { value, origin });
    }

    /// Sets `name` only if it still holds its built-in default (or nothing).
    pub(crate) fn set_if_default(&mut self, name: &'static str, value: ValueKind, origin: Origin) {
        if self.get(name).is_none_or(|f| f.origin.is_default()) {
            self.set(name, value, origin);
        }
    }

    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)?.value {
            ValueKind::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn usize(&self, name: &str) -> Option<usize> {
        self.int(name).and_then(|i| usize::try_from(i).ok())
    }

    pub(crate) fn float(&self, name: &str) -> Option<f64> {
        super::typecheck::number(&self.get(name)?.value)
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)?.value {
            ValueKind::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn ident(&self, name: &str) -> Option<&str> {
        match &self.get(name)?.value {
            ValueKind::Ident(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn string(&self, name: &str) -> Option<&str> {
        match &self.get(name)?.value {
            ValueKind::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One experiment after resolution.
#[derive(Clone, Debug)]
pub struct ResolvedExperiment {
    pub name: String,
    pub name_span: Span,
    pub root: RSection,
}

impl ResolvedExperiment {
    pub fn task(&self) -> Option<&RSection> {
        self.root.section("task")
    }
    pub fn model(&self) -> Option<&RSection> {
        self.root.section("model")
    }
    pub fn pretrain(&self) -> Option<&RSection> {
        self.root.section("pretrain")
    }
    pub fn finetune(&self) -> Option<&RSection> {
        self.root.section("finetune")
    }
    /// The phases present, pretraining first.
    pub fn phases(&self) -> impl Iterator<Item = &RSection> {
        self.pretrain().into_iter().chain(self.finetune())
    }
}
