//! HiPPO-LegS and its normal-plus-low-rank form, the initialisation of S4.
//!
//! HiPPO-LegS (Gu, Dao, Ermon, Rudra & Ré 2020; S4 eq. 2) is, for n, k < N,
//!
//!   A_nk = −√(2n+1)·√(2k+1) (n > k),  −(n+1) (n = k),  0 (n < k);   B_n = √(2n+1).
//!
//! With P_n = √(n + ½), S = A + P Pᵀ is −½·I plus a skew-symmetric matrix (S4 Theorem 1 and
//! Appendix C.1), so S is normal: S = V diag(λ) V* with λ = −½ + iω, where the ω are the
//! eigenvalues of the Hermitian matrix −i·(S + ½I), computed here by Jacobi in f64. Then
//! A = V (diag(λ) − P̃ P̃*) V* with P̃ = V*P, and B̃ = V*B.
//!
//! The real matrix's eigenvalues come in conjugate pairs (v, conj v for ±ω), so only the half
//! with ω > 0 is kept (M = N/2 modes); the other half is implicit everywhere. Each eigenvector
//! is free up to a phase; it is fixed so that P̃ is real and positive, which makes the result
//! deterministic.

use num_complex::Complex64;

use crate::engine::linalg::hermitian::eigh;
use crate::engine::linalg::Matrix;

/// HiPPO-LegS of size N: (A, B, P).
pub fn legs(n: usize) -> (Matrix, Vec<f64>, Vec<f64>) {
    let r = |i: usize| ((2 * i + 1) as f64).sqrt();
    let a = Matrix::from_fn(n, |i, j| {
        Complex64::from(match i.cmp(&j) {
            std::cmp::Ordering::Greater => -r(i) * r(j),
            std::cmp::Ordering::Equal => -((i + 1) as f64),
            std::cmp::Ordering::Less => 0.0,
        })
    });
    let b = (0..n).map(r).collect();
    let p = (0..n).map(|i| (i as f64 + 0.5).sqrt()).collect();
    (a, b, p)
}

/// The kept half (Im λ > 0) of HiPPO-LegS in its diagonal basis.
#[derive(Clone, Debug)]
pub struct LegsNplr {
    /// The eigenvalues λ_m = −½ + iω_m, ω_m > 0 ascending (M).
    pub lambda: Vec<Complex64>,
    /// P̃ = V*P (M), real and positive.
    pub p: Vec<Complex64>,
    /// B̃ = V*B (M).
    pub b: Vec<Complex64>,
    /// The eigenvectors, as M columns of length N.
    pub vectors: Vec<Vec<Complex64>>,
}

/// The NPLR form of HiPPO-LegS of (even) size N.
pub fn legs_nplr(n: usize) -> LegsNplr {
    assert!(
        n >= 2 && n.is_multiple_of(2),
        "LegS NPLR needs an even state size"
    );
    let (a, b, p) = legs(n);
    // −i·(A + P Pᵀ + ½I), the Hermitian matrix whose eigenvalues are the ω.
    let hermitian = Matrix::from_fn(n, |i, j| {
        let mut s = a.at(i, j) + p[i] * p[j];
        if i == j {
            s += 0.5;
        }
        s * Complex64::new(0.0, -1.0)
    });
    let (omega, v) = eigh(&hermitian);
    let half = n / 2;
    let mut out = LegsNplr {
        lambda: Vec::with_capacity(half),
        p: Vec::with_capacity(half),
        b: Vec::with_capacity(half),
        vectors: Vec::with_capacity(half),
    };
    for (m, &w) in omega.iter().enumerate().skip(n - half) {
        let column: Vec<Complex64> = (0..n).map(|i| v.at(i, m)).collect();
        // ⟨v, x⟩ = v*x for a real x.
        let project = |x: &[f64], v: &[Complex64]| -> Complex64 {
            v.iter().zip(x).map(|(v, &x)| v.conj() * x).sum()
        };
        let raw = project(&p, &column);
        // v ← v·e^{iα} turns v*P into e^{−iα}·v*P: choose α = arg(v*P).
        let phase = if raw.norm() > 0.0 {
            raw / raw.norm()
        } else {
            Complex64::new(1.0, 0.0)
        };
        let column: Vec<Complex64> = column.into_iter().map(|x| x * phase).collect();
        out.lambda.push(Complex64::new(-0.5, w));
        out.p.push(project(&p, &column));
        out.b.push(project(&b, &column));
        out.vectors.push(column);
    }
    out
}

#[cfg(test)]
mod tests;
