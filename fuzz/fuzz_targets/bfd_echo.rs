//! BFD Echo function parsers: a frame read on the echo packet socket (IPv4 or IPv6),
//! the Echo payload and an rtnetlink neighbour dump never panic; whatever parses as our
//! Echo packet re-encodes to the same 16 bytes (reserved ones zeroed) and decodes again
//! to the same value; a looped frame names a source equal to its destination; an IPv6
//! looped frame, rebuilt from what was parsed, parses to the same value (so its UDP
//! checksum was checked the way it is computed); a neighbour dump yields only usable
//! entries.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use oxlb_bfd::echo::{EchoPacket, Mac, build_frame6, parse_looped, parse_neighbour_dump};

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
        if let IpAddr::V6(address) = looped.address {
            // What we would have sent, coming back from the frame's sender with the
            // frame's hop limit.
            let peer = Mac(data[6..12].try_into().unwrap_or([0; 6]));
            let mut back = build_frame6(ours, peer, address, &looped.echo);
            back[14 + 7] = looped.ttl;
            assert_eq!(parse_looped(&back, ours), Some(looped));
        }
    }
    for entry in parse_neighbour_dump(data).entries {
        assert_ne!(entry.mac, Mac([0; 6]));
    }
});
