//! Eigendecomposition of a Hermitian matrix by the cyclic Jacobi method (Golub & Van Loan,
//! "Matrix Computations", §8.5, with the complex rotation that first makes the pivot real):
//! each rotation zeroes one off-diagonal pair, sweeps repeat until the off-diagonal mass
//! vanishes. Quadratically convergent and accurate to machine precision, which S4's
//! initialisation needs (the eigenvectors turn HiPPO's B and P into the diagonal basis).

use num_complex::Complex64;

use super::Matrix;

/// Eigenvalues (ascending) and the unitary matrix of eigenvectors (as columns, in the same
/// order) of the Hermitian matrix `a`: a = V diag(values) V*.
pub(crate) fn eigh(a: &Matrix) -> (Vec<f64>, Matrix) {
    let n = a.n;
    let mut a = a.clone();
    let mut v = Matrix::identity(n);
    let scale = a
        .data
        .iter()
        .map(|x| x.norm_sqr())
        .sum::<f64>()
        .sqrt()
        .max(1e-300);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a.at(i, j).norm_sqr())
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                rotate(&mut a, &mut v, p, q);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a.at(i, i).re.total_cmp(&a.at(j, j).re));
    let values = order.iter().map(|&i| a.at(i, i).re).collect();
    let vectors = Matrix::from_fn(n, |i, j| v.at(i, order[j]));
    (values, vectors)
}

/// a ← G* a G and v ← v G for the unitary G on coordinates (p, q) that zeroes a[p][q]:
/// G = diag(1, e^{−iφ}) · [[c, s], [−s, c]] with φ = arg a[p][q], so the middle matrix is the
/// real symmetric Jacobi rotation of [[a_pp, |a_pq|], [|a_pq|, a_qq]].
fn rotate(a: &mut Matrix, v: &mut Matrix, p: usize, q: usize) {
    let h = a.at(p, q);
    let magnitude = h.norm();
    if magnitude < 1e-300 {
        return;
    }
    let phase = h / magnitude; // e^{iφ}
    let tau = (a.at(q, q).re - a.at(p, p).re) / (2.0 * magnitude);
    let t = tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt());
    let t = if tau == 0.0 { 1.0 } else { t };
    let c = 1.0 / (1.0 + t * t).sqrt();
    let s = t * c;
    // Columns p and q of G: (c, −s·e^{−iφ}) and (s, c·e^{−iφ}).
    let g_qp = -s * phase.conj();
    let g_qq = c * phase.conj();
    let n = a.n;
    for k in 0..n {
        let (akp, akq) = (a.at(k, p), a.at(k, q));
        *a.at_mut(k, p) = akp * c + akq * g_qp;
        *a.at_mut(k, q) = akp * s + akq * g_qq;
        let (vkp, vkq) = (v.at(k, p), v.at(k, q));
        *v.at_mut(k, p) = vkp * c + vkq * g_qp;
        *v.at_mut(k, q) = vkp * s + vkq * g_qq;
    }
    for k in 0..n {
        let (apk, aqk) = (a.at(p, k), a.at(q, k));
        *a.at_mut(p, k) = apk * c + aqk * g_qp.conj();
        *a.at_mut(q, k) = apk * s + aqk * g_qq.conj();
    }
    *a.at_mut(p, q) = Complex64::default();
    *a.at_mut(q, p) = Complex64::default();
}
