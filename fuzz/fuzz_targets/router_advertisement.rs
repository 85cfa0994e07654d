//! Router Advertisement decoder (unnumbered BGP, RFC 4861 §4.2) and the hop limit
//! parser of recvmsg's ancillary data: never panic; whatever decodes re-encodes and
//! decodes again to the same value (options other than the source link-layer address
//! are dropped on re-encode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxlb_bgp::unnumbered::discovery::{hop_limit_in, router_from};
use oxlb_bgp::unnumbered::ra::RouterAdvertisement;

fuzz_target!(|data: &[u8]| {
    let _ = hop_limit_in(data);
    let _ = router_from(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1), Some(255), data);
    if let Ok(ra) = RouterAdvertisement::decode(data) {
        assert_eq!(RouterAdvertisement::decode(&ra.encode()), Ok(ra));
    }
});
