//! Layer normalisation over the last axis (Ba et al. 2016): y = γ ⊙ x̂ + β with
//! x̂ = (x − μ)·r, r = 1/√(σ² + ε), μ and σ² the (biased) row mean and variance.
//! Backward, per row with ĝ = g ⊙ γ: ∂L/∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂)),
//! ∂L/∂γ = Σ_rows g ⊙ x̂, ∂L/∂β = Σ_rows g.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{
    add_into, grad_of, host, summed_pairs, take_grad, ComposedFloat, HostValues, KernelFloat,
};
use crate::engine::ops::zeroed;

/// Rows per parallel task, so each task amortises its partial sums for γ and β.
const ROWS_PER_TASK: usize = 64;

struct Saved<E: Unit> {
    x: HostValues<E>,
    mean: Vec<E>,
    rstd: Vec<E>,
}

fn forward<E: KernelFloat>(x: &[E], gamma: &[E], beta: &[E], eps: E) -> (Vec<E>, Vec<E>, Vec<E>) {
    let d = gamma.len();
    let rows = x.len() / d;
    let mut out = zeroed(x.len());
    let mut mean = vec![E::zero(); rows];
    let mut rstd = vec![E::zero(); rows];
    let n = E::of(d as f64);
    out.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
        .with_min_len(ROWS_PER_TASK)
        .for_each(|((o, x), (m, r))| {
            let mu = x.iter().copied().sum::<E>() / n;
            let var = x.iter().map(|&v| (v - mu) * (v - mu)).sum::<E>() / n;
            let rs = (var + eps).sqrt().recip();
            for i in 0..d {
                o[i] = (x[i] - mu) * rs * gamma[i] + beta[i];
            }
            *m = mu;
            *r = rs;
        });
    (out, mean, rstd)
}

/// Returns (∂x, ∂γ, ∂β), the latter two summed over rows.
fn backward<E: KernelFloat>(
    s: &Saved<E>,
    gamma: &[E],
    g: &[E],
    grad_x: &mut [E],
) -> (Vec<E>, Vec<E>) {
    let d = gamma.len();
    let n = E::of(d as f64);
    let zero = || (vec![E::zero(); d], vec![E::zero(); d]);
    grad_x
        .par_chunks_mut(d)
        .zip(s.x.par_chunks(d).zip(g.par_chunks(d)))
        .zip(s.mean.par_iter().zip(s.rstd.par_iter()))
        .with_min_len(ROWS_PER_TASK)
        .fold(
            zero,
            |(mut dgamma, mut dbeta), ((gx, (x, g)), (&mu, &rs))| {
                let mut mean_gh = E::zero();
                let mut mean_ghx = E::zero();
                for i in 0..d {
                    let xh = (x[i] - mu) * rs;
                    let gh = g[i] * gamma[i];
                    mean_gh += gh;
                    mean_ghx += gh * xh;
                    dgamma[i] += g[i] * xh;
                    dbeta[i] += g[i];
                }
                mean_gh /= n;
                mean_ghx /= n;
                for i in 0..d {
                    let xh = (x[i] - mu) * rs;
                    gx[i] += rs * (g[i] * gamma[i] - mean_gh - xh * mean_ghx);
                }
                (dgamma, dbeta)
            },
        )
        .reduce(zero, summed_pairs)
}

