//! Resolution: presets, kinds, defaults and the experiment's own fields layered into one
//! [`RSection`] tree per experiment, with every structural error reported.

use std::collections::HashMap;

use super::defaults;
use super::error::{suggest, CheckError};
use super::resolved::{Origin, RSection, ResolvedExperiment};
use super::schema::{self, KindDef, SectionDef};
use super::typecheck::check_value;
use crate::diagnostic::Span;
use crate::syntax::ast::{Block, Entry, Experiment, Ident, Preset, ValueKind};

/// Presets in scope, by (section, name).
#[derive(Default)]
pub struct Scope<'a> {
    presets: HashMap<(&'static str, String), &'a Preset>,
}

impl<'a> Scope<'a> {
    /// Adds the presets of one file; reports duplicates and malformed preset headers.
    pub fn add(
        &mut self,
        presets: impl IntoIterator<Item = &'a Preset>,
        errors: &mut Vec<CheckError>,
    ) {
        for preset in presets {
            let Some(def) = schema::preset_section(&preset.section.name) else {
                errors.push(CheckError::NotAPresetSection {
                    span: preset.section.span,
                    name: preset.section.name.clone(),
                    suggestion: suggest(
                        &preset.section.name,
                        schema::PRESET_SECTIONS.iter().copied(),
                    ),
                });
                continue;
            };
            if def.kind(&preset.name.name).is_some() {
                errors.push(CheckError::PresetShadowsKind {
                    span: preset.name.span,
                    section: def.name.into(),
                    name: preset.name.name.clone(),
                });
                continue;
            }
            let key = (def.name, preset.name.name.clone());
            if let Some(first) = self.presets.get(&key) {
                errors.push(CheckError::DuplicatePreset {
                    span: preset.name.span,
                    first: first.name.span,
                    section: def.name.into(),
                    name: preset.name.name.clone(),
                });
                continue;
            }
            self.presets.insert(key, preset);
        }
    }

    fn get(&self, section: &'static str, name: &str) -> Option<&'a Preset> {
        self.presets.get(&(section, name.to_string())).copied()
    }

    fn names(&self, section: &'static str) -> impl Iterator<Item = &str> {
        self.presets
            .keys()
            .filter(move |(s, _)| *s == section)
            .map(|(_, n)| n.as_str())
    }

    pub fn presets(&self) -> impl Iterator<Item = &'a Preset> + '_ {
        self.presets.values().copied()
    }
}

/// Where the entries being applied were written.
#[derive(Clone)]
enum Source {
    Experiment,
    Preset(String),
    /// A [`super::Layer`] laid over the experiment (a batch point's settings).
    Layer,
}

impl Source {
    fn origin(&self, span: Span) -> Origin {
        match self {
            Source::Experiment | Source::Layer => Origin::File { span },
            Source::Preset(name) => Origin::Preset {
                name: name.clone(),
                span,
            },
        }
    }
}

pub(crate) struct Resolver<'s, 'a> {
    scope: &'s Scope<'a>,
    pub errors: Vec<CheckError>,
    /// Sections written but rejected (an unknown kind), so they are not also "missing".
    rejected: Vec<&'static str>,
}

impl<'s, 'a> Resolver<'s, 'a> {
    pub fn new(scope: &'s Scope<'a>) -> Self {
        Resolver {
            scope,
            errors: Vec::new(),
            rejected: Vec::new(),
        }
    }

    /// Checks a preset on its own, so mistakes in presets no experiment uses are found too.
    pub(crate) fn check_preset(&mut self, preset: &Preset) {
        let Some(def) = schema::preset_section(&preset.section.name) else {
            return;
        };
        let mut scratch = RSection::new(&schema::EXPERIMENT, None, preset.span);
        let ident = preset.name.clone();
        self.apply_section(
            &mut scratch,
            def,
            Some(&ident),
            None,
            preset.span,
            &Source::Experiment,
        );
    }

    pub fn experiment(&mut self, experiment: &Experiment) -> ResolvedExperiment {
        let mut root = RSection::new(&schema::EXPERIMENT, None, experiment.name.span);
        self.rejected.clear();
        defaults::fill(&mut root);
        self.apply_block(&mut root, &experiment.body, &Source::Experiment);
        for (section, example) in [
            ("task", "task listops { }"),
            ("model", "model transformer { layers 4 }"),
            ("finetune", "finetune { epochs 10 }"),
        ] {
            if root.section(section).is_none() && !self.rejected.contains(&section) {
                self.errors.push(CheckError::MissingSection {
                    span: experiment.name.span,
                    section: section.into(),
                    example: example.into(),
                });
            }
        }
        ResolvedExperiment {
            name: experiment.name.value.clone(),
            name_span: experiment.name.span,
            root,
        }
    }

    /// Lays `layer` over a resolved experiment: its entries as if written last in the
    /// experiment, then the sections it removes.
    pub fn layer(&mut self, root: &mut RSection, layer: &super::Layer) {
        self.apply_block(root, &layer.block, &Source::Layer);
        for section in &layer.remove {
            root.sections.remove(section.as_str());
        }
    }

