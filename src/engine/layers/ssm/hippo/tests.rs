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
fn the_kept_half_and_its_conjugates_reconstruct_legs() {
    for n in [2, 8, 16] {
        let hippo = legs(n);
        let a = Dense::from_fn(n, |i, j| hippo[i][j].into());
        let b = legs_input(n);
        let nplr = legs_nplr(n);
        let half = n / 2;
        // The full basis [V, conj V], eigenvalues [λ, conj λ], P̃ and B̃ likewise.
        let column = |j: usize, i: usize| {
            if j < half {
                nplr.vectors[j][i]
            } else {
                nplr.vectors[j - half][i].conj()
            }
        };
        let full = |x: &[Complex64], j: usize| if j < half { x[j] } else { x[j - half].conj() };
        let v = Dense::from_fn(n, |i, j| column(j, i));
        let inner = Dense::from_fn(n, |i, j| {
            let diagonal = if i == j {
                full(&nplr.lambda, i)
            } else {
                0.0.into()
            };
            diagonal - full(&nplr.p, i) * full(&nplr.p, j).conj()
        });
        let rebuilt = v.mul(&inner).mul(&v.adjoint());
        assert!(
            rebuilt.distance(&a) < 1e-9,
            "N={n}: {}",
            rebuilt.distance(&a)
        );
        assert!(
            v.adjoint().mul(&v).distance(&Dense::identity(n)) < 1e-10,
            "unitary"
        );
        let b_rebuilt = v.mul_vec(&(0..n).map(|j| full(&nplr.b, j)).collect::<Vec<_>>());
        for (x, &y) in b_rebuilt.iter().zip(&b) {
            assert!((x - y).norm() < 1e-9, "B: {x} vs {y}");
        }
    }
}

#[test]
fn eigenvalues_have_real_part_one_half_and_positive_frequencies() {
    let nplr = legs_nplr(64);
    assert_eq!(nplr.lambda.len(), 32);
    for (m, l) in nplr.lambda.iter().enumerate() {
        assert_eq!(l.re, -0.5);
        assert!(l.im > 0.0, "mode {m}: {l}");
        assert!(
            nplr.p[m].im.abs() < 1e-12 && nplr.p[m].re > 0.0,
            "P̃ real positive"
        );
    }
    assert!(nplr.lambda.windows(2).all(|w| w[0].im < w[1].im));
}
