//! Which session a received datagram belongs to, and whether its TTL is acceptable.
//! Pure: the shell hands it what the socket reported.
//!
//! RFC 5880 §6.8.6: a non-zero Your Discriminator selects the session; a zero one is
//! matched on the addresses (RFC 5881 §3: source address and, here, destination
//! address plus encapsulation). RFC 5881 §5: single-hop packets must arrive with TTL /
//! hop limit 255 (GTSM). RFC 5883 §5: multihop packets are checked against the
//! profile's `minimumTtl`.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::net::Datagram;
use crate::packet::{ControlPacket, DropReason};
use crate::shell::PeerKey;

#[derive(Debug, Default, Clone)]
pub struct Demux {
    by_key: HashMap<PeerKey, u32>,
    by_discriminator: HashMap<u32, (PeerKey, u8)>,
}

/// What a datagram carried, as far as demultiplexing cares.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub payload: &'a [u8],
    pub source: IpAddr,
    pub destination: Option<IpAddr>,
    pub ttl: u8,
    pub interface: Option<u32>,
    pub multihop: bool,
}

impl<'a> From<&'a Datagram> for Arrival<'a> {
    fn from(d: &'a Datagram) -> Arrival<'a> {
        Arrival {
            payload: d.payload(),
            source: d.source,
            destination: d.destination,
            ttl: d.ttl,
            interface: d.interface,
            multihop: d.multihop,
        }
    }
}

impl Demux {
    pub fn insert(&mut self, key: PeerKey, discriminator: u32, minimum_ttl: u8) {
        self.by_key.insert(key, discriminator);
        self.by_discriminator
            .insert(discriminator, (key, minimum_ttl));
    }

    pub fn remove(&mut self, key: &PeerKey) -> Option<u32> {
        let discriminator = self.by_key.remove(key)?;
        self.by_discriminator.remove(&discriminator);
        Some(discriminator)
    }

    pub fn discriminator(&self, key: &PeerKey) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    pub fn keys(&self) -> impl Iterator<Item = &PeerKey> {
        self.by_key.keys()
    }

    /// Decodes the packet and picks its session.
    pub fn select(&self, arrival: Arrival<'_>) -> Result<(u32, ControlPacket), DropReason> {
        let packet = ControlPacket::decode(arrival.payload)?;
        let discriminator = if packet.your_discriminator != 0 {
            packet.your_discriminator
        } else {
            self.by_key
                .iter()
                .find(|(k, _)| {
                    k.peer == arrival.source
                        && k.multihop == arrival.multihop
                        && arrival.destination.is_none_or(|d| d == k.local)
                        && same_interface(k, &arrival)
                })
                .map(|(_, d)| *d)
                .ok_or(DropReason::NoSession)?
        };
        let (key, minimum_ttl) = self
            .by_discriminator
            .get(&discriminator)
            .ok_or(DropReason::NoSession)?;
        // A discriminator is only trusted from the address and encapsulation it
        // belongs to, so a third party cannot steer another peer's session.
        if key.peer != arrival.source
            || key.multihop != arrival.multihop
            || !same_interface(key, &arrival)
        {
            return Err(DropReason::NoSession);
        }
        if key.multihop {
            if arrival.ttl < *minimum_ttl {
                return Err(DropReason::BelowMinimumTtl);
            }
        } else if arrival.ttl != 255 {
            return Err(DropReason::BadTtl);
        }
        Ok((discriminator, packet))
    }
}

