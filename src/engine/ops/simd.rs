//! Vectorised row helpers for the attention softmax, the kernels' hottest element-wise loops.
//!
//! f32 uses a branch-free exp (Cephes `expf`: Cody–Waite reduction x = n·ln2 + r, a degree-6
//! polynomial for eʳ on |r| ≤ ln2/2, 2ⁿ built in the exponent bits; relative error ≈ 1e-7),
//! compiled for AVX2+FMA when the CPU has them (detected at run time, so the binary stays
//! portable) and auto-vectorised otherwise. f64 (gradient checks only) uses `f64::exp`.

use super::blas::MatRef;

mod exp512;

/// Below this, eˣ underflows f32; masked scores (−∞) land here and give exactly 0.
const EXP_LOWEST: f32 = -87.0;
const EXP_HIGHEST: f32 = 88.0;

#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(EXP_LOWEST, EXP_HIGHEST);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    let two_n = f32::from_bits(t.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23);
    if x < EXP_LOWEST {
        0.0
    } else {
        er * two_n
    }
}

#[inline(always)]
fn exp_shift_sum_f32_body(row: &mut [f32], shift: f32) -> f32 {
    for x in row.iter_mut() {
        *x = exp_f32(*x - shift);
    }
    let mut acc = [0.0f32; 16];
    let chunks = row.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn max_f32_body(row: &[f32], init: f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = row.chunks_exact(8);
    let mut m = init;
    for &x in chunks.remainder() {
        m = if x > m { x } else { m };
    }
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter().fold(m, |m, &x| if x > m { x } else { m })
}

#[inline(always)]
fn softmax_grad_f32_body(ds: &mut [f32], p: &[f32], delta: f32) {
    for (d, &pv) in ds.iter_mut().zip(p) {
        *d = pv * (*d - delta);
    }
}

/// erfc(z) after Numerical Recipes §6.2 (`erfcc`, Chebyshev fit; relative error < 1.2e-7
/// everywhere), branch-free so it vectorises: t = 1/(1 + |z|/2),
/// erfc(|z|) = t·exp(−z² − 1.26551223 + t·P(t)), erfc(−|z|) = 2 − erfc(|z|).
#[inline(always)]
fn erfc_f32(z: f32) -> f32 {
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let mut p = 0.170_872_77f32;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    let r = t * exp_f32(-a * a - 1.265_512_2 + t * p);
    if z < 0.0 {
        2.0 - r
    } else {
        r
    }
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// The point-wise functions with fused kernels: their values and derivatives in f32 and f64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pointwise {
    /// gelu(x) = x·Φ(x), exact (erf) form.
    Gelu,
    /// silu(x) = x·σ(x) (MEGA's φ_silu).
    Silu,
    /// σ(x) = 1/(1 + e⁻ˣ).
    Sigmoid,
    /// relu(x) = max(x, 0), with relu′(0) = 0 as dfdx's.
    Relu,
}

/// σ(x); e⁻ˣ is clamped to [e⁻⁸⁷, e⁸⁸], so σ is exactly 1 above x = 87 and ≈ 6·10⁻³⁹
/// (not 0) far below, which no gate can tell apart from 0.
#[inline(always)]
fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// out = f(x). Each arm is its own `for` loop, so the match is outside the vectorised code
/// (`for_each` would call `Zip::fold`, which is not inlined into the AVX-512 function and so
/// runs unvectorised).
#[inline(always)]
fn forward_f32_body(f: Pointwise, x: &[f32], out: &mut [f32]) {
    let pairs = out.iter_mut().zip(x);
    match f {
        // gelu(x) = x·Φ(x), Φ(x) = ½·erfc(−x/√2).
        Pointwise::Gelu => {
            for (o, &x) in pairs {
                *o = 0.5 * x * erfc_f32(-x * FRAC_1_SQRT_2);
            }
        }
        Pointwise::Silu => {
            for (o, &x) in pairs {
                *o = x * sigmoid_f32(x);
            }
        }
        Pointwise::Sigmoid => {
            for (o, &x) in pairs {
                *o = sigmoid_f32(x);
            }
        }
        Pointwise::Relu => {
            for (o, &x) in pairs {
                *o = x.max(0.0);
            }
        }
    }
}

/// gx += g·f′(x) (`for` loops, as above).
#[inline(always)]
fn backward_f32_body(f: Pointwise, x: &[f32], g: &[f32], gx: &mut [f32]) {
    let triples = gx.iter_mut().zip(x).zip(g);
    match f {
        // gelu′(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π).
        Pointwise::Gelu => {
            for ((d, &x), &g) in triples {
                let cdf = 0.5 * erfc_f32(-x * FRAC_1_SQRT_2);
                let pdf = FRAC_1_SQRT_2PI * exp_f32(-0.5 * x * x);
                *d += g * (cdf + x * pdf);
            }
        }
        // silu′(x) = σ(x)·(1 + x·(1 − σ(x))).
        Pointwise::Silu => {
            for ((d, &x), &g) in triples {
                let s = sigmoid_f32(x);
                *d += g * s * (1.0 + x * (1.0 - s));
            }
        }
        // σ′(x) = σ(x)·(1 − σ(x)).
        Pointwise::Sigmoid => {
            for ((d, &x), &g) in triples {
                let s = sigmoid_f32(x);
                *d += g * s * (1.0 - s);
            }
        }
        Pointwise::Relu => {
            for ((d, &x), &g) in triples {
                *d += if x > 0.0 { g } else { 0.0 };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_shift_sum(row: &mut [f32], shift: f32) -> f32 {
        super::exp_shift_sum_f32_body(row, shift)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn max(row: &[f32], init: f32) -> f32 {
        super::max_f32_body(row, init)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn softmax_grad(ds: &mut [f32], p: &[f32], delta: f32) {
        super::softmax_grad_f32_body(ds, p, delta)
    }
}

/// The same bodies compiled for AVX-512: twice the lanes per instruction.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Pointwise;

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn forward(f: Pointwise, x: &[f32], out: &mut [f32]) {
        super::forward_f32_body(f, x, out)
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn backward(f: Pointwise, x: &[f32], g: &[f32], gx: &mut [f32]) {
        super::backward_f32_body(f, x, g, gx)
    }

    pub(super) use super::exp512::exp_shift_sum;

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn softmax_grad(ds: &mut [f32], p: &[f32], delta: f32) {
        super::softmax_grad_f32_body(ds, p, delta)
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f") && has_avx2()
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Row operations of the streaming softmax, specialised per element type.
pub trait RowOps: Sized {
    /// xᵢ ← e^{xᵢ − shift} (exactly 0 for xᵢ = −∞); returns Σ xᵢ.
    fn exp_shift_sum(row: &mut [Self], shift: Self) -> Self;
    /// max(init, maxᵢ xᵢ).
    fn row_max(row: &[Self], init: Self) -> Self;
    /// dsᵢ ← pᵢ·(dsᵢ − delta) (the softmax Jacobian-vector product).
    fn softmax_grad(ds: &mut [Self], p: &[Self], delta: Self);
    /// out = f(x).
    fn pointwise_forward(f: Pointwise, x: &[Self], out: &mut [Self]);
    /// gx += g·f′(x).
    fn pointwise_backward(f: Pointwise, x: &[Self], g: &[Self], gx: &mut [Self]);
    /// A faster matrix product for this type and CPU, if there is one; false when the caller
    /// must do the product itself.
    fn fast_gemm(
        _dst: &mut [Self],
        _dst_row_stride: usize,
        _a: MatRef<'_, Self>,
        _b: MatRef<'_, Self>,
        _scale: Self,
        _accumulate: bool,
    ) -> bool {
        false
    }
}

impl RowOps for f32 {
    fn pointwise_forward(f: Pointwise, x: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports AVX-512F, AVX2 and FMA (checked just above).
            return unsafe { avx512::forward(f, x, out) };
        }
        forward_f32_body(f, x, out)
    }

    fn pointwise_backward(f: Pointwise, x: &[f32], g: &[f32], gx: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: as above.
            return unsafe { avx512::backward(f, x, g, gx) };
        }
        backward_f32_body(f, x, g, gx)
    }

    fn fast_gemm(
        dst: &mut [f32],
        dst_row_stride: usize,
        a: MatRef<'_, f32>,
        b: MatRef<'_, f32>,
        scale: f32,
        accumulate: bool,
    ) -> bool {
        super::avx512::gemm(dst, dst_row_stride, a, b, scale, accumulate)
    }

    fn exp_shift_sum(row: &mut [f32], shift: f32) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports AVX-512F, AVX2 and FMA (checked just above).
            return unsafe { avx512::exp_shift_sum(row, shift) };
        }
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2::exp_shift_sum(row, shift) };
        }
        exp_shift_sum_f32_body(row, shift)
    }

    fn row_max(row: &[f32], init: f32) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: as above.
            return unsafe { avx2::max(row, init) };
        }
        max_f32_body(row, init)
    }

    fn softmax_grad(ds: &mut [f32], p: &[f32], delta: f32) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: as above.
            return unsafe { avx512::softmax_grad(ds, p, delta) };
        }
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: as above.
            return unsafe { avx2::softmax_grad(ds, p, delta) };
        }
        softmax_grad_f32_body(ds, p, delta)
    }
}

