//! ListOps: `basic_{train,val,test}.tsv[.gz]`, header `Source\tTarget`, LF or CRLF; and the
//! evaluator that recomputes a label from its expression.

use std::path::{Path, PathBuf};

use super::config::DataConfig;
use super::error::DataError;
use super::source::{find_maybe_gz, for_each_line, parse_label, tab_fields, utf8};
use super::store::{Examples, Inputs, Sequences};
use super::tokenize::{build_vocab, Encoder};
use super::vocab::{Vocab, VocabKind};
use super::Dataset;

pub const CLASSES: usize = 10;
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// One labelled expression as the release writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub source: String,
    pub target: u8,
}

pub fn split_file(dir: &Path, split: &str) -> Result<PathBuf, DataError> {
    find_maybe_gz(dir, &format!("basic_{split}.tsv")).ok_or_else(|| DataError::Missing {
        path: dir.to_path_buf(),
        expected: "basic_train.tsv, basic_val.tsv and basic_test.tsv (plain or .gz)".into(),
        hint: format!(
            "make them with `lra data gen listops --out {}`",
            dir.display()
        ),
    })
}

/// Reads one split file, checking its header and every row.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, DataError> {
    let mut rows = Vec::new();
    for_each_line(path, |number, line| {
        if number == 1 {
            if line != b"Source\tTarget" {
                return Err(DataError::malformed(
                    path,
                    number,
                    "the header `Source<TAB>Target`",
                    line,
                ));
            }
            return Ok(());
        }
        if line.is_empty() {
            return Ok(());
        }
        let fields = tab_fields(path, number, line, 2, "Source<TAB>Target")?;
        let source = utf8(path, number, fields[0])?;
        // A well-formed expression evaluates; the label itself is the data's to state.
        if let Err(problem) = evaluate(source) {
            return Err(DataError::malformed(
                path,
                number,
                format!(
                    "an expression of `(`, `)`, `[MIN`, `[MAX`, `[MED`, `[SM`, `]` and digits \
                     ({problem})"
                ),
                fields[0],
            ));
        }
        let target = parse_label(path, number, fields[1], CLASSES)?;
        rows.push(Row {
            source: source.to_string(),
            target,
        });
        Ok(())
    })?;
    Ok(rows)
}

/// The four operators of LRA's ListOps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Min,
    Max,
    /// Integer part of the median (the mean of the middle two for an even count).
    Med,
    /// Sum modulo 10.
    SumMod,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Min, Op::Max, Op::Med, Op::SumMod];

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Min => "[MIN",
            Op::Max => "[MAX",
            Op::Med => "[MED",
            Op::SumMod => "[SM",
        }
    }

    pub(crate) fn apply(self, args: &mut [u8]) -> u8 {
        match self {
            Op::Min => *args.iter().min().expect("an operator has arguments"),
            Op::Max => *args.iter().max().expect("an operator has arguments"),
            Op::SumMod => (args.iter().map(|&a| a as u32).sum::<u32>() % 10) as u8,
            Op::Med => {
                args.sort_unstable();
                let n = args.len();
                if n % 2 == 1 {
                    args[n / 2]
                } else {
                    ((args[n / 2 - 1] as u32 + args[n / 2] as u32) / 2) as u8
                }
            }
        }
    }
}

/// One ListOps symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Symbol {
    /// `(` or `)`: grouping only, carries no meaning.
    Paren,
    Op(Op),
    /// `]`, which closes an operator.
    End,
    Digit(u8),
}

impl Symbol {
    /// Number of symbols that become tokens (all but parentheses).
    pub(crate) const TOKENS: usize = 15;

    /// Position among the token symbols: operators, `]`, digits; `None` for parentheses.
    pub(crate) fn token_index(self) -> Option<usize> {
        match self {
            Symbol::Paren => None,
            Symbol::Op(op) => Op::ALL.iter().position(|&o| o == op),
            Symbol::End => Some(4),
            Symbol::Digit(d) => Some(5 + d as usize),
        }
    }

    /// The token text: operators as written, `]` as `X` (as LRA's tokenizer writes it), digits.
    pub fn token(index: usize) -> &'static str {
        const TOKENS: [&str; Symbol::TOKENS] = [
            "[MIN", "[MAX", "[MED", "[SM", "X", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
        ];
        TOKENS[index]
    }
}

