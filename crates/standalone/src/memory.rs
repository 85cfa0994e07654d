//! Gives memory freed after a reload back to the system. A reload of 10,000 Services
//! builds and drops tens of megabytes (the controller's pass, the status report); glibc
//! keeps freed memory in its per-thread arenas, so without this the resident size stays
//! at the reload's peak until the next one (issue 22).
//!
//! One arena (issue 21): glibc gives each thread that allocates its own arena (up to 8
//! per core), and the engine task runs on whichever tokio worker is free, so one reload
//! builds its objects in one arena and the next in another. Each arena keeps its
//! partly used pages after `malloc_trim`, so the resident size at rest wandered by up
//! to 1.3 MB (about 2.5 % of a 50 MB debug process with 1,000 Services) with the live
//! heap unchanged (heaptrack: 7.45 MB after 15 new Service names, 7.46 MB after 90).
//! The allocations are one reload at a time on one task: one arena costs no contention
//! worth having and brings the figure at rest closer to the live heap.
//!
//! `GET /api/v1/memory` ([`router`], beside the status API on loopback): the live heap at
//! the moment of asking, `null` where the allocator cannot tell; the soak test bounds it.
#![allow(unsafe_code)] // malloc_trim(3), mallopt(3): plain integers, no memory handed over.

/// Returns the free memory of every malloc arena to the kernel (glibc's
/// `malloc_trim(0)`); a no-op elsewhere.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the allocator has handed out and not had back: the live heap, which a leak
/// grows and allocator bookkeeping does not (the resident size also counts free pages
/// an arena keeps, and wanders with them). glibc's `mallinfo2`: in-use bytes of the
/// arenas plus mmapped blocks. `None` where the allocator cannot tell (musl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeapUse {
    pub in_use_bytes: u64,
    /// Free bytes the arenas keep (resident or not).
    pub free_bytes: u64,
}

pub fn heap_use() -> Option<HeapUse> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 returns a struct by value after walking the allocator's own
        // bookkeeping.
        let info = unsafe { libc::mallinfo2() };
        let bytes = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Some(HeapUse {
            in_use_bytes: bytes(info.uordblks).saturating_add(bytes(info.hblkhd)),
            free_bytes: bytes(info.fordblks),
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// The `/api/v1/memory` route.
pub fn router() -> axum::Router {
    axum::Router::new().route(
        "/api/v1/memory",
        axum::routing::get(|| async { axum::Json(heap_use()) }),
    )
}

/// Above this size a block is its own mapping, unmapped when freed.
pub const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Sets glibc's allocator for a long-running process whose resident size must follow
/// its live heap; call before any thread is started (a no-op elsewhere). Returns
/// whether glibc took every setting.
/// - `M_ARENA_MAX` = 1: every thread allocates from the main arena (see the module).
/// - `M_MMAP_THRESHOLD` fixed at 128 KiB: a large block (the status report's JSON for
///   1,000 Services is 452 KB, and a reload's larger lists) is mapped on its own and
///   handed back when freed. By default glibc raises the threshold (up to 32 MB) after
///   such a block is freed, and with it the trim threshold, so later large blocks come
///   from the heap and stay resident after they are freed until the next reload's
///   `malloc_trim`: an `oxlb status` answer could stay in the resident size.
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    /// glibc takes both settings (a wrong parameter number would return 0).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_settings() {
        assert!(super::tune_allocator());
        super::release_freed();
    }

    /// The live heap grows by what is allocated and shrinks when it is freed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn heap_use_follows_allocations() {
        let before = super::heap_use().unwrap_or_else(|| panic!("glibc tells"));
        let block: Vec<u8> = vec![1; 4 << 20];
        let during = super::heap_use().unwrap_or_else(|| panic!("glibc tells"));
        assert!(
            during.in_use_bytes >= before.in_use_bytes + (4 << 20) - (64 << 10),
            "{before:?} -> {during:?}"
        );
        drop(std::hint::black_box(block));
        let after = super::heap_use().unwrap_or_else(|| panic!("glibc tells"));
        assert!(
            after.in_use_bytes + (3 << 20) < during.in_use_bytes,
            "{during:?} -> {after:?}"
        );
    }
}
