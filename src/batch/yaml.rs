//! The batch file as a located tree: every mapping, sequence and scalar with the byte span it
//! was read from, so each mistake in a batch file is reported at its line and column.
//!
//! serde_yaml reports only the first problem of a document and no position for a value, so
//! the tree is built from the marked events of yaml-rust2's parser (a YAML 1.2 parser); typed
//! parts (the executor's options) are then deserialised with serde_yaml from the located node
//! ([`Node::to_serde`]), their errors placed at that node.

use yaml_rust2::parser::{MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Event;

use crate::diagnostic::{FileId, Span};

/// One YAML node and where it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar's text; `quoted` when written in quotes (then it is always a string).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys in the order written; duplicates are kept, for the checker to report.
    Map(Vec<(Node, Node)>),
    /// `*anchor`: batch files have no use for aliases, so they are refused by the checker.
    Alias,
}

/// A YAML syntax error: the parser's message and where it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
}

impl Node {
    /// The text of a plain or quoted scalar.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// `~`, `null` or nothing at all (`key:` with no value).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, quoted: false }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What the node is, for "expected a list, found a mapping" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { quoted: true, .. } => "a string",
            NodeKind::Scalar { .. } if self.is_null() => "nothing",
            NodeKind::Scalar { .. } => "a value",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
            NodeKind::Alias => "an alias",
        }
    }

    /// What was found where something else was expected: a scalar's text, else what it is.
    pub fn found(&self) -> String {
        match &self.kind {
            NodeKind::Scalar { text, .. } if !self.is_null() => format!("`{text}`"),
            _ => self.describe().to_string(),
        }
    }

    /// The node as a serde_yaml value (plain scalars typed as YAML 1.2 does: integers,
    /// floats, booleans, null, else strings), for deserialising typed parts with serde.
    pub(crate) fn to_serde(&self) -> serde_yaml::Value {
        use serde_yaml::Value;
        match &self.kind {
            NodeKind::Scalar { text, quoted: true } => Value::String(text.clone()),
            NodeKind::Scalar { .. } if self.is_null() => Value::Null,
            NodeKind::Scalar { text, .. } => match text.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    if let Ok(i) = text.parse::<i64>() {
                        Value::Number(i.into())
                    } else if let Ok(x) = text.parse::<f64>() {
                        Value::Number(x.into())
                    } else {
                        Value::String(text.clone())
                    }
                }
            },
            NodeKind::Seq(items) => Value::Sequence(items.iter().map(Node::to_serde).collect()),
            NodeKind::Map(entries) => Value::Mapping(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_serde(), v.to_serde()))
                    .collect(),
            ),
            NodeKind::Alias => Value::Null,
        }
    }
}

/// Parses one YAML document of `text` (file `file` of the source map). An empty document is
/// an empty mapping's absence: `Ok(None)`.
pub fn parse(file: FileId, text: &str) -> Result<Option<Node>, SyntaxError> {
    let offsets = ByteOffsets::new(text);
    let mut builder = TreeBuilder {
        file,
        text,
        offsets: &offsets,
        stack: Vec::new(),
        root: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let at = offsets.byte(e.marker().index());
        let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
        return Err(SyntaxError {
            message: e.info().to_string(),
            span: Span::new(file, at, end),
        });
    }
    Ok(builder.root)
}

/// yaml-rust2's markers count characters; spans count bytes.
struct ByteOffsets {
    starts: Vec<usize>,
    len: usize,
}

impl ByteOffsets {
    fn new(text: &str) -> Self {
        ByteOffsets {
            starts: text.char_indices().map(|(i, _)| i).collect(),
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        self.starts.get(char_index).copied().unwrap_or(self.len)
    }
}

/// A collection being built: its start and the nodes so far.
enum Open {
    Seq(usize, Vec<Node>),
    Map(usize, Vec<Node>),
}

struct TreeBuilder<'t> {
    file: FileId,
    text: &'t str,
    offsets: &'t ByteOffsets,
    stack: Vec<Open>,
    root: Option<Node>,
}

