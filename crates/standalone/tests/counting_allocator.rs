//! The counting allocator installed as the global allocator (as the `oxlb` binary does):
//! `heap_use` reports it, and its figure follows allocations and frees to the byte.
#![allow(clippy::unwrap_used, clippy::panic)]

use oxlb_standalone::memory::{CountingAllocator, HeapSource, heap_use};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn the_live_heap_follows_allocations_to_the_byte() {
    // One test in this binary: no other thread allocates between the readings but the
    // test harness, which waits for it.
    let before = heap_use().unwrap();
    assert_eq!(before.source, HeapSource::CountingAllocator);
    let block: Vec<u8> = Vec::with_capacity(1_000_003);
    let during = heap_use().unwrap();
    assert_eq!(during.in_use_bytes - before.in_use_bytes, 1_000_003);
    assert_eq!(during.blocks - before.blocks, 1);
    let mut block = std::hint::black_box(block);
    block.reserve_exact(2_000_006);
    let grown = heap_use().unwrap();
    assert_eq!(grown.in_use_bytes - before.in_use_bytes, 2_000_006);
    assert_eq!(grown.blocks, during.blocks);
    drop(block);
    let after = heap_use().unwrap();
    assert_eq!(after.in_use_bytes, before.in_use_bytes);
    assert_eq!(after.blocks, before.blocks);
}
