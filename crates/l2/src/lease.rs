//! Quorum leases: the timing that makes "never two answerers" hold when the gossip
//! between an owner and the others is cut (both ways or one way) but the LAN is not.
//!
//! SWIM alone cannot order the two sides of a cut. The survivors declare the owner
//! down as soon as *one* of them fails to probe it, while the owner must fail to probe
//! a *majority* before it loses its quorum (with 50 speakers, probing one per period,
//! that is seconds). For a moment both answered (seen in CI: one run in six).
//!
//! So each speaker sends every known speaker a small authenticated heartbeat every
//! `beat_every`. Each beat to a peer carries an *echo*: the (generation, sequence) of
//! the latest beat this speaker received from that peer. Time, measured on each side's
//! own clock, orders the two sides:
//!
//! - a speaker counts a peer toward its quorum only while the latest echo it received
//!   from that peer names one of its own beats sent less than `lease` ago: two-way
//!   contact, proved by the peer, timed from this speaker's own send. Cut off at T in
//!   either direction (or both), no echo of a beat sent after T comes back, so the owner
//!   stops claiming at T + `lease` at the latest (plus its recheck tick). Measured from
//!   its own send, the bound also holds when the owner's own task waited for the CPU:
//!   a queued echo read late is no fresher;
//! - every beat also says whether its sender may claim (its quorum standing). A member
//!   that SWIM declares down stays a candidate of the election (its IPs do not move)
//!   until `takeover_after` has passed since this speaker's last beat from it that said
//!   it may claim. When the owner counted this peer at T, this peer had received (and
//!   echoed) an owner beat sent after T - `lease`, saying it may claim (its standing
//!   had allowed claiming for the settle time, longer than `lease`): the survivors take
//!   over at T - `lease` + `takeover_after` at the earliest;
//! - an owner whose inbound gossip is cut hears no echo, loses its standing, and says
//!   so in its next beats: the others take over `takeover_after` after its last beat
//!   that said it may claim, instead of keeping a non-answering owner forever because
//!   its beats keep coming.
//!
//! With `takeover_after` > `lease` + the recheck tick (plus room for scheduling), the
//! owner has let go before anyone takes over. Only elapsed times on one clock are
//! compared; the speakers' clocks need not agree. A real death costs nothing extra:
//! SWIM needs about as long to declare a killed speaker down.
//!
//! Beats carry the sender's generation and a sequence number, and a beat not newer than
//! the last one from that address is ignored: a replayed beat cannot keep a cut-off
//! owner's lease alive, nor bring back an old echo. A speaker that stops cleanly says so
//! in a last beat, and the others drop its hold at once (the clean hand-over stays
//! immediate).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Marks a beat datagram's body (like the views' magic: never the start of a SWIM
/// body, which begins with a postcard string length).
const MAGIC: &[u8] = b"\xff\xff\xffoxlb-beat\n";

/// The body after the magic: generation (8 bytes), sequence (8), flags (1), echoed
/// generation (8), echoed sequence (8). The first format (17 bytes, no echo) is
/// rejected as malformed: a speaker that does not echo cannot prove two-way contact.
const BODY_LEN: usize = 33;

/// Flags: the sender stops cleanly (its last beat).
const LEAVING: u8 = 1;
/// The sender's standing allows claiming.
const MAY_CLAIM: u8 = 2;
/// The echo fields name a beat the sender received from the recipient.
const ECHO: u8 = 4;

/// How many of its own recent beats a speaker remembers the send time of: echoes of
/// older ones are stale anyway (seconds at the default timing).
const SENT_KEPT: usize = 64;

/// Names one beat: the sender's generation and its sequence number in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    pub generation: u64,
    pub seq: u64,
}

/// One heartbeat as sent to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// The sender's generation (its start time) and this beat's sequence number; a
    /// restarted sender's beats are newer.
    pub stamp: Stamp,
    /// The sender stops: its IPs may move at once.
    pub leaving: bool,
    /// The sender's quorum standing allows claiming.
    pub may_claim: bool,
    /// The latest beat the sender received from the recipient.
    pub echo: Option<Stamp>,
}