impl TreeBuilder<'_> {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(Open::Seq(_, items) | Open::Map(_, items)) => items.push(node),
            None => self.root = Some(node),
        }
    }

    /// The end of a scalar that starts at `start`: the closing quote of a quoted one, else
    /// the text itself when it is written as it reads, else the end of the line.
    fn scalar_end(&self, start: usize, value: &str, style: TScalarStyle) -> usize {
        let rest = &self.text[start..];
        let line_end = start + rest.find('\n').unwrap_or(rest.len());
        match style {
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                let quote = if style == TScalarStyle::SingleQuoted {
                    '\''
                } else {
                    '"'
                };
                let mut escaped = false;
                for (i, c) in rest.char_indices().skip(1) {
                    match c {
                        '\\' if quote == '"' && !escaped => escaped = true,
                        c if c == quote && !escaped => return start + i + 1,
                        _ => escaped = false,
                    }
                }
                line_end
            }
            _ if !value.is_empty() && rest.starts_with(value) => start + value.len(),
            _ => line_end.max(start),
        }
    }

    /// Where the last child of a collection ends (its own start when empty).
    fn collection_end(start: usize, children: &[Node]) -> usize {
        children.last().map_or(start + 1, |n| n.span.end.max(start))
    }
}

impl MarkedEventReceiver for TreeBuilder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let at = self.offsets.byte(mark.index());
        match event {
            Event::Scalar(text, style, _, _) => {
                let end = self.scalar_end(at, &text, style);
                let quoted = matches!(
                    style,
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted
                );
                self.push(Node {
                    kind: NodeKind::Scalar { text, quoted },
                    span: Span::new(self.file, at, end),
                });
            }
            Event::Alias(_) => self.push(Node {
                kind: NodeKind::Alias,
                span: Span::new(self.file, at, at + 1),
            }),
            Event::SequenceStart(..) => self.stack.push(Open::Seq(at, Vec::new())),
            Event::MappingStart(..) => self.stack.push(Open::Map(at, Vec::new())),
            Event::SequenceEnd => {
                if let Some(Open::Seq(start, items)) = self.stack.pop() {
                    let end = Self::collection_end(start, &items);
                    self.push(Node {
                        kind: NodeKind::Seq(items),
                        span: Span::new(self.file, start, end),
                    });
                }
            }
            Event::MappingEnd => {
                if let Some(Open::Map(start, items)) = self.stack.pop() {
                    let end = Self::collection_end(start, &items);
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut items = items.into_iter();
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        pairs.push((k, v));
                    }
                    self.push(Node {
                        kind: NodeKind::Map(pairs),
                        span: Span::new(self.file, start, end),
                    });
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice<'a>(text: &'a str, node: &Node) -> &'a str {
        &text[node.span.start..node.span.end]
    }

    fn map(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            NodeKind::Map(entries) => entries,
            other => panic!("not a mapping: {other:?}"),
        }
    }

    #[test]
    fn spans_point_at_the_written_text() {
        let text = "name: é-run\nsweep:\n  model.d_model: [64, 128]\n  lr: \"1e-3\"\nzip:\n  - { a: [1, 2] }\n";
        let root = parse(0, text).unwrap().unwrap();
        let top = map(&root);
        assert_eq!(slice(text, &top[0].1), "é-run");
        let sweep = map(&top[1].1);
        assert_eq!(slice(text, &sweep[0].0), "model.d_model");
        let NodeKind::Seq(values) = &sweep[0].1.kind else {
            panic!()
        };
        assert_eq!(slice(text, &values[1]), "128");
        assert_eq!(slice(text, &sweep[1].1), "\"1e-3\"");
        assert_eq!(
            sweep[1].1.kind,
            NodeKind::Scalar {
                text: "1e-3".into(),
                quoted: true
            }
        );
        let NodeKind::Seq(zip) = &top[2].1.kind else {
            panic!()
        };
        assert_eq!(slice(text, &map(&zip[0])[0].0), "a");
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_checker() {
        let root = parse(0, "a: 1\na: 2\n").unwrap().unwrap();
        assert_eq!(map(&root).len(), 2);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let text = "a: 1\nb: [1, 2\nc: 3\n";
        let e = parse(0, text).unwrap_err();
        assert!(e.span.start > 5, "{e:?}");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn an_empty_document_is_none() {
        assert_eq!(parse(0, "# nothing\n").unwrap(), None);
    }

    #[test]
    fn plain_scalars_take_yaml_types() {
        let root = parse(0, "a: 1\nb: 1.5\nc: true\nd: x\ne: '2'\nf:\n")
            .unwrap()
            .unwrap();
        let v = root.to_serde();
        assert_eq!(v["a"], serde_yaml::Value::Number(1.into()));
        assert_eq!(v["b"], serde_yaml::Value::Number(1.5.into()));
        assert_eq!(v["c"], serde_yaml::Value::Bool(true));
        assert_eq!(v["d"], serde_yaml::Value::String("x".into()));
        assert_eq!(v["e"], serde_yaml::Value::String("2".into()));
        assert_eq!(v["f"], serde_yaml::Value::Null);
    }
}
