//! Training objectives: classification (fine-tuning) and the denoising objectives of
//! self-pretraining (docs/METHOD.md, "Self-pretraining (SPT)"). Each turns a data batch into
//! the model's inputs, a loss, and statistics for the metrics.

use dfdx::prelude::*;
use rand_chacha::ChaCha8Rng;

use super::error::Result;
use super::eval::{argmax_rows, Evaluation};
use super::masking::{bernoulli_mask, next_positions};
use super::model::{logits, targets};
use crate::data::{self, Batch, BatchInputs};
use crate::engine::layers::encoder::{InputData, Inputs};
use crate::engine::layers::heads::PredictionHead;
use crate::engine::layers::{Ctx, Rows};
use crate::engine::losses::masked_l1;
use crate::engine::models::{Model, SequenceClassifier};
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;
use crate::spec::{Loss, Objective as SpecObjective};

/// What a denoising objective hides or predicts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Corruption {
    /// Positions masked at `rate` (in spans of `span`), predicted from both sides.
    Masked { rate: f64, span: Option<usize> },
    /// Every next position, predicted from the ones before.
    Causal,
}

impl From<SpecObjective> for Corruption {
    fn from(o: SpecObjective) -> Self {
        match o {
            SpecObjective::Masked { rate, span } => Corruption::Masked { rate, span },
            SpecObjective::Causal => Corruption::Causal,
        }
    }
}

/// Self-pretraining: a per-position prediction head on the encoder's output.
#[derive(Clone, Debug)]
pub struct Denoiser {
    pub corruption: Corruption,
    pub loss: Loss,
    pub head: PredictionHead,
    /// The `<mask>` token (token inputs).
    pub mask_id: u32,
    /// How inputs are encoded; continuous pixels are masked by zero plus an indicator channel.
    pub input: data::InputKind,
}

impl Denoiser {
    /// Outputs of the prediction head: the vocabulary, 256 pixel classes, or one value (L1).
    pub(crate) fn outputs(loss: Loss, input: data::InputKind, vocab: usize) -> usize {
        match (loss, input) {
            (Loss::L1, _) => 1,
            (Loss::Ce, data::InputKind::Continuous { .. }) => 256,
            (Loss::Ce, data::InputKind::Tokens) => vocab,
        }
    }

