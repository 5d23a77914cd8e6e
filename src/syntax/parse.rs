//! pest parse tree → [`ast`](super::ast). The grammar is `grammar/lra.pest`.

use pest::error::InputLocation;
use pest::iterators::Pair;
use pest::Parser;

use super::ast::*;
use super::brackets::{dedents, first_non_ascii, open_brackets, Brackets, Dedent};
use super::error::SyntaxError;
use crate::diagnostic::{FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/lra.pest"]
struct LraParser;

/// How deep `{ ( [` may nest. pest descends recursively, so a guard before parsing keeps a
/// pathological input from overflowing the stack: the parser never panics on any input.
pub const MAX_NESTING: usize = 64;

/// Parses one source file. `file` is its id in the [`crate::diagnostic::SourceMap`].
pub fn parse(file: FileId, text: &str) -> Result<File, SyntaxError> {
    check_nesting(file, text)?;
    let mut pairs = LraParser::parse(Rule::file, text).map_err(|e| convert_error(file, text, e))?;
    let root = pairs.next().expect("the file rule always yields one pair");
    let builder = Builder { file };
    let mut items = Vec::new();
    for pair in root.into_inner() {
        match pair.as_rule() {
            Rule::import => items.push(Item::Import(builder.import(pair)?)),
            Rule::preset => items.push(Item::Preset(builder.preset(pair)?)),
            Rule::experiment => items.push(Item::Experiment(builder.experiment(pair)?)),
            _ => {}
        }
    }
    Ok(File { items })
}

/// Parses `text` as one value, written in file `file` at byte `offset` (a batch file's
/// setting, which is the spec's value syntax: `1e-3`, `5%`, `(0.9, 0.98)`, `best val.accuracy`).
pub fn parse_value(file: FileId, text: &str, offset: usize) -> Result<Value, SyntaxError> {
    check_nesting(file, text).map_err(|e| e.shifted(offset))?;
    let mut pairs = LraParser::parse(Rule::value_only, text)
        .map_err(|e| convert_error(file, text, e).shifted(offset))?;
    let root = pairs
        .next()
        .expect("the value_only rule always yields one pair");
    let pair = root
        .into_inner()
        .find(|p| p.as_rule() != Rule::EOI)
        .expect("grammar: value_only holds a value");
    let builder = Builder { file };
    builder
        .value(pair)
        .map(|v| shift_value(v, offset))
        .map_err(|e| e.shifted(offset))
}

fn shift_value(value: Value, offset: usize) -> Value {
    let kind = match value.kind {
        ValueKind::Tuple(items) => {
            ValueKind::Tuple(items.into_iter().map(|v| shift_value(v, offset)).collect())
        }
        ValueKind::List(items) => {
            ValueKind::List(items.into_iter().map(|v| shift_value(v, offset)).collect())
        }
        other => other,
    };
    Value {
        kind,
        span: Span::new(
            value.span.file,
            value.span.start + offset,
            value.span.end + offset,
        ),
    }
}

fn check_nesting(file: FileId, text: &str) -> Result<(), SyntaxError> {
    if let Some(at) = first_non_ascii(text) {
        let width = text[at..].chars().next().map_or(1, char::len_utf8);
        return Err(SyntaxError::NonAsciiName {
            span: Span::new(file, at, at + width),
            character: text[at..].chars().next().unwrap_or('?'),
        });
    }
    match open_brackets(text, text.len(), MAX_NESTING + 1) {
        Brackets::TooDeep(at) => Err(SyntaxError::TooDeep {
            span: Span::new(file, at, at + 1),
            limit: MAX_NESTING,
        }),
        Brackets::Open(_) => Ok(()),
    }
}

/// Human names for grammar rules, so errors read "expected a value".
fn rule_name(rule: &Rule) -> String {
    match rule {
        Rule::EOI => "end of file",
        Rule::file | Rule::item => "an item",
        Rule::import | Rule::import_kw => "`import`",
        Rule::experiment | Rule::experiment_kw => "`experiment \"name\" { … }`",
        Rule::preset => "a preset (`model name = kind { … }`)",
        Rule::block => "`{`",
        Rule::section => "a section",
        Rule::field => "a field",
        Rule::value
        | Rule::value_only
        | Rule::best
        | Rule::percent
        | Rule::float
        | Rule::integer
        | Rule::boolean
        | Rule::tuple
        | Rule::list
        | Rule::ident => "a value",
        Rule::best_kw => "`best`",
        Rule::metric => "a metric such as `val.accuracy`",
        Rule::string | Rule::string_raw => "a string",
        Rule::name => "a name",
        _ => "something else",
    }
    .to_string()
}

fn convert_error(file: FileId, text: &str, error: pest::error::Error<Rule>) -> SyntaxError {
    let (start, end) = match error.location {
        InputLocation::Pos(p) => (p, token_end(text, p)),
        InputLocation::Span((s, e)) => (s, e.max(s)),
    };
    let rest = &text[start.min(text.len())..];
    let open = match open_brackets(text, start, usize::MAX) {
        Brackets::Open(open) => open,
        Brackets::TooDeep(_) => Vec::new(),
    };
    if rest.starts_with("/*") {
        return SyntaxError::UnclosedComment {
            span: Span::new(file, start, start + 2),
        };
    }
    if rest.starts_with('"') {
        return SyntaxError::UnclosedString {
            span: Span::new(file, start, start + rest.find('\n').unwrap_or(rest.len())),
        };
    }
    if !open.is_empty() {
        if let Some(dedent) = likely_unclosed(text, start) {
            return SyntaxError::Unclosed {
                span: Span::new(file, dedent.opener, dedent.opener + 1),
                bracket: char::from(text.as_bytes()[dedent.opener]),
                ends_before: Some(Span::new(file, dedent.line, token_end(text, dedent.line))),
            };
        }
    }
    if rest.trim().is_empty() {
        if let Some(&bracket) = open.last() {
            return SyntaxError::Unclosed {
                span: Span::new(file, bracket, bracket + 1),
                bracket: char::from(text.as_bytes()[bracket]),
                ends_before: None,
            };
        }
    }
    let mut names: Vec<String> = match &error.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().map(rule_name).collect()
        }
        pest::error::ErrorVariant::CustomError { message } => vec![message.clone()],
    };
    if open.is_empty() && names.iter().any(|n| n == "a string") {
        names = vec!["a string (the experiment's name)".into()];
    } else if open.is_empty() {
        // At the top level only items may start.
        names = vec!["an item (`import`, a preset or `experiment`)".into()];
    } else if names.iter().any(|n| n == "a value") {
        // Where a value may stand, the alternatives a field also allows (a `{ … }` section,
        // `best`, strings and names) are all "a value" to a reader.
        names.retain(|n| !matches!(n.as_str(), "`{`" | "`best`" | "a string" | "a name"));
    } else if names.iter().any(|n| n == "a name") {
        // Inside a block a name starts a field or a section; `}` closes it.
        names = vec!["a field".into(), "`}`".into()];
    }
    let mut unique: Vec<String> = Vec::new();
    for n in names {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    let found = if start >= text.len() {
        "the end of the file".to_string()
    } else {
        format!("`{}`", &text[start..end])
    };
    SyntaxError::Unexpected {
        span: Span::new(file, start, end),
        expected: one_of(&unique),
        found,
    }
}

