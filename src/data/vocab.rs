//! Vocabularies: built from the training split, saved as JSON beside the run, and reloaded
//! (never rebuilt) when the file exists, so token ids mean the same in pretraining and
//! fine-tuning. Every vocabulary holds `<pad> <unk> <eos> <mask>`.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::DataError;

pub(crate) const PAD: &str = "<pad>";
pub(crate) const UNK: &str = "<unk>";
pub(crate) const EOS: &str = "<eos>";
pub(crate) const MASK: &str = "<mask>";
const SPECIALS: [&str; 4] = [PAD, UNK, EOS, MASK];

/// How input symbols map onto the vocabulary's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VocabKind {
    /// ListOps symbols (`[MIN`, `X` for `]`, digits).
    ListOps,
    /// One token per character.
    Char,
    /// One token per byte: byte `b` has id `4 + b`.
    Byte,
    /// One token per 8-bit pixel: pixel `v` has id `v`, so a 256-class pixel target is the id.
    Pixel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    pub kind: VocabKind,
    tokens: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl Vocab {
    fn new(kind: VocabKind, tokens: Vec<String>) -> Self {
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Vocab {
            kind,
            tokens,
            index,
        }
    }

    /// Specials, then the tokens counted at least `min_freq` times, most frequent first (ties
    /// broken by the token, so the same counts always give the same ids).
    pub(crate) fn from_counts(
        kind: VocabKind,
        counts: HashMap<String, usize>,
        min_freq: usize,
    ) -> Self {
        let mut kept: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(t, c)| *c >= min_freq.max(1) && !SPECIALS.contains(&t.as_str()))
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let tokens = SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(kept.into_iter().map(|(t, _)| t))
            .collect();
        Vocab::new(kind, tokens)
    }

    pub fn bytes() -> Self {
        let tokens = SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain((0..=255u8).map(|b| format!("<0x{b:02x}>")))
            .collect();
        Vocab::new(VocabKind::Byte, tokens)
    }

    pub fn pixels() -> Self {
        let tokens = (0..=255u32)
            .map(|v| v.to_string())
            .chain(SPECIALS.iter().map(|s| s.to_string()))
            .collect();
        Vocab::new(VocabKind::Pixel, tokens)
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The id of `token`, or `<unk>`'s.
    pub fn id(&self, token: &str) -> u32 {
        self.index.get(token).copied().unwrap_or_else(|| self.unk())
    }

    fn special(&self, token: &str) -> u32 {
        // Present by construction, and checked when a file is loaded.
        self.index[token]
    }

    pub fn pad(&self) -> u32 {
        self.special(PAD)
    }
    pub fn unk(&self) -> u32 {
        self.special(UNK)
    }
    pub fn eos(&self) -> u32 {
        self.special(EOS)
    }
    pub fn mask(&self) -> u32 {
        self.special(MASK)
    }

    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| DataError::write(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DataError::write(dir, e))?;
        }
        crate::rundir::write_atomic(path, json.as_bytes()).map_err(|e| match e {
            crate::rundir::RunDirError::Io { source, .. } => DataError::write(path, source),
            other => DataError::write(path, other),
        })
    }

    pub fn load(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let vocab_error = |reason: String| DataError::Vocab {
            path: path.to_path_buf(),
            reason,
        };
        let parsed: Vocab =
            serde_json::from_str(&text).map_err(|e| vocab_error(format!("not valid JSON: {e}")))?;
        let vocab = Vocab::new(parsed.kind, parsed.tokens);
        if vocab.index.len() != vocab.tokens.len() {
            return Err(vocab_error("a token occurs twice".into()));
        }
        if let Some(missing) = SPECIALS.iter().find(|s| !vocab.index.contains_key(**s)) {
            return Err(vocab_error(format!(
                "the special token {missing} is missing"
            )));
        }
        Ok(vocab)
    }

    /// Loads `file` when it exists; otherwise builds the vocabulary and saves it there.
    /// A loaded vocabulary of another kind is an error: its ids would mean something else.
    pub(crate) fn load_or_build(
        file: Option<&Path>,
        kind: VocabKind,
        build: impl FnOnce() -> Vocab,
    ) -> Result<Self, DataError> {
        match file {
            Some(path) if path.exists() => {
                let vocab = Vocab::load(path)?;
                if vocab.kind != kind {
                    return Err(DataError::Vocab {
                        path: path.to_path_buf(),
                        reason: format!(
                            "it is a {:?} vocabulary, this task needs a {kind:?} one",
                            vocab.kind
                        ),
                    });
                }
                Ok(vocab)
            }
            Some(path) => {
                let vocab = build();
                vocab.save(path)?;
                Ok(vocab)
            }
            None => Ok(build()),
        }
    }
}
