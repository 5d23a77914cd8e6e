//! What the step benchmarks share: flags, process CPU time, peak memory and the `RESULT` line
//! that `benches/compare.sh` reads (the PyTorch references print the same line).
// Each bench is its own crate and uses a part of this.
#![allow(dead_code)]

/// The value after `--name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// `--name N`, or `default`.
pub fn number(name: &str, default: usize) -> usize {
    arg(name).and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Peak resident set size of this process in MiB (VmHWM from /proc/self/status).
pub fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system, all threads) this process has used, from /proc/self/stat.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Wall-clock and CPU seconds of each timed step.
#[derive(Default)]
pub struct Timings {
    pub wall: Vec<f64>,
    pub cpu: Vec<f64>,
}

impl Timings {
    /// Runs `step` `warmup` times untimed, then `steps` times timed.
    pub fn measure(warmup: usize, steps: usize, mut step: impl FnMut()) -> Self {
        let mut timings = Timings::default();
        for i in 0..warmup + steps {
            let (start, cpu_start) = (std::time::Instant::now(), cpu_seconds());
            step();
            if i >= warmup {
                timings.wall.push(start.elapsed().as_secs_f64());
                timings.cpu.push(cpu_seconds() - cpu_start);
            }
        }
        timings
    }

    /// The human line and the `RESULT` line.
    pub fn report(&self, model: &str, threads: usize, params: usize) {
        let (wall, cpu, peak) = (
            median(self.wall.clone()),
            median(self.cpu.clone()),
            peak_mib(),
        );
        let min = self.wall.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{model} (lra, {threads} threads): {params} parameters, median step {wall:.3} s (min {min:.3}), {cpu:.2} CPU-s over {} steps, peak {peak:.0} MiB, load average {}",
            self.wall.len(),
            load_average()
        );
        println!(
            "RESULT model={model} impl=lra threads={threads} params={params} wall_s={wall:.4} cpu_s={cpu:.4} peak_mib={peak:.0}"
        );
    }
}
