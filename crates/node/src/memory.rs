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
//! the moment of asking ([`heap_use`]), `null` where nothing can tell; the soak test
//! bounds it.
#![allow(unsafe_code)] // malloc_trim(3), mallopt(3), mallinfo2(3), and GlobalAlloc over System.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Returns the free memory of every malloc arena to the kernel (glibc's
/// `malloc_trim(0)`); a no-op elsewhere.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// When a loop that works in passes gives freed memory back: once its passes have
/// stopped for a whole tick (at least one period of the caller's timer). A burst of
/// thousands of passes (a rollout, each object's watch event a pass) then trims once,
/// after it, instead of once per pass; and every pass of the burst counts, not only
/// those that changed something: a pass that changes nothing still builds and drops
/// its whole input (10,000 Services' views), which stayed resident when the speaker
/// trimmed only at the first unchanged pass (issue 22).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TrimWhenQuiet {
    /// A pass ran since the last trim.
    owed: bool,
    /// A pass ran since the last tick.
    busy: bool,
}

impl TrimWhenQuiet {
    /// A pass ran.
    pub fn pass(&mut self) {
        self.owed = true;
        self.busy = true;
    }

    /// The caller's timer ticked: whether to trim now ([`release_freed`]).
    pub fn tick(&mut self) -> bool {
        let quiet = !std::mem::take(&mut self.busy);
        quiet && std::mem::take(&mut self.owed)
    }
}

/// The live heap, which a leak grows and allocator bookkeeping does not (the resident
/// size also counts free pages an arena keeps, and wanders with them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeapUse {
    /// Bytes the program holds: counted exactly by [`CountingAllocator`] where the
    /// binary installs it (the `oxlb` binary does), else glibc's `mallinfo2` in-use
    /// figure, which also counts freed blocks parked in the per-thread caches (it moved
    /// by up to 3.5 % with nothing kept, where heaptrack saw 0 bytes of difference).
    pub in_use_bytes: u64,
    /// Allocations held (counted only by [`CountingAllocator`]; 0 otherwise).
    pub blocks: u64,
    /// Where the figure comes from.
    pub source: HeapSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeapSource {
    CountingAllocator,
    Mallinfo2,
}

static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE_BLOCKS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting the bytes and blocks it holds for the program: two
/// relaxed atomic additions per call, a live heap figure that is exact on every libc
/// (the static musl image included). Install it with `#[global_allocator]`.
pub struct CountingAllocator;

impl CountingAllocator {
    fn held(size: usize) {
        COUNTING.store(true, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(size as u64, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
    }

    fn released(size: usize) {
        LIVE_BYTES.fetch_sub(size as u64, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` with the caller's layout and pointer; the
// counters are only arithmetic beside it.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Self::held(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::held(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        Self::released(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` per the caller's contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        }
        new
    }
}

pub fn heap_use() -> Option<HeapUse> {
    if COUNTING.load(Ordering::Relaxed) {
        return Some(HeapUse {
            in_use_bytes: LIVE_BYTES.load(Ordering::Relaxed),
            blocks: LIVE_BLOCKS.load(Ordering::Relaxed),
            source: HeapSource::CountingAllocator,
        });
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 returns a struct by value after walking the allocator's own
        // bookkeeping.
        let info = unsafe { libc::mallinfo2() };
        let bytes = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Some(HeapUse {
            in_use_bytes: bytes(info.uordblks).saturating_add(bytes(info.hblkhd)),
            blocks: 0,
            source: HeapSource::Mallinfo2,
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
    use super::TrimWhenQuiet;

    /// One trim per burst, a whole tick after its last pass; none while idle.
    #[test]
    fn trims_once_after_a_quiet_tick() {
        let mut trim = TrimWhenQuiet::default();
        assert!(!trim.tick(), "nothing ran");
        trim.pass();
        trim.pass();
        assert!(!trim.tick(), "a pass ran during this tick");
        trim.pass();
        assert!(!trim.tick(), "still busy");
        assert!(trim.tick(), "a quiet tick after the burst");
        assert!(!trim.tick(), "trimmed already");
        trim.pass();
        assert!(!trim.tick());
        assert!(trim.tick(), "the next burst trims again");
    }

    /// glibc takes both settings (a wrong parameter number would return 0).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_settings() {
        assert!(super::tune_allocator());
        super::release_freed();
    }

    /// The live heap grows by what is allocated and shrinks when it is freed (the unit
    /// tests run on the system allocator: mallinfo2).
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
