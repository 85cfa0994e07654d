//! Gives memory freed after a reload back to the system. A reload of 10,000 Services
//! builds and drops tens of megabytes (the controller's pass, the status report); glibc
//! keeps freed memory in its per-thread arenas, so without this the resident size stays
//! at the reload's peak until the next one (issue 22).
#![allow(unsafe_code)] // malloc_trim(3): no arguments to get wrong, no memory handed over.

/// Returns the free memory of every malloc arena to the kernel (glibc's
/// `malloc_trim(0)`); a no-op elsewhere.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