/// The body of a beat datagram.
pub fn encode(beat: &Beat) -> Vec<u8> {
    let mut body = Vec::with_capacity(MAGIC.len() + BODY_LEN);
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&beat.stamp.generation.to_be_bytes());
    body.extend_from_slice(&beat.stamp.seq.to_be_bytes());
    let mut flags = 0;
    if beat.leaving {
        flags |= LEAVING;
    }
    if beat.may_claim {
        flags |= MAY_CLAIM;
    }
    if beat.echo.is_some() {
        flags |= ECHO;
    }
    body.push(flags);
    let echo = beat.echo.unwrap_or(Stamp {
        generation: 0,
        seq: 0,
    });
    body.extend_from_slice(&echo.generation.to_be_bytes());
    body.extend_from_slice(&echo.seq.to_be_bytes());
    body
}

/// `None`: not a beat datagram. `Some(None)`: a beat datagram that does not decode
/// (wrong length, including the first, shorter format). Unknown flag bits are ignored.
pub fn decode(body: &[u8]) -> Option<Option<Beat>> {
    let rest = body.strip_prefix(MAGIC)?;
    if rest.len() != BODY_LEN {
        return Some(None);
    }
    let word = |at: usize| -> Option<u64> {
        let bytes: [u8; 8] = rest.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    };
    let (Some(generation), Some(seq), Some(&flags), Some(echo_generation), Some(echo_seq)) =
        (word(0), word(8), rest.get(16), word(17), word(25))
    else {
        return Some(None);
    };
    Some(Some(Beat {
        stamp: Stamp { generation, seq },
        leaving: flags & LEAVING != 0,
        may_claim: flags & MAY_CLAIM != 0,
        echo: (flags & ECHO != 0).then_some(Stamp {
            generation: echo_generation,
            seq: echo_seq,
        }),
    }))
}

/// The sending side: numbers this speaker's beats and remembers when the recent ones
/// went out, to time the echoes.
#[derive(Debug, Clone)]
pub struct Beats {
    generation: u64,
    seq: u64,
    /// (sequence, send time) of the last [`SENT_KEPT`] beats, oldest first.
    sent: VecDeque<(u64, Instant)>,
}

impl Beats {
    pub fn new(generation: u64) -> Beats {
        Beats {
            generation,
            seq: 0,
            sent: VecDeque::with_capacity(SENT_KEPT),
        }
    }

    /// The stamp of the next beat, sent (to every peer) at `now`.
    pub fn next(&mut self, now: Instant) -> Stamp {
        self.seq = self.seq.wrapping_add(1);
        if self.sent.len() == SENT_KEPT {
            self.sent.pop_front();
        }
        self.sent.push_back((self.seq, now));
        Stamp {
            generation: self.generation,
            seq: self.seq,
        }
    }

    /// When this speaker sent the beat `stamp` names, if it is one of its recent ones.
    pub fn sent_at(&self, stamp: Stamp) -> Option<Instant> {
        if stamp.generation != self.generation {
            return None;
        }
        self.sent
            .iter()
            .rev()
            .find(|(seq, _)| *seq == stamp.seq)
            .map(|(_, at)| *at)
    }
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    last: Stamp,
    /// When the last beat arrived; `None` after a leaving beat.
    heard: Option<Instant>,
    /// When the last beat saying it may claim arrived; `None` after a leaving beat.
    claiming: Option<Instant>,
    /// The newest of this speaker's beats the peer echoed.
    echo: Option<Stamp>,
}

/// The receiving side: per peer, its last beat, when it arrived, and the newest of this
/// speaker's beats it echoed.
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

/// Whether a peer counts toward this speaker's quorum ([`Leases::contact`]), and if not,
/// why: a log field and a counter, so that every loss of standing says its cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact {
    /// Two-way contact within the lease: it counts.
    TwoWay,
    /// No beat from it yet, or its last one said it leaves.
    NoBeat,
    /// Its last beat arrived `age` ago: it is not heard (beats lost, or it is cut off,
    /// stopped, or starved of CPU).
    BeatStale { age: Duration },
    /// Its beats arrive (the last `beat_age` ago) but it has not echoed a beat this
    /// speaker sent within the lease: it does not hear this one (or its echoes were
    /// lost). `echo_age`: how old the beat it last echoed is, `None` when it echoed
    /// none of the recent ones.
    EchoStale {
        beat_age: Duration,
        echo_age: Option<Duration>,
    },
}

