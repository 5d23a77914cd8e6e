//! `engine::allocator`: after `retain_freed_memory`, a step-sized buffer comes from malloc's
//! heap (not a mapping of its own) and its memory stays there once freed, ready for the next
//! step. Its own test binary: one process, one test, so no other test's allocations interleave.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_freed_step_buffer_stays_in_the_heap() {
    const SIZE: usize = 20 << 20;
    lra::engine::allocator::retain_freed_memory();
    // SAFETY: mallinfo2 only reads malloc's statistics.
    let stats = || unsafe { libc::mallinfo2() };
    let before = stats();
    let buffer = std::hint::black_box(vec![1u8; SIZE]);
    let during = stats();
    assert_eq!(
        during.hblkhd, before.hblkhd,
        "a {SIZE}-byte buffer got a mapping of its own: the mmap threshold was not raised"
    );
    drop(buffer);
    let after = stats();
    assert!(
        after.fordblks >= SIZE,
        "the freed {SIZE} bytes left the heap ({} free bytes): the heap was trimmed",
        after.fordblks
    );
}
