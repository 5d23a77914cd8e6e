//! The LRA ListOps generator (`lra_benchmarks/data/listops.py`), re-implemented: below the
//! maximum depth a node is a leaf digit with probability 0.75, otherwise one of `[MIN [MAX
//! [MED [SM` with 2 to `max_args` children one level deeper; the root is at depth 1. Length
//! counts operators, `]` and digits; only `min_len < length < max_len` is kept, without
//! duplicates. Binary tuples are written left-nested: `( ( ( [MAX 2 ) 9 ) ] )`.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use rand::SeedableRng;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::error::DataError;
use crate::data::listops::Op;

const LEAF_PROBABILITY: f64 = 0.75;
/// Accepted expressions one task contributes; fixed so the output does not depend on the
/// number of threads.
const PER_TASK: usize = 16;

/// Codes of a generated tree, in prefix order: a digit is its value; an operator is
/// `OP_CODE + index` followed by its number of children, then the children.
const OP_CODE: u8 = 10;
/// The most children an operator may have (`max_args`).
pub(crate) const MAX_CHILDREN: usize = 16;

/// Writes the tree starting at `codes[*at]` as the reference serialises it (every binary
/// tuple `( left right )`, left-nested, so `[MAX 2 9 ]` reads `( ( ( [MAX 2 ) 9 ) ] )`), and
/// returns its value.
fn render(codes: &[u8], at: &mut usize, out: &mut Vec<u8>) -> u8 {
    let code = codes[*at];
    *at += 1;
    if code < OP_CODE {
        out.push(b'0' + code);
        return code;
    }
    let children = codes[*at] as usize;
    *at += 1;
    for _ in 0..=children {
        out.extend_from_slice(b"( ");
    }
    let op = Op::ALL[(code - OP_CODE) as usize];
    out.extend_from_slice(op.symbol().as_bytes());
    let mut values = [0u8; MAX_CHILDREN];
    for value in values.iter_mut().take(children) {
        out.push(b' ');
        *value = render(codes, at, out);
        out.extend_from_slice(b" )");
    }
    out.extend_from_slice(b" ] )");
    op.apply(&mut values[..children])
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListOpsGen {
    pub train: usize,
    pub val: usize,
    pub test: usize,
    /// Exclusive bounds on the length.
    pub min_len: usize,
    pub max_len: usize,
    pub max_depth: usize,
    pub max_args: usize,
    pub seed: u64,
}

impl Default for ListOpsGen {
    /// LRA's settings and sizes (96k / 2k / 2k).
    fn default() -> Self {
        ListOpsGen {
            train: 96_000,
            val: 2_000,
            test: 2_000,
            min_len: 500,
            max_len: 2000,
            max_depth: 10,
            max_args: 10,
            seed: 0,
        }
    }
}

/// One generated example.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    pub source: String,
    pub value: u8,
    pub length: usize,
}

impl ListOpsGen {
    /// Generates a subtree at `depth` as compact codes (see [`render`]); `None` once the
    /// length reaches `max_len`, since such a tree is rejected anyway (this leaves the
    /// accepted distribution unchanged, and saves drawing the rest of it).
    fn tree(
        &self,
        rng: &mut ChaCha8Rng,
        depth: usize,
        length: &mut usize,
        codes: &mut Vec<u8>,
    ) -> Option<()> {
        // The leaf test compares 32 random bits, cheaper than drawing a float.
        const LEAF_BELOW: u32 = (LEAF_PROBABILITY * 4_294_967_296.0) as u32;
        if depth >= self.max_depth || rng.next_u32() < LEAF_BELOW {
            codes.push(rng.gen_range(0..10u8));
            *length += 1;
            return (*length < self.max_len).then_some(());
        }
        let children = rng.gen_range(2..=self.max_args);
        let op = rng.gen_range(0..Op::ALL.len());
        *length += 2;
        codes.push(OP_CODE + op as u8);
        codes.push(children as u8);
        for _ in 0..children {
            self.tree(rng, depth + 1, length, codes)?;
        }
        Some(())
    }

