//! The attention softmax's exponentials in AVX-512 intrinsics: one pass that computes
//! xᵢ ← e^{xᵢ − shift} and accumulates Σ xᵢ in a register (the portable body in the parent
//! module makes two passes, and its auto-vectorised exp builds 2ⁿ with integer lanes).
//!
//! Same Cephes `expf` as the parent: x clamped to [−87, 88], Cody–Waite reduction
//! x = n·ln2 + r with n = round(x·log₂e) and ln2 split in two, the degree-6 polynomial for eʳ,
//! then eˣ = eʳ·2ⁿ by `vscalefps`. Lanes below −87 (masked scores: −∞) give exactly 0;
//! NaN stays NaN, so a diverging run still shows in its loss.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::{EXP_HIGHEST, EXP_LOWEST};

/// e^x lane by lane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp16(x: __m512) -> __m512 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer
                                     // max/min return their second operand when either is NaN: NaN goes through.
    let xc = _mm512_min_ps(
        _mm512_set1_ps(EXP_HIGHEST),
        _mm512_max_ps(_mm512_set1_ps(EXP_LOWEST), x),
    );
    let round = _mm512_set1_ps(ROUND);
    let n = _mm512_sub_ps(
        _mm512_fmadd_ps(xc, _mm512_set1_ps(std::f32::consts::LOG2_E), round),
        round,
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), xc);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    // eʳ = p·r² + r + 1.
    let er = _mm512_fmadd_ps(
        _mm512_mul_ps(p, r),
        r,
        _mm512_add_ps(r, _mm512_set1_ps(1.0)),
    );
    // Not-less-than, unordered: NaN lanes are kept.
    let kept = _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(x, _mm512_set1_ps(EXP_LOWEST));
    _mm512_maskz_mov_ps(kept, _mm512_scalef_ps(er, n))
}

/// xᵢ ← e^{xᵢ − shift}; returns Σ xᵢ.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn exp_shift_sum(row: &mut [f32], shift: f32) -> f32 {
    let s = _mm512_set1_ps(shift);
    let mut acc = _mm512_setzero_ps();
    let mut chunks = row.chunks_exact_mut(16);
    for c in &mut chunks {
        let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(c.as_ptr()), s));
        _mm512_storeu_ps(c.as_mut_ptr(), e);
        acc = _mm512_add_ps(acc, e);
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let m = ((1u32 << tail.len()) - 1) as __mmask16;
        let e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, tail.as_ptr()), s));
        _mm512_mask_storeu_ps(tail.as_mut_ptr(), m, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(m, e));
    }
    _mm512_reduce_add_ps(acc)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn available() -> bool {
        let yes = std::is_x86_feature_detected!("avx512f");
        if !yes {
            eprintln!("no AVX-512 on this CPU: kernel not exercised");
        }
        yes
    }

    /// Against f64's exp over [−87, 88] (after the shift), in rows whose lengths leave every
    /// tail length.
    #[test]
    fn matches_the_exact_exponential_and_its_sum() {
        if !available() {
            return;
        }
        let x: Vec<f32> = (-8650..=8850).map(|i| i as f32 * 0.01).collect();
        let mut worst = 0.0f64;
        for len in [1, 15, 16, 17, 37] {
            for row in x.chunks(len) {
                let shift = 0.5f32;
                let mut out = row.to_vec();
                // SAFETY: AVX-512F is available (checked above).
                let sum = unsafe { exp_shift_sum(&mut out, shift) };
                let mut exact_sum = 0.0f64;
                for (&o, &v) in out.iter().zip(row) {
                    // The argument as the kernel rounds it (x − shift in f32).
                    let exact = ((v - shift) as f64).exp();
                    exact_sum += exact;
                    worst = worst.max((o as f64 - exact).abs() / exact);
                }
                // (Sums near the top of the range overflow f32, as they should.)
                if exact_sum < 1e38 {
                    let sum_error = (sum as f64 - exact_sum).abs() / exact_sum;
                    assert!(sum_error < 1e-6, "sum of {row:?}: {sum_error}");
                }
            }
        }
        assert!(worst < 3e-7, "relative error {worst}");
    }

    #[test]
    fn masked_scores_give_zero_and_nan_stays() {
        if !available() {
            return;
        }
        let mut row = [f32::NEG_INFINITY, -100.0, 0.0, f32::NAN];
        // SAFETY: AVX-512F is available (checked above).
        let sum = unsafe { exp_shift_sum(&mut row, 0.0) };
        assert_eq!(&row[..3], &[0.0, 0.0, 1.0]);
        assert!(row[3].is_nan() && sum.is_nan());
    }
}
