//! The Cauchy kernel of S4 (Gu, Goel & Ré 2022, §3.3 and Algorithm 1, step 2): for sources
//! v (S, H, M), poles w (H, M) and nodes (a_f, b_f),
//!
//!   r[s, h, f] = Σ_m  v[s,h,m] / (a_f − b_f·w[h,m])  +  conj(v[s,h,m]) / (a_f − b_f·conj(w[h,m])).
//!
//! The second term is the conjugate half of the state, which S4 keeps implicit (M = N/2). With
//! b_f = 1 this is the paper's Cauchy matrix–vector product Σ_m v_m/(z_f − w_m); S4 evaluates
//! it at z_f = (2/Δ)·(1 − ω_f)/(1 + ω_f) and multiplies by 2/(1 + ω_f) (Lemma C.3), a factor
//! that is infinite at the Nyquist frequency ω = −1. Folded into the node it is not: with
//! w = Δ·λ, 2/(1 + ω) · 1/(z̃ − w) for z̃ = 2(1 − ω)/(1 + ω) equals 1/(a − b·w) with
//! a = 1 − ω and b = (1 + ω)/2, which is ½ at ω = −1. So S4 passes w = Δ·Λ and these nodes
//! (see `layers::ssm::s4`).
//!
//! Work O(S·H·M·F), memory O(S·H·F). Backward, with complex gradients G = ∂L/∂Re r + i·∂L/∂Im r
//! and k₁ = 1/(a − b·w), k₂ = 1/(a − b·conj w):
//!
//!   ∂L/∂v = Σ_f conj(k₁)·G_f + k₂·conj(G_f),
//!   ∂L/∂w = Σ_s Σ_f conj(v·b·k₁²)·G_f + conj(v)·b·k₂²·conj(G_f)
//!
//! (the first terms are holomorphic in v and w, the second anti-holomorphic). The CPU kernel
//! runs in f64, parallel over channels h, each division shared by the S sources; the composed
//! form materialises (S, H, M, F) with dfdx's ops, for GPUs and as the oracle.
//!
//! The output is one tensor (S, H, 2F): the F real parts, then the F imaginary parts.

use std::sync::Arc;

use dfdx::prelude::*;
use num_complex::Complex64;
use rayon::prelude::*;

use super::host;
use crate::engine::ops::zeroed;
use crate::engine::ops::{grad_of, take_grad, ComposedFloat, KernelFloat};

pub(crate) type Mat<E, D, T> = Tensor<(usize, usize), E, D, T>;
pub(crate) type Cube<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;

/// The nodes (a_f, b_f) of the kernel.
#[derive(Clone, Debug)]
pub struct Nodes(pub Arc<[(Complex64, Complex64)]>);

impl Nodes {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct Inputs {
    v: Vec<Complex64>,
    w: Vec<Complex64>,
    /// (S, H, M).
    dims: (usize, usize, usize),
    nodes: Nodes,
}

fn complex<E: KernelFloat>(re: &[E], im: &[E]) -> Vec<Complex64> {
    re.iter()
        .zip(im)
        .map(|(r, i)| Complex64::new(r.to_f64().unwrap(), i.to_f64().unwrap()))
        .collect()
}

impl Inputs {
    /// Source s of channel h.
    fn source(&self, s: usize, h: usize) -> &[Complex64] {
        let (_, width, m) = self.dims;
        &self.v[(s * width + h) * m..(s * width + h + 1) * m]
    }

    /// The poles of channel h.
    fn poles(&self, h: usize) -> &[Complex64] {
        let m = self.dims.2;
        &self.w[h * m..(h + 1) * m]
    }

