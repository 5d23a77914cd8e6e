//! Device parity (`lra::engine::parity`): a tiny Transformer and a tiny S4D trained for N
//! steps on the CPU and on another device from the same initial weights and batches; every
//! step's loss must agree within a relative tolerance. Exits 0 when they do, 1 when not, 2 on
//! bad arguments or a device that cannot be opened.
//!
//! `cargo bench --bench device_parity [--features cuda] -- [--device composed|cuda|cuda:N]
//!  [--steps 20] [--tolerance 1e-3]`
//!
//! `composed` runs the CPU against itself with the composed ops (the code CUDA runs), so the
//! comparison can be exercised without a GPU.

#[path = "common/mod.rs"]
mod common;

use common::arg;
use dfdx::prelude::*;
use lra::engine::ops::with_composed_ops;
use lra::engine::parity::{compare, losses, TinyModel};

const SEED: u64 = 7;

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> T {
    match arg(name) {
        None => default,
        Some(text) => text.parse().unwrap_or_else(|_| {
            eprintln!("error: {name} {text} is not a valid value");
            std::process::exit(2)
        }),
    }
}

/// The other device's losses for `model`.
fn other_losses(device: &str, model: TinyModel, steps: usize) -> Result<Vec<f32>, String> {
    let run = |d| losses(d, model, steps, SEED).map_err(|e| e.to_string());
    match device {
        "composed" => with_composed_ops(|| run(Cpu::seed_from_u64(0))),
        cuda if cuda.starts_with("cuda") => {
            let ordinal: usize = match cuda.strip_prefix("cuda").unwrap() {
                "" => 0,
                rest => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .ok_or(format!("`{cuda}` is not a device: use cuda or cuda:N"))?,
            };
            cuda_losses(ordinal, model, steps)
        }
        other => Err(format!(
            "`{other}` is not a device: use composed, cuda or cuda:N"
        )),
    }
}

#[cfg(feature = "cuda")]
fn cuda_losses(ordinal: usize, model: TinyModel, steps: usize) -> Result<Vec<f32>, String> {
    let device =
        lra::train::cuda::open(ordinal, 0).map_err(|e| format!("{:?}", miette::Report::new(e)))?;
    losses(device, model, steps, SEED).map_err(|e| e.to_string())
}

#[cfg(not(feature = "cuda"))]
fn cuda_losses(_: usize, _: TinyModel, _: usize) -> Result<Vec<f32>, String> {
    Err("this bench was built without CUDA: add `--features cuda`".into())
}

fn main() {
    let device = arg("--device").unwrap_or_else(|| "composed".into());
    let steps: usize = parsed("--steps", 20);
    let tolerance: f64 = parsed("--tolerance", 1e-3);
    let mut failed = false;
    for model in TinyModel::ALL {
        let cpu = match losses(Cpu::seed_from_u64(0), model, steps, SEED) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {} on the CPU: {e}", model.name());
                std::process::exit(2)
            }
        };
        let other = match other_losses(&device, model, steps) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {} on {device}: {e}", model.name());
                std::process::exit(2)
            }
        };
        let c = compare(&cpu, &other, tolerance);
        println!(
            "{}: step, cpu loss, {device} loss, relative difference",
            model.name()
        );
        for (step, ((a, b), r)) in cpu.iter().zip(&other).zip(&c.relative).enumerate() {
            let flag = if *r > tolerance { "  <-- over" } else { "" };
            println!("  {step:>3}  {a:.6}  {b:.6}  {r:.2e}{flag}");
        }
        let verdict = match c.first_over {
            None => "agree".to_string(),
            Some(step) => {
                failed = true;
                format!("DIFFER from step {step}")
            }
        };
        println!(
            "parity {} cpu vs {device}: {steps} steps, worst relative difference {:.2e} (tolerance {tolerance:.0e}): {verdict}",
            model.name(),
            c.worst()
        );
    }
    std::process::exit(i32::from(failed))
}
