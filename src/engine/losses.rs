//! Losses beyond the fused cross-entropy (`EngineDevice::cross_entropy`).

use dfdx::prelude::*;

use super::error::{EngineError, Result};

/// Mean absolute error over weighted rows (the SPT paper's L1 objective on normalised pixel
/// values): L = Σᵢ wᵢ·Σ_c |ŷᵢc − yᵢc| / (C·Σᵢ wᵢ), and 0 when no row counts. Rows with weight 0
/// (unmasked or padded positions) contribute nothing. Composed from dfdx ops: element-wise and
/// cheap next to the model, and the same on every device.
pub(crate) fn masked_l1<D: Device<f32>, T: Tape<f32, D>>(
    predictions: Tensor<(usize, usize), f32, D, T>,
    targets: &[f32],
    weights: &[f32],
) -> Result<Tensor<(), f32, D, T>> {
    let shape = *predictions.shape();
    let (rows, channels) = shape;
    if targets.len() != rows * channels || weights.len() != rows {
        return Err(EngineError::ShapeMismatch {
            op: "masked L1",
            detail: format!(
                "{rows} × {channels} predictions with {} targets and {} weights",
                targets.len(),
                weights.len()
            ),
        });
    }
    let total: f32 = weights.iter().sum();
    let norm = if total > 0.0 {
        1.0 / (total * channels as f32)
    } else {
        0.0
    };
    let dev = predictions.device().clone();
    let targets = dev.tensor_from_vec(targets.to_vec(), shape);
    let weights = dev
        .tensor_from_vec(weights.to_vec(), (rows,))
        .broadcast_like::<_, Axis<1>>(&shape);
    Ok(((predictions - targets).abs() * weights).sum::<(), _>() * norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_weighted_rows_only() {
        let dev = Cpu::default();
        let pred = dev.tensor_from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], (3, 2));
        let targets = [0.0, 0.0, 3.0, 5.0, 100.0, 100.0];
        let loss = masked_l1(pred.leaky_trace(), &targets, &[1.0, 1.0, 0.0]).unwrap();
        // (|1| + |2| + |0| + |−1|) / (2 rows · 2 channels) = 1.
        assert!((loss.array() - 1.0).abs() < 1e-6);
        let grad = loss.backward().get(&pred).as_vec();
        assert_eq!(grad, vec![0.25, 0.25, 0.0, -0.25, 0.0, 0.0]);
        let none = masked_l1(pred, &targets, &[0.0; 3]).unwrap();
        assert_eq!(none.array(), 0.0);
        assert!(masked_l1(dev.tensor_from_vec(vec![0.0f32; 2], (1, 2)), &[0.0], &[1.0]).is_err());
    }
}
