//! Generator throughput against the Python reference generators (≈220 ListOps samples/s and
//! ≈5 Pathfinder-32 images/s per core). Run: `cargo bench --bench data_gen`.
//! Prints, per generator, samples per second of CPU time on one thread (what "per core"
//! means, and robust to other work on the machine) and of wall time on all threads.

use std::time::Instant;

use lra::data::gen::listops::ListOpsGen;
use lra::data::gen::pathfinder::{self, PathfinderParams};
use lra::data::Difficulty;

const PYTHON_LISTOPS_PER_CORE: f64 = 220.0;
const PYTHON_PATHFINDER32_PER_CORE: f64 = 5.0;

/// CPU seconds this process has used (user + system), from `/proc/self/stat` (Linux clock
/// ticks of 1/100 s); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs `work` producing `n` samples on `threads` threads; returns samples per wall second
/// and per CPU second.
fn rate(threads: usize, n: usize, work: impl FnOnce() + Send) -> (f64, f64) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let (start, cpu_start) = (Instant::now(), cpu_seconds());
    pool.install(work);
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds()
        .zip(cpu_start)
        .map_or(wall, |(end, begin)| (end - begin).max(0.01));
    (n as f64 / wall, n as f64 / cpu)
}

fn report(name: &str, n: usize, python_per_core: Option<f64>, work: impl Fn() + Sync) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (_, one) = rate(1, n, &work);
    let (all, _) = rate(cores, n, &work);
    let versus = python_per_core.map_or(String::new(), |p| {
        format!(" ({:.0}x Python per core)", one / p)
    });
    println!(
        "{name:<36} {n:>6} samples   per core {one:>8.0}/s{versus}   {cores} threads {all:>8.0}/s wall"
    );
}

fn main() {
    let listops = ListOpsGen::default();
    report(
        "listops (LRA settings)",
        20_000,
        Some(PYTHON_LISTOPS_PER_CORE),
        || {
            listops.generate(20_000);
        },
    );
    for (resolution, n, python) in [
        (32, 4_000, Some(PYTHON_PATHFINDER32_PER_CORE)),
        (64, 200, None),
        (128, 200, None),
        (256, 200, None),
    ] {
        let params = PathfinderParams::lra(resolution, Difficulty::Hard).expect("known resolution");
        report(
            &format!("pathfinder-{resolution} hard (in memory)"),
            n,
            python,
            || {
                pathfinder::generate(&params, n, 0);
            },
        );
    }
    let params = PathfinderParams::lra(32, Difficulty::Hard).expect("known resolution");
    let out = std::env::temp_dir().join(format!("lra-bench-{}", std::process::id()));
    report(
        "pathfinder-32 hard (PNG + metadata)",
        4_000,
        Some(PYTHON_PATHFINDER32_PER_CORE),
        || {
            pathfinder::write(&params, Difficulty::Hard, &out, 4_000, 1_000, 0)
                .expect("writable temp dir");
        },
    );
    let _ = std::fs::remove_dir_all(&out);
}
