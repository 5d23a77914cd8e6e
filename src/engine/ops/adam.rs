//! One Adam or AdamW update of a flat parameter, on the parameter's device.
//!
//! With gradient g, moments m and v, step t (per parameter) and rate η (Kingma & Ba 2015,
//! Alg. 1; Loshchilov & Hutter 2019, Alg. 2 for the decoupled decay):
//!
//! ```text
//! g ← g + λθ                          (Adam: L2 decay in the gradient)
//! m ← β₁m + (1 − β₁)g
//! v ← β₂v + (1 − β₂)g²
//! θ ← θ − ηλθ                         (AdamW: decoupled decay)
//! θ ← θ − η·(m / b₁) / (√(v / b₂) + ε),   b₁ = 1 − β₁ᵗ, b₂ = 1 − β₂ᵗ
//! ```
//!
//! The composed form is dfdx element-wise ops, so on CUDA the moments never leave the GPU; the
//! CPU runs the fused loop (one pass, multi-threaded). Both take the tensors by value and hand
//! back the new ones, so the caller replaces its own.

use dfdx::prelude::*;
use rayon::prelude::*;

type Flat<D> = Tensor<(usize,), f32, D>;

/// The new parameter and its two moments.
pub(crate) type Updated<D> = (Flat<D>, Flat<D>, Flat<D>);

/// The scalars of one parameter's update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamRule {
    pub lr: f32,
    pub weight_decay: f32,
    /// AdamW (decay applied to θ) rather than Adam (decay added to the gradient).
    pub decoupled: bool,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Bias corrections 1 − β₁ᵗ and 1 − β₂ᵗ for this parameter's step t.
    pub bias1: f32,
    pub bias2: f32,
}

impl AdamRule {
    /// The update of one element, in the order of the module's equations.
    #[inline]
    fn apply(&self, theta: &mut f32, grad: f32, m: &mut f32, v: &mut f32) {
        let mut g = grad;
        if self.decoupled {
            *theta -= self.lr * self.weight_decay * *theta;
        } else {
            g += self.weight_decay * *theta;
        }
        *m = self.beta1 * *m + (1.0 - self.beta1) * g;
        *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
        let m_hat = *m / self.bias1;
        let v_hat = *v / self.bias2;
        *theta -= self.lr * m_hat / (v_hat.sqrt() + self.eps);
    }
}

/// The new (θ, m, v) from dfdx ops on any device.
pub(crate) fn adam_composed<D: Device<f32>>(
    theta: Flat<D>,
    grad: Flat<D>,
    m: Flat<D>,
    v: Flat<D>,
    rule: &AdamRule,
) -> Updated<D> {
    let grad = if rule.decoupled || rule.weight_decay == 0.0 {
        grad
    } else {
        grad + theta.clone() * rule.weight_decay
    };
    let m = m * rule.beta1 + grad.clone() * (1.0 - rule.beta1);
    let v = v * rule.beta2 + grad.square() * (1.0 - rule.beta2);
    let step = (m.clone() * (rule.lr / rule.bias1)) / ((v.clone() / rule.bias2).sqrt() + rule.eps);
    let theta = if rule.decoupled && rule.weight_decay != 0.0 {
        theta * (1.0 - rule.lr * rule.weight_decay)
    } else {
        theta
    };
    (theta - step, m, v)
}

/// The fused CPU update: one multi-threaded pass over the four buffers.
pub(crate) fn adam_cpu(
    theta: Flat<Cpu>,
    grad: Flat<Cpu>,
    m: Flat<Cpu>,
    v: Flat<Cpu>,
    rule: &AdamRule,
) -> Result<Updated<Cpu>, CpuError> {
    let dev = theta.device().clone();
    let n = theta.shape().0;
    let (mut theta_h, grad_h, mut m_h, mut v_h) =
        (theta.as_vec(), grad.as_vec(), m.as_vec(), v.as_vec());
    const CHUNK: usize = 1 << 14;
    theta_h
        .par_chunks_mut(CHUNK)
        .zip(grad_h.par_chunks(CHUNK))
        .zip(m_h.par_chunks_mut(CHUNK))
        .zip(v_h.par_chunks_mut(CHUNK))
        .for_each(|(((theta, g), m), v)| {
            for i in 0..theta.len() {
                rule.apply(&mut theta[i], g[i], &mut m[i], &mut v[i]);
            }
        });
    Ok((
        dev.try_tensor_from_vec(theta_h, (n,))?,
        dev.try_tensor_from_vec(m_h, (n,))?,
        dev.try_tensor_from_vec(v_h, (n,))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(decoupled: bool, t: i32) -> AdamRule {
        let (beta1, beta2) = (0.9f32, 0.98f32);
        AdamRule {
            lr: 0.05,
            weight_decay: 0.3,
            decoupled,
            beta1,
            beta2,
            eps: 1e-6,
            bias1: 1.0 - beta1.powi(t),
            bias2: 1.0 - beta2.powi(t),
        }
    }

    /// The module's equations in f64, element by element: the oracle of both forms.
    fn oracle(theta: f64, g: f64, m: f64, v: f64, r: &AdamRule) -> (f64, f64, f64) {
        let (lr, wd) = (r.lr as f64, r.weight_decay as f64);
        let g = if r.decoupled { g } else { g + wd * theta };
        let m = r.beta1 as f64 * m + (1.0 - r.beta1 as f64) * g;
        let v = r.beta2 as f64 * v + (1.0 - r.beta2 as f64) * g * g;
        let theta = if r.decoupled {
            theta - lr * wd * theta
        } else {
            theta
        };
        let step = lr * (m / r.bias1 as f64) / ((v / r.bias2 as f64).sqrt() + r.eps as f64);
        (theta - step, m, v)
    }

    #[test]
    fn composed_and_fused_updates_match_the_equations() {
        let dev = Cpu::default();
        let n = 40_000; // more than one chunk of the fused loop
        let values = |seed: u64, scale: f64| -> Vec<f32> {
            crate::engine::ops::gradcheck::random_values(n, seed)
                .into_iter()
                .map(|x| (x * scale) as f32)
                .collect()
        };
        let (theta, grad, m) = (values(1, 2.0), values(2, 1.0), values(3, 0.1));
        let v: Vec<f32> = values(4, 0.1).iter().map(|x| x.abs()).collect();
        let t = |x: &[f32]| dev.tensor_from_vec(x.to_vec(), (n,));
        for decoupled in [true, false] {
            for step in [1, 7] {
                let r = rule(decoupled, step);
                let composed = adam_composed(t(&theta), t(&grad), t(&m), t(&v), &r);
                let fused = adam_cpu(t(&theta), t(&grad), t(&m), t(&v), &r).unwrap();
                for (name, c, f, k) in [
                    ("θ", &composed.0, &fused.0, 0),
                    ("m", &composed.1, &fused.1, 1),
                    ("v", &composed.2, &fused.2, 2),
                ] {
                    let (c, f) = (c.as_vec(), f.as_vec());
                    for i in 0..n {
                        let o = oracle(
                            theta[i] as f64,
                            grad[i] as f64,
                            m[i] as f64,
                            v[i] as f64,
                            &r,
                        );
                        let want = [o.0, o.1, o.2][k];
                        let tol = 1e-5 * (1.0 + want.abs());
                        assert!(
                            (c[i] as f64 - want).abs() < tol && (f[i] as f64 - want).abs() < tol,
                            "{name}[{i}] decoupled={decoupled} t={step}: composed {} fused {} want {want}",
                            c[i],
                            f[i]
                        );
                    }
                }
            }
        }
    }
}
