//! Evaluation of a split: mean loss and accuracy, without a tape.

use dfdx::prelude::*;

use super::error::Result;
use super::model::{logits, targets};
use crate::data::{Dataset, Split};
use crate::engine::models::Model;
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub examples: usize,
}

/// Index of the largest value of each row.
pub fn argmax_rows(values: &[f32], classes: usize) -> Vec<usize> {
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

pub fn evaluate<D: EngineDevice>(
    model: &Model,
    store: &ParamStore<D>,
    dataset: &Dataset,
    split: &Split,
    batch_size: usize,
) -> Result<Evaluation> {
    let batcher = dataset.batcher(split, batch_size);
    let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
    for batch in batcher.epoch(0) {
        let rows = logits::<D, NoneTape>(model, store, &batch, false)?;
        let classes = rows.shape().1;
        let values = rows.as_vec();
        let targets = targets(&batch);
        let n = targets.len();
        let loss = D::cross_entropy(rows, &targets, &vec![1.0; n])?;
        loss_sum += loss.as_vec()[0] as f64 * n as f64;
        correct += argmax_rows(&values, classes)
            .iter()
            .zip(&targets)
            .filter(|(p, t)| p == t)
            .count();
        seen += n;
    }
    let denominator = seen.max(1) as f64;
    Ok(Evaluation {
        loss: loss_sum / denominator,
        accuracy: correct as f64 / denominator,
        examples: seen,
    })
}

#[cfg(test)]
mod tests {
    use super::argmax_rows;

    #[test]
    fn argmax_picks_the_first_largest() {
        assert_eq!(argmax_rows(&[0.1, 0.9, 0.3, 2.0, 2.0, 1.0], 3), vec![1, 0]);
    }
}