    fn apply_block(&mut self, target: &mut RSection, block: &Block, source: &Source) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for entry in &block.entries {
            let key = entry.key();
            if let Some(first) = seen.get(key.name.as_str()) {
                self.errors.push(CheckError::DuplicateField {
                    span: key.span,
                    first: *first,
                    name: key.name.clone(),
                });
                continue;
            }
            seen.insert(&key.name, key.span);
            let field_def = target.def.field(target.kind, &key.name);
            let section_def = target.def.section(target.kind, &key.name);
            match (entry, field_def, section_def) {
                (Entry::Field(field), Some(def), _) => match check_value(def, &field.value) {
                    Ok(value) => target.set(def.name, value, source.origin(field.span)),
                    Err(e) => {
                        // Forget the default too: rules must not reason about a value the
                        // user did not mean.
                        target.fields.remove(def.name);
                        self.errors.push(*e);
                    }
                },
                (Entry::Field(field), None, Some(def)) => match &field.value.kind {
                    ValueKind::Ident(name) => {
                        let kind = Ident {
                            name: name.clone(),
                            span: field.value.span,
                        };
                        self.apply_section(target, def, Some(&kind), None, field.span, source);
                    }
                    other => self.errors.push(CheckError::WrongType {
                        span: field.value.span,
                        field: key.name.clone(),
                        expected: format!("a {} kind or preset, or a `{{ … }}` section", def.name),
                        found: other.describe().into(),
                    }),
                },
                (Entry::Section(section), _, Some(def)) => self.apply_section(
                    target,
                    def,
                    section.kind.as_ref(),
                    Some(&section.body),
                    section.span,
                    source,
                ),
                (Entry::Section(_), Some(def), None) => self.errors.push(CheckError::NotASection {
                    span: key.span,
                    name: key.name.clone(),
                    expected: def.ty.describe(),
                }),
                (_, None, None) => self.errors.push(self.unknown_field(target, key)),
            }
        }
    }

    fn unknown_field(&self, target: &RSection, key: &Ident) -> CheckError {
        let other_kinds = target
            .def
            .kinds_accepting(&key.name)
            .into_iter()
            .filter(|k| Some(*k) != target.kind_name())
            .map(String::from)
            .collect();
        CheckError::UnknownField {
            span: key.span,
            section: target.def.name.into(),
            kind: target.kind_name().map(String::from),
            name: key.name.clone(),
            suggestion: suggest(&key.name, target.def.names(target.kind)),
            other_kinds,
        }
    }

    /// Applies a nested section (`model base6 { … }`) to `parent`: resolves the kind slot to a
    /// kind or a chain of presets, starts from defaults (or the section already there, when the
    /// kind is unchanged), then layers the presets' bodies and this body.
    fn apply_section(
        &mut self,
        parent: &mut RSection,
        def: &'static SectionDef,
        kind_slot: Option<&Ident>,
        body: Option<&Block>,
        span: Span,
        source: &Source,
    ) {
        let (kind, chain) = match kind_slot {
            Some(slot) => match self.resolve_kind(def, slot) {
                Some(resolved) => resolved,
                None => {
                    self.rejected.push(def.name);
                    return;
                }
            },
            None => (None, Vec::new()),
        };
        let kind = kind.or_else(|| {
            parent
                .section(def.name)
                .and_then(|s| s.kind)
                .or_else(|| def.default_kind.and_then(|k| def.kind(k)))
        });
        if kind.is_none() && !def.kinds.is_empty() {
            self.rejected.push(def.name);
            self.errors.push(CheckError::MissingKind {
                span,
                section: def.name.into(),
                options: schema::ticked(&def.kind_names()),
            });
            return;
        }
        let mut section = match parent.sections.remove(def.name) {
            Some(existing) if existing.kind.map(|k| k.name) == kind.map(|k| k.name) => existing,
            _ => {
                let mut fresh = RSection::new(def, kind, span);
                defaults::fill(&mut fresh);
                fresh
            }
        };
        // A layer setting one field of a section the experiment wrote leaves the section
        // where the experiment wrote it; one naming a kind places it in the layer.
        if !(matches!(source, Source::Layer) && kind_slot.is_none()) {
            section.span = span;
            section.kind_origin = source.origin(kind_slot.map_or(span, |slot| slot.span));
        }
        for preset in chain {
            let preset_source = Source::Preset(preset.name.name.clone());
            self.apply_block(&mut section, &preset.body, &preset_source);
        }
        if let Some(body) = body {
            self.apply_block(&mut section, body, source);
        }
        parent.sections.insert(def.name, section);
    }

    /// Follows `slot` through presets to a kind. Returns the kind (None for kind-less
    /// sections) and the presets to apply, base first.
    fn resolve_kind(
        &mut self,
        def: &'static SectionDef,
        slot: &Ident,
    ) -> Option<(Option<&'static KindDef>, Vec<&'a Preset>)> {
        let mut chain: Vec<&'a Preset> = Vec::new();
        let mut current = slot.clone();
        loop {
            if let Some(preset) = self.scope.get(def.name, &current.name) {
                if chain.iter().any(|p| std::ptr::eq(*p, preset)) {
                    self.errors.push(CheckError::PresetCycle {
                        span: current.span,
                        name: current.name.clone(),
                    });
                    return None;
                }
                chain.push(preset);
                match &preset.base {
                    Some(base) => current = base.clone(),
                    None => {
                        chain.reverse();
                        return Some((None, chain));
                    }
                }
            } else if let Some(kind) = def.kind(&current.name) {
                chain.reverse();
                return Some((Some(kind), chain));
            } else {
                let names: Vec<&str> = def
                    .kinds
                    .iter()
                    .map(|k| k.name)
                    .chain(self.scope.names(def.name))
                    .collect();
                let options = if def.kinds.is_empty() {
                    "presets only".to_string()
                } else {
                    schema::ticked(&def.kind_names())
                };
                self.errors.push(CheckError::UnknownKind {
                    span: current.span,
                    section: def.name.into(),
                    name: current.name.clone(),
                    options,
                    suggestion: suggest(&current.name, names),
                });
                return None;
            }
        }
    }
}
