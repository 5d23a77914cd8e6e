//! MEGA's gates and shared representation from the one projection of the EMA output X′
//! (Ma et al. 2023, "Mega: Moving Average Equipped Gated Attention", §3.3; the reference
//! `MovingAverageGatedAttention` splits `mx_proj(mx)` the same way). With the projection M
//! laid out per position as [M_φ (d) | M_z (z) | M_γ (v) | M_h (d)]:
//!
//! - update gate φ = σ(M_φ) (eq. 13);
//! - Z = SiLU(M_z) (eq. 7), Q = κ_q⊙Z + μ_q and K = κ_k⊙Z + μ_k (eq. 8–9);
//! - reset gate γ = SiLU(M_γ) (eq. 12);
//! - M_h = X′W_h + b_h, the input of the candidate (eq. 14), passed through.
//!
//! κ and μ are (2, z) tables, the row of Q then the row of K. The op has five outputs: the
//! first carries the tape and the others an empty one, and one backward closure fills M's
//! gradient from all five (dfdx runs backward closures in creation order, so it runs after
//! every consumer of every output). The CPU kernel holds M (in place, no copy), the only thing
//! its backward keeps, where the composed form (the CUDA path and the oracle) slices M five
//! times and keeps σ(M_φ), SiLU's and the affine maps' inputs besides.
//!
//! Backward, with G_φ, G_q, G_k, G_γ, G_h the outputs' gradients:
//! ∂M_φ = G_φ·σ′(M_φ), ∂M_z = (κ_q⊙G_q + κ_k⊙G_k)·SiLU′(M_z), ∂M_γ = G_γ·SiLU′(M_γ),
//! ∂M_h = G_h; ∂κ_q = Σ G_q⊙Z, ∂κ_k = Σ G_k⊙Z, ∂μ_q = Σ G_q, ∂μ_k = Σ G_k over positions.

use std::ops::Range;

use dfdx::prelude::*;
use rayon::prelude::*;

use super::attention::Seq3;
use super::pointwise::Pointwise;
use super::ssm::for_slicing;
use super::{add_into, grad_of, host, summed_pairs, take_grad, ComposedFloat, KernelFloat};
use crate::engine::ops::zeroed;

/// Positions per parallel task.
const ROWS_PER_TASK: usize = 64;

/// The outputs: φ (B, L, d), Q and K (B, L, z), γ (B, L, v), M_h (B, L, d).
pub struct MegaGates<E: Dtype, D: Storage<E>, T> {
    pub update: Seq3<E, D, T>,
    pub q: Seq3<E, D, T>,
    pub k: Seq3<E, D, T>,
    pub reset: Seq3<E, D, T>,
    pub projected: Seq3<E, D, T>,
}

/// The column ranges of M's parts, from d (`model`), M's width and z.
#[derive(Clone, Debug)]
struct Layout {
    width: usize,
    update: Range<usize>,
    shared: Range<usize>,
    reset: Range<usize>,
    projected: Range<usize>,
}

impl Layout {
    fn of(model: usize, width: usize, scale: usize, offset: usize) -> Self {
        assert!(
            scale == offset && scale.is_multiple_of(2),
            "mega gates: κ and μ are both (2, z), got {scale} and {offset} values"
        );
        let z = scale / 2;
        assert!(
            width > 2 * model + z,
            "mega gates: M has {width} columns, not d + z + v + d with d = {model}, z = {z}"
        );
        let v = width - 2 * model - z;
        Layout {
            width,
            update: 0..model,
            shared: model..model + z,
            reset: model + z..model + z + v,
            projected: model + z + v..width,
        }
    }
}

/// The outputs of one block of positions, each row-major (positions × its width).
struct Block<'a, E> {
    update: &'a mut [E],
    q: &'a mut [E],
    k: &'a mut [E],
    reset: &'a mut [E],
    projected: &'a mut [E],
}

