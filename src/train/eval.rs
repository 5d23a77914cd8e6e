//! Evaluation of a split under an objective, without a tape.

use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::error::Result;
use super::objective::{Objective, Stats};
use crate::data::{Dataset, Split};
use crate::engine::models::Model;
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;
use crate::spec::Metric;

/// The metrics of one split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    /// Classification accuracy, or the accuracy of the denoising predictions.
    pub accuracy: f64,
    /// Regression (L1) objectives: mean absolute error and R² of the predictions.
    pub mae: Option<f64>,
    pub r2: Option<f64>,
    pub examples: usize,
}

impl Evaluation {
    /// The value of `metric`; NaN for a metric this objective does not report (the checker
    /// admits only reported metrics in `select best`).
    pub fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Accuracy => self.accuracy,
            Metric::Loss => self.loss,
            Metric::Mae => self.mae.unwrap_or(f64::NAN),
            Metric::R2 => self.r2.unwrap_or(f64::NAN),
        }
    }
}

/// Index of the largest value of each row.
pub(crate) fn argmax_rows(values: &[f32], classes: usize) -> Vec<usize> {
    values
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

/// Seed of the masks drawn during evaluation: fixed, so every evaluation of a phase scores
/// the same corrupted inputs and its metric is comparable across steps.
const EVAL_MASK_SEED: u64 = 0x6576_616c;

pub fn evaluate<D: EngineDevice>(
    objective: &Objective,
    model: &Model,
    store: &ParamStore<D>,
    dataset: &Dataset,
    split: &Split,
    batch_size: usize,
) -> Result<Evaluation> {
    let batcher = dataset.batcher(split, batch_size);
    let mut stats = Stats::default();
    for (index, batch) in batcher.epoch(0).enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(EVAL_MASK_SEED);
        rng.set_stream(index as u64);
        let (_, batch_stats) =
            objective.loss::<D, NoneTape>(model, store, &batch, false, &mut rng)?;
        stats.add(&batch_stats);
    }
    Ok(stats.evaluation(objective.is_regression()))
}

#[cfg(test)]
mod tests {
    use super::argmax_rows;

    #[test]
    fn argmax_picks_the_first_largest() {
        assert_eq!(argmax_rows(&[0.1, 0.9, 0.3, 2.0, 2.0, 1.0], 3), vec![1, 0]);
    }
}
