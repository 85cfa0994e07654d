//! Any datagram on the gossip port through authentication and SWIM decoding: no
//! panic, no unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    oxlb_l2::membership::fuzz_receive(data);
});
