//! The kernel's answers to an nf_tables batch (the only bytes the second-chance shell
//! reads): any datagram parses to acknowledgements or a typed error, never a panic, and
//! every answer found lies inside the datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxlb_nft::netlink::answers;

fuzz_target!(|data: &[u8]| {
    if let Ok(found) = answers(data) {
        // Each answer takes at least a header and the error code.
        assert!(found.len() * 20 <= data.len());
    }
});
