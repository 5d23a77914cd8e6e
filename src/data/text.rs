//! Text (IMDB): the aclImdb folder layout `{train,test}/{pos,neg}/*.txt`, or `label<TAB>text`
//! files `{train,test}.tsv[.gz]`. The test split doubles as validation, as in LRA.

use std::path::Path;
use std::sync::Arc;

use super::config::DataConfig;
use super::error::DataError;
use super::source::{find_maybe_gz, for_each_line, parse_label, read_all, tab_fields, utf8};
use super::store::{Examples, Inputs, Sequences, Split};
use super::tokenize::{build_vocab, text_vocab_kind, Encoder};
use super::vocab::Vocab;
use super::{Dataset, InputKind};

pub const CLASSES: usize = 2;

/// Reviews with labels (0 negative, 1 positive).
pub(crate) type Rows = Vec<(String, u8)>;

/// Reads one split (`train` or `test`) in whichever layout `dir` holds.
pub(crate) fn read_split(dir: &Path, split: &str) -> Result<Rows, DataError> {
    let folder = dir.join(split);
    if folder.join("pos").is_dir() {
        return DataError::non_empty(&folder, split, read_acl_folder(&folder)?);
    }
    match find_maybe_gz(dir, &format!("{split}.tsv")) {
        Some(path) => DataError::non_empty(&path, split, read_tsv(&path)?),
        None => Err(DataError::Missing {
            path: dir.to_path_buf(),
            expected: format!(
                "aclImdb's {split}/pos/*.txt and {split}/neg/*.txt, or {split}.tsv[.gz] with \
                 `label<TAB>text` lines"
            ),
            hint: "unpack aclImdb_v1.tar.gz there (docs/METHOD.md names the sources), or \
                   point `data` at a folder of train.tsv and test.tsv"
                .into(),
        }),
    }
}

/// `label<TAB>text` lines.
pub fn read_tsv(path: &Path) -> Result<Rows, DataError> {
    let mut rows = Vec::new();
    for_each_line(path, |number, line| {
        if line.is_empty() {
            return Ok(());
        }
        let fields = tab_fields(path, number, line, 2, "label<TAB>text")?;
        let label = parse_label(path, number, fields[0], CLASSES)?;
        rows.push((utf8(path, number, fields[1])?.to_string(), label));
        Ok(())
    })?;
    Ok(rows)
}

/// `neg/*.txt` (label 0) then `pos/*.txt` (label 1), each in file-name order.
fn read_acl_folder(dir: &Path) -> Result<Rows, DataError> {
    let mut rows = Vec::new();
    for (label, class) in ["neg", "pos"].into_iter().enumerate() {
        let class_dir = dir.join(class);
        let mut files: Vec<_> = std::fs::read_dir(&class_dir)
            .map_err(|e| DataError::io(&class_dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        files.sort();
        for file in files {
            let bytes = read_all(&file)?;
            let text = String::from_utf8(bytes)
                .map_err(|e| DataError::malformed(&file, 1, "UTF-8 text", e.as_bytes()))?;
            rows.push((text, label as u8));
        }
    }
    Ok(rows)
}

pub(crate) fn encode_rows(rows: &[(String, u8)], encoder: &Encoder) -> Examples {
    let mut sequences = Sequences::new();
    for (text, _) in rows {
        sequences.push_with(|buf| encoder.encode(text, buf));
    }
    sequences.shrink_to_fit();
    Examples {
        inputs: Inputs::Tokens(sequences),
        labels: rows.iter().map(|r| r.1).collect(),
    }
}

pub fn load(cfg: &DataConfig, vocab_file: Option<&Path>) -> Result<Dataset, DataError> {
    let dir = cfg.path.as_path();
    let train_rows = read_split(dir, "train")?;
    let kind = text_vocab_kind(cfg.tokenizer);
    let vocab = Vocab::load_or_build(vocab_file, kind, || {
        build_vocab(kind, train_rows.iter().map(|r| r.0.as_str()), cfg.min_freq)
    })?;
    let encoder = Encoder::new(&vocab, cfg.max_len)?;
    let train = encode_rows(&train_rows, &encoder);
    drop(train_rows);
    let test = Arc::new(encode_rows(&read_split(dir, "test")?, &encoder));
    Ok(Dataset::new(
        cfg,
        Split::all(Arc::new(train)),
        Split::all(test.clone()),
        Split::all(test),
        vocab,
        CLASSES,
        InputKind::Tokens,
    ))
}
