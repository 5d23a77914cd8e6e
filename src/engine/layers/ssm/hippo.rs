//! The HiPPO-LegS matrix and the diagonalisation of its normal part, the initialisation of
//! diagonal state-space models (S5: Smith, Warrington & Linderman 2023, §4.1 and appendix B;
//! S4D-LegS: Gu, Gupta, Goel & Ré 2022, §4).
//!
//! - HiPPO-LegS (Gu, Dao, Ermon, Rudra & Ré 2020, eq. 29 with the sign of a stable system):
//!   A_nk = −√(2n+1)·√(2k+1) for n > k, −(n+1) for n = k, 0 for n < k.
//! - Normal plus low rank (Gu, Goel & Ré 2022, "S4", §3.3 and Corollary 3.1): with
//!   p_n = √(n + ½), S = A + p·pᵀ is normal: S = −½·I + K with K skew-symmetric,
//!   K_nk = −½·√(2n+1)·√(2k+1)·sign(n − k). The S5 paper calls S "HiPPO-N".
//! - Diagonalisation: −i·K is Hermitian, so −i·K = V·diag(μ)·Vᴴ with real μ and unitary V
//!   (Jacobi, [`eigh`]), hence S = V·diag(−½ + i·μ)·Vᴴ and V⁻¹ = Vᴴ. K is real, so the
//!   eigenvalues come in conjugate pairs ±μ with conjugate eigenvectors.
//! - S4's NPLR form ([`legs_nplr`]): A = V (diag(Λ) − P̃ P̃ᴴ) Vᴴ with P̃ = VᴴP and B̃ = VᴴB, on
//!   the kept half of the modes (S4 Theorem 1 and Appendix C.1).

use num_complex::Complex64;

use crate::engine::linalg::hermitian::eigh;
use crate::engine::linalg::Matrix as Dense;

/// A square matrix as rows.
pub(crate) type Matrix<T> = Vec<Vec<T>>;

/// The N×N HiPPO-LegS state matrix A.
pub fn legs(n: usize) -> Matrix<f64> {
    let root = |k: usize| ((2 * k + 1) as f64).sqrt();
    (0..n)
        .map(|row| {
            (0..n)
                .map(|col| match row.cmp(&col) {
                    std::cmp::Ordering::Greater => -root(row) * root(col),
                    std::cmp::Ordering::Equal => -((row + 1) as f64),
                    std::cmp::Ordering::Less => 0.0,
                })
                .collect()
        })
        .collect()
}

/// HiPPO-LegS's input vector B: B_n = √(2n+1).
pub(crate) fn legs_input(n: usize) -> Vec<f64> {
    (0..n).map(|k| ((2 * k + 1) as f64).sqrt()).collect()
}

/// The rank-one correction p with A + p·pᵀ normal: p_n = √(n + ½).
pub(crate) fn legs_low_rank(n: usize) -> Vec<f64> {
    (0..n).map(|k| (k as f64 + 0.5).sqrt()).collect()
}

/// S = A + p·pᵀ, the normal part of HiPPO-LegS (HiPPO-N).
pub(crate) fn normal_part(n: usize) -> Matrix<f64> {
    let p = legs_low_rank(n);
    legs(n)
        .into_iter()
        .enumerate()
        .map(|(row, values)| {
            values
                .into_iter()
                .enumerate()
                .map(|(col, a)| a + p[row] * p[col])
                .collect()
        })
        .collect()
}

/// S = V·diag(Λ)·Vᴴ with V unitary.
#[derive(Clone, Debug)]
pub(crate) struct Diagonalisation {
    /// Λ, ordered by ascending imaginary part (the order of `eigh`, as the reference S5
    /// `make_DPLR_HiPPO`): the first half are the conjugates of the second half, reversed.
    pub eigenvalues: Vec<Complex64>,
    /// V as rows: `eigenvectors[r][j]` is component r of the eigenvector of Λ_j.
    pub eigenvectors: Matrix<Complex64>,
}

/// The eigendecomposition of the N×N HiPPO-N matrix, computed in f64.
pub(crate) fn diagonalise_normal(n: usize) -> Diagonalisation {
    let s = normal_part(n);
    // The diagonal of S is −½ throughout; the rest is the skew-symmetric K.
    let real = -0.5;
    let minus_i_k = Dense::from_fn(n, |row, col| {
        let k = if row == col { 0.0 } else { s[row][col] };
        Complex64::new(0.0, -k)
    });
    let (values, vectors) = eigh(&minus_i_k);
    Diagonalisation {
        eigenvalues: values.iter().map(|&mu| Complex64::new(real, mu)).collect(),
        eigenvectors: (0..n)
            .map(|row| (0..n).map(|col| vectors.at(row, col)).collect())
            .collect(),
    }
}

/// The kept half (Im λ > 0) of HiPPO-LegS in its diagonal basis: S4's NPLR initialisation.
#[derive(Clone, Debug)]
pub(crate) struct LegsNplr {
    /// The eigenvalues λ_m = −½ + iω_m, ω_m > 0 ascending (M = N/2).
    pub lambda: Vec<Complex64>,
    /// P̃ = VᴴP (M), real and positive.
    pub p: Vec<Complex64>,
    /// B̃ = VᴴB (M).
    pub b: Vec<Complex64>,
    /// The eigenvectors, as M columns of length N.
    pub vectors: Vec<Vec<Complex64>>,
}

/// The NPLR form of HiPPO-LegS of (even) size N. The real matrix's modes come in conjugate
/// pairs, so only the half with ω > 0 is kept; the other half is implicit everywhere. Each
/// eigenvector is free up to a phase, fixed here so that P̃ is real and positive, which makes
/// the result deterministic.
pub(crate) fn legs_nplr(n: usize) -> LegsNplr {
    assert!(
        n >= 2 && n.is_multiple_of(2),
        "LegS NPLR needs an even state size"
    );
    let (b, p) = (legs_input(n), legs_low_rank(n));
    let Diagonalisation {
        eigenvalues,
        eigenvectors,
    } = diagonalise_normal(n);
    let half = n / 2;
    let mut out = LegsNplr {
        lambda: Vec::with_capacity(half),
        p: Vec::with_capacity(half),
        b: Vec::with_capacity(half),
        vectors: Vec::with_capacity(half),
    };
    // ⟨v, x⟩ = vᴴx for a real x.
    let project = |x: &[f64], v: &[Complex64]| -> Complex64 {
        v.iter().zip(x).map(|(v, &x)| v.conj() * x).sum()
    };
    // Ascending imaginary parts: the last half are the ω > 0.
    for (m, &lambda) in eigenvalues.iter().enumerate().skip(n - half) {
        let column: Vec<Complex64> = (0..n).map(|i| eigenvectors[i][m]).collect();
        let raw = project(&p, &column);
        // v ← v·e^{iα} turns vᴴP into e^{−iα}·vᴴP: choose α = arg(vᴴP).
        let phase = if raw.norm() > 0.0 {
            raw / raw.norm()
        } else {
            Complex64::new(1.0, 0.0)
        };
        let column: Vec<Complex64> = column.into_iter().map(|x| x * phase).collect();
        out.lambda.push(lambda);
        out.p.push(project(&p, &column));
        out.b.push(project(&b, &column));
        out.vectors.push(column);
    }
    out
}

#[cfg(test)]
mod tests;