/// The symbols of an expression, or the first unknown word as `Err`. A byte-level scanner:
/// the release holds tens of millions of symbols.
pub(crate) fn scan(source: &str) -> impl Iterator<Item = Result<Symbol, &str>> {
    let bytes = source.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if at == bytes.len() {
            return None;
        }
        let start = at;
        while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let word = &bytes[start..at];
        Some(match word {
            b"(" | b")" => Ok(Symbol::Paren),
            b"]" => Ok(Symbol::End),
            [d] if d.is_ascii_digit() => Ok(Symbol::Digit(d - b'0')),
            b"[MIN" => Ok(Symbol::Op(Op::Min)),
            b"[MAX" => Ok(Symbol::Op(Op::Max)),
            b"[MED" => Ok(Symbol::Op(Op::Med)),
            b"[SM" => Ok(Symbol::Op(Op::SumMod)),
            _ => Err(&source[start..at]),
        })
    })
}

/// Evaluates an expression (parentheses are optional); `Err` says what is wrong.
pub fn evaluate(source: &str) -> Result<u8, String> {
    let mut frames: Vec<(Op, Vec<u8>)> = Vec::new();
    let mut result = None;
    for symbol in scan(source) {
        let value = match symbol.map_err(|word| format!("unknown symbol {word:?}"))? {
            Symbol::Paren => continue,
            Symbol::Op(op) => {
                frames.push((op, Vec::new()));
                continue;
            }
            Symbol::End => {
                let (op, mut args) = frames.pop().ok_or("`]` without an operator")?;
                if args.is_empty() {
                    return Err(format!("{} without arguments", op.symbol()));
                }
                op.apply(&mut args)
            }
            Symbol::Digit(d) => d,
        };
        match frames.last_mut() {
            Some((_, args)) => args.push(value),
            None if result.is_none() => result = Some(value),
            None => return Err("more than one top-level value".into()),
        }
    }
    if !frames.is_empty() {
        return Err("an operator is not closed by `]`".into());
    }
    result.ok_or_else(|| "empty expression".into())
}

pub fn load(cfg: &DataConfig, vocab_file: Option<&Path>) -> Result<Dataset, DataError> {
    let dir = cfg.path.as_path();
    let paths = SPLITS
        .iter()
        .map(|s| split_file(dir, s))
        .collect::<Result<Vec<_>, _>>()?;
    let read = |i: usize| DataError::non_empty(&paths[i], SPLITS[i], read_rows(&paths[i])?);
    let train_rows = read(0)?;
    let vocab = Vocab::load_or_build(vocab_file, VocabKind::ListOps, || {
        build_vocab(
            VocabKind::ListOps,
            train_rows.iter().map(|r| r.source.as_str()),
            1,
        )
    })?;
    let encoder = Encoder::new(&vocab, cfg.max_len)?;
    let train = encode_rows(&train_rows, &encoder);
    drop(train_rows);
    let val = encode_rows(&read(1)?, &encoder);
    let test = encode_rows(&read(2)?, &encoder);
    Ok(Dataset::from_token_splits(
        cfg,
        [train, val, test],
        vocab,
        CLASSES,
    ))
}

fn encode_rows(rows: &[Row], encoder: &Encoder) -> Examples {
    let mut sequences = Sequences::new();
    for row in rows {
        sequences.push_with(|buf| encoder.encode(&row.source, buf));
    }
    sequences.shrink_to_fit();
    Examples {
        inputs: Inputs::Tokens(sequences),
        labels: rows.iter().map(|r| r.target).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_each_operator() {
        assert_eq!(evaluate("( ( ( [MAX 2 ) 9 ) ] )"), Ok(9));
        assert_eq!(evaluate("[MIN 4 7 3 ]"), Ok(3));
        assert_eq!(evaluate("[SM 4 7 3 ]"), Ok(4));
        assert_eq!(evaluate("[MED 1 2 8 9 ]"), Ok(5));
        assert_eq!(evaluate("[MED 1 2 3 ]"), Ok(2));
        assert_eq!(evaluate("[MAX [MIN 5 6 ] [SM 9 9 ] ]"), Ok(8));
        assert_eq!(evaluate("7"), Ok(7));
    }

    #[test]
    fn rejects_broken_expressions() {
        assert!(evaluate("[MAX 2 9").is_err());
        assert!(evaluate("2 ]").is_err());
        assert!(evaluate("[FOO 1 ]").is_err());
        assert!(evaluate("").is_err());
    }
}