/// Forward for the positions of `m` (rows of M), writing into `out`.
fn forward_block<E: KernelFloat>(l: &Layout, scale: &[E], offset: &[E], m: &[E], out: Block<E>) {
    let z = l.shared.len();
    let rows = m
        .chunks_exact(l.width)
        .zip(out.update.chunks_exact_mut(l.update.len()))
        .zip(out.q.chunks_exact_mut(z))
        .zip(out.k.chunks_exact_mut(z))
        .zip(out.reset.chunks_exact_mut(l.reset.len()))
        .zip(out.projected.chunks_exact_mut(l.projected.len()));
    let mut shared = vec![E::zero(); z];
    for (((((m, update), q), k), reset), projected) in rows {
        E::pointwise_forward(Pointwise::Sigmoid, &m[l.update.clone()], update);
        E::pointwise_forward(Pointwise::Silu, &m[l.shared.clone()], &mut shared);
        for (c, &s) in shared.iter().enumerate() {
            q[c] = scale[c] * s + offset[c];
            k[c] = scale[z + c] * s + offset[z + c];
        }
        E::pointwise_forward(Pointwise::Silu, &m[l.reset.clone()], reset);
        projected.copy_from_slice(&m[l.projected.clone()]);
    }
}

/// Backward for the positions of `m`: adds into `dm` (their rows of ∂M) and returns the
/// block's (∂κ, ∂μ), each 2z.
fn backward_block<'a, E: KernelFloat>(
    l: &Layout,
    scale: &[E],
    m: &[E],
    grads: [&'a [E]; 5],
    dm: &mut [E],
) -> (Vec<E>, Vec<E>) {
    let z = l.shared.len();
    let [g_update, g_q, g_k, g_reset, g_projected] = grads;
    let (mut d_scale, mut d_offset) = (vec![E::zero(); 2 * z], vec![E::zero(); 2 * z]);
    let (mut shared, mut g_shared) = (vec![E::zero(); z], vec![E::zero(); z]);
    let rows = m
        .chunks_exact(l.width)
        .zip(dm.chunks_exact_mut(l.width))
        .enumerate();
    for (p, (m, dm)) in rows {
        let row = |g: &'a [E], w: usize| &g[p * w..(p + 1) * w];
        let (gq, gk) = (row(g_q, z), row(g_k, z));
        E::pointwise_backward(
            Pointwise::Sigmoid,
            &m[l.update.clone()],
            row(g_update, l.update.len()),
            &mut dm[l.update.clone()],
        );
        E::pointwise_forward(Pointwise::Silu, &m[l.shared.clone()], &mut shared);
        for c in 0..z {
            g_shared[c] = scale[c] * gq[c] + scale[z + c] * gk[c];
            d_scale[c] += gq[c] * shared[c];
            d_scale[z + c] += gk[c] * shared[c];
            d_offset[c] += gq[c];
            d_offset[z + c] += gk[c];
        }
        E::pointwise_backward(
            Pointwise::Silu,
            &m[l.shared.clone()],
            &g_shared,
            &mut dm[l.shared.clone()],
        );
        E::pointwise_backward(
            Pointwise::Silu,
            &m[l.reset.clone()],
            row(g_reset, l.reset.len()),
            &mut dm[l.reset.clone()],
        );
        let g_h = row(g_projected, l.projected.len());
        dm[l.projected.clone()]
            .iter_mut()
            .zip(g_h)
            .for_each(|(d, &g)| *d += g);
    }
    (d_scale, d_offset)
}

