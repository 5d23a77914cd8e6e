//! Syntax errors, as data. Rendered through [`crate::diagnostic`].

use crate::diagnostic::{Diagnostic, Span};

#[derive(Clone, Debug, PartialEq)]
pub enum SyntaxError {
    /// The text does not follow the grammar here.
    Unexpected {
        span: Span,
        expected: String,
        found: String,
    },
    /// Brackets nested deeper than [`super::MAX_NESTING`].
    TooDeep { span: Span, limit: usize },
    /// An integer that does not fit in 64 bits, or a float that overflows.
    NumberOutOfRange { span: Span },
    /// A `{`, `(` or `[` never closed. `ends_before` is the first token of the line that the
    /// indentation shows should follow its closing bracket, where there is one.
    Unclosed {
        span: Span,
        bracket: char,
        ends_before: Option<Span>,
    },
    /// A string whose closing quote is missing on its line.
    UnclosedString { span: Span },
    /// A `/*` comment never closed.
    UnclosedComment { span: Span },
    /// A non-ASCII character outside strings and comments: names are ASCII.
    NonAsciiName { span: Span, character: char },
}

impl SyntaxError {
    /// The same error in text that starts `offset` bytes into its file (a value parsed
    /// alone, out of a batch file).
    pub(crate) fn shifted(self, offset: usize) -> Self {
        let by = |span: Span| Span::new(span.file, span.start + offset, span.end + offset);
        match self {
            SyntaxError::Unexpected {
                span,
                expected,
                found,
            } => SyntaxError::Unexpected {
                span: by(span),
                expected,
                found,
            },
            SyntaxError::TooDeep { span, limit } => SyntaxError::TooDeep {
                span: by(span),
                limit,
            },
            SyntaxError::NumberOutOfRange { span } => {
                SyntaxError::NumberOutOfRange { span: by(span) }
            }
            SyntaxError::Unclosed {
                span,
                bracket,
                ends_before,
            } => SyntaxError::Unclosed {
                span: by(span),
                bracket,
                ends_before: ends_before.map(by),
            },
            SyntaxError::UnclosedString { span } => SyntaxError::UnclosedString { span: by(span) },
            SyntaxError::UnclosedComment { span } => {
                SyntaxError::UnclosedComment { span: by(span) }
            }
            SyntaxError::NonAsciiName { span, character } => SyntaxError::NonAsciiName {
                span: by(span),
                character,
            },
        }
    }

    pub(crate) fn to_diagnostic(&self) -> Diagnostic {
        match self {
            SyntaxError::Unexpected {
                span,
                expected,
                found,
            } => Diagnostic::error("lra::syntax", format!("expected {expected}, found {found}"))
                .label(*span, format!("expected {expected} here"))
                .help(help_for(expected)),
            SyntaxError::TooDeep { span, limit } => Diagnostic::error(
                "lra::syntax::too-deep",
                format!("brackets are nested more than {limit} levels deep"),
            )
            .label(*span, "this bracket is too deep")
            .help("sections, tuples and lists nest only a few levels in any real spec; check for an unclosed bracket"),
            SyntaxError::NumberOutOfRange { span } => Diagnostic::error(
                "lra::syntax::number-out-of-range",
                "this number is too large to represent",
            )
            .label(*span, "out of range")
            .help("integers must fit in 64 bits; write large values as floats such as `1e20`"),
            SyntaxError::Unclosed {
                span,
                bracket,
                ends_before,
            } => {
                let closing = match bracket {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                let diagnostic = Diagnostic::error(
                    "lra::syntax::unclosed",
                    format!("`{bracket}` is never closed"),
                );
                match ends_before {
                    Some(_) => diagnostic
                        .label(*span, format!("this `{bracket}` has no matching `{closing}`"))
                        .secondary(
                            *ends_before,
                            format!("indented as the line that opened it: `{closing}` belongs before this line"),
                        )
                        .help(format!(
                            "end this part with `{closing}` before the marked line; a later `{closing}` closes the part around it"
                        )),
                    None => diagnostic
                        .label(*span, "opened here")
                        .help(format!("add `{closing}` where this part ends")),
                }
            }
            SyntaxError::UnclosedString { span } => Diagnostic::error(
                "lra::syntax::unclosed-string",
                "this string is never closed",
            )
            .label(*span, "no closing `\"` on this line")
            .help("strings end on the line they start: add the closing `\"`"),
            SyntaxError::UnclosedComment { span } => Diagnostic::error(
                "lra::syntax::unclosed-comment",
                "this comment is never closed",
            )
            .label(*span, "opened here")
            .help("close it with `*/`"),
            SyntaxError::NonAsciiName { span, character } => Diagnostic::error(
                "lra::syntax::non-ascii",
                format!("`{character}` is not allowed in a name"),
            )
            .label(*span, "not an ASCII letter, digit or `_`")
            .help("names of sections, kinds, fields and presets are ASCII letters, digits and `_`; any other text belongs in a string (`\"…\"`) or a comment"),
        }
    }
}

/// A hint for the most common shapes of mistake.
fn help_for(expected: &str) -> String {
    if expected.contains("a value") {
        "a field is `key value`: a number (`12_000`, `1e-3`, `5%`), a string, a name, `true`/`false`, a tuple `(0.9, 0.98)` or a list `[1, 2]`".into()
    } else if expected.contains("a field") || expected.contains("`}`") {
        "inside `{ … }` write fields as `key value` and sections as `key kind { … }`; close the section with `}`".into()
    } else {
        "a file holds `import \"path\"`, presets (`model name = kind { … }`) and `experiment \"name\" { … }`".into()
    }
}