/// Fused layer norm of `x` (rows × d) with scale `gamma` and shift `beta` (d).
pub(crate) fn layer_norm_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    x: Tensor<(usize, usize), E, Cpu, T>,
    gamma: Tensor<(usize,), E, Cpu, T>,
    beta: Tensor<(usize,), E, Cpu, T>,
    eps: f64,
) -> Result<Tensor<(usize, usize), E, Cpu, T>, CpuError> {
    assert_eq!(
        x.shape().1,
        gamma.shape().0,
        "layer norm: x has {} columns, γ has {}",
        x.shape().1,
        gamma.shape().0
    );
    assert_eq!(gamma.shape(), beta.shape());
    let (x, tx) = x.try_contiguous()?.split_tape();
    let (gamma, tg) = gamma.try_contiguous()?.split_tape();
    let (beta, tb) = beta.try_contiguous()?.split_tape();
    let mut tape = tx.merge(tg).merge(tb);
    // Backward reads x and γ: hold their values (no copy) and only the tensors' ghosts.
    let (x_host, gamma_host) = (host(&x)?, host(&gamma)?);
    let (out, mean, rstd) = forward(&x_host, &gamma_host, &host(&beta)?, E::of(eps));
    let out = x.device().try_tensor_from_vec(out, *x.shape())?;
    let out_ghost = out.ghost();
    let (x, gamma, beta) = (x.ghost(), gamma.ghost(), beta.ghost());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        let saved = Saved {
            x: x_host,
            mean,
            rstd,
        };
        let (dgamma, dbeta) = backward(&saved, &gamma_host, &g, grad_of!(grads, &x));
        add_into(grad_of!(grads, &gamma), &dgamma);
        add_into(grad_of!(grads, &beta), &dbeta);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// Layer norm from dfdx ops on any device.
pub(crate) fn layer_norm_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Tensor<(usize, usize), E, D, T>,
    gamma: Tensor<(usize,), E, D, T>,
    beta: Tensor<(usize,), E, D, T>,
    eps: f64,
) -> Tensor<(usize, usize), E, D, T> {
    let shape = *x.shape();
    let xhat = x.normalize::<Axis<1>>(eps);
    xhat * gamma.broadcast_like::<_, Axis<0>>(&shape) + beta.broadcast_like::<_, Axis<0>>(&shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    #[test]
    fn gradient_matches_finite_differences() {
        let (rows, d) = (5, 8);
        let x = random_values(rows * d, 11);
        let gamma: Vec<f64> = random_values(d, 12).iter().map(|v| 1.0 + v).collect();
        let beta = random_values(d, 13);
        gradcheck(
            &[x, gamma, beta],
            |mut v| {
                let beta = v.pop().unwrap();
                let gamma = v.pop().unwrap();
                let x = v.pop().unwrap().reshape_like(&(rows, d));
                layer_norm_cpu(x, gamma, beta, 1e-5)
                    .unwrap()
                    .reshape_like(&(rows * d,))
            },
            1e-6,
        );
    }

    #[test]
    fn composed_gradient_matches_finite_differences() {
        let (rows, d) = (3, 6);
        gradcheck(
            &[
                random_values(rows * d, 14),
                random_values(d, 15),
                random_values(d, 16),
            ],
            |mut v| {
                let beta = v.pop().unwrap();
                let gamma = v.pop().unwrap();
                let x = v.pop().unwrap().reshape_like(&(rows, d));
                layer_norm_composed(x, gamma, beta, 1e-5).reshape_like(&(rows * d,))
            },
            1e-6,
        );
    }

    #[test]
    fn fused_matches_composed_with_gradients() {
        let dev = Cpu::default();
        let (rows, d) = (300, 64);
        let to32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32 * 3.0).collect::<Vec<f32>>();
        let x = dev.tensor_from_vec(to32(random_values(rows * d, 17)), (rows, d));
        let gamma = dev.tensor_from_vec(to32(random_values(d, 18)), (d,));
        let beta = dev.tensor_from_vec(to32(random_values(d, 19)), (d,));
        let w = dev.tensor_from_vec(to32(random_values(rows * d, 20)), (rows, d));
        let run = |fused: bool| {
            let (xt, gt, bt) = (x.leaky_trace(), gamma.retaped(), beta.retaped());
            let y = if fused {
                layer_norm_cpu(xt, gt, bt, 1e-5).unwrap()
            } else {
                layer_norm_composed(xt, gt, bt, 1e-5)
            };
            let value = y.as_vec();
            let grads = (y * w.clone()).sum().backward();
            (
                value,
                grads.get(&x).as_vec(),
                grads.get(&gamma).as_vec(),
                grads.get(&beta).as_vec(),
            )
        };
        let (f, c) = (run(true), run(false));
        assert_close(&f.0, &c.0, 1e-5, "forward");
        assert_close(&f.1, &c.1, 1e-4, "dx");
        assert_close(&f.2, &c.2, 1e-4, "dgamma");
        assert_close(&f.3, &c.3, 1e-4, "dbeta");
    }
}
