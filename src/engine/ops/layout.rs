//! Layout changes between (batch, length, channels) activations and per-channel signals (the
//! FFT convolution transforms each channel's time series on its own), parallel and
//! cache-blocked: a task reads and writes runs of [`LANES`] neighbouring channels, one 64-byte
//! cache line of f32, instead of one element per cache line at a stride of the channel count.

use rayon::prelude::*;

/// Neighbouring channels one task moves together: 16 f32, one cache line.
pub(crate) const LANES: usize = 16;

/// dst[b, c, r] ⊕= src[b, r, c] for src (batch, rows, cols), with ⊕ given by `combine`
/// (`|d, s| *d = s` to overwrite, `|d, s| *d += s` to accumulate). Parallel over batches and
/// over blocks of [`LANES`] destination rows.
pub(crate) fn transpose_batched<E: Copy + Send + Sync>(
    dst: &mut [E],
    src: &[E],
    (batch, rows, cols): (usize, usize, usize),
    combine: impl Fn(&mut E, E) + Sync,
) {
    let size = rows * cols;
    assert!(
        dst.len() == batch * size && src.len() == batch * size,
        "transpose of {batch} × {rows} × {cols}: buffers of {} and {} elements",
        dst.len(),
        src.len()
    );
    if size == 0 {
        return;
    }
    dst.par_chunks_mut(size)
        .zip(src.par_chunks(size))
        .for_each(|(dst, src)| {
            dst.par_chunks_mut(LANES * rows)
                .enumerate()
                .for_each(|(block, dst)| {
                    let first = block * LANES;
                    let lanes = dst.len() / rows;
                    for (r, src_row) in src.chunks_exact(cols).enumerate() {
                        for (j, &v) in src_row[first..first + lanes].iter().enumerate() {
                            combine(&mut dst[j * rows + r], v);
                        }
                    }
                });
        });
}

/// Writes the time series of channels `first …` of x (batch, len, width) into `signals`, one
/// series of `len` values at the start of each `stride`-long chunk (the rest is left as it
/// is). Channel i is (b, h) = (i / width, i % width), so neighbouring channels are read as
/// runs of one row of x.
pub(crate) fn gather_series<E: Copy>(
    signals: &mut [E],
    stride: usize,
    x: &[E],
    (len, width): (usize, usize),
    first: usize,
) {
    let starts: Vec<usize> = (first..first + signals.len() / stride)
        .map(|i| (i / width) * len * width + i % width)
        .collect();
    for t in 0..len {
        for (j, &start) in starts.iter().enumerate() {
            signals[j * stride + t] = x[start + t * width];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(src: &[f64], (batch, rows, cols): (usize, usize, usize)) -> Vec<f64> {
        let mut t = vec![0.0; src.len()];
        for b in 0..batch {
            for r in 0..rows {
                for c in 0..cols {
                    t[(b * cols + c) * rows + r] = src[(b * rows + r) * cols + c];
                }
            }
        }
        t
    }

    #[test]
    fn batched_transpose_overwrites_and_accumulates() {
        // Column counts below, at and across the block of 16, one of them odd.
        for shape in [(1, 3, 5), (2, 7, 16), (3, 5, 37), (2, 40, 33)] {
            let n = shape.0 * shape.1 * shape.2;
            let src: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let mut dst = vec![0.0; n];
            transpose_batched(&mut dst, &src, shape, |d, s| *d = s);
            assert_eq!(dst, naive(&src, shape), "{shape:?}");
            transpose_batched(&mut dst, &src, shape, |d, s| *d += s);
            let doubled: Vec<f64> = naive(&src, shape).iter().map(|v| 2.0 * v).collect();
            assert_eq!(dst, doubled, "{shape:?}");
        }
    }

    #[test]
    fn gathered_series_are_the_columns_across_batches() {
        let (batch, len, width) = (3, 4, 5);
        let x: Vec<f64> = (0..batch * len * width).map(|i| i as f64).collect();
        let columns = naive(&x, (batch, len, width));
        // Channels 3 … 8 span the first two examples; chunks of 6 leave two values untouched.
        let stride = 6;
        let mut signals = vec![-1.0; 6 * stride];
        gather_series(&mut signals, stride, &x, (len, width), 3);
        for (j, chunk) in signals.chunks(stride).enumerate() {
            let i = 3 + j;
            assert_eq!(
                &chunk[..len],
                &columns[i * len..(i + 1) * len],
                "channel {i}"
            );
            assert_eq!(&chunk[len..], &[-1.0, -1.0]);
        }
    }
}
