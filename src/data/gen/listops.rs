//! The LRA ListOps generator (`lra_benchmarks/data/listops.py`), re-implemented: below the
//! maximum depth a node is a leaf digit with probability 0.75, otherwise one of `[MIN [MAX
//! [MED [SM` with 2 to `max_args` children one level deeper; the root is at depth 1. Length
//! counts operators, `]` and digits; only `min_len < length < max_len` is kept, without
//! duplicates. Binary tuples are written left-nested: `( ( ( [MAX 2 ) 9 ) ] )`.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::error::DataError;
use crate::data::listops::Op;

const LEAF_PROBABILITY: f64 = 0.75;
/// Accepted expressions one task contributes; fixed so the output does not depend on the
/// number of threads.
const PER_TASK: usize = 16;

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
    /// Generates a subtree at `depth` into `out`; `None` once the length reaches `max_len`,
    /// since such a tree is rejected anyway (this leaves the accepted distribution unchanged).
    fn tree(
        &self,
        rng: &mut ChaCha8Rng,
        depth: usize,
        length: &mut usize,
        out: &mut String,
    ) -> Option<u8> {
        if depth >= self.max_depth || rng.gen::<f64>() < LEAF_PROBABILITY {
            let digit = rng.gen_range(0..10u8);
            out.push((b'0' + digit) as char);
            *length += 1;
            return (*length < self.max_len).then_some(digit);
        }
        let children = rng.gen_range(2..=self.max_args);
        let op = Op::ALL[rng.gen_range(0..Op::ALL.len())];
        *length += 2;
        for _ in 0..=children {
            out.push_str("( ");
        }
        out.push_str(op.symbol());
        let mut values = [0u8; 16];
        for value in values.iter_mut().take(children) {
            out.push(' ');
            *value = self.tree(rng, depth + 1, length, out)?;
            out.push_str(" )");
        }
        out.push_str(" ] )");
        Some(op.apply(&mut values[..children]))
    }

    /// Draws trees until one has an accepted length.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Expression {
        let mut source = String::with_capacity(4 * self.max_len);
        loop {
            source.clear();
            let mut length = 0;
            if let Some(value) = self.tree(rng, 1, &mut length, &mut source) {
                if length > self.min_len && length < self.max_len {
                    return Expression {
                        source,
                        value,
                        length,
                    };
                }
            }
        }
    }

    /// `n` distinct expressions, generated in parallel, identical for any thread count.
    pub fn generate(&self, n: usize) -> Vec<Expression> {
        let mut seen = HashSet::with_capacity(n);
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
                if out.len() < n && seen.insert(expression.source.clone()) {
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
