//! Two element-wise sums every model runs several times a step, as single parallel passes:
//!
//! - `add`: x + y, the residual connection of every block (He et al. 2016). Backward: g flows
//!   unchanged to both.
//! - `skip`: y + D·u, the feedthrough term of the state-space output equation y = Cx + Du
//!   (Gu et al. 2022, eq. 1), for C output channels per input channel: y (rows, C·H),
//!   u (rows, H), D (C, H), out[r, c·H + h] = y[r, c·H + h] + D[c, h]·u[r, h]. Backward:
//!   ∂y = g, ∂u[r, h] = Σ_c D[c, h]·g[r, c·H + h], ∂D[c, h] = Σ_r g[r, c·H + h]·u[r, h].
//!
//! dfdx runs each of these as several serial passes (a broadcast product, then a sum, each
//! allocating), which left one core idle for a fifth of a state-space training step.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{
    add_into, add_into_parallel, grad_of, host, same_shape_pair, summed, take_grad, ComposedFloat,
    KernelFloat, SameShapePair,
};
use crate::engine::ops::zeroed;

type Mat<E, D, T> = Tensor<(usize, usize), E, D, T>;

/// Elements per parallel task of the flat sums.
const CHUNK: usize = 16 * 1024;
/// Rows per parallel task of the skip.
const ROWS_PER_TASK: usize = 64;

/// Fused x + y on the CPU, any shape.
pub(crate) fn add_cpu<S: Shape, E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    x: Tensor<S, E, Cpu, T>,
    y: Tensor<S, E, Cpu, T>,
) -> Result<Tensor<S, E, Cpu, T>, CpuError> {
    let SameShapePair {
        x,
        y,
        xs,
        ys,
        mut tape,
    } = same_shape_pair(x, y, "add")?;
    let mut sum = zeroed(xs.len());
    sum.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK).zip(ys.par_chunks(CHUNK)))
        .for_each(|(s, (x, y))| {
            for ((s, &x), &y) in s.iter_mut().zip(x).zip(y) {
                *s = x + y;
            }
        });
    drop((xs, ys));
    let out = x.device().try_tensor_from_vec(sum, *x.shape())?;
    let out_ghost = out.ghost();
    let (x, y) = (x.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        add_into_parallel(grad_of!(grads, &x), &g);
        add_into_parallel(grad_of!(grads, &y), &g);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// x + y from dfdx ops on any device.
pub(crate) fn add_composed<S: Shape, E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Tensor<S, E, D, T>,
    y: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    x + y
}

/// Fused y + D·u on the CPU (see the module documentation for the shapes).
pub(crate) fn skip_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    y: Mat<E, Cpu, T>,
    u: Mat<E, Cpu, T>,
    d: Mat<E, Cpu, T>,
) -> Result<Mat<E, Cpu, T>, CpuError> {
    let (rows, outputs) = *y.shape();
    let (channels, width) = *d.shape();
    assert_eq!(
        *u.shape(),
        (rows, width),
        "skip: u must be (rows, H) for D (C, H)"
    );
    assert_eq!(outputs, channels * width, "skip: y must be (rows, C·H)");
    let (y, ty) = y.try_contiguous()?.split_tape();
    let (u, tu) = u.try_contiguous()?.split_tape();
    let (d, td) = d.try_contiguous()?.split_tape();
    let mut tape = ty.merge(tu).merge(td);
    let (u_host, d_host) = (host(&u)?, host(&d)?);
    let y_host = host(&y)?;
    let mut out = zeroed(y_host.len());
    out.par_chunks_mut(outputs)
        .zip(y_host.par_chunks(outputs).zip(u_host.par_chunks(width)))
        .with_min_len(ROWS_PER_TASK)
        .for_each(|(out, (y, u))| {
            let rows = out.chunks_exact_mut(width).zip(y.chunks_exact(width));
            for ((out, y), d) in rows.zip(d_host.chunks_exact(width)) {
                for (((o, &y), &u), &d) in out.iter_mut().zip(y).zip(u).zip(d) {
                    *o = y + d * u;
                }
            }
        });
    drop(y_host);
    let out = y.device().try_tensor_from_vec(out, (rows, outputs))?;
    let out_ghost = out.ghost();
    let (y, u, d) = (y.ghost(), u.ghost(), d.ghost());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        add_into_parallel(grad_of!(grads, &y), &g);
        grad_of!(grads, &u)
            .par_chunks_mut(width)
            .zip(g.par_chunks(outputs))
            .with_min_len(ROWS_PER_TASK)
            .for_each(|(du, g)| {
                for (g, d) in g.chunks_exact(width).zip(d_host.chunks_exact(width)) {
                    for ((du, &g), &d) in du.iter_mut().zip(g).zip(d) {
                        *du += d * g;
                    }
                }
            });
        let zero = || vec![E::zero(); channels * width];
        let dd = g
            .par_chunks(outputs)
            .zip(u_host.par_chunks(width))
            .with_min_len(ROWS_PER_TASK)
            .fold(zero, |mut dd, (g, u)| {
                for (dd, g) in dd.chunks_exact_mut(width).zip(g.chunks_exact(width)) {
                    for ((dd, &g), &u) in dd.iter_mut().zip(g).zip(u) {
                        *dd += g * u;
                    }
                }
                dd
            })
            .reduce(zero, summed);
        add_into(grad_of!(grads, &d), &dd);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// y + D·u from dfdx ops on any device: u broadcast over the C channels.
pub(crate) fn skip_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    y: Mat<E, D, T>,
    u: Mat<E, D, T>,
    d: Mat<E, D, T>,
) -> Mat<E, D, T> {
    let (rows, outputs) = *y.shape();
    let (channels, width) = *d.shape();
    let expanded = (rows, channels, width);
    let skip =
        u.broadcast_like::<_, Axis<1>>(&expanded) * d.broadcast_like::<_, Axis<0>>(&expanded);
    y + skip.reshape_like(&(rows, outputs))
}

#[cfg(test)]
mod tests;
