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
//!   ([`eigh`]), hence S = V·diag(−½ + i·μ)·Vᴴ and V⁻¹ = Vᴴ. K is real, so the eigenvalues
//!   come in conjugate pairs ±μ with conjugate eigenvectors.

mod eigh;

use num_complex::Complex64;

pub use eigh::{hermitian_eigen, HermitianEigen};

/// A square matrix as rows.
pub type Matrix<T> = Vec<Vec<T>>;

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

/// The rank-one correction p with A + p·pᵀ normal: p_n = √(n + ½).
pub fn legs_low_rank(n: usize) -> Vec<f64> {
    (0..n).map(|k| (k as f64 + 0.5).sqrt()).collect()
}

/// S = A + p·pᵀ, the normal part of HiPPO-LegS (HiPPO-N).
pub fn normal_part(n: usize) -> Matrix<f64> {
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
pub struct Diagonalisation {
    /// Λ, ordered by ascending imaginary part (the order of `eigh`, as the reference S5
    /// `make_DPLR_HiPPO`): the first half are the conjugates of the second half, reversed.
    pub eigenvalues: Vec<Complex64>,
    /// V as rows: `eigenvectors[r][j]` is component r of the eigenvector of Λ_j.
    pub eigenvectors: Matrix<Complex64>,
}

/// The eigendecomposition of the N×N HiPPO-N matrix, computed in f64.
pub fn diagonalise_normal(n: usize) -> Diagonalisation {
    let s = normal_part(n);
    // The diagonal of S is −½ throughout; the rest is the skew-symmetric K.
    let real = -0.5;
    let minus_i_k: Matrix<Complex64> = s
        .iter()
        .enumerate()
        .map(|(row, values)| {
            values
                .iter()
                .enumerate()
                .map(|(col, &x)| {
                    let k = if row == col { 0.0 } else { x };
                    Complex64::new(0.0, -k)
                })
                .collect()
        })
        .collect();
    let HermitianEigen { values, vectors } = hermitian_eigen(&minus_i_k);
    Diagonalisation {
        eigenvalues: values.iter().map(|&mu| Complex64::new(real, mu)).collect(),
        eigenvectors: vectors,
    }
}

#[cfg(test)]
mod tests;