    /// Calls `f(f, n, k₁, k₂)` for every node and mode of channel h, with
    /// k₁ = 1/(a_f − b_f·w_n) and k₂ = 1/(a_f − b_f·conj w_n): the divisions, computed once
    /// for all sources of the channel.
    fn for_terms(&self, h: usize, mut f: impl FnMut(usize, usize, Complex64, Complex64)) {
        let w = self.poles(h);
        for (node, &(a, b)) in self.nodes.0.iter().enumerate() {
            for (n, &w) in w.iter().enumerate() {
                f(node, n, 1.0 / (a - b * w), 1.0 / (a - b * w.conj()));
            }
        }
    }
}

fn cauchy_forward<E: KernelFloat>(inputs: &Inputs) -> Vec<E> {
    let (sources, width, _) = inputs.dims;
    let f_len = inputs.nodes.len();
    // Per channel: (S, 2F), then scattered to (S, H, 2F).
    let per_channel: Vec<Vec<Complex64>> = (0..width)
        .into_par_iter()
        .map(|h| {
            let mut r = vec![Complex64::default(); sources * f_len];
            inputs.for_terms(h, |f, n, k1, k2| {
                for s in 0..sources {
                    let v = inputs.source(s, h)[n];
                    r[s * f_len + f] += v * k1 + v.conj() * k2;
                }
            });
            r
        })
        .collect();
    let mut out = zeroed(sources * width * 2 * f_len);
    for (h, r) in per_channel.iter().enumerate() {
        for s in 0..sources {
            let row = &mut out[(s * width + h) * 2 * f_len..(s * width + h + 1) * 2 * f_len];
            for (f, x) in r[s * f_len..(s + 1) * f_len].iter().enumerate() {
                row[f] = E::of(x.re);
                row[f_len + f] = E::of(x.im);
            }
        }
    }
    out
}

/// ∂L/∂v (S, H, M) and ∂L/∂w (H, M), complex, from g (S, H, 2F).
fn cauchy_backward<E: KernelFloat>(inputs: &Inputs, g: &[E]) -> (Vec<Complex64>, Vec<Complex64>) {
    let (sources, width, m) = inputs.dims;
    let f_len = inputs.nodes.len();
    let gradient = |s: usize, h: usize, f: usize| {
        let row = &g[(s * width + h) * 2 * f_len..];
        Complex64::new(row[f].to_f64().unwrap(), row[f_len + f].to_f64().unwrap())
    };
    // Per channel: ∂L/∂v (S, M) and ∂L/∂w (M).
    let per_channel: Vec<(Vec<Complex64>, Vec<Complex64>)> = (0..width)
        .into_par_iter()
        .map(|h| {
            let mut grad_v = vec![Complex64::default(); sources * m];
            let mut grad_w = vec![Complex64::default(); m];
            let b: Vec<Complex64> = inputs.nodes.0.iter().map(|n| n.1).collect();
            inputs.for_terms(h, |f, n, k1, k2| {
                for s in 0..sources {
                    let (gf, v) = (gradient(s, h, f), inputs.source(s, h)[n]);
                    grad_v[s * m + n] += k1.conj() * gf + k2 * gf.conj();
                    grad_w[n] +=
                        (v * b[f] * k1 * k1).conj() * gf + v.conj() * b[f] * k2 * k2 * gf.conj();
                }
            });
            (grad_v, grad_w)
        })
        .collect();
    let mut grad_v = vec![Complex64::default(); sources * width * m];
    let mut grad_w = Vec::with_capacity(width * m);
    for (h, (gv, gw)) in per_channel.into_iter().enumerate() {
        for s in 0..sources {
            grad_v[(s * width + h) * m..(s * width + h + 1) * m]
                .copy_from_slice(&gv[s * m..(s + 1) * m]);
        }
        grad_w.extend(gw);
    }
    (grad_v, grad_w)
}

fn accumulate_parts<E: KernelFloat>(re: &mut [E], im: &mut [E], g: &[Complex64]) {
    for ((r, i), g) in re.iter_mut().zip(im.iter_mut()).zip(g) {
        *r += E::of(g.re);
        *i += E::of(g.im);
    }
}

/// The fused Cauchy kernel on the CPU: v (S, H, M) and w (H, M) as real and imaginary parts
/// → r (S, H, 2F) `[Re | Im]`.
pub(crate) fn cauchy_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    v: (Cube<E, Cpu, T>, Cube<E, Cpu, T>),
    w: (Mat<E, Cpu, T>, Mat<E, Cpu, T>),
    nodes: &Nodes,
) -> Result<Cube<E, Cpu, T>, CpuError> {
    let dims = *v.0.shape();
    assert_eq!(
        (dims.1, dims.2),
        *w.0.shape(),
        "cauchy: v is (S, H, M), w (H, M)"
    );
    let (v_re, t1) = v.0.try_contiguous()?.split_tape();
    let (v_im, t2) = v.1.try_contiguous()?.split_tape();
    let (w_re, t3) = w.0.try_contiguous()?.split_tape();
    let (w_im, t4) = w.1.try_contiguous()?.split_tape();
    let mut tape = t1.merge(t2).merge(t3).merge(t4);
    let inputs = Inputs {
        v: complex(&host(&v_re), &host(&v_im)),
        w: complex(&host(&w_re), &host(&w_im)),
        dims,
        nodes: nodes.clone(),
    };
    let out = v_re.device().try_tensor_from_vec(
        cauchy_forward::<E>(&inputs),
        (dims.0, dims.1, 2 * nodes.len()),
    )?;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_id);
        let (grad_v, grad_w) = cauchy_backward(&inputs, &g);
        let mut gv_re = std::mem::take(&mut **grads.get_or_alloc_mut(&v_re)?);
        accumulate_parts(&mut gv_re, grad_of!(grads, &v_im), &grad_v);
        **grads.get_or_alloc_mut(&v_re)? = gv_re;
        let mut gw_re = std::mem::take(&mut **grads.get_or_alloc_mut(&w_re)?);
        accumulate_parts(&mut gw_re, grad_of!(grads, &w_im), &grad_w);
        **grads.get_or_alloc_mut(&w_re)? = gw_re;
        drop(g);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The Cauchy kernel from dfdx ops: every term (S, H, M, F), then the sum over M.
