//! The token embedding: out[i] = E[ids[i]], rows of a table E (vocab × width).
//! Backward: ∂E[v] = Σ_{i: ids[i] = v} ∂out[i].
//!
//! dfdx's `gather` does both on the calling thread, one element at a time; here the forward
//! copies rows in parallel blocks, and the backward splits the table's rows between tasks,
//! each summing the rows of the tokens it owns (no two tasks write one row, and no partial
//! tables to merge, whatever the vocabulary's size).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{add_into, grad_of, host, take_grad, zeroed, ComposedFloat, KernelFloat};

type Mat<E, D, T> = Tensor<(usize, usize), E, D, T>;

/// Output rows per parallel task in the forward pass.
const ROWS_PER_TASK: usize = 256;

/// Accumulates ∂E for the table rows `first …` of `grad_table`.
fn accumulate_rows<E: KernelFloat>(
    grad_table: &mut [E],
    first: usize,
    ids: &[usize],
    g: &[E],
    width: usize,
) {
    let owned = first..first + grad_table.len() / width;
    for (&id, g) in ids.iter().zip(g.chunks_exact(width)) {
        if owned.contains(&id) {
            let row = id - first;
            add_into(&mut grad_table[row * width..(row + 1) * width], g);
        }
    }
}

/// The embedding on the CPU: table (vocab × width), `ids` (each below vocab) → (ids × width).
pub(crate) fn embedding_cpu<E: KernelFloat, T: Tape<E, Cpu>>(
    table: Mat<E, Cpu, T>,
    ids: &[usize],
) -> Result<Mat<E, Cpu, T>, CpuError> {
    let (vocab, width) = *table.shape();
    if let Some(bad) = ids.iter().find(|&&id| id >= vocab) {
        panic!("embedding: token id {bad} outside the table's {vocab} rows");
    }
    let (table, mut tape) = table.try_contiguous()?.split_tape();
    let values = host(&table)?;
    let mut out = zeroed(ids.len() * width);
    out.par_chunks_mut(ROWS_PER_TASK * width)
        .zip(ids.par_chunks(ROWS_PER_TASK))
        .for_each(|(out, ids)| {
            for (row, &id) in out.chunks_exact_mut(width).zip(ids) {
                row.copy_from_slice(&values[id * width..(id + 1) * width]);
            }
        });
    let out = table
        .device()
        .try_tensor_from_vec(out, (ids.len(), width))?;
    let out_ghost = out.ghost();
    let table = table.ghost();
    let ids = ids.to_vec();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        // Table rows per task: enough tasks for the pool, each scanning every id once.
        let rows_per_task = vocab.div_ceil(4 * rayon::current_num_threads()).max(1);
        grad_of!(grads, &table)
            .par_chunks_mut(rows_per_task * width)
            .enumerate()
            .for_each(|(task, rows)| accumulate_rows(rows, task * rows_per_task, &ids, &g, width));
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The same embedding from dfdx's gather, on any device.
pub(crate) fn embedding_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D>>(
    table: Mat<E, D, T>,
    ids: &[usize],
) -> Mat<E, D, T> {
    let ids = table.device().tensor_from_vec(ids.to_vec(), (ids.len(),));
    table.gather(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    /// Repeated and unused ids, and more tokens than a forward task holds.
    fn ids(n: usize, vocab: usize) -> Vec<usize> {
        (0..n).map(|i| (i * 7 + i / 5) % vocab).collect()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (vocab, width) = (6, 3);
        let ids = [4, 1, 4, 0, 4, 2];
        gradcheck(
            &[random_values(vocab * width, 90)],
            |mut v| {
                let table = v.pop().unwrap().reshape_like(&(vocab, width));
                embedding_cpu(table, &ids)
                    .unwrap()
                    .reshape_like(&(ids.len() * width,))
            },
            1e-6,
        );
    }

    #[test]
    fn fused_matches_dfdx_gather_with_gradients() {
        let dev = Cpu::default();
        // A vocabulary that does not split evenly between tasks.
        let (vocab, width, n) = (37, 19, 700);
        let ids = ids(n, vocab - 2);
        let make = |len, seed| -> Vec<f32> {
            random_values(len, seed).iter().map(|&v| v as f32).collect()
        };
        let table = dev.tensor_from_vec(make(vocab * width, 91), (vocab, width));
        let weights = dev.tensor_from_vec(make(n * width, 92), (n, width));
        let run = |fused: bool| {
            let t = table.leaky_trace();
            let out = if fused {
                embedding_cpu(t, &ids).unwrap()
            } else {
                embedding_composed(t, &ids)
            };
            let value = out.as_vec();
            let grad = (out * weights.clone())
                .sum()
                .backward()
                .get(&table)
                .as_vec();
            (value, grad)
        };
        let ((fv, fg), (cv, cg)) = (run(true), run(false));
        assert_eq!(fv, cv, "rows");
        assert_close(&fg, &cg, 1e-5, "∂table");
    }
}
