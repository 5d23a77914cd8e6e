//! Tokenizers as the reference implementations apply them. Every sequence is truncated to
//! `max_len - 1` tokens and closed with `<eos>`.

use std::collections::HashMap;

use super::error::DataError;
use super::listops::{scan, Symbol};
use super::vocab::{Vocab, VocabKind};

/// ListOps tokens: `]` becomes `X`, `(` and `)` are deleted, white space separates.
/// (Stripping the brackets too, as a historic LRA bug did, makes the task unsolvable.)
/// Unknown words become `None` (`<unk>`).
pub(crate) fn listops_tokens(source: &str) -> impl Iterator<Item = Option<usize>> + '_ {
    scan(source).filter_map(|symbol| match symbol {
        Ok(s) => s.token_index().map(Some),
        Err(_) => Some(None),
    })
}

/// Counts how often each token occurs in `texts` under `kind`.
pub(crate) fn count_tokens<'a>(
    kind: VocabKind,
    texts: impl Iterator<Item = &'a str>,
) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    match kind {
        VocabKind::ListOps => {
            let mut symbols = [0usize; Symbol::TOKENS];
            for text in texts {
                for index in listops_tokens(text).flatten() {
                    symbols[index] += 1;
                }
            }
            counts.extend(
                (0..Symbol::TOKENS)
                    .filter(|&i| symbols[i] > 0)
                    .map(|i| (Symbol::token(i).to_string(), symbols[i])),
            );
        }
        VocabKind::Char => {
            // Most text is ASCII: count it in a table, the rest in a map.
            let mut ascii = [0usize; 128];
            let mut other: HashMap<char, usize> = HashMap::new();
            for text in texts {
                for c in text.chars() {
                    match ascii.get_mut(c as usize) {
                        Some(n) => *n += 1,
                        None => *other.entry(c).or_default() += 1,
                    }
                }
            }
            let ascii = (0u8..128).map(|b| (b as char, ascii[b as usize]));
            counts.extend(
                ascii
                    .chain(other)
                    .filter(|&(_, n)| n > 0)
                    .map(|(c, n)| (c.to_string(), n)),
            );
        }
        VocabKind::Byte | VocabKind::Pixel => {}
    }
    counts
}

/// Turns text into ids with a fixed vocabulary.
pub(crate) struct Encoder<'v> {
    vocab: &'v Vocab,
    /// Character ids looked up once, for the per-character hot loop: ASCII in a table.
    ascii: [u16; 128],
    chars: HashMap<char, u16>,
    /// The id of each ListOps token symbol.
    symbols: [u16; Symbol::TOKENS],
    max_len: usize,
}

impl<'v> Encoder<'v> {
    /// Fails when the vocabulary has more ids than the compact `u16` storage holds.
    pub fn new(vocab: &'v Vocab, max_len: usize) -> Result<Self, DataError> {
        if vocab.len() > u16::MAX as usize + 1 {
            return Err(DataError::Config {
                reason: format!("a vocabulary of {} tokens exceeds 65,536", vocab.len()),
                hint: "raise min_freq, or use the byte tokenizer".into(),
            });
        }
        let chars = match vocab.kind {
            VocabKind::Char => vocab
                .tokens()
                .iter()
                .enumerate()
                .filter_map(|(id, t)| {
                    let mut cs = t.chars();
                    match (cs.next(), cs.next()) {
                        (Some(c), None) => Some((c, id as u16)),
                        _ => None,
                    }
                })
                .collect(),
            _ => HashMap::new(),
        };
        let mut ascii = [vocab.unk() as u16; 128];
        for (&c, &id) in &chars {
            if let Some(slot) = ascii.get_mut(c as usize) {
                *slot = id;
            }
        }
        let symbols = std::array::from_fn(|i| vocab.id(Symbol::token(i)) as u16);
        Ok(Encoder {
            vocab,
            ascii,
            chars,
            symbols,
            max_len: max_len.max(1),
        })
    }

    /// Appends the ids of `text`, truncated, then `<eos>`.
    pub(crate) fn encode(&self, text: &str, out: &mut Vec<u16>) {
        let keep = self.max_len - 1;
        let start = out.len();
        match self.vocab.kind {
            VocabKind::ListOps => {
                let unk = self.vocab.unk() as u16;
                out.extend(
                    listops_tokens(text)
                        .take(keep)
                        .map(|index| index.map_or(unk, |i| self.symbols[i])),
                )
            }
            VocabKind::Char => {
                let unk = self.vocab.unk() as u16;
                out.extend(
                    text.chars()
                        .take(keep)
                        .map(|c| match self.ascii.get(c as usize) {
                            Some(&id) => id,
                            None => self.chars.get(&c).copied().unwrap_or(unk),
                        }),
                )
            }
            VocabKind::Byte => out.extend(text.bytes().take(keep).map(|b| 4 + b as u16)),
            VocabKind::Pixel => unreachable!("pixels are not text"),
        }
        debug_assert!(out.len() - start <= keep);
        out.push(self.vocab.eos() as u16);
    }
}

/// The vocabulary kind a text tokenizer needs.
pub(crate) fn text_vocab_kind(tokenizer: super::config::Tokenizer) -> VocabKind {
    match tokenizer {
        super::config::Tokenizer::Char => VocabKind::Char,
        super::config::Tokenizer::Byte => VocabKind::Byte,
    }
}

/// Builds the vocabulary of `kind` from training texts.
pub(crate) fn build_vocab<'a>(
    kind: VocabKind,
    texts: impl Iterator<Item = &'a str>,
    min_freq: usize,
) -> Vocab {
    match kind {
        VocabKind::Byte => Vocab::bytes(),
        VocabKind::Pixel => Vocab::pixels(),
        VocabKind::ListOps | VocabKind::Char => {
            Vocab::from_counts(kind, count_tokens(kind, texts), min_freq)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listops_tokens_keep_brackets_as_x_and_drop_parentheses() {
        let tokens: Vec<&str> = listops_tokens("( ( ( [MAX 2 ) 9 ) ] ) [FOO")
            .map(|t| t.map_or("?", Symbol::token))
            .collect();
        assert_eq!(tokens, ["[MAX", "2", "9", "X", "?"]);
    }

    #[test]
    fn encoding_truncates_and_closes_with_eos() {
        let vocab = build_vocab(VocabKind::Char, ["abcabc"].into_iter(), 1);
        let encoder = Encoder::new(&vocab, 4).unwrap();
        let mut ids = Vec::new();
        encoder.encode("abz!", &mut ids);
        let a = vocab.id("a") as u16;
        let b = vocab.id("b") as u16;
        assert_eq!(ids, [a, b, vocab.unk() as u16, vocab.eos() as u16]);
    }

    #[test]
    fn byte_ids_are_offset_past_the_specials() {
        let vocab = Vocab::bytes();
        let mut ids = Vec::new();
        Encoder::new(&vocab, 10).unwrap().encode("A", &mut ids);
        assert_eq!(ids, [4 + 65, vocab.eos() as u16]);
        assert_eq!(vocab.token(4 + 65), Some("<0x41>"));
        assert_eq!(vocab.len(), 260);
    }
}