fn sigmoid_f64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Φ(x) = ½(1 + erf(x/√2)).
fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

impl RowOps for f64 {
    fn pointwise_forward(f: Pointwise, x: &[f64], out: &mut [f64]) {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = match f {
                Pointwise::Gelu => x * normal_cdf(x),
                Pointwise::Silu => x * sigmoid_f64(x),
                Pointwise::Sigmoid => sigmoid_f64(x),
                Pointwise::Relu => x.max(0.0),
            };
        }
    }

    fn pointwise_backward(f: Pointwise, x: &[f64], g: &[f64], gx: &mut [f64]) {
        let inv_sqrt_2pi = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
        for ((d, &x), &g) in gx.iter_mut().zip(x).zip(g) {
            let s = sigmoid_f64(x);
            *d += g * match f {
                Pointwise::Gelu => normal_cdf(x) + x * inv_sqrt_2pi * (-0.5 * x * x).exp(),
                Pointwise::Silu => s * (1.0 + x * (1.0 - s)),
                Pointwise::Sigmoid => s * (1.0 - s),
                Pointwise::Relu => f64::from(u8::from(x > 0.0)),
            };
        }
    }

    fn exp_shift_sum(row: &mut [f64], shift: f64) -> f64 {
        row.iter_mut()
            .map(|x| {
                *x = (*x - shift).exp();
                *x
            })
            .sum()
    }

    fn row_max(row: &[f64], init: f64) -> f64 {
        row.iter().copied().fold(init, f64::max)
    }

    fn softmax_grad(ds: &mut [f64], p: &[f64], delta: f64) {
        for (d, &pv) in ds.iter_mut().zip(p) {
            *d = pv * (*d - delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_and_zero_at_minus_infinity() {
        let mut worst = 0.0f64;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let exact = (x as f64).exp();
            worst = worst.max(((exp_f32(x) as f64) - exact).abs() / exact);
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-100.0), 0.0);
    }

    #[test]
    fn fast_gelu_matches_the_erf_form() {
        fast_matches_f64(Pointwise::Gelu);
    }

    #[test]
    fn fast_silu_sigmoid_and_relu_match_f64() {
        fast_matches_f64(Pointwise::Silu);
        fast_matches_f64(Pointwise::Sigmoid);
        fast_matches_f64(Pointwise::Relu);
    }

    /// The f32 kernels of `f` (value and derivative) against the f64 ones on [−8, 8].
    fn fast_matches_f64(f: Pointwise) {
        let x: Vec<f32> = (-800..=800).map(|i| i as f32 * 0.01).collect();
        let mut fast = vec![0.0; x.len()];
        f32::pointwise_forward(f, &x, &mut fast);
        let mut grad = vec![0.0; x.len()];
        f32::pointwise_backward(f, &x, &vec![1.0; x.len()], &mut grad);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let mut exact = vec![0.0; x.len()];
        f64::pointwise_forward(f, &x64, &mut exact);
        let mut exact_grad = vec![0.0; x.len()];
        f64::pointwise_backward(f, &x64, &vec![1.0; x.len()], &mut exact_grad);
        for i in 0..x.len() {
            assert!(
                (fast[i] as f64 - exact[i]).abs() < 1e-6 * (1.0 + exact[i].abs()),
                "{f:?}({})",
                x[i]
            );
            assert!(
                (grad[i] as f64 - exact_grad[i]).abs() < 1e-6,
                "{f:?}'({})",
                x[i]
            );
        }
    }

    #[test]
    fn row_ops_agree_with_scalar_code() {
        let values: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 113) as f32 * 0.1 - 5.0)
            .collect();
        let mut row = values.clone();
        row[3] = f32::NEG_INFINITY;
        let max = f32::row_max(&row, f32::NEG_INFINITY);
        assert_eq!(
            max,
            values.iter().copied().fold(f32::NEG_INFINITY, f32::max)
        );
        let sum = f32::exp_shift_sum(&mut row, max);
        let expected: Vec<f32> = values
            .iter()
            .enumerate()
            .map(|(i, &x)| if i == 3 { 0.0 } else { (x - max).exp() })
            .collect();
        for (a, b) in row.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-6 * b.max(1e-30) + 1e-12);
        }
        assert!((sum - expected.iter().sum::<f32>()).abs() < 1e-5);
        let mut ds = values.clone();
        f32::softmax_grad(&mut ds, &expected, 0.5);
        for ((d, &p), &v) in ds.iter().zip(&expected).zip(&values) {
            assert_eq!(*d, p * (v - 0.5));
        }
    }
}
