//! The model of a run and its forward pass on a data batch.

use dfdx::prelude::*;

use super::error::Result;
use crate::data::{Batch, BatchInputs, PaddedDocuments};
use crate::engine::layers::encoder::{InputData, Inputs};
use crate::engine::layers::Rows;
use crate::engine::models::{Model, SequenceClassifier};
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;

/// Host-side inputs of one document slot in the engine's element types.
struct HostInputs {
    ids: Vec<usize>,
    values: Vec<f32>,
}

impl HostInputs {
    fn of(doc: &PaddedDocuments) -> Self {
        match &doc.inputs {
            BatchInputs::Ids(ids) => HostInputs {
                ids: ids.iter().map(|&i| i as usize).collect(),
                values: Vec::new(),
            },
            BatchInputs::Values(values) => HostInputs {
                ids: Vec::new(),
                values: values.clone(),
            },
        }
    }

    fn view<'a>(&'a self, batch: &Batch, doc: &'a PaddedDocuments) -> Inputs<'a> {
        Inputs {
            batch: batch.batch_size,
            seq: batch.seq_len,
            lengths: &doc.lengths,
            data: if self.values.is_empty() && !self.ids.is_empty() {
                InputData::Tokens(&self.ids)
            } else {
                InputData::Continuous(&self.values)
            },
        }
    }
}

/// Class logits of a batch, (batch, classes); retrieval pairs go through the two towers.
pub fn logits<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
    model: &Model,
    store: &ParamStore<D>,
    batch: &Batch,
    train: bool,
) -> Result<Rows<D, T>> {
    let hosts: Vec<HostInputs> = batch.documents.iter().map(HostInputs::of).collect();
    let views: Vec<Inputs<'_>> = hosts
        .iter()
        .zip(&batch.documents)
        .map(|(h, d)| h.view(batch, d))
        .collect();
    Ok(match views.as_slice() {
        [first, second] => model.pair_logits::<D, T>(store, first, second, train)?,
        [single] => model.logits::<D, T>(store, single, train)?,
        _ => unreachable!("a batch has one document slot, or two for pairs"),
    })
}

/// Labels as class indices.
pub fn targets(batch: &Batch) -> Vec<usize> {
    batch.labels.iter().map(|&l| l as usize).collect()
}
