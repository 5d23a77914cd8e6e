//! Compact example storage. Token ids live in one flat `u16` buffer with offsets, pixels as
//! `u8`; nothing becomes `f32` before batching. Splits are index lists into a shared store,
//! so carving validation or a training subset never copies the examples (Path-X must load
//! within about 1.5x its raw size).

use std::sync::Arc;

/// Variable-length token sequences in one buffer: sequence `i` is `ids[offsets[i]..offsets[i+1]]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sequences {
    ids: Vec<u16>,
    offsets: Vec<usize>,
}

impl Sequences {
    pub fn new() -> Self {
        Sequences {
            ids: Vec::new(),
            offsets: vec![0],
        }
    }

    /// Appends one sequence whose ids the closure pushes.
    pub(crate) fn push_with(&mut self, fill: impl FnOnce(&mut Vec<u16>)) {
        fill(&mut self.ids);
        self.offsets.push(self.ids.len());
    }

    pub fn push(&mut self, ids: &[u16]) {
        self.push_with(|buf| buf.extend_from_slice(ids));
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> &[u16] {
        &self.ids[self.offsets[i]..self.offsets[i + 1]]
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        self.offsets.shrink_to_fit();
    }
}

/// Fixed-size 8-bit grayscale images, row-major, back to back.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub data: Vec<u8>,
    /// Pixels per image (height x width).
    pub per_image: usize,
}

impl Pixels {
    pub fn len(&self) -> usize {
        self.data.len() / self.per_image
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[i * self.per_image..(i + 1) * self.per_image]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    Tokens(Sequences),
    /// Retrieval: two documents per example, kept together.
    Pairs(Sequences, Sequences),
    Pixels(Pixels),
}

impl Inputs {
    pub fn len(&self) -> usize {
        match self {
            Inputs::Tokens(s) | Inputs::Pairs(s, _) => s.len(),
            Inputs::Pixels(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of example `i` (the longer document for a pair).
    pub fn seq_len(&self, i: usize) -> usize {
        match self {
            Inputs::Tokens(s) => s.get(i).len(),
            Inputs::Pairs(a, b) => a.get(i).len().max(b.get(i).len()),
            Inputs::Pixels(p) => p.per_image,
        }
    }
}

/// Examples of one release file set with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Examples {
    pub inputs: Inputs,
    pub labels: Vec<u8>,
}

/// A split: which examples of a shared store it holds, in order.
#[derive(Debug, Clone)]
pub struct Split {
    pub examples: Arc<Examples>,
    pub indices: Vec<usize>,
}

impl Split {
    pub fn all(examples: Arc<Examples>) -> Self {
        let indices = (0..examples.labels.len()).collect();
        Split { examples, indices }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The label of the split's `i`-th example.
    pub fn label(&self, i: usize) -> u8 {
        self.examples.labels[self.indices[i]]
    }

    pub fn labels(&self) -> impl Iterator<Item = u8> + '_ {
        self.indices.iter().map(|&i| self.examples.labels[i])
    }

    pub fn seq_lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.indices
            .iter()
            .map(|&i| self.examples.inputs.seq_len(i))
    }
}
