//! Retrieval (AAN): `<prefix>.{train,eval,test}.tsv[.gz]` (LRA: `new_aan_pairs`; the man-page
//! stand-in: `manpages_pairs`), no header, `label<TAB>id1<TAB>id2<TAB>text1<TAB>text2`.
//! Each document is tokenized on its own and closed with `<eos>`; a pair stays together.

use std::path::{Path, PathBuf};

use super::config::DataConfig;
use super::error::DataError;
use super::source::{exact_tab_fields, for_each_line, parse_label, utf8};
use super::store::{Examples, Inputs, Sequences};
use super::tokenize::{build_vocab, text_vocab_kind, Encoder};
use super::vocab::Vocab;
use super::Dataset;

pub const CLASSES: usize = 2;
pub const SPLITS: [&str; 3] = ["train", "eval", "test"];

#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub label: u8,
    pub text1: String,
    pub text2: String,
}

/// The file of `split` in `dir`: any `*.{split}.tsv` or `*.{split}.tsv.gz`.
pub fn split_file(dir: &Path, split: &str) -> Result<PathBuf, DataError> {
    let suffixes = [format!(".{split}.tsv"), format!(".{split}.tsv.gz")];
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            suffixes.iter().any(|s| name.ends_with(s.as_str()))
        })
        .collect();
    found.sort();
    found.into_iter().next().ok_or_else(|| DataError::Missing {
        path: dir.to_path_buf(),
        expected: "<prefix>.train.tsv, <prefix>.eval.tsv and <prefix>.test.tsv (plain or .gz), \
                   for example new_aan_pairs.train.tsv"
            .into(),
        hint: "get LRA's AAN pairs (lra_release/tsv_data; docs/METHOD.md names the sources), or \
               point `data` at a folder of pairs in that format"
            .into(),
    })
}

pub fn read_pairs(path: &Path) -> Result<Vec<Pair>, DataError> {
    let mut pairs = Vec::new();
    for_each_line(path, |number, line| {
        if line.is_empty() {
            return Ok(());
        }
        // Exactly five: a sixth column would otherwise be glued onto the second text.
        let fields = exact_tab_fields(
            path,
            number,
            line,
            5,
            "label<TAB>id1<TAB>id2<TAB>text1<TAB>text2",
        )?;
        pairs.push(Pair {
            label: parse_label(path, number, fields[0], CLASSES)?,
            text1: utf8(path, number, fields[3])?.to_string(),
            text2: utf8(path, number, fields[4])?.to_string(),
        });
        Ok(())
    })?;
    Ok(pairs)
}

fn encode_pairs(pairs: &[Pair], encoder: &Encoder) -> Examples {
    let mut first = Sequences::new();
    let mut second = Sequences::new();
    for pair in pairs {
        first.push_with(|buf| encoder.encode(&pair.text1, buf));
        second.push_with(|buf| encoder.encode(&pair.text2, buf));
    }
    first.shrink_to_fit();
    second.shrink_to_fit();
    Examples {
        inputs: Inputs::Pairs(first, second),
        labels: pairs.iter().map(|p| p.label).collect(),
    }
}

pub fn load(cfg: &DataConfig, vocab_file: Option<&Path>) -> Result<Dataset, DataError> {
    let dir = cfg.path.as_path();
    let paths = SPLITS
        .iter()
        .map(|s| split_file(dir, s))
        .collect::<Result<Vec<_>, _>>()?;
    let read = |i: usize| DataError::non_empty(&paths[i], SPLITS[i], read_pairs(&paths[i])?);
    let train_pairs = read(0)?;
    let kind = text_vocab_kind(cfg.tokenizer);
    let vocab = Vocab::load_or_build(vocab_file, kind, || {
        let texts = train_pairs
            .iter()
            .flat_map(|p| [p.text1.as_str(), p.text2.as_str()]);
        build_vocab(kind, texts, cfg.min_freq)
    })?;
    let encoder = Encoder::new(&vocab, cfg.max_len)?;
    let train = encode_pairs(&train_pairs, &encoder);
    drop(train_pairs);
    let val = encode_pairs(&read(1)?, &encoder);
    let test = encode_pairs(&read(2)?, &encoder);
    Ok(Dataset::from_token_splits(
        cfg,
        [train, val, test],
        vocab,
        CLASSES,
    ))
}