    /// Input channels of a continuous encoder: the value, plus the mask indicator when masking.
    pub fn channels(corruption: Corruption) -> usize {
        match corruption {
            Corruption::Masked { .. } => 2,
            Corruption::Causal => 1,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Objective {
    Classify,
    Denoise(Denoiser),
}

/// Running sums from which every metric of a phase is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Positions (denoising) or examples (classification) that count.
    pub weight: f64,
    pub loss: f64,
    pub correct: f64,
    pub abs_error: f64,
    pub squared_error: f64,
    pub target_sum: f64,
    pub target_squares: f64,
    pub examples: u64,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.weight += other.weight;
        self.loss += other.loss;
        self.correct += other.correct;
        self.abs_error += other.abs_error;
        self.squared_error += other.squared_error;
        self.target_sum += other.target_sum;
        self.target_squares += other.target_squares;
        self.examples += other.examples;
    }

    /// Mean loss and accuracy; MAE and R² for regression (L1) objectives.
    pub fn evaluation(&self, regression: bool) -> Evaluation {
        let w = self.weight.max(1e-12);
        let (mae, r2) = if regression {
            let variance = self.target_squares - self.target_sum * self.target_sum / w;
            (
                Some(self.abs_error / w),
                Some(1.0 - self.squared_error / variance.max(1e-12)),
            )
        } else {
            (None, None)
        };
        Evaluation {
            loss: self.loss / w,
            accuracy: self.correct / w,
            mae,
            r2,
            examples: self.examples as usize,
        }
    }
}

/// One sequence per row (retrieval's two documents become two rows), with per-position
/// targets and weights (0: no loss).
struct Denoising {
    rows: usize,
    seq: usize,
    lengths: Vec<usize>,
    ids: Vec<usize>,
    values: Vec<f32>,
    class_targets: Vec<usize>,
    value_targets: Vec<f32>,
    weights: Vec<f32>,
}

fn pixel_class(value: f32, mean: f32, std: f32) -> usize {
    ((value * std + mean) * 255.0).round().clamp(0.0, 255.0) as usize
}

impl Denoiser {
    fn corrupt(&self, batch: &Batch, rng: &mut ChaCha8Rng) -> Denoising {
        let seq = batch.seq_len;
        let rows = batch.batch_size * batch.documents.len();
        let indicator = matches!(self.input, data::InputKind::Continuous { .. })
            && matches!(self.corruption, Corruption::Masked { .. });
        let mut out = Denoising {
            rows,
            seq,
            lengths: Vec::with_capacity(rows),
            ids: Vec::new(),
            values: Vec::new(),
            class_targets: vec![0; rows * seq],
            value_targets: vec![0.0; rows * seq],
            weights: vec![0.0; rows * seq],
        };
        let mut row = 0;
        for doc in &batch.documents {
            for b in 0..batch.batch_size {
                let length = doc.lengths[b];
                out.lengths.push(length);
                let (mask, predicts): (Vec<bool>, Vec<Option<usize>>) = match self.corruption {
                    Corruption::Masked { rate, span } => {
                        let mut mask = bernoulli_mask(length, rate, span, rng);
                        mask.resize(seq, false);
                        let predicts = mask
                            .iter()
                            .enumerate()
                            .map(|(t, &m)| m.then_some(t))
                            .collect();
                        (mask, predicts)
                    }
                    Corruption::Causal => (vec![false; seq], next_positions(length, seq)),
                };
                for t in 0..seq {
                    let at = row * seq + t;
                    match &doc.inputs {
                        BatchInputs::Ids(ids) => {
                            let id = ids[b * seq + t];
                            out.ids.push(if mask[t] {
                                self.mask_id as usize
                            } else {
                                id as usize
                            });
                            if let Some(source) = predicts[t] {
                                out.class_targets[at] = ids[b * seq + source] as usize;
                                out.weights[at] = 1.0;
                            }
                        }
                        BatchInputs::Values(values) => {
                            let value = values[b * seq + t];
                            out.values.push(if mask[t] { 0.0 } else { value });
                            if indicator {
                                out.values.push(if mask[t] { 1.0 } else { 0.0 });
                            }
                            if let Some(source) = predicts[t] {
                                let target = values[b * seq + source];
                                out.value_targets[at] = target;
                                if let data::InputKind::Continuous { mean, std } = self.input {
                                    out.class_targets[at] = pixel_class(target, mean, std);
                                }
                                out.weights[at] = 1.0;
                            }
                        }
                    }
                }
                row += 1;
            }
        }
        out
    }

