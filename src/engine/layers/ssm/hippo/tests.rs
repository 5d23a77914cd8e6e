//! HiPPO-N's diagonalisation against its definition: Λ = −½ + iμ in conjugate pairs, V
//! unitary, V·Λ·Vᴴ = S, and a case small enough to solve by hand.

use num_complex::Complex64;

use super::*;

fn max_error(a: &Matrix<Complex64>, b: impl Fn(usize, usize) -> Complex64) -> f64 {
    let mut worst: f64 = 0.0;
    for (r, row) in a.iter().enumerate() {
        for (c, &x) in row.iter().enumerate() {
            worst = worst.max((x - b(r, c)).norm());
        }
    }
    worst
}

fn product(
    n: usize,
    a: impl Fn(usize, usize) -> Complex64,
    b: impl Fn(usize, usize) -> Complex64,
) -> Matrix<Complex64> {
    (0..n)
        .map(|r| {
            (0..n)
                .map(|c| (0..n).map(|k| a(r, k) * b(k, c)).sum())
                .collect()
        })
        .collect()
}

#[test]
fn the_normal_part_is_minus_half_plus_skew_symmetric() {
    let s = normal_part(7);
    for (r, row) in s.iter().enumerate() {
        for (c, &x) in row.iter().enumerate() {
            let expected = if r == c { -0.5 } else { -s[c][r] };
            assert!((x - expected).abs() < 1e-12, "S[{r}][{c}]");
        }
    }
    // Below the diagonal: −√(2n+1)√(2k+1) + √(n+½)√(k+½) = −½·√(2n+1)√(2k+1).
    assert!((s[3][1] + 0.5 * (7.0f64 * 3.0).sqrt()).abs() < 1e-12);
}

#[test]
fn two_states_by_hand() {
    // S = [[−½, ½√3], [−½√3, −½]]: eigenvalues −½ ± i·½√3.
    let d = diagonalise_normal(2);
    let w = 0.5 * 3f64.sqrt();
    assert!((d.eigenvalues[0] - Complex64::new(-0.5, -w)).norm() < 1e-12);
    assert!((d.eigenvalues[1] - Complex64::new(-0.5, w)).norm() < 1e-12);
}

#[test]
fn eight_states_agree_with_lapack() {
    // Im Λ of HiPPO-N for N = 8 from LAPACK's zheevd (torch.linalg.eigh on −i·S in complex128,
    // as benches/reference/s5_step.py computes it), to the printed precision.
    let lapack = [
        -19.8574, -5.3542, -1.9578, -0.4275, 0.4275, 1.9578, 5.3542, 19.8574,
    ];
    let d = diagonalise_normal(8);
    for (lambda, expected) in d.eigenvalues.iter().zip(lapack) {
        assert!(
            (lambda.im - expected).abs() < 1e-4,
            "{lambda} vs {expected}"
        );
    }
}

#[test]
fn the_diagonalisation_reconstructs_hippo_n() {
    for n in [1, 2, 5, 8, 16, 64] {
        let Diagonalisation {
            eigenvalues,
            eigenvectors: v,
        } = diagonalise_normal(n);
        for lambda in &eigenvalues {
            assert!((lambda.re + 0.5).abs() < 1e-12, "n = {n}: {lambda}");
        }
        // Ascending frequencies in ± pairs.
        for j in 0..n {
            assert!((eigenvalues[j] - eigenvalues[n - 1 - j].conj()).norm() < 1e-8);
            if j > 0 {
                assert!(eigenvalues[j].im >= eigenvalues[j - 1].im);
            }
        }
        let vh = |r: usize, c: usize| v[c][r].conj();
        let identity = product(n, vh, |r, c| v[r][c]);
        let unitary = max_error(&identity, |r, c| {
            Complex64::new(if r == c { 1.0 } else { 0.0 }, 0.0)
        });
        assert!(unitary < 1e-10, "n = {n}: VᴴV − I = {unitary}");
        let v_lambda = |r: usize, c: usize| v[r][c] * eigenvalues[c];
        let rebuilt = product(n, v_lambda, vh);
        let s = normal_part(n);
        let error = max_error(&rebuilt, |r, c| Complex64::new(s[r][c], 0.0));
        assert!(error < 1e-9 * n as f64, "n = {n}: VΛVᴴ − S = {error}");
    }
}

#[test]
fn hermitian_eigen_of_a_general_hermitian_matrix() {
    // A Hermitian matrix with real off-diagonal parts too: M v = μ v for every pair.
    let m: Matrix<Complex64> = vec![
        vec![
            Complex64::new(2.0, 0.0),
            Complex64::new(1.0, -1.0),
            Complex64::new(0.5, 0.0),
        ],
        vec![
            Complex64::new(1.0, 1.0),
            Complex64::new(-1.0, 0.0),
            Complex64::new(0.0, 2.0),
        ],
        vec![
            Complex64::new(0.5, 0.0),
            Complex64::new(0.0, -2.0),
            Complex64::new(0.3, 0.0),
        ],
    ];
    let HermitianEigen { values, vectors } = hermitian_eigen(&m);
    assert!(values.windows(2).all(|w| w[0] <= w[1]));
    for (j, &mu) in values.iter().enumerate() {
        for r in 0..3 {
            let mv: Complex64 = (0..3).map(|k| m[r][k] * vectors[k][j]).sum();
            assert!(
                (mv - vectors[r][j] * mu).norm() < 1e-10,
                "pair {j}, row {r}"
            );
        }
    }
}
