//! Quorum leases: the timing that makes "never two answerers" hold when the gossip
//! between an owner and the others is cut but the LAN is not.
//!
//! SWIM alone cannot order the two sides of a cut. The survivors declare the owner
//! down as soon as *one* of them fails to probe it, while the owner must fail to probe
//! a *majority* before it loses its quorum (with 50 speakers, probing one per period,
//! that is seconds). For a moment both answered (seen in CI: one run in six).
//!
//! So each speaker sends every known speaker a small authenticated heartbeat every
//! `beat_every`, and time, measured on each side's own clock from the last beat it
//! received, orders the two sides:
//!
//! - a speaker counts a peer toward its quorum only while it received a beat from it
//!   within `lease`; cut off at T, the owner stops claiming at T + `lease` at the latest
//!   (plus its recheck tick);
//! - a member that SWIM declares down stays a candidate of the election (its IPs do not
//!   move) until `takeover_after` has passed since this speaker's last beat from it.
//!   That beat was sent at T - `beat_every` at the earliest, so the survivors take over
//!   at T - `beat_every` + `takeover_after` at the earliest.
//!
//! With `takeover_after` > `lease` + `beat_every` + the recheck tick, the owner has let
//! go before anyone takes over. Only elapsed times on one clock are compared; the
//! speakers' clocks need not agree. A real death costs nothing extra: SWIM needs about
//! as long to declare a killed speaker down.
//!
//! Beats carry the sender's generation and a sequence number, and a beat not newer than
//! the last one from that address is ignored: a replayed beat cannot keep a cut-off
//! owner's lease alive. A speaker that stops cleanly says so in a last beat, and the
//! others drop its hold at once (the clean hand-over stays immediate).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Marks a beat datagram's body (like the views' magic: never the start of a SWIM
/// body, which begins with a postcard string length).
const MAGIC: &[u8] = b"\xff\xff\xffoxlb-beat\n";

/// The body after the magic: generation (8 bytes), sequence (8), flags (1).
const BODY_LEN: usize = 17;

/// Set in the flags of the last beat of a speaker that stops cleanly.
const LEAVING: u8 = 1;

/// One heartbeat as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// The sender's generation (its start time); a restarted sender's beats are newer.
    pub generation: u64,
    /// Counts the sender's beats within one generation.
    pub seq: u64,
    /// The sender stops: its IPs may move at once.
    pub leaving: bool,
}

impl Beat {
    fn order(&self) -> (u64, u64) {
        (self.generation, self.seq)
    }
}

/// The body of a beat datagram.
pub fn encode(beat: &Beat) -> Vec<u8> {
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(&beat.generation.to_be_bytes());
    body.extend_from_slice(&beat.seq.to_be_bytes());
    body.push(if beat.leaving { LEAVING } else { 0 });
    body
}

/// `None`: not a beat datagram. `Some(None)`: a beat datagram that does not decode.
pub fn decode(body: &[u8]) -> Option<Option<Beat>> {
    let rest = body.strip_prefix(MAGIC)?;
    let Some(fields) = rest.get(..BODY_LEN).filter(|_| rest.len() == BODY_LEN) else {
        return Some(None);
    };
    let word = |at: usize| -> Option<u64> {
        let bytes: [u8; 8] = fields.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    };
    let (Some(generation), Some(seq), Some(flags)) = (word(0), word(8), fields.get(16)) else {
        return Some(None);
    };
    Some(Some(Beat {
        generation,
        seq,
        leaving: flags & LEAVING != 0,
    }))
}

/// The sending side: numbers this speaker's beats.
#[derive(Debug, Clone)]
pub struct Beats {
    generation: u64,
    seq: u64,
}

impl Beats {
    pub fn new(generation: u64) -> Beats {
        Beats { generation, seq: 0 }
    }

    /// The next beat to send.
    pub fn next(&mut self, leaving: bool) -> Beat {
        self.seq = self.seq.wrapping_add(1);
        Beat {
            generation: self.generation,
            seq: self.seq,
            leaving,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    last: (u64, u64),
    /// When the last beat arrived; `None` after a leaving beat.
    heard: Option<Instant>,
}

/// The receiving side: when each peer's last fresh beat arrived.
#[derive(Debug, Default)]
pub struct Leases {
    peers: HashMap<SocketAddr, Peer>,
}

/// What a received beat did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Newer than the last one: the peer's lease and hold are renewed.
    Renewed,
    /// The peer stops cleanly: its hold is dropped.
    Left,
    /// Not newer than the last beat from that address (a copy or a replay): ignored.
    Stale,
}

impl Leases {
    /// Records a beat from `from` that arrived at `now`.
    pub fn observe(&mut self, from: SocketAddr, beat: Beat, now: Instant) -> Observed {
        if let Some(peer) = self.peers.get(&from)
            && beat.order() <= peer.last
        {
            return Observed::Stale;
        }
        let heard = (!beat.leaving).then_some(now);
        self.peers.insert(
            from,
            Peer {
                last: beat.order(),
                heard,
            },
        );
        if beat.leaving {
            Observed::Left
        } else {
            Observed::Renewed
        }
    }

