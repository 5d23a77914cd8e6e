//! `lra data stats`: counts per split, label balance, sequence lengths, vocabulary size; and
//! the two-sample statistics the fidelity tests use.

use std::fmt;

use super::store::{Inputs, Split};
use super::Dataset;

const HISTOGRAM_BINS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct SplitStats {
    pub name: &'static str,
    pub count: usize,
    /// Examples per class.
    pub labels: Vec<usize>,
    pub min_len: usize,
    pub mean_len: f64,
    pub max_len: usize,
    /// Mean pixel value and share of non-zero pixels, for image tasks.
    pub pixels: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub splits: Vec<SplitStats>,
    pub vocab_size: usize,
    pub num_classes: usize,
    /// Equal-width bins over all splits' lengths: (low, high, count).
    pub histogram: Vec<(usize, usize, usize)>,
}

/// Mean pixel value (0-255) and the share of lit (non-zero) pixels of a pixel split.
pub fn pixel_summary(split: &Split) -> Option<(f64, f64)> {
    let Inputs::Pixels(pixels) = &split.examples.inputs else {
        return None;
    };
    let (mut sum, mut lit, mut total) = (0u64, 0u64, 0u64);
    for &i in &split.indices {
        for &p in pixels.get(i) {
            sum += p as u64;
            lit += (p > 0) as u64;
        }
        total += pixels.per_image as u64;
    }
    let total = total.max(1) as f64;
    Some((sum as f64 / total, lit as f64 / total))
}

fn split_stats(name: &'static str, split: &Split, classes: usize) -> SplitStats {
    let mut labels = vec![0; classes];
    for label in split.labels() {
        labels[label as usize] += 1;
    }
    let lengths: Vec<usize> = split.seq_lens().collect();
    let count = split.len();
    SplitStats {
        name,
        count,
        labels,
        min_len: lengths.iter().copied().min().unwrap_or(0),
        mean_len: lengths.iter().sum::<usize>() as f64 / count.max(1) as f64,
        max_len: lengths.iter().copied().max().unwrap_or(0),
        pixels: pixel_summary(split),
    }
}

pub fn describe(ds: &Dataset) -> Stats {
    let named = [("train", &ds.train), ("val", &ds.val), ("test", &ds.test)];
    let splits = named
        .iter()
        .map(|(n, s)| split_stats(n, s, ds.num_classes))
        .collect();
    let lengths: Vec<usize> = named.iter().flat_map(|(_, s)| s.seq_lens()).collect();
    Stats {
        splits,
        vocab_size: ds.vocab.len(),
        num_classes: ds.num_classes,
        histogram: histogram(&lengths, HISTOGRAM_BINS),
    }
}

fn histogram(values: &[usize], bins: usize) -> Vec<(usize, usize, usize)> {
    let (Some(&lo), Some(&hi)) = (values.iter().min(), values.iter().max()) else {
        return Vec::new();
    };
    let width = ((hi - lo) / bins + 1).max(1);
    let mut counts = vec![0; bins];
    for &v in values {
        counts[((v - lo) / width).min(bins - 1)] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(b, c)| (lo + b * width, lo + (b + 1) * width - 1, c))
        .filter(|&(_, _, c)| c > 0 || width > 1)
        .collect()
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(
            f,
            "vocabulary {} tokens, {} classes",
            self.vocab_size, self.num_classes
        )?;
        for s in &self.splits {
            write!(
                f,
                "{:<5} {:>7} examples  length min {} mean {:.1} max {}",
                s.name, s.count, s.min_len, s.mean_len, s.max_len
            )?;
            if let Some((mean, lit)) = s.pixels {
                write!(f, "  pixel mean {mean:.2} lit {:.1}%", 100.0 * lit)?;
            }
            let balance: Vec<String> = s.labels.iter().map(|c| c.to_string()).collect();
            writeln!(f, "\n      labels {}", balance.join(" / "))?;
        }
        if self.histogram.len() > 1 {
            writeln!(f, "length histogram (all splits):")?;
            let peak = self.histogram.iter().map(|b| b.2).max().unwrap_or(1).max(1);
            for (lo, hi, count) in &self.histogram {
                let bar = "#".repeat((40 * count).div_ceil(peak));
                writeln!(f, "  {lo:>6}-{hi:<6} {count:>7} {bar}")?;
            }
        }
        Ok(())
    }
}

/// The Kolmogorov-Smirnov statistic: the largest gap between two empirical CDFs.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// The KS statistic above which two samples of sizes `n` and `m` differ at level 0.001.
pub fn ks_critical_001(n: usize, m: usize) -> f64 {
    1.949 * (((n + m) as f64) / ((n * m) as f64)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_is_zero_for_equal_samples_and_one_for_disjoint() {
        let a = [1.0, 2.0, 3.0];
        assert_eq!(ks_statistic(&a, &a), 0.0);
        assert_eq!(ks_statistic(&a, &[4.0, 5.0]), 1.0);
        assert!((ks_statistic(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn histogram_counts_everything() {
        let values: Vec<usize> = (0..100).collect();
        let h = histogram(&values, 10);
        assert_eq!(h.iter().map(|b| b.2).sum::<usize>(), 100);
        assert_eq!(h[0], (0, 9, 10));
    }
}
