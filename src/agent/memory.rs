//! glibc malloc tuning for a long-running agent whose heap is small at rest but peaks during a
//! full sync (the snapshot, the rendered table and its transaction at once).
//!
//! By default glibc gives every thread that allocates its own arena (up to 8 per core) and keeps
//! freed memory in each of them: the peak of a sync stays resident long after, once per arena
//! that a sync happened to run on. One arena is plenty for runtime workers that mostly wait (the
//! sync loop is one task), and a trim after each apply returns the freed pages (a few ms at most
//! next to a sync's render and nft run). Elsewhere (musl, other systems) these are no-ops.

/// A single malloc arena. Call before the runtime starts its threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns free heap pages to the kernel.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
