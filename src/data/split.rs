//! Seeded splits and subsets. Every function returns sorted indices, so a split keeps the
//! release's order, and the same seed always gives the same split.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The seed of carved validation and test splits. It is fixed, not the experiment's seed:
/// runs with different seeds must be evaluated on the same examples to be compared.
pub(crate) const CARVE_SEED: u64 = 0;

/// Streams of randomness for different purposes never coincide for one user seed.
const VALIDATION_STREAM: u64 = 1;
const SUBSET_STREAM: u64 = 2;
const THREE_WAY_STREAM: u64 = 3;

fn permutation(n: usize, seed: u64, stream: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v
}

/// Splits `0..n` into (train, validation) with `fraction` of it in validation.
pub(crate) fn carve_validation(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let order = permutation(n, seed, VALIDATION_STREAM);
    let n_val = ((n as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
    let (val, train) = order.split_at(n_val);
    (sorted(train.to_vec()), sorted(val.to_vec()))
}

/// Splits `items` into train/validation/test by `fractions` (which sum to 1; test takes the
/// rest).
pub(crate) fn three_way(
    items: &[usize],
    fractions: (f64, f64),
    seed: u64,
) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let order = permutation(items.len(), seed, THREE_WAY_STREAM);
    let n = items.len() as f64;
    let n_train = (n * fractions.0).round() as usize;
    let n_val = ((n * fractions.1).round() as usize).min(items.len() - n_train);
    let pick = |range: &[usize]| sorted(range.iter().map(|&i| items[i]).collect());
    (
        pick(&order[..n_train]),
        pick(&order[n_train..n_train + n_val]),
        pick(&order[n_train + n_val..]),
    )
}

/// A training subset of `fraction` of `indices`, at most `limit` of them. Subsets are nested:
/// for one seed, a smaller subset is contained in every larger one, because all are prefixes
/// of the same permutation.
pub(crate) fn nested_subset(
    indices: &[usize],
    fraction: Option<f64>,
    limit: Option<usize>,
    seed: u64,
) -> Vec<usize> {
    let n = indices.len();
    let by_fraction = fraction.map_or(n, |f| ((n as f64) * f.clamp(0.0, 1.0)).round() as usize);
    let keep = by_fraction.min(limit.unwrap_or(n));
    if keep == n {
        return indices.to_vec();
    }
    let order = permutation(n, seed, SUBSET_STREAM);
    sorted(order[..keep].iter().map(|&i| indices[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_is_disjoint_seeded_and_sized() {
        let (train, val) = carve_validation(50_000, 0.1, 7);
        assert_eq!((train.len(), val.len()), (45_000, 5_000));
        let mut all = [train.clone(), val.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..50_000).collect::<Vec<_>>());
        assert_eq!(carve_validation(50_000, 0.1, 7), (train, val.clone()));
        assert_ne!(carve_validation(50_000, 0.1, 8).1, val);
    }

    #[test]
    fn three_way_covers_every_item_once() {
        let items: Vec<usize> = (100..1100).collect();
        let (a, b, c) = three_way(&items, (0.8, 0.1), 3);
        assert_eq!((a.len(), b.len(), c.len()), (800, 100, 100));
        let mut all = [a, b, c].concat();
        all.sort_unstable();
        assert_eq!(all, items);
    }

    #[test]
    fn smaller_subsets_are_inside_larger_ones() {
        let indices: Vec<usize> = (0..1000).map(|i| i * 3).collect();
        let small = nested_subset(&indices, Some(0.05), None, 11);
        let medium = nested_subset(&indices, Some(0.3), None, 11);
        let limited = nested_subset(&indices, Some(0.3), Some(100), 11);
        assert_eq!((small.len(), medium.len(), limited.len()), (50, 300, 100));
        assert!(small.iter().all(|i| limited.contains(i)));
        assert!(limited.iter().all(|i| medium.contains(i)));
        assert_eq!(nested_subset(&indices, None, None, 11), indices);
    }
}
