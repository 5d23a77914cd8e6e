//! Eigendecomposition of a small complex Hermitian matrix by the cyclic Jacobi method
//! (Golub & Van Loan, "Matrix Computations", §8.5, extended to Hermitian matrices by first
//! rotating each off-diagonal entry onto the real axis). In f64; O(n³) per sweep, a handful of
//! sweeps for the n ≤ a few hundred of HiPPO blocks. Written here rather than pulling a linear
//! algebra crate in for one initialisation.

use num_complex::Complex64;

/// Eigenvalues in ascending order, and the unitary matrix whose column j is the eigenvector of
/// eigenvalue j, as rows: `vectors[r][j]`.
#[derive(Clone, Debug)]
pub struct HermitianEigen {
    pub values: Vec<f64>,
    pub vectors: Vec<Vec<Complex64>>,
}

const MAX_SWEEPS: usize = 100;

/// The eigendecomposition of the Hermitian matrix `m` (rows; only Hermitian input is
/// meaningful, M = Mᴴ). Panics if `m` is not square.
pub fn hermitian_eigen(m: &[Vec<Complex64>]) -> HermitianEigen {
    let n = m.len();
    assert!(m.iter().all(|row| row.len() == n), "eigh: a square matrix");
    let mut a: Vec<Vec<Complex64>> = m.to_vec();
    let mut v: Vec<Vec<Complex64>> = (0..n)
        .map(|r| {
            (0..n)
                .map(|c| Complex64::new(if r == c { 1.0 } else { 0.0 }, 0.0))
                .collect()
        })
        .collect();
    let scale: f64 = a
        .iter()
        .flatten()
        .map(|z| z.norm_sqr())
        .sum::<f64>()
        .max(1e-300);
    for _ in 0..MAX_SWEEPS {
        let off: f64 = (0..n)
            .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p][q].norm_sqr())
            .sum();
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                rotate(&mut a, &mut v, p, q);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[i][i].re.total_cmp(&a[j][j].re));
    HermitianEigen {
        values: order.iter().map(|&i| a[i][i].re).collect(),
        vectors: v
            .iter()
            .map(|row| order.iter().map(|&j| row[j]).collect())
            .collect(),
    }
}

/// One Jacobi step: A ← Uᴴ A U and V ← V U for the unitary U in the (p, q) plane that zeroes
/// A[p][q]. With A[p][q] = r·e^{iφ}, the phase D = diag(1, e^{−iφ}) makes the (p, q) block real
/// symmetric [[a, r], [r, b]], and the rotation R = [[c, s], [−s, c]] with
/// tan 2θ = 2r / (b − a) zeroes it; U = D·R.
fn rotate(a: &mut [Vec<Complex64>], v: &mut [Vec<Complex64>], p: usize, q: usize) {
    let z = a[p][q];
    let r = z.norm();
    if r < 1e-300 {
        return;
    }
    let phase = Complex64::from_polar(1.0, -z.arg());
    let theta = 0.5 * (2.0 * r).atan2(a[q][q].re - a[p][p].re);
    let (s, c) = theta.sin_cos();
    let (upp, upq) = (Complex64::new(c, 0.0), Complex64::new(s, 0.0));
    let (uqp, uqq) = (-s * phase, c * phase);
    let columns = |m: &mut [Vec<Complex64>]| {
        for row in m.iter_mut() {
            let (xp, xq) = (row[p], row[q]);
            row[p] = xp * upp + xq * uqp;
            row[q] = xp * upq + xq * uqq;
        }
    };
    columns(a);
    columns(v);
    // Rows p and q, borrowed together (p < q).
    let (upper, lower) = a.split_at_mut(q);
    for (xp, xq) in upper[p].iter_mut().zip(lower[0].iter_mut()) {
        let (vp, vq) = (*xp, *xq);
        *xp = upp.conj() * vp + uqp.conj() * vq;
        *xq = upq.conj() * vp + uqq.conj() * vq;
    }
}