    /// Whether a fresh beat from `addr` arrived less than `within` before `now`.
    pub fn heard_within(&self, addr: &SocketAddr, now: Instant, within: Duration) -> bool {
        self.peers
            .get(addr)
            .and_then(|p| p.heard)
            .is_some_and(|heard| now.saturating_duration_since(heard) < within)
    }

    /// How long ago the last fresh beat from `addr` arrived; `None` before its first
    /// beat and after a leaving one.
    pub fn age(&self, addr: &SocketAddr, now: Instant) -> Option<Duration> {
        self.peers
            .get(addr)
            .and_then(|p| p.heard)
            .map(|heard| now.saturating_duration_since(heard))
    }

    /// Keeps only the peers `known` accepts. Beats are taken only from the known
    /// speakers, so the table is as big as the member list; a peer is never forgotten
    /// while it is known (forgetting its last sequence number would let a replay in).
    pub fn retain(&mut self, known: impl Fn(&SocketAddr) -> bool) {
        self.peers.retain(|addr, _| known(addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 7946))
    }

    #[test]
    fn beats_round_trip_and_bad_bodies_are_rejected() {
        let beat = Beat {
            generation: 7,
            seq: 9,
            leaving: true,
        };
        assert_eq!(decode(&encode(&beat)), Some(Some(beat)));
        assert_eq!(decode(b"not a beat"), None);
        let mut short = encode(&beat);
        short.pop();
        assert_eq!(decode(&short), Some(None));
        let mut long = encode(&beat);
        long.push(0);
        assert_eq!(decode(&long), Some(None));
        // A view datagram is not a beat.
        assert_eq!(decode(b"\xff\xff\xffoxlb-view\nnode1"), None);
    }

    #[test]
    fn a_lease_lasts_from_the_last_fresh_beat() {
        let t0 = Instant::now();
        let lease = Duration::from_millis(120);
        let mut sent = Beats::new(1);
        let mut leases = Leases::default();
        assert!(!leases.heard_within(&addr(1), t0, lease));
        let first = sent.next(false);
        assert_eq!(leases.observe(addr(1), first, t0), Observed::Renewed);
        assert!(leases.heard_within(&addr(1), t0 + Duration::from_millis(119), lease));
        assert!(!leases.heard_within(&addr(1), t0 + lease, lease));
        // A replay of the same beat later renews nothing.
        let later = t0 + Duration::from_millis(100);
        assert_eq!(leases.observe(addr(1), first, later), Observed::Stale);
        assert!(!leases.heard_within(&addr(1), t0 + lease, lease));
        // The next beat does.
        assert_eq!(
            leases.observe(addr(1), sent.next(false), later),
            Observed::Renewed
        );
        assert!(leases.heard_within(&addr(1), t0 + lease, lease));
        // Other addresses are separate.
        assert!(!leases.heard_within(&addr(2), later, lease));
    }

    #[test]
    fn a_restarted_sender_is_heard_and_a_leaving_one_is_dropped_at_once() {
        let t0 = Instant::now();
        let lease = Duration::from_secs(1);
        let mut leases = Leases::default();
        let mut old = Beats::new(5);
        for _ in 0..10 {
            leases.observe(addr(1), old.next(false), t0);
        }
        // Restarted: a newer generation, its sequence starts again.
        let mut new = Beats::new(6);
        assert_eq!(
            leases.observe(addr(1), new.next(false), t0),
            Observed::Renewed
        );
        assert_eq!(leases.observe(addr(1), new.next(true), t0), Observed::Left);
        assert!(!leases.heard_within(&addr(1), t0, lease));
        // An old-generation beat replayed afterwards is stale.
        assert_eq!(
            leases.observe(addr(1), old.next(false), t0),
            Observed::Stale
        );
    }

    #[test]
    fn only_known_peers_are_kept() {
        let t0 = Instant::now();
        let mut leases = Leases::default();
        for n in 1..=3 {
            leases.observe(addr(n), Beats::new(1).next(false), t0);
        }
        leases.retain(|a| *a == addr(3));
        assert!(leases.heard_within(&addr(3), t0, Duration::from_secs(1)));
        assert!(!leases.heard_within(&addr(1), t0, Duration::from_secs(1)));
        assert_eq!(leases.peers.len(), 1);
    }
}
