//! The typed syntax tree of a `.lra` file. Every node carries the [`Span`] it was parsed from.

use crate::diagnostic::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Import(Import),
    Preset(Preset),
    Experiment(Experiment),
}

/// `import "../common/models.lra"`
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub path: Str,
    pub span: Span,
}

/// `model base6 = transformer { … }`: a named, refinable section.
#[derive(Clone, Debug, PartialEq)]
pub struct Preset {
    /// The section it stands for (`model`, `task`, `finetune`, …).
    pub section: Ident,
    pub name: Ident,
    /// The kind (`transformer`) or another preset it refines; absent for kind-less sections.
    pub base: Option<Ident>,
    pub body: Block,
    pub span: Span,
}

/// `experiment "name" { … }`
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    pub name: Str,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub entries: Vec<Entry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Field(Field),
    Section(Section),
}

impl Entry {
    pub fn key(&self) -> &Ident {
        match self {
            Entry::Field(f) => &f.key,
            Entry::Section(s) => &s.key,
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Entry::Field(f) => f.span,
            Entry::Section(s) => s.span,
        }
    }
}

/// `key value`
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub key: Ident,
    pub value: Value,
    pub span: Span,
}

/// `key kind? { … }`
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub key: Ident,
    pub kind: Option<Ident>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Str {
    pub value: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    Int(i64),
    Float(f64),
    /// `5%`, stored as the number before the sign (5.0).
    Percent(f64),
    Str(String),
    Ident(String),
    Bool(bool),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// `best val.accuracy`
    Best(String),
}

impl ValueKind {
    /// What the value is, for "expected a number, found a string" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            ValueKind::Int(_) => "an integer",
            ValueKind::Float(_) => "a number",
            ValueKind::Percent(_) => "a percentage",
            ValueKind::Str(_) => "a string",
            ValueKind::Ident(_) => "a name",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::Tuple(_) => "a tuple",
            ValueKind::List(_) => "a list",
            ValueKind::Best(_) => "a `best METRIC` selection",
        }
    }
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn join(f: &mut std::fmt::Formatter<'_>, items: &[Value]) -> std::fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}", v.kind)?;
            }
            Ok(())
        }
        match self {
            ValueKind::Int(i) => write!(f, "{i}"),
            ValueKind::Float(x) => write!(f, "{x:?}"),
            ValueKind::Percent(p) => write!(f, "{p}%"),
            ValueKind::Str(s) => write!(f, "{s:?}"),
            ValueKind::Ident(s) => f.write_str(s),
            ValueKind::Bool(b) => write!(f, "{b}"),
            ValueKind::Tuple(items) => {
                f.write_str("(")?;
                join(f, items)?;
                f.write_str(")")
            }
            ValueKind::List(items) => {
                f.write_str("[")?;
                join(f, items)?;
                f.write_str("]")
            }
            ValueKind::Best(metric) => write!(f, "best {metric}"),
        }
    }
}
