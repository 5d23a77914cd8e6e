//! Which positions a denoising objective hides or predicts (docs/METHOD.md, "Self-pretraining
//! (SPT)"). Pure functions of the lengths and a seeded generator, so masks are reproducible
//! (a resumed run draws the same masks) and testable alone.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Masked positions of one sequence of `length` real positions (padding is never masked).
/// Without `span`, each position is masked independently with probability `rate` (Bernoulli).
/// With `span`, spans of `span` positions start at each position with probability
/// `rate / span`, so the expected masked fraction stays close to `rate`.
pub(crate) fn bernoulli_mask(
    length: usize,
    rate: f64,
    span: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Vec<bool> {
    let mut mask = vec![false; length];
    match span {
        None | Some(0) | Some(1) => mask.iter_mut().for_each(|m| *m = rng.gen_bool(rate)),
        Some(span) => {
            let start_rate = (rate / span as f64).min(1.0);
            for start in 0..length {
                if rng.gen_bool(start_rate) {
                    mask[start..(start + span).min(length)]
                        .iter_mut()
                        .for_each(|m| *m = true);
                }
            }
        }
    }
    // A sequence with nothing masked teaches nothing; mask one position.
    if length > 0 && !mask.contains(&true) {
        mask[rng.gen_range(0..length)] = true;
    }
    mask
}

/// Next-token targets: position t predicts position t + 1; the last real position and padding
/// have no target (`None`).
pub(crate) fn next_positions(length: usize, padded: usize) -> Vec<Option<usize>> {
    (0..padded)
        .map(|t| (t + 1 < length).then_some(t + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bernoulli_masking_hits_the_rate() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for rate in [0.1, 0.15, 0.5] {
            let masked: usize = (0..200)
                .map(|_| {
                    bernoulli_mask(1000, rate, None, &mut rng)
                        .iter()
                        .filter(|m| **m)
                        .count()
                })
                .sum();
            let fraction = masked as f64 / 200_000.0;
            assert!((fraction - rate).abs() < 0.01, "rate {rate}: {fraction}");
        }
    }

    #[test]
    fn span_masking_masks_runs_near_the_rate() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mask = bernoulli_mask(100_000, 0.15, Some(5), &mut rng);
        let fraction = mask.iter().filter(|m| **m).count() as f64 / 1e5;
        assert!((fraction - 0.15).abs() < 0.03, "{fraction}");
        let runs = mask.windows(2).filter(|w| w[1] && !w[0]).count();
        assert!(
            runs < mask.iter().filter(|m| **m).count() / 3,
            "masks come in spans"
        );
    }

    #[test]
    fn short_sequences_always_mask_something() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..100 {
            assert!(bernoulli_mask(3, 0.01, None, &mut rng).contains(&true));
        }
        assert!(bernoulli_mask(0, 0.5, None, &mut rng).is_empty());
    }

    #[test]
    fn next_token_targets_skip_the_last_position_and_padding() {
        assert_eq!(
            next_positions(3, 5),
            vec![Some(1), Some(2), None, None, None]
        );
    }
}
