//! Brackets outside strings and comments: the nesting guard that runs before pest, and the
//! indentation heuristic that finds where a missing `}` most likely belongs.
//!
//! A missing `}` rarely shows where it is missing: the brackets still pair up, one level off,
//! and the parser only fails at the end of the file (or at the next `experiment`, which inside
//! a block reads as a field). The indentation usually tells more, as rustc uses it for
//! unclosed delimiters: a line indented no deeper than the line that opened a section, and not
//! starting with a closing bracket, shows that the section should have ended before it.

/// What the scanner reports, in text order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// `{`, `(` or `[` at this byte.
    Open(usize),
    /// `}`, `)` or `]` at this byte.
    Close(usize),
    /// The first byte of code on a line (not a comment), with the line's indentation width.
    LineStart { at: usize, indent: usize },
    /// The first byte of a non-ASCII character in code (names are ASCII; strings and comments
    /// may hold any text).
    NonAscii(usize),
}

/// Columns a tab advances to (the next multiple of it).
const TAB: usize = 4;

/// Calls `f` for every bracket and line start of `text[..until]`, skipping strings and
/// comments; `f` returns false to stop.
pub(super) fn scan(text: &str, until: usize, mut f: impl FnMut(Event) -> bool) {
    let bytes = text.as_bytes();
    let end = until.min(bytes.len());
    let mut i = 0usize;
    // Columns of white space seen so far on this line, while no code has been seen on it.
    let mut indent = Some(0usize);
    while i < end {
        let b = bytes[i];
        match b {
            b'\n' => {
                indent = Some(0);
                i += 1;
                continue;
            }
            b' ' | b'\r' => {
                indent = indent.map(|n| n + usize::from(b == b' '));
                i += 1;
                continue;
            }
            b'\t' => {
                indent = indent.map(|n| (n / TAB + 1) * TAB);
                i += 1;
                continue;
            }
            _ => {}
        }
        let comment = b == b'/' && matches!(bytes.get(i + 1), Some(b'/') | Some(b'*'));
        if let (Some(width), false) = (indent.take(), comment) {
            if !f(Event::LineStart {
                at: i,
                indent: width,
            }) {
                return;
            }
        }
        match b {
            b'"' => {
                i += 1;
                while i < end && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                // The closing quote, or the newline of an unterminated string: the next line
                // starts afresh either way.
                if i < end && bytes[i] == b'\n' {
                    continue;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < end && bytes[i] != b'\n' {
                    i += 1;
                }
                // A line holding only a comment does not count as a line of code: keep the
                // indentation state of a fresh line for the next one.
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < end && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'(' | b'[' | b'}' | b')' | b']' => {
                let event = if matches!(b, b'{' | b'(' | b'[') {
                    Event::Open(i)
                } else {
                    Event::Close(i)
                };
                if !f(event) {
                    return;
                }
            }
            _ if !b.is_ascii() => {
                if !f(Event::NonAscii(i)) {
                    return;
                }
                // The rest of the character.
                while i + 1 < end && (bytes[i + 1] & 0xC0) == 0x80 {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// The first non-ASCII character in code (outside strings and comments), if any.
pub(super) fn first_non_ascii(text: &str) -> Option<usize> {
    let mut found = None;
    scan(text, text.len(), |event| match event {
        Event::NonAscii(at) => {
            found = Some(at);
            false
        }
        _ => true,
    });
    found
}

/// What [`open_brackets`] found.
pub(super) enum Brackets {
    /// Positions of the brackets still open, outermost first.
    Open(Vec<usize>),
    /// The position of a bracket nested beyond the limit.
    TooDeep(usize),
}

/// The brackets left open in `text[..until]`, or the first one nested `limit` deep.
pub(super) fn open_brackets(text: &str, until: usize, limit: usize) -> Brackets {
    let mut open = Vec::new();
    let mut too_deep = None;
    scan(text, until, |event| {
        match event {
            Event::Open(at) => {
                open.push(at);
                if open.len() >= limit {
                    too_deep = Some(at);
                    return false;
                }
            }
            Event::Close(_) => {
                open.pop();
            }
            Event::LineStart { .. } | Event::NonAscii(_) => {}
        }
        true
    });
    match too_deep {
        Some(at) => Brackets::TooDeep(at),
        None => Brackets::Open(open),
    }
}

/// A bracket whose contents, judged by indentation, end before a later line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Dedent {
    /// The opening bracket.
    pub opener: usize,
    /// The first byte of code on the line that should have come after the closing bracket.
    pub line: usize,
}

/// Every bracket of `text[..until]` that a later line's indentation closes while the brackets
/// keep it open, in text order, each once. A bracket opened on a line of indentation `n` is
/// closed by indentation at the next line of code indented `n` or less that does not itself
/// start with a closing bracket. Brackets closed on the line that opened them never count.
pub(super) fn dedents(text: &str, until: usize) -> Vec<Dedent> {
    let bytes = text.as_bytes();
    // (position, indentation of its line, index of its line), innermost last.
    let mut open: Vec<(usize, usize, usize)> = Vec::new();
    let mut found: Vec<Dedent> = Vec::new();
    let (mut line, mut line_indent) = (0usize, 0usize);
    scan(text, until, |event| {
        match event {
            Event::LineStart { at, indent } => {
                line += 1;
                line_indent = indent;
                let closes = matches!(bytes[at], b'}' | b')' | b']');
                if let Some(&(opener, opened_indent, opened_line)) = open.last() {
                    if !closes
                        && opened_line < line
                        && indent <= opened_indent
                        && found.iter().all(|d| d.opener != opener)
                    {
                        found.push(Dedent { opener, line: at });
                    }
                }
            }
            Event::Open(at) => open.push((at, line_indent, line)),
            Event::Close(_) => {
                open.pop();
            }
            Event::NonAscii(_) => {}
        }
        true
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(text: &str) -> Vec<(String, String)> {
        let line_of = |at: usize| {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            text[start..end].trim().to_string()
        };
        dedents(text, text.len())
            .into_iter()
            .map(|d| (line_of(d.opener), line_of(d.line)))
            .collect()
    }

    #[test]
    fn a_well_indented_file_has_no_dedent() {
        let text = "model m = transformer {\n    layers 2\n}\n\
                    experiment \"x\" {\n    task listops { max_len 8 }\n    finetune {\n        \
                    epochs 1\n    }\n}\n";
        assert_eq!(described(text), []);
    }

    #[test]
    fn the_section_left_open_is_the_one_the_indentation_closes() {
        let text = "experiment \"x\" {\n    task listops {\n        max_len 8\n\n    \
                    model transformer { layers 2 }\n}\n";
        assert_eq!(
            described(text),
            [(
                "task listops {".to_string(),
                "model transformer { layers 2 }".to_string()
            )]
        );
    }

    #[test]
    fn comments_strings_and_closing_lines_do_not_close_a_section() {
        let text = "experiment \"x\" {\n// a comment at column 0\n    data \"{\"\n    \
                    /* { */ seed 1\n}\n";
        assert_eq!(described(text), []);
    }

    #[test]
    fn tabs_indent_to_the_next_multiple_of_four() {
        // A tab and four spaces are the same depth: the second section is closed by `seed`.
        let text = "experiment \"x\" {\n\ttask listops {\n    seed 1\n}\n";
        assert_eq!(
            described(text),
            [("task listops {".to_string(), "seed 1".to_string())]
        );
    }

    #[test]
    fn nesting_is_measured_outside_strings_and_comments() {
        let text = "experiment \"x\" { data \"{{{\" /* [[[ */ v (1, [2]) // (((\n";
        let Brackets::Open(open) = open_brackets(text, text.len(), 64) else {
            panic!("not too deep")
        };
        assert_eq!(open, [text.find('{').unwrap()]);
        assert!(matches!(open_brackets("{ { {", 5, 3), Brackets::TooDeep(4)));
    }
}