impl std::fmt::Display for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Contact::TwoWay => f.write_str("two_way"),
            Contact::NoBeat => f.write_str("no_beat"),
            Contact::BeatStale { age } => write!(f, "beat_stale({}ms)", age.as_millis()),
            Contact::EchoStale {
                beat_age,
                echo_age: Some(echo),
            } => write!(
                f,
                "echo_stale(beat {}ms, echo {}ms)",
                beat_age.as_millis(),
                echo.as_millis()
            ),
            Contact::EchoStale {
                beat_age,
                echo_age: None,
            } => write!(f, "echo_stale(beat {}ms, no echo)", beat_age.as_millis()),
        }
    }
}

impl Leases {
    /// Records a beat from `from` that arrived at `now`.
    pub fn observe(&mut self, from: SocketAddr, beat: Beat, now: Instant) -> Observed {
        let previous = self.peers.get(&from).copied();
        if previous.is_some_and(|p| beat.stamp <= p.last) {
            return Observed::Stale;
        }
        let live = !beat.leaving;
        // Echoes only grow: a newer beat echoing an older beat of ours (reordering)
        // does not make the contact look older than it was.
        let echo = match (previous.and_then(|p| p.echo), beat.echo) {
            (Some(old), Some(new)) => Some(old.max(new)),
            (old, new) => new.or(old),
        };
        self.peers.insert(
            from,
            Peer {
                last: beat.stamp,
                heard: live.then_some(now),
                claiming: if !live {
                    None
                } else if beat.may_claim {
                    Some(now)
                } else {
                    previous.and_then(|p| p.claiming)
                },
                echo,
            },
        );
        if beat.leaving {
            Observed::Left
        } else {
            Observed::Renewed
        }
    }

    /// What to echo in the next beat to `addr`: the latest beat received from it.
    pub fn echo_for(&self, addr: &SocketAddr) -> Option<Stamp> {
        self.peers.get(addr).map(|p| p.last)
    }

    /// Whether `addr` counts toward the quorum at `now`: it echoed a beat of `sent`
    /// sent less than `lease` before `now` (see the module comment).
    pub fn contact(
        &self,
        addr: &SocketAddr,
        sent: &Beats,
        now: Instant,
        lease: Duration,
    ) -> Contact {
        let Some((peer, heard)) = self
            .peers
            .get(addr)
            .and_then(|p| p.heard.map(|heard| (p, heard)))
        else {
            return Contact::NoBeat;
        };
        let beat_age = now.saturating_duration_since(heard);
        let echo_age = peer
            .echo
            .and_then(|echo| sent.sent_at(echo))
            .map(|at| now.saturating_duration_since(at));
        match echo_age {
            Some(age) if age < lease => Contact::TwoWay,
            _ if beat_age >= lease => Contact::BeatStale { age: beat_age },
            echo_age => Contact::EchoStale { beat_age, echo_age },
        }
    }

