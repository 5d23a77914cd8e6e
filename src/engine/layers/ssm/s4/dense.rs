//! S4's state space written out densely in f64, in the diagonal basis of its full state
//! (N = 2M: the kept modes, then their conjugates): A = diag(λ) − P P*, discretised by the
//! bilinear transform (S4 eq. 3),
//!
//!   Ā = (I − Δ/2·A)⁻¹ (I + Δ/2·A),   B̄ = (I − Δ/2·A)⁻¹ Δ·B.
//!
//! O(N³): the layer uses it once at initialisation, for C̃ = C (I − Ā^L), and the tests use it
//! as the recurrent form that the convolution must equal.

use num_complex::Complex64;

use crate::engine::linalg::Matrix;

/// A half-stored vector [x, conj x] at full size.
pub(crate) fn with_conjugates(half: &[Complex64]) -> Vec<Complex64> {
    half.iter()
        .copied()
        .chain(half.iter().map(|x| x.conj()))
        .collect()
}

/// The discrete system (Ā, B̄) at full size.
pub(crate) struct Discrete {
    pub a: Matrix,
    /// Read by the recurrent oracle of the tests; the kernel needs Ā only.
    #[cfg_attr(not(test), allow(dead_code))]
    pub b: Vec<Complex64>,
}

/// Ā and B̄ for the kept halves of λ, P (none for the diagonal mode) and B, and step Δ.
pub(crate) fn bilinear(
    lambda: &[Complex64],
    p: Option<&[Complex64]>,
    b: &[Complex64],
    dt: f64,
) -> Discrete {
    let lambda = with_conjugates(lambda);
    let n = lambda.len();
    let p = p.map(with_conjugates);
    let a = Matrix::from_fn(n, |i, j| {
        let diagonal = if i == j { lambda[i] } else { 0.0.into() };
        match &p {
            Some(p) => diagonal - p[i] * p[j].conj(),
            None => diagonal,
        }
    });
    let identity = Matrix::identity(n);
    let backward = identity.add_scaled((-dt / 2.0).into(), &a);
    let forward = identity.add_scaled((dt / 2.0).into(), &a);
    let inverse = backward
        .solve(&identity)
        .expect("I − Δ/2·A is invertible when Re λ < 0");
    let b: Vec<Complex64> = with_conjugates(b).into_iter().map(|x| x * dt).collect();
    Discrete {
        a: inverse.mul(&forward),
        b: inverse.mul_vec(&b),
    }
}

/// I − Ā^L: C̃ = C (I − Ā^L) makes the length-L truncated generating function of (Ā, B̄, C)
/// a rational function that the Cauchy kernel evaluates (S4 Algorithm 1, step 1).
pub(crate) fn truncation(a: &Matrix, len: usize) -> Matrix {
    Matrix::identity(a.n).add_scaled((-1.0).into(), &a.pow(len))
}

/// The row vector c·M.
pub(crate) fn row_times(c: &[Complex64], m: &Matrix) -> Vec<Complex64> {
    (0..m.n)
        .map(|j| c.iter().enumerate().map(|(i, &x)| x * m.at(i, j)).sum())
        .collect()
}
