//! The C allocator's settings for training: keep freed memory for the next step.
//!
//! A training step frees and allocates the same large buffers every time (activations,
//! gradients, kernel outputs and workspaces of megabytes each). glibc's malloc serves blocks
//! above its mmap threshold (adjusted at run time, from 128 KiB up to 32 MiB) with fresh
//! mappings and hands the top of its heaps back to the kernel past its trim threshold, so each
//! step's buffers come back as fresh pages: a page fault per 4 KiB on first touch, and a
//! zeroing by the kernel, step after step. Pinning the mmap threshold at its maximum and never
//! trimming keeps that memory in the heaps, where the next step's buffers of the same sizes
//! find it. The peak resident memory stays that of one step; what changes is that it is no
//! longer released between steps. Measured effect: docs/PERFORMANCE.md ("allocator").

/// Largest mmap threshold glibc accepts on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_MAX: libc::c_int = 32 << 20;

/// Applies the settings above; call once, first thing in `main`, before other threads start.
/// Does nothing off glibc (other allocators keep their own policies).
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes two of malloc's tuning parameters; it is called before any
    // other thread exists, and both values are in the documented ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}
