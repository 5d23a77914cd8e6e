//! The matrix kernel alone, on the products of one Transformer training step (d_model 128,
//! FF 512, 8 × 1,024 tokens), one thread: lra's `ops::blas::gemm` (the AVX-512 register tile
//! where the CPU has it) against the `gemm` crate that dfdx's CPU matmul uses, called the same
//! way in the same run. Forward products go in the 128-row blocks the engine's row tasks use;
//! weight gradients as one task's half of the rows (two threads).
//!
//! `cargo bench --bench matmul [-- --runs 9]`

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::median;
use lra::engine::ops::blas::{gemm, gemm_crate, MatRef};

fn runs() -> usize {
    common::number("--runs", 9)
}

/// Deterministic values in [−1, 1).
fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 2_654_435_761 + seed * 40_503) % 1_000) as f32 / 500.0 - 1.0)
        .collect()
}

/// One product dst (m × n) = a (m × k, or its transpose stored k × m) · b (k × n), in blocks
/// of `block` rows of dst.
struct Product {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    a_transposed: bool,
    block: usize,
}

impl Product {
    fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k) as f64
    }

    /// Seconds for the whole product with `kernel`.
    fn time(&self, a: &[f32], b: &[f32], dst: &mut [f32], kernel: Kernel) -> f64 {
        let start = Instant::now();
        for r0 in (0..self.m).step_by(self.block) {
            let rows = r0..(r0 + self.block).min(self.m);
            let a = if self.a_transposed {
                MatRef::rows(&a[rows.start..], self.k, rows.len(), self.m).t()
            } else {
                MatRef::rows(&a[rows.start * self.k..], rows.len(), self.k, self.k)
            };
            let b = MatRef::rows(b, self.k, self.n, self.n);
            let dst = &mut dst[r0 * self.n..];
            match kernel {
                Kernel::Lra => gemm(dst, self.n, a, b, 1.0, false),
                Kernel::GemmCrate => gemm_crate(dst, self.n, a, b, 1.0, false),
            }
        }
        start.elapsed().as_secs_f64()
    }
}

#[derive(Clone, Copy)]
enum Kernel {
    Lra,
    GemmCrate,
}

fn main() {
    let tokens = 8 * 1024;
    let products = [
        Product {
            name: "q/k/v/out projection  x·W (128→128)",
            m: tokens,
            n: 128,
            k: 128,
            a_transposed: false,
            block: 128,
        },
        Product {
            name: "feed-forward up       x·W (128→512)",
            m: tokens,
            n: 512,
            k: 128,
            a_transposed: false,
            block: 128,
        },
        Product {
            name: "feed-forward down     x·W (512→128)",
            m: tokens,
            n: 128,
            k: 512,
            a_transposed: false,
            block: 128,
        },
        Product {
            name: "∂W up    xᵀ·∂y (128 × 4,096 · 4,096 × 512)",
            m: 128,
            n: 512,
            k: tokens / 2,
            a_transposed: true,
            block: 128,
        },
        Product {
            name: "∂W down  xᵀ·∂y (512 × 4,096 · 4,096 × 128)",
            m: 512,
            n: 128,
            k: tokens / 2,
            a_transposed: true,
            block: 512,
        },
    ];
    println!(
        "matrix kernel, 1 thread, median of {} runs (GFLOP/s), load average {}",
        runs(),
        common::load_average()
    );
    println!(
        "{:<46} {:>8} {:>10} {:>7}",
        "product", "lra", "gemm crate", "ratio"
    );
    for p in &products {
        let a = values(p.m * p.k, 1);
        let b = values(p.k * p.n, 2);
        let mut dst = vec![0.0f32; p.m * p.n];
        let (mut lra, mut reference) = (Vec::new(), Vec::new());
        for _ in 0..runs() + 1 {
            // Alternating, so drift of the machine falls on both sides alike.
            reference.push(p.time(&a, &b, &mut dst, Kernel::GemmCrate));
            lra.push(p.time(&a, &b, &mut dst, Kernel::Lra));
        }
        let lra_values = dst.clone();
        p.time(&a, &b, &mut dst, Kernel::GemmCrate);
        let worst = lra_values
            .iter()
            .zip(&dst)
            .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{}: the kernels disagree by {worst}", p.name);
        let (lra, reference) = (median(lra[1..].to_vec()), median(reference[1..].to_vec()));
        println!(
            "{:<46} {:>8.1} {:>10.1} {:>7.2}",
            p.name,
            p.flops() / lra / 1e9,
            p.flops() / reference / 1e9,
            reference / lra
        );
    }
}