    /// Draws trees until one has an accepted length.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Expression {
        let mut codes = Vec::with_capacity(2 * self.max_len);
        loop {
            codes.clear();
            let mut length = 0;
            let complete = self.tree(rng, 1, &mut length, &mut codes).is_some();
            if complete && length > self.min_len && length < self.max_len {
                // Only accepted trees are written out and evaluated.
                // About six bytes a symbol once parentheses and spaces are in.
                let mut text = Vec::with_capacity(8 * length);
                let value = render(&codes, &mut 0, &mut text);
                text.shrink_to_fit();
                let source = String::from_utf8(text).expect("ASCII symbols");
                return Expression {
                    source,
                    value,
                    length,
                };
            }
        }
    }

    /// The longest expression `max_depth` and `max_args` allow: an operator, its `]` and
    /// `max_args` children one level deeper; a digit at the deepest level.
    pub(crate) fn longest_possible(&self) -> usize {
        (1..self.max_depth).fold(1usize, |below, _| {
            below.saturating_mul(self.max_args).saturating_add(2)
        })
    }

    /// Why these settings cannot produce expressions, if they cannot: the generator would
    /// otherwise draw forever.
    pub fn check(&self) -> Result<(), String> {
        if !(2..=MAX_CHILDREN).contains(&self.max_args) {
            return Err(format!(
                "max_args is {}, it must be 2 to {MAX_CHILDREN}",
                self.max_args
            ));
        }
        if self.max_depth == 0 {
            return Err("max_depth must be at least 1 (the root's level)".into());
        }
        if self.min_len + 1 >= self.max_len {
            return Err(format!(
                "min length {} leaves no room below max length {} (lengths are kept when \
                 min < length < max)",
                self.min_len, self.max_len
            ));
        }
        let longest = self.longest_possible();
        if longest <= self.min_len {
            return Err(format!(
                "max_depth {} and max_args {} allow expressions of at most {longest} symbols, \
                 not above the min length {}",
                self.max_depth, self.max_args, self.min_len
            ));
        }
        Ok(())
    }

    /// `n` distinct expressions, generated in parallel, identical for any thread count.
    pub fn generate(&self, n: usize) -> Vec<Expression> {
        if let Err(why) = self.check() {
            panic!("ListOps generator settings: {why}");
        }
        // Duplicates are found by a 128-bit hash of the text rather than by keeping a second
        // copy of it (600 MB at LRA's size). A collision could only drop one unique
        // expression for another, never let a duplicate through.
        let mut seen: HashSet<u128> = HashSet::with_capacity(n);
        let mut out = Vec::with_capacity(n);
        let mut task = 0u64;
        while out.len() < n {
            let tasks = (n - out.len()).div_ceil(PER_TASK) as u64;
            let batch: Vec<Vec<Expression>> = (task..task + tasks)
                .into_par_iter()
                .map(|t| {
                    let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                    rng.set_stream(t);
                    (0..PER_TASK).map(|_| self.sample(&mut rng)).collect()
                })
                .collect();
            task += tasks;
            for expression in batch.into_iter().flatten() {
                if out.len() < n && seen.insert(fingerprint(&expression.source)) {
                    out.push(expression);
                }
            }
        }
        out
    }

    /// Writes `basic_{train,val,test}.tsv` as the official generator does (CRLF, header).
    pub fn write(&self, dir: &Path) -> Result<[usize; 3], DataError> {
        std::fs::create_dir_all(dir).map_err(|e| DataError::write(dir, e))?;
        let all = self.generate(self.train + self.val + self.test);
        let (train, rest) = all.split_at(self.train);
        let (val, test) = rest.split_at(self.val);
        for (name, rows) in [("train", train), ("val", val), ("test", test)] {
            let path = dir.join(format!("basic_{name}.tsv"));
            write_tsv(&path, rows).map_err(|e| DataError::write(&path, e))?;
        }
        Ok([train.len(), val.len(), test.len()])
    }
}

