//! What the check rules need to know about this machine.

use crate::check::Context;

/// Total memory of this machine from `/proc/meminfo` (Linux); 16 GiB where it cannot be read.
pub(crate) fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(16 << 30)
}

/// The memory of each GPU the NVIDIA driver shows, from `nvidia-smi`; empty where the tool is
/// missing (no driver, so no usable GPU) or lists none. Deliberately the same query on CPU-only
/// builds: `lra check` warns about a `cuda` spec on a machine without a GPU either way.
pub fn gpus() -> Vec<u64> {
    let Ok(out) = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.total", "--format=csv,noheader,nounits"])
        .output()
    else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    gpu_memories(&String::from_utf8_lossy(&out.stdout))
}

/// Bytes per GPU from `nvidia-smi`'s MiB lines; a line that is not a number (`[N/A]`) counts
/// the GPU with unknown memory (0).
fn gpu_memories(csv: &str) -> Vec<u64> {
    csv.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse::<u64>().map_or(0, |mib| mib << 20))
        .collect()
}

pub fn context(check_data: bool) -> Context {
    let cuda_built = cfg!(feature = "cuda");
    let gpus = gpus();
    Context {
        machine_memory: memory_bytes(),
        gpu_memory: gpus.first().copied().filter(|&b| cuda_built && b > 0),
        check_data,
        cuda_built,
        gpus: Some(gpus.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines_count_gpus_and_their_memory() {
        assert_eq!(gpu_memories("81559\n81559\n"), [81559 << 20, 81559 << 20]);
        assert_eq!(gpu_memories("[N/A]\n"), [0]);
        assert!(gpu_memories("").is_empty());
    }
}
