//! Multi-head scaled dot-product attention, softmax(s·QKᵀ + mask)·V with s = 1/√d_head, on
//! (batch, length, heads·d_head) tensors: head h of a row is the h-th slice of d_head values,
//! so the projections feed the op without a permute.

mod composed;
mod flash;
mod mask;

use dfdx::prelude::*;

use super::{grad_of, host, take_grad, KernelFloat};
pub use composed::attention_composed;
pub use mask::AttentionSpec;

/// The attention patterns of the model configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKind {
    Full,
    Causal,
    /// Non-overlapping blocks of `window` that see themselves and their neighbours.
    Local {
        window: usize,
        causal: bool,
    },
}

impl AttentionSpec {
    pub fn new(heads: usize, kind: AttentionKind) -> Self {
        let (causal, window) = match kind {
            AttentionKind::Full => (false, None),
            AttentionKind::Causal => (true, None),
            AttentionKind::Local { window, causal } => (causal, Some(window)),
        };
        AttentionSpec {
            heads,
            causal,
            window,
        }
    }
}

pub(crate) type Seq3<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;

fn check_inputs(
    shape: (usize, usize, usize),
    others: [(usize, usize, usize); 2],
    spec: &AttentionSpec,
    lengths: &[usize],
) {
    assert!(
        others.iter().all(|s| *s == shape),
        "attention: q, k and v must have one shape"
    );
    assert!(
        spec.heads > 0 && shape.2.is_multiple_of(spec.heads),
        "attention: heads must divide the width"
    );
    assert_eq!(lengths.len(), shape.0, "attention: one length per example");
}

/// Fused attention on the CPU (FlashAttention-2 forward and backward, see `flash.rs`).
pub fn attention_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    q: Seq3<E, Cpu, T>,
    k: Seq3<E, Cpu, T>,
    v: Seq3<E, Cpu, T>,
    spec: &AttentionSpec,
    lengths: &[usize],
) -> Result<Seq3<E, Cpu, T>, CpuError> {
    let shape = *q.shape();
    check_inputs(shape, [*k.shape(), *v.shape()], spec, lengths);
    let dims = flash::Dims {
        batch: shape.0,
        seq: shape.1,
        heads: spec.heads,
        d_head: shape.2 / spec.heads,
    };
    let (q, tq) = q.try_contiguous()?.split_tape();
    let (k, tk) = k.try_contiguous()?.split_tape();
    let (v, tv) = v.try_contiguous()?.split_tape();
    let mut tape = tq.merge(tk).merge(tv);
    // Backward reads q, k, v: hold their values (no copy) and only the tensors' ghosts.
    let (qh, kh, vh) = (host(&q)?, host(&k)?, host(&v)?);
    let fwd = flash::forward(&qh, &kh, &vh, dims, spec, lengths);
    let out = q.device().try_tensor_from_vec(fwd.out, shape)?;
    let (q, k, v) = (q.ghost(), k.ghost(), v.ghost());
    // The backward pass reads O (for Dᵢ = rowsum(dO ⊙ O)): keep the output's data, shared
    // with the tensor handed on, rather than a copy.
    let out_kept = out.clone();
    let lse = fwd.lse;
    let (spec, lengths) = (*spec, lengths.to_vec());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_kept);
        let parts = flash::backward(
            &qh,
            &kh,
            &vh,
            &host(&out_kept)?,
            &lse,
            &g,
            dims,
            &spec,
            &lengths,
        );
        // q, k and v may be one tensor (self-attention without projections): each gradient
        // is added through its own borrow.
        for (t, part) in [&q, &k, &v].into_iter().zip(&parts) {
            flash::scatter_grad(dims, grad_of!(grads, t), part);
        }
        Ok(())
    });
    Ok(out.put_tape(tape))
}

#[cfg(test)]
mod tests;
