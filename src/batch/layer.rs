//! A point's settings as a [`Layer`] for the spec checker: the dotted paths become nested
//! `section { field value }` entries whose spans lie in the batch file, so the checker types
//! each value, refuses a field the point's kind lacks and runs every rule as for a spec
//! written by hand, and its diagnostics point at the YAML line that set the value.

use super::expand::Combination;
use super::paths::{self, Target};
use crate::check::schema::Ty;
use crate::check::Layer;
use crate::diagnostic::{Diagnostic, Span};
use crate::syntax::ast::{Block, Entry, Field, Ident, Section, Value, ValueKind};

/// The layer of one point: `combination`'s choices and the seed (when the batch sets seeds,
/// with the span of the seed in the YAML).
pub fn build(
    file: &std::path::Path,
    text: &str,
    experiment: &str,
    combination: &Combination,
    seed: Option<(u64, Span)>,
) -> Result<Layer, Vec<Diagnostic>> {
    let mut root = Tree::default();
    let mut remove = Vec::new();
    let mut errors = Vec::new();
    if let Some((seed, span)) = seed {
        root.fields.push(Field {
            key: Ident {
                name: "seed".into(),
                span,
            },
            value: Value {
                kind: ValueKind::Int(seed as i64),
                span,
            },
            span,
        });
    }
    for choice in &combination.choices {
        let text_value = choice.value.scalar().unwrap_or_default();
        let parts: Vec<&str> = choice.path.split('.').collect();
        let (last, sections) = parts.split_last().expect("a path has a name");
        let key = Ident {
            name: (*last).to_string(),
            span: choice.path_span,
        };
        let node = root.descend(sections, choice.path_span);
        match paths::lookup(choice.path) {
            Ok(Target::Section(_)) => match text_value {
                "keep" if choice.path == paths::PRETRAIN => {}
                "none" if choice.path == paths::PRETRAIN => remove.push(choice.path.to_string()),
                kind => {
                    node.child(&key).kind = Some(Ident {
                        name: kind.into(),
                        span: choice.value.span,
                    })
                }
            },
            Ok(Target::Field(def)) => match value(def.ty, choice.value) {
                Ok(value) => node.fields.push(Field {
                    key,
                    value,
                    span: Span::new(
                        choice.path_span.file,
                        choice.path_span.start,
                        choice.value.span.end,
                    ),
                }),
                Err(e) => errors.push(*e),
            },
            // Unknown paths were refused with the batch file.
            Err(_) => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Layer {
        path: file.to_path_buf(),
        text: text.to_string(),
        block: root.into_block(Span::new(Layer::FILE, 0, 0)),
        remove,
        experiment: experiment.to_string(),
    })
}

/// A YAML scalar as a spec value: verbatim for a string field, else read with the spec's
/// own value syntax (so `1e-3`, `5%`, `(0.9, 0.98)` and `best val.accuracy` mean what they
/// mean in a `.lra` file).
fn value(ty: Ty, node: &super::yaml::Node) -> Result<Value, Box<Diagnostic>> {
    let text = node.scalar().unwrap_or_default();
    if ty == Ty::Str {
        return Ok(Value {
            kind: ValueKind::Str(text.to_string()),
            span: node.span,
        });
    }
    let quoted = matches!(
        node.kind,
        super::yaml::NodeKind::Scalar { quoted: true, .. }
    );
    let offset = node.span.start + usize::from(quoted);
    crate::syntax::parse_value(Layer::FILE, text, offset)
        .map(|mut v| {
            v.span = node.span;
            v
        })
        .map_err(|e| Box::new(e.to_diagnostic()))
}

/// Entries grouped by section, to become nested blocks.
#[derive(Default)]
struct Tree {
    key: Option<Ident>,
    kind: Option<Ident>,
    fields: Vec<Field>,
    children: Vec<Tree>,
}

impl Tree {
    fn child(&mut self, key: &Ident) -> &mut Tree {
        let at = match self
            .children
            .iter()
            .position(|c| c.key.as_ref().map(|k| &k.name) == Some(&key.name))
        {
            Some(at) => at,
            None => {
                self.children.push(Tree {
                    key: Some(key.clone()),
                    ..Tree::default()
                });
                self.children.len() - 1
            }
        };
        &mut self.children[at]
    }

    fn descend(&mut self, sections: &[&str], span: Span) -> &mut Tree {
        let mut node = self;
        for name in sections {
            node = node.child(&Ident {
                name: (*name).to_string(),
                span,
            });
        }
        node
    }

    fn into_block(self, span: Span) -> Block {
        let mut entries: Vec<Entry> = self.fields.into_iter().map(Entry::Field).collect();
        for child in self.children {
            let key = child.key.clone().expect("a child section has a key");
            let kind = child.kind.clone();
            entries.push(Entry::Section(Section {
                span: key.span,
                body: child.into_block(key.span),
                key,
                kind,
            }));
        }
        Block { entries, span }
    }
}
