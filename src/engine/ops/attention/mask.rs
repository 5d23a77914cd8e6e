//! Which keys a query sees: key padding (per-example lengths), causality and local windows.
//!
//! Local attention follows the SPT paper's Path-X setting: the sequence is cut into
//! non-overlapping blocks of `window` positions, and a query sees the keys of its own block and
//! of the two neighbouring blocks.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The attention pattern of a layer, independent of the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionSpec {
    pub heads: usize,
    pub causal: bool,
    /// Block size of local attention; `None` for global attention.
    pub window: Option<usize>,
}

/// The visibility rule for one example of `len` real (unpadded) positions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Visibility {
    pub causal: bool,
    pub window: Option<usize>,
    pub len: usize,
    pub seq: usize,
}

impl Visibility {
    pub fn new(spec: &AttentionSpec, len: usize, seq: usize) -> Self {
        Visibility {
            causal: spec.causal,
            window: spec.window.filter(|&w| w > 0),
            len: len.min(seq),
            seq,
        }
    }

    #[inline]
    pub(crate) fn sees(&self, i: usize, j: usize) -> bool {
        j < self.len
            && (!self.causal || j <= i)
            && self.window.is_none_or(|w| (i / w).abs_diff(j / w) <= 1)
    }

    /// The smallest key range holding every key visible to some query in `queries`.
    pub(crate) fn key_range(&self, queries: Range<usize>) -> Range<usize> {
        let (first, last) = (queries.start, queries.end - 1);
        let mut lo = 0;
        let mut hi = self.len;
        if self.causal {
            hi = hi.min(last + 1);
        }
        if let Some(w) = self.window {
            lo = (first / w).saturating_sub(1) * w;
            hi = hi.min((last / w + 2) * w);
        }
        lo..hi.max(lo)
    }

    /// The smallest query range holding every query that sees some key in `keys`.
    pub(crate) fn query_range(&self, keys: Range<usize>) -> Range<usize> {
        let (first, last) = (keys.start, keys.end - 1);
        if first >= self.len {
            return 0..0;
        }
        let mut lo = 0;
        let mut hi = self.seq;
        if self.causal {
            lo = first;
        }
        if let Some(w) = self.window {
            lo = lo.max((first / w).saturating_sub(1) * w);
            hi = hi.min((last / w + 2) * w);
        }
        lo..hi.max(lo)
    }

    /// Whether every (query, key) pair of the two ranges is visible, so a block needs no mask.
    pub(crate) fn all_visible(&self, queries: Range<usize>, keys: Range<usize>) -> bool {
        let (qi, qo) = (queries.start, queries.end - 1);
        let (kj, ko) = (keys.start, keys.end - 1);
        ko < self.len
            && (!self.causal || ko <= qi)
            && self
                .window
                .is_none_or(|w| (qo / w).abs_diff(kj / w) <= 1 && (qi / w).abs_diff(ko / w) <= 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force(v: &Visibility, queries: Range<usize>, keys: Range<usize>) -> (bool, bool) {
        let mut any = false;
        let mut all = true;
        for i in queries {
            for j in keys.clone() {
                any |= v.sees(i, j);
                all &= v.sees(i, j);
            }
        }
        (any, all)
    }

    #[test]
    fn ranges_cover_every_visible_pair_and_all_visible_is_exact() {
        for causal in [false, true] {
            for window in [None, Some(4), Some(5)] {
                for len in [1, 7, 16] {
                    let spec = AttentionSpec {
                        heads: 1,
                        causal,
                        window,
                    };
                    let v = Visibility::new(&spec, len, 16);
                    for q0 in 0..16 {
                        for q1 in q0 + 1..=16 {
                            let keys = v.key_range(q0..q1);
                            for j in 0..16 {
                                let (any, _) = brute_force(&v, q0..q1, j..j + 1);
                                assert!(
                                    !any || keys.contains(&j),
                                    "{spec:?} len {len} q {q0}..{q1} k {j}"
                                );
                            }
                            for k1 in q0 + 1..=16 {
                                let (_, all) = brute_force(&v, q0..q1, q0..k1);
                                assert_eq!(v.all_visible(q0..q1, q0..k1), all);
                            }
                        }
                        let queries = v.query_range(q0..q0 + 1);
                        for i in 0..16 {
                            if v.sees(i, q0) {
                                assert!(
                                    queries.contains(&i),
                                    "{spec:?} len {len} key {q0} query {i}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn local_blocks_see_their_neighbours_only() {
        let spec = AttentionSpec {
            heads: 1,
            causal: false,
            window: Some(4),
        };
        let v = Visibility::new(&spec, 16, 16);
        assert!(v.sees(5, 0) && v.sees(5, 11));
        assert!(!v.sees(5, 12));
        assert!(!v.sees(12, 7) && v.sees(12, 8));
    }
}
