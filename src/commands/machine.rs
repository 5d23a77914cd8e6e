//! What the check rules need to know about this machine.

use crate::check::Context;

/// Total memory of this machine from `/proc/meminfo` (Linux); 16 GiB where it cannot be read.
pub fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(16 << 30)
}

/// Memory of the first GPU, from `nvidia-smi`, when it is installed.
pub fn gpu_memory_bytes() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.total", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    let mib: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    Some(mib << 20)
}

pub fn context(check_data: bool) -> Context {
    let cuda_built = cfg!(feature = "cuda");
    Context {
        machine_memory: memory_bytes(),
        gpu_memory: if cuda_built { gpu_memory_bytes() } else { None },
        check_data,
        cuda_built,
    }
}
