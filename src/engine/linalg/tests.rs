use num_complex::Complex64;

use super::hermitian::eigh;
use super::*;
use crate::engine::ops::gradcheck::random_values;

fn random_matrix(n: usize, seed: u64) -> Matrix {
    let (re, im) = (random_values(n * n, seed), random_values(n * n, seed + 1));
    Matrix::from_fn(n, |i, j| Complex64::new(re[i * n + j], im[i * n + j]))
}

#[test]
fn solve_inverts_the_product() {
    let a = random_matrix(7, 1).add_scaled(3.0.into(), &Matrix::identity(7));
    let x = random_matrix(7, 3);
    let solved = a.solve(&a.mul(&x)).unwrap();
    assert!(solved.distance(&x) < 1e-12, "{}", solved.distance(&x));
    assert!(Matrix::zeros(3).solve(&Matrix::identity(3)).is_none());
}

#[test]
fn powers_are_repeated_products() {
    let a = Matrix::zeros(5).add_scaled(0.4.into(), &random_matrix(5, 5));
    let mut expected = Matrix::identity(5);
    for p in 0..12 {
        let distance = a.pow(p).distance(&expected);
        assert!(distance < 1e-12, "power {p}: {distance}");
        expected = expected.mul(&a);
    }
}

#[test]
fn hermitian_eigendecomposition_reconstructs_the_matrix() {
    for n in [1, 2, 6, 17] {
        let r = random_matrix(n, 10 + n as u64);
        let a = r.add_scaled(1.0.into(), &r.adjoint());
        let (values, v) = eigh(&a);
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "ascending");
        let d = Matrix::from_fn(n, |i, j| if i == j { values[i].into() } else { 0.0.into() });
        let rebuilt = v.mul(&d).mul(&v.adjoint());
        assert!(
            rebuilt.distance(&a) < 1e-11,
            "n={n}: {}",
            rebuilt.distance(&a)
        );
        assert!(
            v.adjoint().mul(&v).distance(&Matrix::identity(n)) < 1e-12,
            "unitary"
        );
    }
}

#[test]
fn pauli_y_has_eigenvalues_plus_and_minus_one() {
    let y = Matrix::from_fn(2, |i, j| match (i, j) {
        (0, 1) => Complex64::new(0.0, -1.0),
        (1, 0) => Complex64::new(0.0, 1.0),
        _ => 0.0.into(),
    });
    let (values, _) = eigh(&y);
    assert!((values[0] + 1.0).abs() < 1e-14 && (values[1] - 1.0).abs() < 1e-14);
}