/// How many indentation candidates [`likely_unclosed`] tries: each costs one parse.
const DEDENT_TRIES: usize = 4;

/// The bracket whose closing bracket, judged by indentation, is missing before the parse error
/// at `error`: the first candidate of [`dedents`] such that closing it where the indentation
/// ends it lets the parse get past `error` (or to the end of the file, when more brackets are
/// missing). A line merely indented oddly is not blamed: closing there would fail sooner.
fn likely_unclosed(text: &str, error: usize) -> Option<Dedent> {
    dedents(text, error)
        .into_iter()
        .take(DEDENT_TRIES)
        .find(|d| {
            let closer = match text.as_bytes()[d.opener] {
                b'(' => ")",
                b'[' => "]",
                _ => "}",
            };
            let patched = format!("{}{closer} {}", &text[..d.line], &text[d.line..]);
            let Err(e) = LraParser::parse(Rule::file, &patched) else {
                return true;
            };
            let at = match e.location {
                InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
            };
            let inserted = closer.len() + 1;
            let original = if at >= d.line + inserted {
                at - inserted
            } else {
                at
            };
            original > error || patched[at.min(patched.len())..].trim().is_empty()
        })
}

fn one_of(names: &[String]) -> String {
    match names {
        [] => "something else".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {}", rest.join(", "), last),
    }
}