/// A session tied to an interface only takes packets that came in on it.
fn same_interface(key: &PeerKey, arrival: &Arrival<'_>) -> bool {
    key.interface
        .is_none_or(|index| arrival.interface.is_none_or(|got| got == index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Diag, State};

    fn key(peer: &str, local: &str, multihop: bool) -> PeerKey {
        PeerKey {
            peer: peer.parse().unwrap(),
            local: local.parse().unwrap(),
            multihop,
            interface: None,
        }
    }

    fn bytes(your: u32, state: State) -> [u8; 24] {
        ControlPacket {
            diag: Diag::None,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            authentication_present: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discriminator: 99,
            your_discriminator: your,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 1_000_000,
            required_min_echo_rx_us: 0,
        }
        .encode()
    }

    fn arrival<'a>(payload: &'a [u8], source: &str, ttl: u8, multihop: bool) -> Arrival<'a> {
        Arrival {
            payload,
            source: source.parse().unwrap(),
            destination: None,
            ttl,
            interface: None,
            multihop,
        }
    }

    fn demux() -> Demux {
        let mut demux = Demux::default();
        demux.insert(key("10.0.0.1", "10.0.0.2", false), 7, 254);
        demux.insert(key("10.9.0.1", "10.0.0.2", true), 8, 250);
        demux.insert(key("fd00::1", "fd00::2", false), 9, 254);
        demux
    }

    #[test]
    fn selects_by_your_discriminator_or_by_address() {
        let d = demux();
        let up = bytes(7, State::Up);
        assert_eq!(d.select(arrival(&up, "10.0.0.1", 255, false)).unwrap().0, 7);
        let down = bytes(0, State::Down);
        assert_eq!(
            d.select(arrival(&down, "10.0.0.1", 255, false)).unwrap().0,
            7
        );
        assert_eq!(
            d.select(arrival(&down, "10.9.0.1", 250, true)).unwrap().0,
            8
        );
        assert_eq!(
            d.select(arrival(&down, "fd00::1", 255, false)).unwrap().0,
            9
        );
    }

    #[test]
    fn drops_with_reasons() {
        let d = demux();
        let up7 = bytes(7, State::Up);
        let down0 = bytes(0, State::Down);
        let up8 = bytes(8, State::Up);
        let up1234 = bytes(1234, State::Up);
        let cases = [
            // RFC 5881 §5: single hop must be 255.
            (arrival(&up7, "10.0.0.1", 254, false), DropReason::BadTtl),
            // minimumTtl 250 on the multihop session.
            (
                arrival(&up8, "10.9.0.1", 249, true),
                DropReason::BelowMinimumTtl,
            ),
            // Right discriminator, wrong source or wrong port.
            (
                arrival(&up7, "10.0.0.66", 255, false),
                DropReason::NoSession,
            ),
            (arrival(&up7, "10.0.0.1", 255, true), DropReason::NoSession),
            // Unknown discriminator, unknown address.
            (
                arrival(&up1234, "10.0.0.1", 255, false),
                DropReason::NoSession,
            ),
            (
                arrival(&down0, "10.0.0.3", 255, false),
                DropReason::NoSession,
            ),
            (
                arrival(&up7[..10], "10.0.0.1", 255, false),
                DropReason::Truncated,
            ),
        ];
        for (a, reason) in cases {
            assert_eq!(d.select(a).map(|(d, _)| d), Err(reason), "{a:?}");
        }
    }

    #[test]
    fn destination_address_separates_sessions_to_one_peer() {
        let mut d = Demux::default();
        d.insert(key("10.0.0.1", "10.0.0.2", false), 1, 254);
        d.insert(key("10.0.0.1", "10.0.1.2", false), 2, 254);
        let down = bytes(0, State::Down);
        let mut a = arrival(&down, "10.0.0.1", 255, false);
        a.destination = Some("10.0.1.2".parse().unwrap());
        assert_eq!(d.select(a).unwrap().0, 2);
        a.destination = Some("10.0.0.2".parse().unwrap());
        assert_eq!(d.select(a).unwrap().0, 1);
        assert_eq!(d.remove(&key("10.0.0.1", "10.0.0.2", false)), Some(1));
        assert_eq!(d.select(a).map(|(d, _)| d), Err(DropReason::NoSession));
    }

    #[test]
    fn link_local_sessions_are_told_apart_by_interface() {
        let mut d = Demux::default();
        let mut on_3 = key("fe80::1", "fe80::2", false);
        on_3.interface = Some(3);
        let mut on_4 = on_3;
        on_4.interface = Some(4);
        d.insert(on_3, 30, 254);
        d.insert(on_4, 40, 254);
        let down = bytes(0, State::Down);
        let mut a = arrival(&down, "fe80::1", 255, false);
        a.interface = Some(4);
        assert_eq!(d.select(a).unwrap().0, 40);
        a.interface = Some(3);
        assert_eq!(d.select(a).unwrap().0, 30);
        // Session 40's discriminator arriving on interface 3 is not trusted.
        let up40 = bytes(40, State::Up);
        let a = Arrival {
            payload: &up40,
            ..a
        };
        assert_eq!(d.select(a).map(|(d, _)| d), Err(DropReason::NoSession));
        assert_eq!(d.remove(&on_3), Some(30));
        let a = Arrival {
            payload: &down,
            ..a
        };
        assert_eq!(d.select(a).map(|(d, _)| d), Err(DropReason::NoSession));
    }
}