    fn loss<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        model: &Model,
        store: &ParamStore<D>,
        batch: &Batch,
        train: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor<(), f32, D, T>, Stats)> {
        let d = self.corrupt(batch, rng);
        let inputs = Inputs {
            batch: d.rows,
            seq: d.seq,
            lengths: &d.lengths,
            data: if d.values.is_empty() {
                InputData::Tokens(&d.ids)
            } else {
                InputData::Continuous(&d.values)
            },
        };
        let encoded = model.encode::<D, T>(store, &inputs, train)?;
        let ctx = Ctx::new(store, train, &d.lengths);
        let predictions: Rows<D, T> = self.head.forward(encoded, &ctx)?;
        let host = predictions.as_vec();
        let weight: f64 = d.weights.iter().map(|&w| w as f64).sum();
        let mut stats = Stats {
            weight,
            examples: batch.batch_size as u64,
            ..Stats::default()
        };
        let loss = match self.loss {
            Loss::Ce => {
                let classes = predictions.shape().1;
                let predicted = argmax_rows(&host, classes);
                stats.correct = predicted
                    .iter()
                    .zip(&d.class_targets)
                    .zip(&d.weights)
                    .filter(|((p, t), w)| **w > 0.0 && p == t)
                    .count() as f64;
                D::cross_entropy(predictions, &d.class_targets, &d.weights)?
            }
            Loss::L1 => {
                for ((&y_hat, &y), &w) in host.iter().zip(&d.value_targets).zip(&d.weights) {
                    if w > 0.0 {
                        let (y_hat, y) = (y_hat as f64, y as f64);
                        stats.abs_error += (y_hat - y).abs();
                        stats.squared_error += (y_hat - y).powi(2);
                        stats.target_sum += y;
                        stats.target_squares += y * y;
                    }
                }
                masked_l1(predictions, &d.value_targets, &d.weights)?
            }
        };
        stats.loss = loss.as_vec()[0] as f64 * weight;
        Ok((loss, stats))
    }
}

