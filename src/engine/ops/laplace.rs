//! MEGA's Laplace attention function (Ma et al. 2023, eq. 14): a smooth stand-in for squared
//! ReLU, laplace(x) = ½·(1 + erf((x − μ)/(σ√2))) with μ = √½ and σ = √(1/4π), i.e. the normal
//! CDF Φ((x − μ)/σ); derivative φ((x − μ)/σ)/σ. Element-wise, so the CPU kernel runs it over
//! chunks in parallel (dfdx's element-wise ops are single-threaded).

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use dfdx::prelude::*;
use rayon::prelude::*;

use super::gelu::erf_of_nonnegative;
use super::{grad_of, host, take_grad, ComposedFloat, KernelFloat};

const CHUNK: usize = 4096;

/// μ of eq. 14.
pub fn laplace_mu() -> f64 {
    FRAC_1_SQRT_2
}

/// σ of eq. 14.
pub fn laplace_sigma() -> f64 {
    (1.0 / (4.0 * PI)).sqrt()
}

fn standardised(x: f64) -> f64 {
    (x - laplace_mu()) / laplace_sigma()
}

/// Fused Laplace function on the CPU, multi-threaded over chunks (erf in f64).
pub fn laplace_cpu<S: Shape, E: KernelFloat, T: Tape<E, Cpu>>(
    x: Tensor<S, E, Cpu, T>,
) -> Result<Tensor<S, E, Cpu, T>, CpuError> {
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let x_host = host(&x)?;
    let mut values = vec![E::zero(); x_host.len()];
    values
        .par_chunks_mut(CHUNK)
        .zip(x_host.par_chunks(CHUNK))
        .for_each(|(out, x)| {
            for (o, x) in out.iter_mut().zip(x) {
                let z = standardised(x.to_f64().unwrap());
                *o = E::of(0.5 * (1.0 + libm::erf(z * FRAC_1_SQRT_2)));
            }
        });
    let out = x.device().try_tensor_from_vec(values, *x.shape())?;
    let out_ghost = out.ghost();
    let x = x.ghost();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        let density = 1.0 / (laplace_sigma() * (2.0 * PI).sqrt());
        grad_of!(grads, &x)
            .par_chunks_mut(CHUNK)
            .zip(x_host.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(gx, (x, g))| {
                for ((gx, x), g) in gx.iter_mut().zip(x).zip(g) {
                    let z = standardised(x.to_f64().unwrap());
                    *gx += *g * E::of(density * (-0.5 * z * z).exp());
                }
            });
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The Laplace function from dfdx ops on any device: ½ ± ½·erf(|z|/√2) with the sign of
/// z = (x − μ)/σ chosen by a comparison (erf is odd), erf of a non-negative argument from
/// [`erf_of_nonnegative`].
pub fn laplace_composed<S: Shape, E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    let c = |v: f64| E::from_f64(v).unwrap();
    let z = (x - c(laplace_mu())) * c(FRAC_1_SQRT_2 / laplace_sigma());
    let positive = z.ge(c(0.0));
    let half_erf = erf_of_nonnegative(z.abs()) * c(0.5);
    let low = half_erf.with_empty_tape().negate() + c(0.5);
    positive.choose(half_erf + c(0.5), low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    #[test]
    fn known_values() {
        let dev = Cpu::default();
        let mu = laplace_mu();
        let sigma = laplace_sigma();
        let x = dev.tensor_from_vec(vec![mu, mu + sigma, mu - 2.0 * sigma, 0.0], (4,));
        // Φ(0), Φ(1), Φ(−2), Φ(−μ/σ) = Φ(−√(2π)).
        let want = [
            0.5,
            0.841_344_746_068_543,
            0.022_750_131_948_179,
            0.006_094_441_092_401,
        ];
        assert_close(
            &laplace_cpu(x.clone()).unwrap().as_vec(),
            &want,
            1e-7,
            "fused",
        );
        assert_close(&laplace_composed(x).as_vec(), &want, 2e-7, "composed");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<f64> = random_values(64, 1).iter().map(|v| v * 1.5).collect();
        gradcheck(&[x], |mut xs| laplace_cpu(xs.remove(0)).unwrap(), 1e-6);
    }

    #[test]
    fn composed_gradient_matches_finite_differences() {
        // Away from z = 0, where |z|'s derivative jumps (the function itself is smooth there).
        let x: Vec<f64> = random_values(32, 2)
            .iter()
            .map(|v| laplace_mu() + 0.05 * v.signum() + v)
            .collect();
        gradcheck(&[x], |mut xs| laplace_composed(xs.remove(0)), 1e-5);
    }
}
