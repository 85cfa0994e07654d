//! Gossip packets are encrypted and authenticated with the shared secret (as MetalLB's
//! memberlist, AES-GCM): what goes on the wire does not show who is in the cluster,
//! and only a holder of the secret can make a packet that is accepted.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use oxlb_l2::auth::{AuthError, OVERHEAD, Sealer};
use oxlb_l2::membership::{Membership, Tuning};
use proptest::prelude::*;

proptest! {
    #[test]
    fn round_trip_with_the_secret(secret in prop::collection::vec(any::<u8>(), 1..160),
                                  body in prop::collection::vec(any::<u8>(), 0..1400)) {
        let sealer = Sealer::new(&secret).unwrap();
        let packet = sealer.seal(&body);
        prop_assert_eq!(packet.len(), body.len() + OVERHEAD);
        prop_assert_eq!(sealer.open(&packet), Ok(body));
    }

    /// Any flipped bit, anywhere (version, nonce, ciphertext, tag), is refused.
    #[test]
    fn any_tampering_is_refused(body in prop::collection::vec(any::<u8>(), 0..300),
                                bit in any::<prop::sample::Index>()) {
        let sealer = Sealer::new(b"memberlist-secret").unwrap();
        let mut packet = sealer.seal(&body);
        let bit = bit.index(packet.len() * 8);
        packet[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(sealer.open(&packet).is_err());
    }

    /// Another secret neither reads nor forges.
    #[test]
    fn another_secret_is_refused(a in prop::collection::vec(any::<u8>(), 1..64),
                                 b in prop::collection::vec(any::<u8>(), 1..64),
                                 body in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assume!(a != b);
        let (sa, sb) = (Sealer::new(&a).unwrap(), Sealer::new(&b).unwrap());
        prop_assert_eq!(sb.open(&sa.seal(&body)), Err(AuthError::Unauthenticated));
    }

    /// Truncated or arbitrary datagrams are refused, never accepted.
    #[test]
    fn garbage_is_refused(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let sealer = Sealer::new(b"memberlist-secret").unwrap();
        prop_assert!(sealer.open(&data).is_err());
        let packet = sealer.seal(&data);
        for cut in [0, 1, OVERHEAD - 1, packet.len() - 1] {
            prop_assert!(sealer.open(&packet[..cut]).is_err());
        }
    }

    /// The body never appears in the packet (random bodies of 16 bytes and more).
    #[test]
    fn the_body_is_not_readable(body in prop::collection::vec(any::<u8>(), 16..300)) {
        let packet = Sealer::new(b"memberlist-secret").unwrap().seal(&body);
        prop_assert!(!packet.windows(16).any(|w| w == &body[..16]));
    }
}

/// A real member's packets, caught on the wire: its name and address are not in them,
/// and the secret opens them.
#[tokio::test]
async fn a_members_packets_on_the_wire_are_encrypted() {
    const SECRET: &[u8] = b"c2VjcmV0LWZvci10ZXN0cw==";
    let sniffer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me: SocketAddr = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let name = "dfx-node-with-a-visible-name";
    let member = Membership::start(
        name,
        me,
        vec![sniffer.local_addr().unwrap()],
        Some(SECRET),
        Tuning::default(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 65536];
    let sealer = Sealer::new(SECRET).unwrap();
    // Heartbeats (no name in them) and the SWIM announce come in any order: every one
    // is sealed, and the announce names its sender once opened.
    let mut announced = false;
    for _ in 0..20 {
        let (len, from) =
            tokio::time::timeout(Duration::from_secs(10), sniffer.recv_from(&mut buf))
                .await
                .expect("the member sends to its seed")
                .unwrap();
        assert_eq!(from, me);
        let packet = &buf[..len];
        assert!(
            !packet.windows(name.len()).any(|w| w == name.as_bytes()),
            "the node name is readable on the wire"
        );
        let body = sealer.open(packet).unwrap();
        if oxlb_l2::lease::decode(&body).is_none() {
            assert!(
                body.windows(name.len()).any(|w| w == name.as_bytes()),
                "the announce names its sender once decrypted"
            );
            announced = true;
            break;
        }
    }
    assert!(announced, "no announce among the first 20 datagrams");
    drop(member);
}
