//! The hand-entered reference tables under `experiments/reference/` (the papers' published
//! accuracies, the sources' reported epoch times): CSV rows read with serde and checked one by
//! one, a bad row named by its line.

use serde::de::DeserializeOwned;

use crate::spec::ModelKind;

/// A row that does not parse or that its check refuses; `line` counts the header as line 1.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BadRow {
    pub line: usize,
    pub reason: String,
}

/// Every row of `text`, each passed to `check`, which names what is wrong with it, if anything.
pub(crate) fn read_rows<T: DeserializeOwned>(
    text: &str,
    check: impl Fn(&T) -> Option<String>,
) -> Result<Vec<T>, BadRow> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.deserialize::<T>() {
        let row = record.map_err(|e| BadRow {
            line: e.position().map_or(0, |p| p.line() as usize),
            reason: e.to_string(),
        })?;
        if let Some(reason) = check(&row) {
            return Err(BadRow {
                line: rows.len() + 2,
                reason,
            });
        }
        rows.push(row);
    }
    Ok(rows)
}

/// What is wrong with a model kind's name in a table, if anything.
pub(crate) fn unknown_model(model: &str) -> Option<String> {
    ModelKind::from_name(model)
        .is_none()
        .then(|| format!("unknown model kind `{model}`"))
}