/// The end of the word starting at `p`, so a label covers the offending token, not one byte.
fn token_end(text: &str, p: usize) -> usize {
    let rest = &text[p.min(text.len())..];
    let mut chars = rest.char_indices();
    match chars.next() {
        None => p,
        Some((_, c)) if c.is_alphanumeric() || c == '_' || c == '.' => {
            p + rest
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.' || *c == '-'))
                .map_or(rest.len(), |(i, _)| i)
        }
        Some((_, c)) => p + c.len_utf8(),
    }
}

struct Builder {
    file: FileId,
}

impl Builder {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident {
            span: self.span(&pair),
            name: pair.as_str().to_string(),
        }
    }

    fn string(&self, pair: Pair<Rule>) -> Str {
        let span = self.span(&pair);
        let raw = pair.into_inner().next().map_or("", |p| p.as_str());
        Str {
            value: unescape(raw),
            span,
        }
    }

    fn import(&self, pair: Pair<Rule>) -> Result<Import, SyntaxError> {
        let span = self.span(&pair);
        let path = pair
            .into_inner()
            .find(|p| p.as_rule() == Rule::string)
            .map(|p| self.string(p))
            .expect("grammar: import has a string");
        Ok(Import { path, span })
    }

    fn experiment(&self, pair: Pair<Rule>) -> Result<Experiment, SyntaxError> {
        let span = self.span(&pair);
        let mut inner = pair
            .into_inner()
            .filter(|p| p.as_rule() != Rule::experiment_kw);
        let name = self.string(inner.next().expect("grammar: experiment name"));
        let body = self.block(inner.next().expect("grammar: experiment block"))?;
        Ok(Experiment { name, body, span })
    }

    /// The names and the block of a preset or section header, in order.
    fn names_and_block(&self, pair: Pair<Rule>) -> Result<(Vec<Ident>, Block), SyntaxError> {
        let mut names = Vec::new();
        let mut body = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::name => names.push(self.ident(p)),
                Rule::block => body = Some(self.block(p)?),
                _ => {}
            }
        }
        Ok((names, body.expect("grammar: a header ends with a block")))
    }

    fn preset(&self, pair: Pair<Rule>) -> Result<Preset, SyntaxError> {
        let span = self.span(&pair);
        let (names, body) = self.names_and_block(pair)?;
        let mut names = names.into_iter();
        Ok(Preset {
            section: names.next().expect("grammar: preset section"),
            name: names.next().expect("grammar: preset name"),
            base: names.next(),
            body,
            span,
        })
    }

    fn block(&self, pair: Pair<Rule>) -> Result<Block, SyntaxError> {
        let span = self.span(&pair);
        let mut entries = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::field => entries.push(Entry::Field(self.field(p)?)),
                Rule::section => entries.push(Entry::Section(self.section(p)?)),
                _ => {}
            }
        }
        Ok(Block { entries, span })
    }

    fn section(&self, pair: Pair<Rule>) -> Result<Section, SyntaxError> {
        let span = self.span(&pair);
        let (names, body) = self.names_and_block(pair)?;
        let mut names = names.into_iter();
        Ok(Section {
            key: names.next().expect("grammar: section key"),
            kind: names.next(),
            body,
            span,
        })
    }

    fn field(&self, pair: Pair<Rule>) -> Result<Field, SyntaxError> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let key = self.ident(inner.next().expect("grammar: field key"));
        let value = self.value(inner.next().expect("grammar: field value"))?;
        Ok(Field { key, value, span })
    }

    fn value(&self, pair: Pair<Rule>) -> Result<Value, SyntaxError> {
        let span = self.span(&pair);
        let text = pair.as_str();
        let kind = match pair.as_rule() {
            Rule::integer => ValueKind::Int(
                text.replace('_', "")
                    .parse()
                    .map_err(|_| SyntaxError::NumberOutOfRange { span })?,
            ),
            Rule::float => ValueKind::Float(parse_float(text, span)?),
            Rule::percent => ValueKind::Percent(parse_float(text.trim_end_matches('%'), span)?),
            Rule::boolean => ValueKind::Bool(text == "true"),
            Rule::string => ValueKind::Str(self.string(pair).value),
            Rule::ident => ValueKind::Ident(text.to_string()),
            Rule::best => {
                let metric = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::metric)
                    .expect("grammar: best has a metric");
                ValueKind::Best(metric.as_str().to_string())
            }
            Rule::tuple | Rule::list => {
                let is_tuple = pair.as_rule() == Rule::tuple;
                let items = pair
                    .into_inner()
                    .map(|p| self.value(p))
                    .collect::<Result<Vec<_>, _>>()?;
                if is_tuple {
                    ValueKind::Tuple(items)
                } else {
                    ValueKind::List(items)
                }
            }
            other => unreachable!("grammar: {other:?} is not a value"),
        };
        Ok(Value { kind, span })
    }
}