impl Objective {
    /// The loss of `batch` and its statistics. `rng` draws the masks of denoising objectives.
    pub fn loss<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        model: &Model,
        store: &ParamStore<D>,
        batch: &Batch,
        train: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor<(), f32, D, T>, Stats)> {
        match self {
            Objective::Denoise(denoiser) => denoiser.loss(model, store, batch, train, rng),
            Objective::Classify => {
                let rows = logits::<D, T>(model, store, batch, train)?;
                let classes = rows.shape().1;
                let predicted = argmax_rows(&rows.as_vec(), classes);
                let targets = targets(batch);
                let n = targets.len();
                let correct = predicted
                    .iter()
                    .zip(&targets)
                    .filter(|(p, t)| p == t)
                    .count();
                let loss = D::cross_entropy(rows, &targets, &vec![1.0; n])?;
                let stats = Stats {
                    weight: n as f64,
                    loss: loss.as_vec()[0] as f64 * n as f64,
                    correct: correct as f64,
                    examples: n as u64,
                    ..Stats::default()
                };
                Ok((loss, stats))
            }
        }
    }

    /// Whether the metrics are MAE and R² rather than accuracy.
    pub(crate) fn is_regression(&self) -> bool {
        matches!(self, Objective::Denoise(d) if d.loss == Loss::L1)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::data::PaddedDocuments;
    use crate::engine::layers::Scope;

    fn denoiser(corruption: Corruption, input: data::InputKind, loss: Loss) -> Denoiser {
        let mut store = ParamStore::new(dfdx::prelude::Cpu::default(), 0);
        let head =
            PredictionHead::build(Scope::root(&mut store).sub("pretrain_head"), 4, 8).unwrap();
        Denoiser {
            corruption,
            loss,
            head,
            mask_id: 99,
            input,
        }
    }

    /// Two sequences of lengths 5 and 3, padded to 5 with id 0.
    fn token_batch() -> Batch {
        Batch {
            batch_size: 2,
            seq_len: 5,
            documents: vec![PaddedDocuments {
                inputs: BatchInputs::Ids(vec![10, 11, 12, 13, 14, 20, 21, 22, 0, 0]),
                lengths: vec![5, 3],
            }],
            labels: vec![0, 1],
            indices: vec![0, 1],
        }
    }

    #[test]
    fn masked_targets_are_the_hidden_tokens_and_padding_never_counts() {
        let d = denoiser(
            Corruption::Masked {
                rate: 0.5,
                span: None,
            },
            data::InputKind::Tokens,
            Loss::Ce,
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let out = d.corrupt(&token_batch(), &mut rng);
        let original = [10, 11, 12, 13, 14, 20, 21, 22, 0, 0];
        let mut masked = 0;
        for (at, &token) in original.iter().enumerate() {
            if out.weights[at] > 0.0 {
                masked += 1;
                assert_eq!(out.ids[at], 99, "a predicted position is masked");
                assert_eq!(out.class_targets[at], token);
            } else {
                assert_eq!(out.ids[at], token, "other positions are unchanged");
            }
        }
        assert!(masked > 0);
        assert_eq!(out.weights[8] + out.weights[9], 0.0, "padding has no loss");
    }

    #[test]
    fn causal_targets_are_the_next_tokens() {
        let d = denoiser(Corruption::Causal, data::InputKind::Tokens, Loss::Ce);
        let out = d.corrupt(&token_batch(), &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(
            out.ids,
            vec![10, 11, 12, 13, 14, 20, 21, 22, 0, 0],
            "inputs are not corrupted"
        );
        assert_eq!(&out.class_targets[..4], &[11, 12, 13, 14]);
        assert_eq!(&out.class_targets[5..7], &[21, 22]);
        assert_eq!(
            out.weights,
            vec![1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn continuous_masking_zeroes_values_and_sets_the_indicator() {
        let input = data::InputKind::Continuous {
            mean: 0.5,
            std: 0.5,
        };
        let d = denoiser(
            Corruption::Masked {
                rate: 0.5,
                span: None,
            },
            input,
            Loss::L1,
        );
        let values: Vec<f32> = (0..6).map(|i| i as f32 / 10.0 - 0.2).collect();
        let batch = Batch {
            batch_size: 1,
            seq_len: 6,
            documents: vec![PaddedDocuments {
                inputs: BatchInputs::Values(values.clone()),
                lengths: vec![6],
            }],
            labels: vec![0],
            indices: vec![0],
        };
        let out = d.corrupt(&batch, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(
            out.values.len(),
            12,
            "two channels: value and mask indicator"
        );
        for (t, &original) in values.iter().enumerate() {
            let (value, indicator) = (out.values[2 * t], out.values[2 * t + 1]);
            if out.weights[t] > 0.0 {
                assert_eq!((value, indicator), (0.0, 1.0));
                assert_eq!(out.value_targets[t], original);
                // Pixel classes invert the normalisation: (v·0.5 + 0.5)·255.
                let class = ((original * 0.5 + 0.5) * 255.0).round() as usize;
                assert_eq!(out.class_targets[t], class);
            } else {
                assert_eq!((value, indicator), (original, 0.0));
            }
        }
    }

    #[test]
    fn retrieval_documents_are_masked_as_separate_rows() {
        let d = denoiser(
            Corruption::Masked {
                rate: 0.3,
                span: None,
            },
            data::InputKind::Tokens,
            Loss::Ce,
        );
        let doc = |ids: Vec<u32>| PaddedDocuments {
            inputs: BatchInputs::Ids(ids),
            lengths: vec![3],
        };
        let batch = Batch {
            batch_size: 1,
            seq_len: 3,
            documents: vec![doc(vec![1, 2, 3]), doc(vec![4, 5, 6])],
            labels: vec![1],
            indices: vec![0],
        };
        let out = d.corrupt(&batch, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!((out.rows, out.lengths.clone()), (2, vec![3, 3]));
        assert!(out.weights[..3].contains(&1.0) && out.weights[3..].contains(&1.0));
    }

    #[test]
    fn prediction_heads_are_sized_by_what_they_predict() {
        let pixels = data::InputKind::Continuous {
            mean: 0.5,
            std: 0.5,
        };
        assert_eq!(Denoiser::outputs(Loss::Ce, data::InputKind::Tokens, 19), 19);
        assert_eq!(Denoiser::outputs(Loss::Ce, pixels, 19), 256);
        assert_eq!(Denoiser::outputs(Loss::L1, pixels, 19), 1);
        assert_eq!(
            Denoiser::channels(Corruption::Masked {
                rate: 0.5,
                span: None
            }),
            2
        );
        assert_eq!(Denoiser::channels(Corruption::Causal), 1);
    }
}
