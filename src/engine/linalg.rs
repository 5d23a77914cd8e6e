//! Small dense complex linear algebra in f64, for the initialisations and test oracles of the
//! state-space layers (HiPPO's eigendecomposition, S4's discrete state matrix and its powers).
//! Sizes are the state size (tens to a few hundred), so plain O(N³) algorithms suffice.

pub mod hermitian;

use num_complex::Complex64;

/// A square complex matrix, row-major.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Matrix {
    pub n: usize,
    pub data: Vec<Complex64>,
}

impl Matrix {
    pub(crate) fn zeros(n: usize) -> Self {
        Matrix {
            n,
            data: vec![Complex64::default(); n * n],
        }
    }

    pub(crate) fn identity(n: usize) -> Self {
        Matrix::from_fn(n, |i, j| if i == j { 1.0.into() } else { 0.0.into() })
    }

    pub fn from_fn(n: usize, f: impl Fn(usize, usize) -> Complex64) -> Self {
        Matrix {
            n,
            data: (0..n * n).map(|k| f(k / n, k % n)).collect(),
        }
    }

    pub fn at(&self, i: usize, j: usize) -> Complex64 {
        self.data[i * self.n + j]
    }

    pub(crate) fn at_mut(&mut self, i: usize, j: usize) -> &mut Complex64 {
        &mut self.data[i * self.n + j]
    }

    /// The conjugate transpose.
    #[cfg(test)]
    pub(crate) fn adjoint(&self) -> Self {
        Matrix::from_fn(self.n, |i, j| self.at(j, i).conj())
    }

    #[cfg(test)]
    pub(crate) fn transpose(&self) -> Self {
        Matrix::from_fn(self.n, |i, j| self.at(j, i))
    }

    pub(crate) fn mul(&self, other: &Matrix) -> Matrix {
        let n = self.n;
        let mut out = Matrix::zeros(n);
        for i in 0..n {
            for k in 0..n {
                let a = self.at(i, k);
                if a == Complex64::default() {
                    continue;
                }
                let row = &other.data[k * n..(k + 1) * n];
                for (o, &b) in out.data[i * n..(i + 1) * n].iter_mut().zip(row) {
                    *o += a * b;
                }
            }
        }
        out
    }

    pub(crate) fn mul_vec(&self, v: &[Complex64]) -> Vec<Complex64> {
        (0..self.n)
            .map(|i| (0..self.n).map(|j| self.at(i, j) * v[j]).sum())
            .collect()
    }

    /// self + s·other.
    pub(crate) fn add_scaled(&self, s: Complex64, other: &Matrix) -> Matrix {
        Matrix {
            n: self.n,
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| a + s * b)
                .collect(),
        }
    }

    /// self^p by repeated squaring.
    pub(crate) fn pow(&self, mut p: usize) -> Matrix {
        let mut result = Matrix::identity(self.n);
        let mut base = self.clone();
        while p > 0 {
            if p & 1 == 1 {
                result = result.mul(&base);
            }
            p >>= 1;
            if p > 0 {
                base = base.mul(&base);
            }
        }
        result
    }

    /// X with self·X = rhs, by Gaussian elimination with partial pivoting; `None` when self
    /// is singular to working precision.
    pub(crate) fn solve(&self, rhs: &Matrix) -> Option<Matrix> {
        let n = self.n;
        let mut a = self.clone();
        let mut x = rhs.clone();
        for col in 0..n {
            let pivot =
                (col..n).max_by(|&i, &j| a.at(i, col).norm().total_cmp(&a.at(j, col).norm()))?;
            if a.at(pivot, col).norm() < 1e-300 {
                return None;
            }
            if pivot != col {
                for j in 0..n {
                    a.data.swap(pivot * n + j, col * n + j);
                    x.data.swap(pivot * n + j, col * n + j);
                }
            }
            let inv = 1.0 / a.at(col, col);
            for row in 0..n {
                if row == col {
                    continue;
                }
                let factor = a.at(row, col) * inv;
                if factor == Complex64::default() {
                    continue;
                }
                for j in 0..n {
                    let (av, xv) = (a.at(col, j), x.at(col, j));
                    *a.at_mut(row, j) -= factor * av;
                    *x.at_mut(row, j) -= factor * xv;
                }
            }
        }
        for row in 0..n {
            let inv = 1.0 / a.at(row, row);
            for j in 0..n {
                *x.at_mut(row, j) *= inv;
            }
        }
        Some(x)
    }

    /// The largest absolute entry of self − other.
    #[cfg(test)]
    pub(crate) fn distance(&self, other: &Matrix) -> f64 {
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests;