pub(crate) fn cauchy_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    v: (Cube<E, D, T>, Cube<E, D, T>),
    w: (Mat<E, D, T>, Mat<E, D, T>),
    nodes: &Nodes,
) -> Cube<E, D, T> {
    let (s, h, m) = *v.0.shape();
    let f_len = nodes.len();
    let dev = v.0.device().clone();
    let full = (s, h, m, f_len);
    let node = |part: fn(&(Complex64, Complex64)) -> f64| {
        let values: Vec<E> = nodes
            .0
            .iter()
            .map(|n| E::from_f64(part(n)).unwrap())
            .collect();
        dev.tensor_from_vec(values, (f_len,))
            .broadcast_like::<_, Axes3<0, 1, 2>>(&full)
    };
    let (a_re, a_im) = (node(|n| n.0.re), node(|n| n.0.im));
    let (b_re, b_im) = (node(|n| n.1.re), node(|n| n.1.im));
    let w_re = w.0.broadcast_like::<_, Axes2<0, 3>>(&full);
    let w_im = w.1.broadcast_like::<_, Axes2<0, 3>>(&full);
    let v_re = v.0.broadcast_like::<_, Axis<3>>(&full);
    let v_im = v.1.broadcast_like::<_, Axis<3>>(&full);
    // One term v/(a − b·w'), as (Re, Im), for w' = w or conj(w) and v' = v or conj(v).
    let term = |v_re: Tensor<_, E, D, T>,
                v_im: Tensor<_, E, D, T>,
                w_re: Tensor<_, E, D, T>,
                w_im: Tensor<_, E, D, T>| {
        // d = a − b·w', then v'/d = v'·conj(d)/|d|².
        let d_re = (w_im.with_empty_tape() * b_im.clone() - w_re.with_empty_tape() * b_re.clone())
            + a_re.clone();
        let d_im = (w_im * b_re.clone() + w_re * b_im.clone()).negate() + a_im.clone();
        let norm = d_re.with_empty_tape().square() + d_im.with_empty_tape().square();
        let re = (v_re.with_empty_tape() * d_re.with_empty_tape()
            + v_im.with_empty_tape() * d_im.with_empty_tape())
            / norm.with_empty_tape();
        let im = (v_im * d_re - v_re * d_im) / norm;
        (re, im)
    };
    let (re1, im1) = term(
        v_re.with_empty_tape(),
        v_im.with_empty_tape(),
        w_re.with_empty_tape(),
        w_im.with_empty_tape(),
    );
    let (re2, im2) = term(v_re, v_im.negate(), w_re, w_im.negate());
    let re = (re1 + re2).sum::<(usize, usize, usize), Axis<2>>();
    let im = (im1 + im2).sum::<(usize, usize, usize), Axis<2>>();
    (re, im).concat_along(Axis::<2>)
}

#[cfg(test)]
mod tests;
