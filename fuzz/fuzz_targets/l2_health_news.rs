//! Any health-news body (what is left of a datagram after authentication): decoding
//! never panics, and what decodes encodes back to a body that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxlb_l2::health_news::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Some(Some(news)) = decode(data) {
        assert_eq!(decode(&encode(&news)), Some(Some(news)));
    }
});