    /// Whether a beat from `addr` saying it may claim arrived less than `within`
    /// before `now`: a member found down keeps its IPs while this holds.
    pub fn claimed_within(&self, addr: &SocketAddr, now: Instant, within: Duration) -> bool {
        self.peers
            .get(addr)
            .and_then(|p| p.claiming)
            .is_some_and(|at| now.saturating_duration_since(at) < within)
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

    const LEASE: Duration = Duration::from_millis(160);

    fn beat(stamp: Stamp, echo: Option<Stamp>) -> Beat {
        Beat {
            stamp,
            leaving: false,
            may_claim: true,
            echo,
        }
    }

    #[test]
    fn beats_round_trip_and_bad_bodies_are_rejected() {
        let beat = Beat {
            stamp: Stamp {
                generation: 7,
                seq: 9,
            },
            leaving: true,
            may_claim: false,
            echo: Some(Stamp {
                generation: u64::MAX,
                seq: 3,
            }),
        };
        assert_eq!(decode(&encode(&beat)), Some(Some(beat)));
        let plain = Beat {
            leaving: false,
            may_claim: true,
            echo: None,
            ..beat
        };
        assert_eq!(decode(&encode(&plain)), Some(Some(plain)));
        assert_eq!(decode(b"not a beat"), None);
        let mut short = encode(&beat);
        short.pop();
        assert_eq!(decode(&short), Some(None));
        let mut long = encode(&beat);
        long.push(0);
        assert_eq!(decode(&long), Some(None));
        // The first format (generation, sequence, flags: 17 bytes) is cleanly rejected.
        let mut old = MAGIC.to_vec();
        old.extend_from_slice(&[0; 17]);
        assert_eq!(decode(&old), Some(None));
        // Unknown flag bits are ignored.
        let mut odd = encode(&plain);
        if let Some(flags) = odd.get_mut(MAGIC.len() + 16) {
            *flags |= 0xf0;
        }
        assert_eq!(decode(&odd), Some(Some(plain)));
        // A view datagram is not a beat.
        assert_eq!(decode(b"\xff\xff\xffoxlb-view\nnode1"), None);
    }

    #[test]
    fn any_body_decodes_or_is_rejected_without_panic() {
        let full = encode(&beat(
            Stamp {
                generation: 1,
                seq: 2,
            },
            None,
        ));
        for n in 0..=full.len() + 2 {
            let mut body = full.clone();
            body.resize(n, 0xff);
            let _ = decode(&body);
        }
    }

    #[test]
    fn a_peer_counts_while_it_echoes_a_recent_beat() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut mine = Beats::new(1);
        let mut theirs = Beats::new(2);
        let mut leases = Leases::default();
        assert_eq!(leases.contact(&addr(1), &mine, t0, LEASE), Contact::NoBeat);
        let sent = mine.next(t0);
        // Its beat arrives before it heard ours: it counts for nothing yet.
        leases.observe(addr(1), beat(theirs.next(t0), None), t0 + ms(5));
        assert_eq!(
            leases.contact(&addr(1), &mine, t0 + ms(10), LEASE),
            Contact::EchoStale {
                beat_age: ms(5),
                echo_age: None
            }
        );
        // It echoes our beat: two-way contact until our beat is `LEASE` old.
        leases.observe(addr(1), beat(theirs.next(t0), Some(sent)), t0 + ms(40));
        assert_eq!(
            leases.contact(&addr(1), &mine, t0 + ms(159), LEASE),
            Contact::TwoWay
        );
        // Its beats keep coming but echo nothing newer: it does not hear us.
        leases.observe(addr(1), beat(theirs.next(t0), Some(sent)), t0 + ms(150));
        assert_eq!(
            leases.contact(&addr(1), &mine, t0 + ms(160), LEASE),
            Contact::EchoStale {
                beat_age: ms(10),
                echo_age: Some(ms(160))
            }
        );
        // Nothing at all from it.
        assert_eq!(
            leases.contact(&addr(1), &mine, t0 + ms(400), LEASE),
            Contact::BeatStale { age: ms(250) }
        );
        // An echo of a beat we never sent (or of another generation) proves nothing.
        let forged = Stamp {
            generation: 1,
            seq: 99,
        };
        leases.observe(addr(1), beat(theirs.next(t0), Some(forged)), t0 + ms(400));
        assert!(matches!(
            leases.contact(&addr(1), &mine, t0 + ms(400), LEASE),
            Contact::EchoStale { echo_age: None, .. }
        ));
        // What we echo to it: its latest beat.
        assert_eq!(
            leases.echo_for(&addr(1)),
            Some(Stamp {
                generation: 2,
                seq: 4
            })
        );
        assert_eq!(leases.echo_for(&addr(2)), None);
    }

