//! BFD Echo function parsers: a frame read on the echo packet socket and the Echo
//! payload never panic; whatever parses as our Echo packet re-encodes to the same 16
//! bytes (reserved ones zeroed) and decodes again to the same value; a looped frame names a source equal to
//! its destination.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxlb_bfd::echo::{EchoPacket, Mac, parse_looped};

fuzz_target!(|data: &[u8]| {
    if let Some(echo) = EchoPacket::decode(data) {
        let bytes = echo.encode();
        // Reserved bytes (2..4) are ignored on receipt and sent as zero.
        assert_eq!(&bytes[..2], &data[..2]);
        assert_eq!(&bytes[4..], &data[4..16]);
        assert_eq!(EchoPacket::decode(&bytes), Some(echo));
    }
    let ours = Mac([2, 0, 0, 0, 0, 1]);
    if let Some(looped) = parse_looped(data, ours) {
        assert_eq!(&data[..6], &ours.0);
        assert_ne!(looped.echo.discriminator, 0);
    }
});
