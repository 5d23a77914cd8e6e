//! An AVX-512 matrix kernel for f32, C (m × n) (+)= s · A·B with B row-major: each step
//! broadcasts one element of A and multiplies it with 32 consecutive elements of a row of B
//! (two 16-lane registers), accumulating an 8 × 32 tile of C in 16 registers (the outer-
//! product formulation of Goto & van de Geijn 2008). The `gemm` crate dfdx uses stops at AVX2
//! on stable Rust, so on CPUs with AVX-512 this doubles the work per instruction.
//!
//! Loop order and packing, as in Goto & van de Geijn §6: for each depth block of k and each
//! 32-column panel of B, every row tile of C runs against that one panel, so the panel is read
//! from L1 by all of them. When several row tiles share a panel whose rows alias in L1 it is
//! first copied contiguous (depth × 32, [`PANEL`]): in place its rows lie a row of B apart,
//! and at the linear layers' power-of-two widths (512 columns: 2 KiB) they all fall on two of
//! L1's 64 sets, so each tile re-read the panel from L2.
//!
//! A is any strided matrix (so Aᵀ costs nothing); B must have unit column stride.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::blas::MatRef;

/// Rows of C per register tile.
const TILE_ROWS: usize = 8;
/// Depth of one pass over k, so the B panel of a pass stays in cache.
const DEPTH: usize = 256;
/// Columns of C per register tile, and the width of a packed panel of B.
const PANEL: usize = 32;
/// Row tiles of C that must share a panel of B before it is worth packing.
const PACK_MIN_TILES: usize = 2;
/// B's rows are packed when their stride is a multiple of this many elements (512 bytes): the
/// rows of a panel then fall on at most an eighth of the L1 sets. Operands the engine lays out
/// itself (attention's heads: strides of 32 elements or an odd number of cache lines) are
/// already L1-friendly, and copying them measured slower.
const ALIASING_STRIDE: usize = 128;

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// Each thread's packed panel of B (depth × [`PANEL`]), reused between calls.
    static PACKED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Copies rows `k0..k0 + depth`, columns `j0..j0 + width` of B into `dst`, rows [`PANEL`] apart.
#[cfg(target_arch = "x86_64")]
fn pack_panel(
    b: &MatRef<'_, f32>,
    k0: usize,
    depth: usize,
    j0: usize,
    width: usize,
    dst: &mut Vec<f32>,
) {
    dst.resize(depth * PANEL, 0.0);
    for (p, row) in dst.chunks_exact_mut(PANEL).enumerate() {
        let at = (k0 + p) * b.row_stride + j0;
        row[..width].copy_from_slice(&b.data[at..at + width]);
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn available() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lane_mask(width: usize) -> __mmask16 {
    if width >= 16 {
        0xFFFF
    } else {
        ((1u32 << width) - 1) as __mmask16
    }
}

/// Raw operands of one tile; the caller guarantees every addressed element is in bounds.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Tile {
    c: *mut f32,
    ldc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    ldb: usize,
    k: usize,
    width: usize,
}

/// C[R × width] = (accumulate ? C : 0) + scale · A[R × k]·B[k × width], width ≤ 32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize>(t: Tile, scale: f32, accumulate: bool) {
    let (m0, m1) = (lane_mask(t.width), lane_mask(t.width.saturating_sub(16)));
    let mut acc0 = [_mm512_setzero_ps(); R];
    let mut acc1 = [_mm512_setzero_ps(); R];
    for p in 0..t.k {
        let row = t.b.add(p * t.ldb);
        let b0 = _mm512_maskz_loadu_ps(m0, row);
        let b1 = _mm512_maskz_loadu_ps(m1, row.add(16));
        for r in 0..R {
            let a = _mm512_set1_ps(*t.a.add(r * t.a_rs + p * t.a_cs));
            acc0[r] = _mm512_fmadd_ps(a, b0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(a, b1, acc1[r]);
        }
    }
    let s = _mm512_set1_ps(scale);
    for r in 0..R {
        let out = t.c.add(r * t.ldc);
        let (mut v0, mut v1) = (_mm512_mul_ps(acc0[r], s), _mm512_mul_ps(acc1[r], s));
        if accumulate {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, out));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, out.add(16)));
        }
        _mm512_mask_storeu_ps(out, m0, v0);
        _mm512_mask_storeu_ps(out.add(16), m1, v1);
    }
}

