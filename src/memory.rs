//! Hands memory the allocator keeps but no longer uses back to the operating
//! system, after the moments that free a lot at once: loading an organisation
//! (row buffers, the model's growing vectors), swapping in a background refit
//! (the replaced model) and computing rater reports (on a copy of the model). glibc's malloc keeps such memory in
//! its per-thread arenas for reuse, so a server that loaded 200,000 scorecards
//! held 205 MiB resident with 130 MiB in use; after a trim, 146 MiB
//! (docs/performance.md, "Memory"). The `scorecard` binary allocates Rust's
//! memory with mimalloc, which returns freed pages by itself; what this trims
//! there is glibc's heap, where SQLite allocates its caches and statements.

/// Returns free memory to the operating system where the allocator allows it
/// (glibc on Linux); elsewhere it does nothing. Takes milliseconds and the
/// allocator's locks one arena at a time: call it off the request path.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim only walks glibc's own heaps under their locks;
        // it is thread-safe, has no preconditions, and frees nothing in use.
        let released = unsafe { malloc_trim(0) };
        tracing::debug!(released = released != 0, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "malloc_trim");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releasing_free_memory_keeps_live_data_intact() {
        let live: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 * 1024]).collect();
        drop((0..256).map(|_| vec![0u8; 64 * 1024]).collect::<Vec<_>>());
        release_free_memory();
        assert!(live.iter().enumerate().all(|(i, v)| v.len() == 64 * 1024 && v.iter().all(|&b| b == i as u8)));
    }
}