fn parse_float(text: &str, span: Span) -> Result<f64, SyntaxError> {
    let x: f64 = text
        .replace('_', "")
        .parse()
        .map_err(|_| SyntaxError::NumberOutOfRange { span })?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(SyntaxError::NumberOutOfRange { span })
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> File {
        parse(0, text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn field_value(text: &str) -> ValueKind {
        let file = parse_ok(&format!("experiment \"x\" {{ v {text} }}"));
        let Item::Experiment(e) = &file.items[0] else {
            panic!()
        };
        let Entry::Field(f) = &e.body.entries[0] else {
            panic!()
        };
        f.value.kind.clone()
    }

    #[test]
    fn values_of_every_form() {
        assert_eq!(field_value("12_000"), ValueKind::Int(12000));
        assert_eq!(field_value("-3"), ValueKind::Int(-3));
        assert_eq!(field_value("1e-3"), ValueKind::Float(1e-3));
        assert_eq!(field_value("0.5"), ValueKind::Float(0.5));
        assert_eq!(field_value("5%"), ValueKind::Percent(5.0));
        assert_eq!(field_value("2.5%"), ValueKind::Percent(2.5));
        assert_eq!(field_value("\"a\\\"b\""), ValueKind::Str("a\"b".into()));
        assert_eq!(field_value("true"), ValueKind::Bool(true));
        assert_eq!(field_value("trueish"), ValueKind::Ident("trueish".into()));
        assert_eq!(field_value("cuda:1"), ValueKind::Ident("cuda:1".into()));
        assert_eq!(
            field_value("best val.accuracy"),
            ValueKind::Best("val.accuracy".into())
        );
        assert_eq!(field_value("best"), ValueKind::Ident("best".into()));
        match field_value("(0.9, 0.98)") {
            ValueKind::Tuple(items) => assert_eq!(items.len(), 2),
            other => panic!("{other:?}"),
        }
        match field_value("[1, 2, 3,]") {
            ValueKind::List(items) => assert_eq!(items.len(), 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn items_sections_presets_and_comments() {
        let file = parse_ok(
            r#"
            // a comment
            import "common.lra"
            model base = transformer { layers 6 /* inline */ d_model 512 }
            finetune quick = { epochs 1 }
            experiment "e" {
                model base { dropout 0.1 }
                attention local { window 4096 }
                pool mean
            }
            "#,
        );
        assert_eq!(file.items.len(), 4);
        let Item::Preset(p) = &file.items[1] else {
            panic!()
        };
        assert_eq!(p.section.name, "model");
        assert_eq!(p.name.name, "base");
        assert_eq!(p.base.as_ref().unwrap().name, "transformer");
        assert_eq!(p.body.entries.len(), 2);
        let Item::Preset(q) = &file.items[2] else {
            panic!()
        };
        assert!(q.base.is_none());
        let Item::Experiment(e) = &file.items[3] else {
            panic!()
        };
        assert_eq!(e.body.entries.len(), 3);
        assert!(matches!(e.body.entries[2], Entry::Field(_)));
    }

    #[test]
    fn spans_point_at_the_text() {
        let text = "experiment \"x\" { layers 6 }";
        let file = parse_ok(text);
        let Item::Experiment(e) = &file.items[0] else {
            panic!()
        };
        let Entry::Field(f) = &e.body.entries[0] else {
            panic!()
        };
        assert_eq!(&text[f.key.span.start..f.key.span.end], "layers");
        assert_eq!(&text[f.value.span.start..f.value.span.end], "6");
        assert_eq!(&text[e.name.span.start..e.name.span.end], "\"x\"");
    }

    #[test]
    fn errors_use_human_rule_names() {
        let err = parse(0, "experiment \"x\" { layers }").unwrap_err();
        let SyntaxError::Unexpected { expected, .. } = err else {
            panic!()
        };
        assert!(expected.contains("a value"), "{expected}");
        assert!(!expected.contains("ident"), "{expected}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("experiment \"x\" {{ v {} }}", "(".repeat(10_000));
        assert!(matches!(parse(0, &text), Err(SyntaxError::TooDeep { .. })));
    }

    /// The opening bracket and the first word of the line before which it should close.
    fn unclosed(text: &str) -> (usize, Option<String>) {
        match parse(0, text) {
            Err(SyntaxError::Unclosed {
                span, ends_before, ..
            }) => (
                span.start,
                ends_before.map(|s| text[s.start..s.end].to_string()),
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_brace_is_placed_where_the_indentation_ends_its_section() {
        // The last `}` closes the task, leaving the experiment open at the end of the file;
        // the task is the section whose `}` is missing, before `model`.
        let text = "experiment \"x\" {\n    task listops {\n        max_len 8\n\n    \
                    model transformer { layers 2 }\n    finetune { epochs 1 }\n}\n";
        let task = text.find("listops {").unwrap() + "listops ".len();
        assert_eq!(unclosed(text), (task, Some("model".to_string())));
    }

    #[test]
    fn a_preset_left_open_is_found_at_the_next_experiment() {
        // Inside a block `experiment "x"` reads as a field, so the parse fails at its `{`.
        let text = "model m = transformer {\n    layers 2\n\nexperiment \"x\" {\n    \
                    model m\n}\n";
        let preset = text.find('{').unwrap();
        assert_eq!(unclosed(text), (preset, Some("experiment".to_string())));
    }

    /// Names are ASCII, but strings and comments hold any text.
    #[test]
    fn non_ascii_text_is_refused_in_names_only() {
        parse_ok(
            "// café\n/* naïve */ experiment \"résumé\" { task listops { data \"données\" } }",
        );
        match parse(0, "experiment \"e\" { modèle transformer { } }") {
            Err(SyntaxError::NonAsciiName { span, character }) => {
                assert_eq!(character, 'è');
                assert_eq!((span.start, span.end), (20, 22));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_oddly_indented_line_is_not_blamed_for_a_brace_missing_later() {
        // `layers 2` sits left of its section, but closing the model there would fail sooner;
        // the task's brace is the missing one.
        let text = "experiment \"x\" {\n    model transformer {\nlayers 2\n    }\n    \
                    task listops {\n        max_len 8\n    finetune { epochs 1 }\n}\n";
        let task = text.find("listops {").unwrap() + "listops ".len();
        assert_eq!(unclosed(text), (task, Some("finetune".to_string())));
    }

    #[test]
    fn a_truncated_file_points_at_the_innermost_open_brace() {
        let text = "experiment \"x\" {\n    task listops {\n        max_len 8\n";
        let task = text.find("listops {").unwrap() + "listops ".len();
        assert_eq!(unclosed(text), (task, None));
    }

    #[test]
    fn huge_integers_are_diagnosed() {
        let err = parse(0, "experiment \"x\" { v 99999999999999999999999 }").unwrap_err();
        assert!(matches!(err, SyntaxError::NumberOutOfRange { .. }));
    }
}