/// `dst = scale·a·b` or `dst += scale·a·b`; returns false (doing nothing) when the CPU lacks
/// AVX-512 or `b` is not row-major, so the caller falls back to the `gemm` crate.
pub(crate) fn gemm(
    dst: &mut [f32],
    dst_row_stride: usize,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    scale: f32,
    accumulate: bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if b.col_stride != 1 || !available() {
            return false;
        }
        let (m, n, k) = (a.rows, b.cols, a.cols);
        assert_eq!(k, b.rows, "inner dimensions differ");
        if m == 0 || n == 0 {
            return true;
        }
        a.check();
        b.check();
        assert!(
            (m - 1) * dst_row_stride + n <= dst.len(),
            "destination out of bounds"
        );
        if k == 0 {
            if !accumulate {
                for r in 0..m {
                    dst[r * dst_row_stride..r * dst_row_stride + n].fill(0.0);
                }
            }
            return true;
        }
        let pack = m >= PACK_MIN_TILES * TILE_ROWS && b.row_stride.is_multiple_of(ALIASING_STRIDE);
        PACKED.with_borrow_mut(|packed| {
            for k0 in (0..k).step_by(DEPTH) {
                let depth = DEPTH.min(k - k0);
                let acc = accumulate || k0 > 0;
                for j0 in (0..n).step_by(PANEL) {
                    let width = (n - j0).min(PANEL);
                    let (b_panel, ldb) = if pack {
                        pack_panel(&b, k0, depth, j0, width, packed);
                        (packed.as_ptr(), PANEL)
                    } else {
                        (b.data[k0 * b.row_stride + j0..].as_ptr(), b.row_stride)
                    };
                    let mut i0 = 0;
                    while i0 < m {
                        let rows = if m - i0 >= TILE_ROWS { TILE_ROWS } else { 1 };
                        let t = Tile {
                            c: dst[i0 * dst_row_stride + j0..].as_mut_ptr(),
                            ldc: dst_row_stride,
                            a: a.data[i0 * a.row_stride + k0 * a.col_stride..].as_ptr(),
                            a_rs: a.row_stride,
                            a_cs: a.col_stride,
                            b: b_panel,
                            ldb,
                            k: depth,
                            width,
                        };
                        // SAFETY: AVX-512F is available (checked above). The tile reads A at
                        // rows i0..i0+rows, columns k0..k0+depth; B (or its packed copy of
                        // `depth` rows, PANEL apart) at rows k0..k0+depth, columns j0..j0+width
                        // (lanes past `width` are masked off, so never touched); and writes C
                        // at rows i0..i0+rows, columns j0..j0+width: all inside the slices by
                        // the bounds checks above.
                        unsafe {
                            if rows == TILE_ROWS {
                                tile::<TILE_ROWS>(t, scale, acc);
                            } else {
                                tile::<1>(t, scale, acc);
                            }
                        }
                        i0 += rows;
                    }
                }
            }
        });
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dst, dst_row_stride, a, b, scale, accumulate);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_naive_product_on_ragged_sizes() {
        if !available() {
            eprintln!("no AVX-512 on this CPU: kernel not exercised");
            return;
        }
        // (m, n, k, row stride of B): ragged tiles and panels, depths past one pass, and
        // strides that are multiples of ALIASING_STRIDE with several row tiles (B packed).
        for &(m, n, k, ldb) in &[
            (1, 1, 1, 1),
            (9, 33, 300, 33),
            (17, 16, 5, 16),
            (8, 64, 32, 64),
            (3, 47, 513, 47),
            (21, 128, 300, 128),
            (16, 40, 257, 256),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
            let b: Vec<f32> = (0..k * ldb)
                .map(|i| ((i * 13) % 7) as f32 * 0.5 - 1.0)
                .collect();
            let mut c = vec![1.0f32; m * n];
            // A given transposed (k × m storage) to exercise the strided path.
            let at: Vec<f32> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
            let lhs = MatRef::rows(&at, k, m, m).t();
            assert!(gemm(&mut c, n, lhs, MatRef::rows(&b, k, n, ldb), 0.5, true));
            for i in 0..m {
                for j in 0..n {
                    let dot: f32 = (0..k).map(|p| a[i * k + p] * b[p * ldb + j]).sum();
                    let want = 1.0 + 0.5 * dot;
                    assert!(
                        (c[i * n + j] - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{m}×{n}×{k} at ({i},{j})"
                    );
                }
            }
        }
    }
}
