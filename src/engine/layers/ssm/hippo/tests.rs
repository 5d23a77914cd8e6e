use num_complex::Complex64;

use super::*;

#[test]
fn the_kept_half_and_its_conjugates_reconstruct_legs() {
    for n in [2, 8, 16] {
        let (a, b, _) = legs(n);
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
        let v = Matrix::from_fn(n, |i, j| column(j, i));
        let inner = Matrix::from_fn(n, |i, j| {
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
            v.adjoint().mul(&v).distance(&Matrix::identity(n)) < 1e-10,
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
