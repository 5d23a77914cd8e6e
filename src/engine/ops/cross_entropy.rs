//! Softmax cross-entropy with per-row weights (0 ignores a row: padding, unmasked positions):
//! L = Σ_i w_i·(lse(z_i) − z_{i,t_i}) / Σ_i w_i, and 0 when no row counts.
//! Backward: ∂L/∂z_i = g·w_i/Σw · (softmax(z_i) − onehot(t_i)).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{grad_of, host, take_grad, ComposedFloat, KernelFloat};

const ROWS_PER_TASK: usize = 16;

fn log_sum_exp<E: KernelFloat>(row: &[E]) -> E {
    let max = row.iter().copied().fold(E::neg_infinity(), E::max);
    max + row.iter().map(|&z| (z - max).exp()).sum::<E>().ln()
}

/// Row log-sum-exps and the weighted mean loss.
fn forward<E: KernelFloat>(
    logits: &[E],
    classes: usize,
    targets: &[usize],
    weights: &[E],
) -> (Vec<E>, E) {
    let lse: Vec<E> = logits
        .par_chunks(classes)
        .with_min_len(ROWS_PER_TASK)
        .map(log_sum_exp)
        .collect();
    let total_weight = weights.iter().copied().sum::<E>();
    if total_weight == E::zero() {
        return (lse, E::zero());
    }
    let loss = lse
        .iter()
        .zip(logits.chunks(classes))
        .zip(targets.iter().zip(weights))
        .filter(|(_, (_, &w))| w != E::zero())
        .map(|((&l, z), (&t, &w))| w * (l - z[t]))
        .sum::<E>();
    (lse, loss / total_weight)
}

/// Weighted softmax cross-entropy of `logits` (rows × classes) against `targets`, fused on the
/// CPU. `weights` has one entry per row.
pub(crate) fn cross_entropy_cpu<E: KernelFloat, T: Tape<E, Cpu>>(
    logits: Tensor<(usize, usize), E, Cpu, T>,
    targets: &[usize],
    weights: &[E],
) -> Result<Tensor<(), E, Cpu, T>, CpuError> {
    let (rows, classes) = *logits.shape();
    assert_eq!(targets.len(), rows, "cross entropy: one target per row");
    assert_eq!(weights.len(), rows, "cross entropy: one weight per row");
    assert!(
        targets.iter().all(|&t| t < classes),
        "cross entropy: target out of range"
    );
    let (logits, mut tape) = logits.try_contiguous()?.split_tape();
    let z = host(&logits)?;
    let (lse, loss) = forward(&z, classes, targets, weights);
    let out = logits.device().try_tensor_from_vec(vec![loss], ())?;
    // The backward pass needs the logits: hold their values (no copy) and only the tensor's ghost.
    let logits = logits.ghost();
    let out_ghost = out.ghost();
    let targets = targets.to_vec();
    let weights = weights.to_vec();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        let total_weight = weights.iter().copied().sum::<E>();
        if total_weight != E::zero() {
            let scale = g[0] / total_weight;
            grad_of!(grads, &logits)
                .par_chunks_mut(classes)
                .zip(z.par_chunks(classes))
                .zip(
                    lse.par_iter()
                        .zip(targets.par_iter().zip(weights.par_iter())),
                )
                .with_min_len(ROWS_PER_TASK)
                .filter(|(_, (_, (_, &w)))| w != E::zero())
                .for_each(|((gz, z), (&lse, (&t, &w)))| {
                    let s = scale * w;
                    for (c, (gz, &z)) in gz.iter_mut().zip(z).enumerate() {
                        let onehot = if c == t { E::one() } else { E::zero() };
                        *gz += s * ((z - lse).exp() - onehot);
                    }
                });
        }
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The same loss from dfdx ops on any device.
pub(crate) fn cross_entropy_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D>>(
    logits: Tensor<(usize, usize), E, D, T>,
    targets: &[usize],
    weights: &[E],
) -> Tensor<(), E, D, T> {
    let rows = logits.shape().0;
    let dev = logits.device().clone();
    let total_weight = weights.iter().copied().sum::<E>();
    let norm = if total_weight == E::zero() {
        E::zero()
    } else {
        total_weight.recip()
    };
    let targets = dev.tensor_from_vec(targets.to_vec(), (rows,));
    let weights = dev.tensor_from_vec(weights.to_vec(), (rows,));
    let picked = logits.log_softmax::<Axis<1>>().select(targets);
    (picked * weights).sum::<(), _>().negate() * norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    const TARGETS: [usize; 6] = [0, 3, 2, 2, 1, 3];
    const WEIGHTS: [f64; 6] = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0];

    fn scaled(seed: u64) -> Vec<f64> {
        random_values(24, seed).iter().map(|v| v * 3.0).collect()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        gradcheck(
            &[scaled(21)],
            |mut v| {
                let z = v.remove(0).reshape_like(&(6, 4));
                cross_entropy_cpu(z, &TARGETS, &WEIGHTS)
                    .unwrap()
                    .broadcast_like(&(1,))
            },
            1e-6,
        );
    }

    #[test]
    fn composed_gradient_matches_finite_differences() {
        gradcheck(
            &[scaled(22)],
            |mut v| {
                let z = v.remove(0).reshape_like(&(6, 4));
                cross_entropy_composed(z, &TARGETS, &WEIGHTS).broadcast_like(&(1,))
            },
            1e-6,
        );
    }

    #[test]
    fn fused_matches_composed_and_ignores_weightless_rows() {
        let dev = Cpu::default();
        let z = dev.tensor_from_vec(scaled(23), (6, 4));
        let fused = cross_entropy_cpu(z.leaky_trace(), &TARGETS, &WEIGHTS).unwrap();
        let composed = cross_entropy_composed(z.leaky_trace(), &TARGETS, &WEIGHTS);
        assert_close(&[fused.array()], &[composed.array()], 1e-12, "loss");
        let gf = fused.backward().get(&z).as_vec();
        let gc = composed.backward().get(&z).as_vec();
        assert_close(&gf, &gc, 1e-12, "gradient");
        // Rows 1 and 4 carry weight 0: their logits must not matter.
        assert!(gf[4..8].iter().chain(&gf[16..20]).all(|&g| g == 0.0));
        let none = cross_entropy_cpu(z.leaky_trace(), &TARGETS, &[0.0; 6]).unwrap();
        assert_eq!(none.array(), 0.0);
    }

    #[test]
    fn uniform_logits_give_log_classes() {
        let dev = Cpu::default();
        let z = dev.tensor_from_vec(vec![0.5f32; 12], (3, 4));
        let loss = cross_entropy_cpu(z, &[0, 1, 2], &[1.0; 3]).unwrap().array();
        assert!((loss - 4f32.ln()).abs() < 1e-6);
    }
}
