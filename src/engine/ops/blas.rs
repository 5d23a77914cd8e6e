//! A safe wrapper over the `gemm` crate (the same kernels dfdx's CPU matmul uses) for the small
//! block products inside fused kernels. Each call runs single-threaded: the callers already
//! parallelise over independent work.

use super::KernelFloat;

/// A read-only strided matrix: element (r, c) lives at `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a, E> {
    pub data: &'a [E],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a, E> MatRef<'a, E> {
    /// Row-major `rows × cols` starting at `data[0]`, rows `row_stride` apart.
    pub fn rows(data: &'a [E], rows: usize, cols: usize, row_stride: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// Rows `start..start + count` of this matrix, without copying.
    pub(crate) fn row_block(self, start: usize, count: usize) -> Self {
        MatRef {
            data: &self.data[(start * self.row_stride).min(self.data.len())..],
            rows: count,
            ..self
        }
    }

    /// Columns `start..start + count` of this matrix, without copying.
    pub(crate) fn col_block(self, start: usize, count: usize) -> Self {
        MatRef {
            data: &self.data[(start * self.col_stride).min(self.data.len())..],
            cols: count,
            ..self
        }
    }

    /// The transpose of a row-major matrix, without copying.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Panics unless every element the view addresses lies inside its slice.
    pub(crate) fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// A row stride for a packed matrix whose rows hold `len` elements of 4 bytes: at least `len`,
/// and an odd number of 64-byte cache lines, so that consecutive rows (the rows a block
/// product streams through one register tile) map to distinct L1 sets. At a power-of-two
/// stride such as 1,024 elements (4 KiB) every row would share one set and miss on each pass.
pub(crate) fn padded_stride(len: usize) -> usize {
    16 * (len.div_ceil(16) | 1)
}

/// The transpose of a row-major `rows × cols` matrix, as a row-major `cols × rows` one (so it
/// can be the right operand of [`gemm`], whose AVX-512 path needs unit column stride there).
pub(crate) fn transpose<E: Copy + Default>(m: &[E], rows: usize, cols: usize) -> Vec<E> {
    let mut t = vec![E::default(); m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// `dst = scale · a · b` (or `dst += scale · a · b` when `accumulate`), with `dst` row-major
/// `a.rows × b.cols`, rows `dst_row_stride` apart.
pub fn gemm<E: KernelFloat>(
    dst: &mut [E],
    dst_row_stride: usize,
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    scale: E,
    accumulate: bool,
) {
    if !E::fast_gemm(dst, dst_row_stride, a, b, scale, accumulate) {
        gemm_crate(dst, dst_row_stride, a, b, scale, accumulate);
    }
}

/// The same product by the `gemm` crate (the kernels dfdx's CPU matmul uses), single-threaded:
/// the fallback where the engine's kernel does not apply, and the reference it is measured
/// against (`benches/matmul`).
pub fn gemm_crate<E: KernelFloat>(
    dst: &mut [E],
    dst_row_stride: usize,
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    scale: E,
    accumulate: bool,
) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    a.check();
    b.check();
    assert!(
        (m - 1) * dst_row_stride + n <= dst.len(),
        "destination out of bounds"
    );
    // SAFETY: every element the kernel touches is inside the slices, checked above
    // (last offsets of `a`, `b` and `dst`); `dst` is borrowed mutably, so it cannot alias.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            E::one(),
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_and_transposes_match_a_naive_loop() {
        let a: Vec<f64> = (0..6).map(|x| x as f64).collect(); // 2×3
        let b: Vec<f64> = (0..12).map(|x| (x as f64) * 0.5 - 2.0).collect(); // 3×4
        let mut c = vec![1.0; 8];
        gemm(
            &mut c,
            4,
            MatRef::rows(&a, 2, 3, 3),
            MatRef::rows(&b, 3, 4, 4),
            2.0,
            true,
        );
        for i in 0..2 {
            for j in 0..4 {
                let dot: f64 = (0..3).map(|p| a[i * 3 + p] * b[p * 4 + j]).sum();
                assert_eq!(c[i * 4 + j], 1.0 + 2.0 * dot);
            }
        }
        // (aᵀ)ᵀ·b with a stored transposed (3×2) gives the same product.
        let at: Vec<f64> = (0..6).map(|x| a[(x % 2) * 3 + x / 2]).collect();
        let mut d = vec![0.0; 8];
        gemm(
            &mut d,
            4,
            MatRef::rows(&at, 3, 2, 2).t(),
            MatRef::rows(&b, 3, 4, 4),
            1.0,
            false,
        );
        for (x, y) in d.iter().zip(&c) {
            assert_eq!(2.0 * x + 1.0, *y);
        }
    }
}
