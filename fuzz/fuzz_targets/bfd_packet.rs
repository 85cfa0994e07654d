//! BFD Control packet decoder: never panics; whatever decodes re-encodes to the same
//! 24 mandatory bytes (Length normalised to 24) and decodes again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxlb_bfd::packet::ControlPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = ControlPacket::decode(data) {
        let bytes = packet.encode();
        assert_eq!(&bytes[..3], &data[..3]);
        assert_eq!(&bytes[4..], &data[4..24]);
        assert_eq!(ControlPacket::decode(&bytes), Ok(packet));
    }
});