    #[test]
    fn replays_and_reordered_echoes_do_not_renew_anything() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut mine = Beats::new(1);
        let mut theirs = Beats::new(2);
        let mut leases = Leases::default();
        let old = mine.next(t0);
        let new = mine.next(t0 + ms(40));
        let first = beat(theirs.next(t0), Some(new));
        assert_eq!(
            leases.observe(addr(1), first, t0 + ms(50)),
            Observed::Renewed
        );
        // A replay of the same beat later renews nothing.
        assert_eq!(
            leases.observe(addr(1), first, t0 + ms(190)),
            Observed::Stale
        );
        assert!(matches!(
            leases.contact(&addr(1), &mine, t0 + ms(200), LEASE),
            Contact::EchoStale { .. }
        ));
        // A newer beat echoing an older beat of ours keeps the newer echo.
        leases.observe(addr(1), beat(theirs.next(t0), Some(old)), t0 + ms(60));
        assert_eq!(
            leases.contact(&addr(1), &mine, t0 + ms(199), LEASE),
            Contact::TwoWay
        );
    }

    #[test]
    fn only_recent_sends_are_remembered() {
        let t0 = Instant::now();
        let mut mine = Beats::new(3);
        let first = mine.next(t0);
        for _ in 0..SENT_KEPT {
            mine.next(t0);
        }
        assert_eq!(mine.sent_at(first), None);
        assert_eq!(mine.sent.len(), SENT_KEPT);
        let last = mine.next(t0 + Duration::from_secs(1));
        assert_eq!(mine.sent_at(last), Some(t0 + Duration::from_secs(1)));
        let other_generation = Stamp {
            generation: 4,
            ..last
        };
        assert_eq!(mine.sent_at(other_generation), None);
    }

    #[test]
    fn a_down_member_holds_while_it_says_it_may_claim() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let hold = ms(260);
        let mut theirs = Beats::new(2);
        let mut leases = Leases::default();
        leases.observe(addr(1), beat(theirs.next(t0), None), t0);
        assert!(leases.claimed_within(&addr(1), t0 + ms(259), hold));
        // It lost its standing and says so: the hold runs out from its last claim,
        // although its beats keep coming.
        let mut lost = beat(theirs.next(t0), None);
        lost.may_claim = false;
        leases.observe(addr(1), lost, t0 + ms(100));
        lost.stamp = theirs.next(t0);
        leases.observe(addr(1), lost, t0 + ms(250));
        assert!(!leases.claimed_within(&addr(1), t0 + ms(260), hold));
        // Claiming again renews it.
        leases.observe(addr(1), beat(theirs.next(t0), None), t0 + ms(300));
        assert!(leases.claimed_within(&addr(1), t0 + ms(500), hold));
    }

    #[test]
    fn a_restarted_sender_is_heard_and_a_leaving_one_is_dropped_at_once() {
        let t0 = Instant::now();
        let hold = Duration::from_secs(1);
        let mut leases = Leases::default();
        let mut old = Beats::new(5);
        for _ in 0..10 {
            leases.observe(addr(1), beat(old.next(t0), None), t0);
        }
        // Restarted: a newer generation, its sequence starts again.
        let mut new = Beats::new(6);
        assert_eq!(
            leases.observe(addr(1), beat(new.next(t0), None), t0),
            Observed::Renewed
        );
        let mut leaving = beat(new.next(t0), None);
        leaving.leaving = true;
        assert_eq!(leases.observe(addr(1), leaving, t0), Observed::Left);
        assert!(!leases.claimed_within(&addr(1), t0, hold));
        assert_eq!(
            leases.contact(&addr(1), &Beats::new(1), t0, hold),
            Contact::NoBeat
        );
        // An old-generation beat replayed afterwards is stale.
        assert_eq!(
            leases.observe(addr(1), beat(old.next(t0), None), t0),
            Observed::Stale
        );
    }

    #[test]
    fn only_known_peers_are_kept() {
        let t0 = Instant::now();
        let mut leases = Leases::default();
        for n in 1..=3 {
            leases.observe(addr(n), beat(Beats::new(1).next(t0), None), t0);
        }
        leases.retain(|a| *a == addr(3));
        assert!(leases.echo_for(&addr(3)).is_some());
        assert!(leases.echo_for(&addr(1)).is_none());
        assert_eq!(leases.peers.len(), 1);
    }
}