/// A 128-bit hash of a text: two independently keyed 64-bit hashes.
fn fingerprint(text: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |key: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        text.hash(&mut h);
        h.finish() as u128
    };
    (half(0x9e37_79b9_7f4a_7c15) << 64) | half(0x2545_f491_4f6c_dd1d)
}

fn write_tsv(path: &Path, rows: &[Expression]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    w.write_all(b"Source\tTarget\r\n")?;
    for row in rows {
        write!(w, "{}\t{}\r\n", row.source, row.value)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::listops::evaluate;

    fn small() -> ListOpsGen {
        ListOpsGen {
            min_len: 10,
            max_len: 60,
            seed: 5,
            ..ListOpsGen::default()
        }
    }

    #[test]
    fn samples_respect_the_length_bounds_and_their_values() {
        let gen = small();
        for e in gen.generate(200) {
            assert!(e.length > 10 && e.length < 60, "length {}", e.length);
            assert_eq!(evaluate(&e.source), Ok(e.value), "{}", e.source);
            let counted = e
                .source
                .split_whitespace()
                .filter(|t| *t != "(" && *t != ")")
                .count();
            assert_eq!(counted, e.length);
        }
    }

    #[test]
    fn output_is_seeded_and_distinct() {
        let gen = small();
        let a = gen.generate(300);
        assert_eq!(a, gen.generate(300));
        let distinct: HashSet<&str> = a.iter().map(|e| e.source.as_str()).collect();
        assert_eq!(distinct.len(), 300);
        let other = ListOpsGen { seed: 6, ..small() }.generate(300);
        assert_ne!(a, other);
    }

    #[test]
    fn depth_and_arguments_bound_the_expressions() {
        let gen = ListOpsGen {
            min_len: 3,
            max_len: 40,
            max_depth: 3,
            max_args: 3,
            ..small()
        };
        // Depth 3 with 3 arguments: 2 + 3·(2 + 3·1) = 17 symbols at most.
        assert_eq!(gen.longest_possible(), 17);
        for e in gen.generate(200) {
            assert!(e.length <= 17, "{}", e.source);
            let depth = e
                .source
                .split(' ')
                .fold((0i32, 0i32), |(now, most), t| match t {
                    "]" => (now - 1, most),
                    t if t.starts_with('[') => (now + 1, most.max(now + 1)),
                    _ => (now, most),
                });
            assert!(depth.1 <= 3, "{}", e.source);
        }
    }

    #[test]
    fn settings_that_cannot_produce_expressions_are_refused() {
        let too_short = ListOpsGen {
            min_len: 17,
            max_len: 40,
            max_depth: 3,
            max_args: 3,
            ..small()
        };
        assert!(too_short
            .check()
            .unwrap_err()
            .contains("at most 17 symbols"));
        let no_room = ListOpsGen {
            min_len: 10,
            max_len: 11,
            ..small()
        };
        assert!(no_room.check().unwrap_err().contains("no room"));
        let args = ListOpsGen {
            max_args: 1,
            ..small()
        };
        assert!(args.check().unwrap_err().contains("max_args is 1"));
        assert_eq!(small().check(), Ok(()));
    }

    #[test]
    fn serialisation_is_left_nested() {
        let gen = ListOpsGen {
            min_len: 3,
            max_len: 5,
            max_depth: 2,
            max_args: 2,
            ..small()
        };
        let e = gen.generate(1).remove(0);
        // Depth 2 forces leaves: `( ( ( [OP a ) b ) ] )`.
        let tokens: Vec<&str> = e.source.split(' ').collect();
        assert_eq!(tokens.len(), 10, "{}", e.source);
        assert_eq!(&tokens[..3], ["(", "(", "("]);
        assert_eq!(
            [tokens[5], tokens[7], tokens[8], tokens[9]],
            [")", ")", "]", ")"]
        );
    }
}