/// MEGA's gates on the CPU: M (B, L, d + z + v + d), κ and μ (2z) → φ, Q, K, γ, M_h.
pub(crate) fn mega_gates_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    mixed: Seq3<E, Cpu, T>,
    scale: Tensor<(usize,), E, Cpu, T>,
    offset: Tensor<(usize,), E, Cpu, T>,
    model: usize,
) -> Result<MegaGates<E, Cpu, T>, CpuError> {
    let (batch, len, width) = *mixed.shape();
    let l = Layout::of(model, width, scale.shape().0, offset.shape().0);
    let (mixed, tm) = mixed.try_contiguous()?.split_tape();
    let (scale, ts) = scale.try_contiguous()?.split_tape();
    let (offset, to) = offset.try_contiguous()?.split_tape();
    let mut tape = tm.merge(ts).merge(to);
    let (m, scale_host, offset_host) = (host(&mixed)?, host(&scale)?, host(&offset)?);
    let positions = batch * len;
    let widths = [
        l.update.len(),
        l.shared.len(),
        l.shared.len(),
        l.reset.len(),
        l.projected.len(),
    ];
    let mut outs = widths.map(|w| zeroed(positions * w));
    {
        let [update, q, k, reset, projected] = &mut outs;
        let task = |w: usize| ROWS_PER_TASK * w;
        m.par_chunks(task(width))
            .zip(update.par_chunks_mut(task(widths[0])))
            .zip(q.par_chunks_mut(task(widths[1])))
            .zip(k.par_chunks_mut(task(widths[2])))
            .zip(reset.par_chunks_mut(task(widths[3])))
            .zip(projected.par_chunks_mut(task(widths[4])))
            .for_each(|(((((m, update), q), k), reset), projected)| {
                let out = Block {
                    update,
                    q,
                    k,
                    reset,
                    projected,
                };
                forward_block(&l, &scale_host, &offset_host, m, out);
            });
    }
    let dev = mixed.device().clone();
    let mut tensors = Vec::with_capacity(5);
    for (out, w) in outs.into_iter().zip(widths) {
        tensors.push(dev.try_tensor_from_vec(out, (batch, len, w))?);
    }
    let ghosts: Vec<_> = tensors.iter().map(|t| t.ghost()).collect();
    let (mixed, scale, offset) = (mixed.ghost(), scale.ghost(), offset.ghost());
    tape.add_backward_op(move |grads| {
        let mut g = Vec::with_capacity(5);
        for ghost in &ghosts {
            g.push(take_grad!(grads, ghost));
        }
        let task = |w: usize| ROWS_PER_TASK * w;
        let zeros = || {
            (
                vec![E::zero(); scale_host.len()],
                vec![E::zero(); scale_host.len()],
            )
        };
        let (d_scale, d_offset) = grad_of!(grads, &mixed)
            .par_chunks_mut(task(width))
            .zip(m.par_chunks(task(width)))
            .enumerate()
            .map(|(b, (dm, m))| {
                let block = |i: usize| {
                    let w = widths[i];
                    &g[i][b * task(w)..(b * task(w) + m.len() / width * w)]
                };
                let grads = [block(0), block(1), block(2), block(3), block(4)];
                backward_block(&l, &scale_host, m, grads, dm)
            })
            .reduce(zeros, summed_pairs);
        add_into(grad_of!(grads, &scale), &d_scale);
        add_into(grad_of!(grads, &offset), &d_offset);
        Ok(())
    });
    let mut tensors = tensors.into_iter();
    let mut next = || tensors.next().expect("five outputs");
    Ok(MegaGates {
        update: next().put_tape(tape),
        q: next().put_tape(T::default()),
        k: next().put_tape(T::default()),
        reset: next().put_tape(T::default()),
        projected: next().put_tape(T::default()),
    })
}

/// The same gates from dfdx ops on any device.
pub(crate) fn mega_gates_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    mixed: Seq3<E, D, T>,
    scale: Tensor<(usize,), E, D, T>,
    offset: Tensor<(usize,), E, D, T>,
    model: usize,
) -> MegaGates<E, D, T> {
    let shape = *mixed.shape();
    let l = Layout::of(model, shape.2, scale.shape().0, offset.shape().0);
    let z = l.shared.len();
    let mixed = for_slicing(mixed);
    let columns = |r: &Range<usize>| mixed.with_empty_tape().slice((.., .., r.clone()));
    let update = columns(&l.update).sigmoid();
    let shared_in = columns(&l.shared);
    let shared = shared_in.with_empty_tape().sigmoid() * shared_in;
    let reset_in = columns(&l.reset);
    let reset = reset_in.with_empty_tape().sigmoid() * reset_in;
    let projected = mixed.slice((.., .., l.projected.clone()));
    let out_shape = (shape.0, shape.1, z);
    let row = |t: Tensor<(usize,), E, D, T>| t.broadcast_like::<_, Axes2<0, 1>>(&out_shape);
    let (scale, offset) = (for_slicing(scale), for_slicing(offset));
    let q = shared.with_empty_tape() * row(scale.with_empty_tape().slice((..z,)))
        + row(offset.with_empty_tape().slice((..z,)));
    // The last slices carry the tables' tapes.
    let k = shared * row(scale.slice((z..,))) + row(offset.slice((z..,)));
    MegaGates {
        update,
        q,
        k,
        reset,
        projected,
    }
}

#[cfg(test)]
mod tests;
