//! Padded batches: each batch is padded to its own longest example, true lengths are kept for
//! pooling and loss masks, the order is reshuffled every epoch from a seed, and retrieval
//! pairs stay together (both documents padded to one common length).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::store::{Inputs, Split};
use super::InputKind;

/// Inputs of one document slot, row-major `[batch_size, seq_len]`.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchInputs {
    Ids(Vec<u32>),
    Values(Vec<f32>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PaddedDocuments {
    pub inputs: BatchInputs,
    /// True length of each row (positions at and past it are padding).
    pub lengths: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub batch_size: usize,
    pub seq_len: usize,
    /// One entry per document: two for retrieval pairs, one otherwise.
    pub documents: Vec<PaddedDocuments>,
    pub labels: Vec<u32>,
    /// Positions in the store of the examples in this batch (for tracing predictions).
    pub indices: Vec<usize>,
}

pub struct Batcher<'d> {
    split: &'d Split,
    batch_size: usize,
    pad: u32,
    input: InputKind,
    shuffle_seed: Option<u64>,
    drop_last: bool,
}

impl<'d> Batcher<'d> {
    pub fn new(split: &'d Split, batch_size: usize, pad: u32, input: InputKind) -> Self {
        Batcher {
            split,
            batch_size: batch_size.max(1),
            pad,
            input,
            shuffle_seed: None,
            drop_last: false,
        }
    }

    /// Reorders the examples every epoch, reproducibly from `seed`.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.shuffle_seed = Some(seed);
        self
    }

    /// Leaves out a last, smaller batch.
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    pub fn num_batches(&self) -> usize {
        let n = self.split.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The order of the split's examples in `epoch`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.split.len()).collect();
        if let Some(seed) = self.shuffle_seed {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(epoch);
            order.shuffle(&mut rng);
        }
        order
    }

    pub fn epoch(&self, epoch: u64) -> impl Iterator<Item = Batch> + '_ {
        let order = self.order(epoch);
        let batches = self.num_batches();
        (0..batches).map(move |b| {
            let end = ((b + 1) * self.batch_size).min(order.len());
            self.batch(&order[b * self.batch_size..end])
        })
    }

    /// The batch of the split's examples at `positions`.
    pub fn batch(&self, positions: &[usize]) -> Batch {
        let indices: Vec<usize> = positions.iter().map(|&p| self.split.indices[p]).collect();
        let examples = &self.split.examples;
        let labels = indices.iter().map(|&i| examples.labels[i] as u32).collect();
        let (documents, seq_len) = match &examples.inputs {
            Inputs::Tokens(seqs) => {
                let rows: Vec<&[u16]> = indices.iter().map(|&i| seqs.get(i)).collect();
                let seq_len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
                (vec![self.pad_ids(&rows, seq_len)], seq_len)
            }
            Inputs::Pairs(first, second) => {
                let a: Vec<&[u16]> = indices.iter().map(|&i| first.get(i)).collect();
                let b: Vec<&[u16]> = indices.iter().map(|&i| second.get(i)).collect();
                let seq_len = a.iter().chain(&b).map(|r| r.len()).max().unwrap_or(0);
                let docs = vec![self.pad_ids(&a, seq_len), self.pad_ids(&b, seq_len)];
                (docs, seq_len)
            }
            Inputs::Pixels(pixels) => {
                let rows: Vec<&[u8]> = indices.iter().map(|&i| pixels.get(i)).collect();
                (vec![self.pixel_rows(&rows)], pixels.per_image)
            }
        };
        Batch {
            batch_size: indices.len(),
            seq_len,
            documents,
            labels,
            indices,
        }
    }

    fn pad_ids(&self, rows: &[&[u16]], seq_len: usize) -> PaddedDocuments {
        let mut ids = vec![self.pad; rows.len() * seq_len];
        for (row, out) in rows.iter().zip(ids.chunks_mut(seq_len.max(1))) {
            for (o, &id) in out.iter_mut().zip(row.iter()) {
                *o = id as u32;
            }
        }
        PaddedDocuments {
            inputs: BatchInputs::Ids(ids),
            lengths: rows.iter().map(|r| r.len()).collect(),
        }
    }

    fn pixel_rows(&self, rows: &[&[u8]]) -> PaddedDocuments {
        let inputs = match self.input {
            InputKind::Tokens => BatchInputs::Ids(
                rows.iter()
                    .flat_map(|r| r.iter().map(|&p| p as u32))
                    .collect(),
            ),
            InputKind::Continuous { mean, std } => BatchInputs::Values(
                rows.iter()
                    .flat_map(|r| r.iter().map(|&p| (p as f32 / 255.0 - mean) / std))
                    .collect(),
            ),
        };
        PaddedDocuments {
            inputs,
            lengths: rows.iter().map(|r| r.len()).collect(),
        }
    }
}
