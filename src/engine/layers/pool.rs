//! Pooling a sequence into one vector per example, over its true length only.

use dfdx::prelude::*;

use super::{Ctx, Rows, Seq};

/// The language's pooling is the engine's: one type, its words in the spec.
pub use crate::spec::PoolKind;

/// Added to padded positions before a max, so they never win.
const PADDING_SCORE: f32 = -1e9;

/// Mean/first/last as a weighted sum Σᵢ wᵢ·xᵢ with w over the true positions (a batched
/// (1 × L)·(L × d) matmul); max after pushing padded positions to −10⁹.
pub fn pool<D: crate::engine::ops::EngineDevice, T: Tape<f32, D> + Merge<T>>(
    kind: PoolKind,
    x: Seq<D, T>,
    ctx: &Ctx<'_, D>,
) -> Rows<D, T> {
    let shape = *x.shape();
    let (batch, seq, width) = shape;
    let dev = ctx.device();
    let len = |b: usize| ctx.lengths[b].clamp(1, seq);
    if kind == PoolKind::Max {
        let bias: Vec<f32> = (0..batch)
            .flat_map(|b| (0..seq).map(move |i| (b, i)))
            .map(|(b, i)| if i < len(b) { 0.0 } else { PADDING_SCORE })
            .collect();
        let bias = dev
            .tensor_from_vec(bias, (batch, seq))
            .broadcast_like::<_, Axis<2>>(&shape);
        return (x + bias).max::<(usize, usize), Axis<1>>();
    }
    let mut weights = vec![0.0f32; batch * seq];
    for b in 0..batch {
        let row = &mut weights[b * seq..(b + 1) * seq];
        match kind {
            PoolKind::Mean => row[..len(b)].fill(1.0 / len(b) as f32),
            PoolKind::First => row[0] = 1.0,
            PoolKind::Last => row[len(b) - 1] = 1.0,
            PoolKind::Max => unreachable!("handled above"),
        }
    }
    let weights = dev.tensor_from_vec(weights, (batch, 1, seq));
    weights
        .retaped::<T>()
        .matmul(x)
        .reshape_like(&(batch, width))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::params::ParamStore;

    #[test]
    fn pooling_ignores_padding() {
        let store = ParamStore::new(Cpu::default(), 0);
        let lengths = [3, 1];
        let ctx = Ctx::new(&store, false, &lengths);
        // Example 0: rows [1,2], [3,-4], [5,6], padding [100,100]; example 1: [7,8] then padding.
        let x = [
            1., 2., 3., -4., 5., 6., 100., 100., 7., 8., 100., 100., 100., 100., 100., 100.,
        ];
        let run = |kind| {
            pool(
                kind,
                store.device().tensor_from_vec(x.to_vec(), (2, 4, 2)),
                &ctx,
            )
            .as_vec()
        };
        let mean = run(PoolKind::Mean);
        for (a, b) in mean.iter().zip([3.0, 4.0 / 3.0, 7.0, 8.0]) {
            assert!((a - b).abs() < 1e-6, "{mean:?}");
        }
        assert_eq!(run(PoolKind::Max), vec![5.0, 6.0, 7.0, 8.0]);
        assert_eq!(run(PoolKind::Last), vec![5.0, 6.0, 7.0, 8.0]);
        assert_eq!(run(PoolKind::First), vec![1.0, 2.0, 7.0, 8.0]);
    }
}
