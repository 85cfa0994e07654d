//! Membership and failure detection between speakers: SWIM (foca's sans-I/O core)
//! over UDP, default port 7946, every packet authenticated with the `memberlist`
//! secret ([`crate::auth`]). This module is the shell: socket, timers, seeds, leave.
//!
//! It also says whether this speaker may claim IPs at all ([`Membership::electorate`]):
//! the known speakers are this one and its seeds (the configured members: `--members`,
//! the Nodes in the files, the speaker Pods), and the quorum rule of
//! [`oxlb_announce::quorum`] decides from the members heard from among them, after a
//! settle time without a break ([`quorum::Gate`]). Heard from means two-way contact
//! within the lease: the member's heartbeats echo one of this speaker's own recent
//! heartbeats. SWIM (alive, suspect, down) decides the membership and the election's
//! candidates, not the quorum: under loss it suspects live members. A member SWIM
//! finds down keeps its IPs until its last heartbeat saying it may claim is old enough
//! that it has surely let go: see [`crate::lease`] for why SWIM alone cannot order the
//! two sides of a cut.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use foca::{
    AccumulatingRuntime, Config, Foca, Identity, OwnedNotification, PeriodicParams, PostcardCodec,
    Timer,
};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use oxlb_announce::quorum::{self, Claim, Gate, Standing};
use tracing::{info, warn};

use crate::auth::{AuthError, Sealer};
pub use crate::health_news::Flag;
use crate::lease::{self, Beat, Beats, Contact, Leases, Observed};
use crate::views;

/// The memberlist port MetalLB speakers use.
pub const DEFAULT_PORT: u16 = 7946;

/// A speaker as the cluster knows it: its node name, where it listens, and a
/// generation that lets a restarted (or wrongly declared dead) speaker rejoin at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub addr: SocketAddr,
    generation: u64,
}

impl Identity for Node {
    type Addr = SocketAddr;

    /// After being declared down (a partition, a long pause), rejoin with a newer
    /// generation instead of staying out.
    fn renew(&self) -> Option<Node> {
        Some(Node {
            generation: self.generation.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Node) -> bool {
        self.generation > adversary.generation
    }
}

/// Failure-detection timing. The defaults detect a killed speaker in about a quarter
/// of a second on a LAN: it is probed within about one period, declared suspect when
/// neither the direct nor the indirect probes answer within the period, and down
/// after `suspect_to_down` unless it refutes.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub probe_period: Duration,
    pub probe_rtt: Duration,
    pub suspect_to_down: Duration,
    /// How often seeds that are not (or no longer) members are announced to: how
    /// members find each other at start and after a partition heals.
    pub announce_every: Duration,
    /// How long this speaker must have had its quorum without a break before it claims
    /// anything (after a start, a restart, a healed partition): the time the others
    /// need to hear of it. See [`quorum::Gate`].
    pub settle: Duration,
    /// How often a heartbeat goes to every known speaker ([`crate::lease`]).
    pub beat_every: Duration,
    /// A peer counts toward the quorum only while the latest of this speaker's
    /// heartbeats it echoed was sent less than this ago (two-way contact).
    pub lease: Duration,
    /// A member found down keeps its IPs until its last heartbeat saying it may claim
    /// is this old. Must exceed `lease` + the recheck tick (20 ms), with room for
    /// scheduling delays: that is what keeps a cut-off owner and its successor from
    /// answering at once.
    pub takeover_after: Duration,
    /// How many times every datagram is sent. Loss on the gossip path is what makes
    /// SWIM suspect a live member; a second copy makes a lost probe (and so a false
    /// "down" that would move an IP) far rarer: with 5 % independent loss a probe and
    /// its answer both get through with 99.5 % instead of 90 %. The receiver drops
    /// the extra copies unread (see `Shell::is_repeat`).
    pub copies: u8,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            probe_period: Duration::from_millis(80),
            probe_rtt: Duration::from_millis(30),
            suspect_to_down: Duration::from_millis(100),
            announce_every: Duration::from_millis(500),
            settle: Duration::from_millis(500),
            // Eight beats per lease, and an echo needs a beat each way: with 5 % loss at
            // each end (9.75 % a hop) and up to 20 ms of scheduling delay, a peer lacks
            // a fresh echo less than one moment in a million (simulated; at 40 ms, four
            // beats per lease, one in 400, and the one-way 120 ms lease before lost all
            // three beats of both peers at once about once in ten minutes under load).
            // The quorum needs only a majority of the peers.
            beat_every: Duration::from_millis(20),
            lease: Duration::from_millis(160),
            // The owner lets go at 160 + 20 = 180 ms at the latest after the last echo
            // of its beats was sent; the others take over 260 ms after that beat at
            // the earliest: 80 ms to spare. SWIM takes about as long to find a killed
            // speaker down (probe, indirect probes, suspicion), so a real failover
            // waits little for it.
            takeover_after: Duration::from_millis(260),
            copies: 2,
        }
    }
}

/// Beyond this many known speakers the heartbeats are sent less often, in proportion.
const BEAT_SCALE_FROM: usize = 16;
/// Beyond this many known speakers the lease and the takeover stretch in proportion.
const LEASE_SCALE_FROM: usize = 32;

/// The heartbeat timing for a cluster size ([`Tuning::lease_timing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LeaseTiming {
    beat_every: Duration,
    lease: Duration,
    takeover_after: Duration,
}

impl Tuning {
    /// Every speaker beats every other, so beat traffic grows with the square of the
    /// cluster: beyond [`BEAT_SCALE_FROM`] known speakers the beats are sent every
    /// `beat_every * known / 16` (a speaker never sends more beats than 31 peers at
    /// 40 ms), and beyond [`LEASE_SCALE_FROM`] the lease and the takeover stretch by
    /// `known / 32` (the safety margin between letting go and taking over stretches
    /// with them; the lease always spans eight beats up to 16 speakers and four to five
    /// beyond 32). 50 speakers: beats every 62 ms, lease 250 ms, takeover after 406 ms
    /// instead of 260 ms (measured: 1.03 % of a core per idle speaker at 40 ms, over
    /// the 1 % target).
    fn lease_timing(&self, known: usize) -> LeaseTiming {
        let scale = |d: Duration, from: usize| {
            if known <= from {
                d
            } else {
                d.mul_f64(known as f64 / from as f64)
            }
        };
        LeaseTiming {
            beat_every: scale(self.beat_every, BEAT_SCALE_FROM),
            lease: scale(self.lease, LEASE_SCALE_FROM),
            takeover_after: scale(self.takeover_after, LEASE_SCALE_FROM),
        }
    }

    fn foca_config(&self) -> Config {
        let mut config = Config::simple();
        config.probe_period = self.probe_period;
        config.probe_rtt = self.probe_rtt;
        config.num_indirect_probes = NonZeroUsize::MIN.saturating_add(2);
        config.max_transmissions = NonZeroU8::MIN.saturating_add(7);
        config.suspect_to_down_after = self.suspect_to_down;
        // Forget dead identities after a while; a renewed one replaces them anyway.
        config.remove_down_after = Some(Duration::from_secs(120));
        // Tell a member we consider down, so it renews its identity and rejoins.
        config.notify_down_members = true;
        config.periodic_announce = Some(PeriodicParams {
            frequency: Duration::from_secs(5),
            num_members: NonZeroUsize::MIN,
        });
        config.periodic_announce_to_down_members = Some(PeriodicParams {
            frequency: Duration::from_secs(1),
            num_members: NonZeroUsize::MIN.saturating_add(1),
        });
        // Gossip goes out only when there is news (foca skips the round otherwise), so
        // a short period and a wide fan-out cost nothing at idle and spread a "down"
        // through 50 speakers in about three rounds.
        config.periodic_gossip = Some(PeriodicParams {
            frequency: Duration::from_millis(40),
            num_members: NonZeroUsize::MIN.saturating_add(5),
        });
        config
    }
}

/// Why a known peer does not count toward this speaker's quorum now: carried to the
/// "layer2 quorum lost" log line, counted in [`MembershipStats`] and published with
/// [`QuorumReport`]. Never [`Contact::TwoWay`] there.
pub use crate::lease::Contact as Excluded;

/// This speaker's standing and, for every known peer it does not count, why: published
/// on every change of either (see [`Membership::watch_quorum`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReport {
    pub standing: Standing,
    pub excluded: Vec<(SocketAddr, Excluded)>,
    /// How long since the quorum was judged before this report: a long gap is this
    /// speaker's own task waiting for the CPU.
    pub since_last_check: Duration,
}

impl std::fmt::Display for QuorumReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "standing {} excluded=", self.standing)?;
        let mut first = true;
        for (addr, why) in &self.excluded {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{addr}:{why}")?;
        }
        write!(f, " check_gap={}ms", self.since_last_check.as_millis())
    }
}

/// Why membership cannot start.
#[derive(Debug)]
pub enum MembershipError {
    /// No `memberlist` secret: speakers refuse to gossip unauthenticated.
    NoSecret,
    Io(std::io::Error),
}

impl std::fmt::Display for MembershipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MembershipError::NoSecret => f.write_str(
                "no memberlist secret: speakers authenticate every membership packet and refuse \
                 to gossip without one. Create a Secret named \"memberlist\" with key \
                 \"secretkey\" in oxlb's namespace (standalone: a file with the same content), e.g. \
                 kubectl create secret generic memberlist -n metallb-system \
                 --from-literal=secretkey=\"$(openssl rand -base64 128)\" \
                 (or `oxlb memberlist-secret`)",
            ),
            MembershipError::Io(e) => write!(f, "membership socket: {e}"),
        }
    }
}

impl std::error::Error for MembershipError {}

/// Packet counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembershipStats {
    pub received: u64,
    pub sent: u64,
    /// Dropped: wrong or missing authentication tag.
    pub dropped_unauthenticated: u64,
    /// Dropped: too short, unknown version, or not decodable by SWIM.
    pub dropped_malformed: u64,
    /// Times this speaker lost the standing to claim ([`Standing::may_claim`]).
    pub quorum_lost: u64,
    /// Why known peers stopped counting toward the quorum: one count per peer each
    /// time it goes from counted to excluded, by [`Excluded`] kind.
    pub excluded_no_beat: u64,
    pub excluded_beat_stale: u64,
    pub excluded_echo_stale: u64,
}

/// A running membership. Dropping it stops it without a leave; call
/// [`Membership::leave`] for a clean stop.
#[derive(Debug)]
pub struct Membership {
    live: watch::Receiver<BTreeSet<String>>,
    electorate: watch::Receiver<BTreeSet<String>>,
    standing: watch::Receiver<Standing>,
    quorum: watch::Receiver<QuorumReport>,
    stats: Arc<Mutex<MembershipStats>>,
    leave: Option<oneshot::Sender<oneshot::Sender<()>>>,
    seeds: watch::Sender<Vec<SocketAddr>>,
    /// This speaker's passing checked Services, to tell the others.
    passing: watch::Sender<BTreeSet<String>>,
    /// What the others told (see [`crate::health_news`]).
    peer_health: watch::Receiver<BTreeMap<String, BTreeSet<String>>>,
    /// This speaker's flags (`oxlb drain`), to tell the others with the health news.
    flags: watch::Sender<BTreeSet<Flag>>,
    /// The other speakers' flags, as they told.
    peer_flags: watch::Receiver<BTreeMap<String, BTreeSet<Flag>>>,
    /// Who has read this speaker's latest flag change.
    flag_acks: watch::Receiver<FlagAcks>,
    task: tokio::task::JoinHandle<()>,
}

/// Who has read this speaker's latest flag change: the speakers whose news echoes its
/// news numbered `since` (the first sent with the current flags) or later
/// ([`crate::health_news`]). An undrained speaker waits on it before it claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagAcks {
    pub since: u64,
    pub acknowledged: BTreeSet<String>,
    /// The speakers whose news says they echo ([`Flag::AcknowledgesFlags`]).
    pub can_acknowledge: BTreeSet<String>,
}

impl Membership {
    /// Binds `bind` (the address other speakers reach this one at) and joins the
    /// cluster through `seeds` (other speakers' addresses; this one's own is
    /// ignored). Must be called inside a tokio runtime.
    pub async fn start(
        node_name: &str,
        bind: SocketAddr,
        seeds: Vec<SocketAddr>,
        secret: Option<&[u8]>,
        tuning: Tuning,
    ) -> Result<Membership, MembershipError> {
        let sealer = secret
            .and_then(Sealer::new)
            .ok_or(MembershipError::NoSecret)?;
        let socket = UdpSocket::bind(bind).await.map_err(MembershipError::Io)?;
        let generation = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let me = Node {
            name: node_name.to_string(),
            addr: socket.local_addr().map_err(MembershipError::Io)?,
            generation,
        };
        let (seeds_tx, seeds_rx) = watch::channel(seeds.clone());
        let (live_tx, live) = watch::channel(BTreeSet::from([me.name.clone()]));
        // Nothing is claimed before the gate opens.
        let (electorate_tx, electorate) = watch::channel(BTreeSet::new());
        let (standing_tx, standing) = watch::channel(Standing::Minority);
        let (quorum_tx, quorum) = watch::channel(QuorumReport {
            standing: Standing::Minority,
            excluded: Vec::new(),
            since_last_check: Duration::ZERO,
        });
        let stats = Arc::new(Mutex::new(MembershipStats::default()));
        let (leave_tx, leave_rx) = oneshot::channel();
        let (passing_tx, passing_rx) = watch::channel(BTreeSet::new());
        let (peer_health_tx, peer_health) = watch::channel(BTreeMap::new());
        let (flags_tx, flags_rx) = watch::channel(BTreeSet::new());
        let (peer_flags_tx, peer_flags) = watch::channel(BTreeMap::new());
        let (flag_acks_tx, flag_acks) = watch::channel(FlagAcks::default());
        let rng: StdRng = rand::make_rng();
        let foca = Foca::new(me.clone(), tuning.foca_config(), rng, PostcardCodec);
        let mut shell = Shell {
            beats: Beats::new(generation),
            leases: Leases::default(),
            known: BTreeSet::new(),
            foca,
            me,
            socket,
            sealer,
            seeds: Vec::new(),
            live: live_tx,
            electorate: electorate_tx,
            standing: standing_tx,
            quorum: quorum_tx,
            excluded: BTreeMap::new(),
            last_check: None,
            gate: Gate::default(),
            settle_at: None,
            recheck_due: true,
            views: views::Tracker::default(),
            view_turn: 0,
            heard: BTreeSet::new(),
            recent: std::collections::VecDeque::with_capacity(RECENT),
            stats: stats.clone(),
            runtime: AccumulatingRuntime::new(),
            health_seq: generation,
            health_table: crate::health_news::Table::default(),
            peer_health: peer_health_tx,
            peer_flags: peer_flags_tx,
            flag_acks: flag_acks_tx,
            flags_since: generation,
            echo_due: false,
        };
        shell.replace_seeds(seeds, tuning.announce_every);
        let task = tokio::spawn(shell.run(tuning, leave_rx, seeds_rx, passing_rx, flags_rx));
        Ok(Membership {
            live,
            electorate,
            standing,
            quorum,
            stats,
            leave: Some(leave_tx),
            seeds: seeds_tx,
            passing: passing_tx,
            peer_health,
            flags: flags_tx,
            peer_flags,
            flag_acks,
            task,
        })
    }

    /// Replaces the seed list of the running membership (speakers learned later, e.g.
    /// from the Kubernetes API). New seeds are announced to at once; seeds that stay
    /// keep their announce backoff; dropped seeds are no longer announced to (a member
    /// already joined through one stays a member until it leaves or is found dead).
    pub fn set_seeds(&self, seeds: Vec<SocketAddr>) {
        self.seeds.send_if_modified(|current| {
            let differs = *current != seeds;
            if differs {
                *current = seeds;
            }
            differs
        });
    }

    /// Tells the other speakers which checked Services pass on this one (at once on a
    /// change, then every second).
    pub fn set_passing(&self, services: BTreeSet<String>) {
        self.passing.send_if_modified(|current| {
            let differs = *current != services;
            if differs {
                *current = services;
            }
            differs
        });
    }

    /// Tells the other speakers this speaker's flags (at once on a change, then every
    /// second with the health news): [`Flag::Drained`] after `oxlb drain`. The shells
    /// send [`crate::health_news::own_flags`]; none at all is an older speaker's news.
    pub fn set_flags(&self, flags: BTreeSet<Flag>) {
        self.flags.send_if_modified(|current| {
            let differs = *current != flags;
            if differs {
                *current = flags;
            }
            differs
        });
    }

    /// Speaker → its flags, as the others told: every speaker heard from that did not
    /// leave since (an empty set: an older speaker, see [`Flag::LinkBandwidth`]);
    /// changes whenever one speaker's flags change or one is first heard from.
    pub fn watch_peer_flags(&self) -> watch::Receiver<BTreeMap<String, BTreeSet<Flag>>> {
        self.peer_flags.clone()
    }

    /// Who has read this speaker's latest flag change; changes when one more has.
    pub fn watch_flag_acks(&self) -> watch::Receiver<FlagAcks> {
        self.flag_acks.clone()
    }

    /// Speaker → the checked Services that pass on it, as the others told; changes
    /// whenever one of those sets changes.
    pub fn watch_peer_health(&self) -> watch::Receiver<BTreeMap<String, BTreeSet<String>>> {
        self.peer_health.clone()
    }

    /// The names of the live speakers, this one included.
    pub fn live_members(&self) -> BTreeSet<String> {
        self.live.borrow().clone()
    }

    /// Changes whenever the live set changes.
    pub fn watch(&self) -> watch::Receiver<BTreeSet<String>> {
        self.live.clone()
    }

    /// The candidates to give the Layer 2 election: the live members when this speaker
    /// may claim (quorum, settled), else the live members without this one, so that it
    /// answers for nothing while the others still elect among themselves.
    pub fn electorate(&self) -> BTreeSet<String> {
        self.electorate.borrow().clone()
    }

    /// Changes whenever [`Membership::electorate`] changes.
    pub fn watch_electorate(&self) -> watch::Receiver<BTreeSet<String>> {
        self.electorate.clone()
    }

    /// This speaker's quorum standing now.
    pub fn standing(&self) -> Standing {
        *self.standing.borrow()
    }

    /// Changes whenever the standing or the set of excluded peers (or a reason) changes.
    pub fn watch_quorum(&self) -> watch::Receiver<QuorumReport> {
        self.quorum.clone()
    }

    pub fn stats(&self) -> MembershipStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Clean stop: tells the other members this one leaves, so they hand over at
    /// once instead of waiting for failure detection. Returns once the socket is closed, so the same address can be bound again
    /// at once (a restart with a new key).
    pub async fn leave(mut self) {
        if let Some(leave) = self.leave.take() {
            let (done_tx, done_rx) = oneshot::channel();
            if leave.send(done_tx).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(1), done_rx).await;
            }
        }
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How often the quorum standing is recomputed without a membership change (a lease
/// ran out).
const RECHECK_EVERY: Duration = Duration::from_millis(20);

/// How often each speaker sends its member list ([`views`]), and to how many others.
const VIEW_EVERY: Duration = Duration::from_secs(2);
const VIEW_FANOUT: usize = 3;
/// How often every speaker repeats its health news (it is also sent at once on a change).
const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// How many recent datagram tags are kept to recognise copies: a few hundred
/// milliseconds of traffic for a small cluster.
const RECENT: usize = 64;

/// The longest wait between announces to a seed that is not a member.
const MAX_ANNOUNCE_BACKOFF: Duration = Duration::from_secs(4);

/// A configured member address and when to announce to it next.
struct Seed {
    addr: SocketAddr,
    due: Instant,
    interval: Duration,
}

type Swim = Foca<Node, PostcardCodec, StdRng, foca::NoCustomBroadcast>;

struct Shell {
    /// Numbers the heartbeats this speaker sends.
    beats: Beats,
    /// When each known speaker's last fresh heartbeat arrived.
    leases: Leases,
    /// The seeds' and this speaker's addresses ([`Shell::known`]), kept for the beats'
    /// hot path.
    known: BTreeSet<SocketAddr>,
    foca: Swim,
    me: Node,
    socket: UdpSocket,
    sealer: Sealer,
    seeds: Vec<Seed>,
    live: watch::Sender<BTreeSet<String>>,
    electorate: watch::Sender<BTreeSet<String>>,
    standing: watch::Sender<Standing>,
    quorum: watch::Sender<QuorumReport>,
    /// The known peers not counted at the last check, and why.
    excluded: BTreeMap<SocketAddr, Excluded>,
    /// When the quorum was last judged.
    last_check: Option<Instant>,
    gate: Gate,
    /// When the gate opens, if it is settling.
    settle_at: Option<tokio::time::Instant>,
    /// The quorum is to be rechecked at the next flush.
    recheck_due: bool,
    /// The known members heard from (two-way contact within the lease), by address.
    heard: BTreeSet<SocketAddr>,
    /// The member lists other speakers sent, compared with this one's.
    views: views::Tracker,
    /// Where the next round of view datagrams starts in the sorted member list.
    view_turn: usize,
    /// The authentication tags of the last datagrams received, to drop the copies
    /// [`Tuning::copies`] sends.
    recent: std::collections::VecDeque<Vec<u8>>,
    stats: Arc<Mutex<MembershipStats>>,
    runtime: AccumulatingRuntime<Node>,
    /// The sequence number of this speaker's last health news.
    health_seq: u64,
    /// The latest health news of every other speaker.
    health_table: crate::health_news::Table,
    peer_health: watch::Sender<BTreeMap<String, BTreeSet<String>>>,
    peer_flags: watch::Sender<BTreeMap<String, BTreeSet<Flag>>>,
    flag_acks: watch::Sender<FlagAcks>,
    /// The number of the first news sent with this speaker's current flags.
    flags_since: u64,
    /// A speaker started awaiting acknowledgements: send news (with the echo) at once.
    echo_due: bool,
}

impl Shell {
    async fn run(
        mut self,
        tuning: Tuning,
        mut leave: oneshot::Receiver<oneshot::Sender<()>>,
        mut seeds: watch::Receiver<Vec<SocketAddr>>,
        mut passing: watch::Receiver<BTreeSet<String>>,
        mut flags: watch::Receiver<BTreeSet<Flag>>,
    ) {
        let mut send_health = tokio::time::interval(HEALTH_EVERY);
        send_health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (timer_tx, mut timers) = mpsc::unbounded_channel::<Timer<Node>>();
        // Suspicions raise no notification: the quorum is rechecked on this tick (and at
        // once on every membership change), not after every datagram, which would cost
        // a walk over all members per packet.
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut send_view = tokio::time::interval(VIEW_EVERY);
        send_view.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut timing = tuning.lease_timing(self.known.len());
        let mut beat = tokio::time::interval(timing.beat_every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut announce = tokio::time::interval(tuning.announce_every);
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Large enough for any datagram; foca rejects bodies over its max packet size.
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = received {
                        self.receive(buf.get(..n).unwrap_or_default(), from);
                        // The rest of a burst (beats from many speakers arrive together)
                        // in the same wake-up: one pass through this loop, not one each.
                        self.drain_socket(&mut buf);
                    }
                }
                Some(timer) = timers.recv() => {
                    let _ = self.foca.handle_timer(timer, &mut self.runtime);
                }
                _ = announce.tick() => self.announce_to_missing_seeds(tuning.announce_every),
                _ = sleep_until(self.settle_at) => {
                    self.settle_at = None;
                    self.recheck_due = true;
                }
                _ = recheck.tick() => {
                    // Datagrams that queued while this task waited for the CPU are read
                    // before the quorum is judged: a busy host must not look cut off.
                    self.drain_socket(&mut buf);
                    self.recheck_due = true;
                }
                _ = beat.tick() => self.send_beats(false).await,
                _ = send_view.tick() => self.send_view().await,
                _ = send_health.tick() => {
                    let now = passing.borrow().clone();
                    let own = flags.borrow().clone();
                    self.send_health(&now, &own, 1).await;
                }
                Ok(()) = passing.changed() => {
                    let now = passing.borrow_and_update().clone();
                    let own = flags.borrow().clone();
                    self.send_health(&now, &own, 1).await;
                }
                Ok(()) = flags.changed() => {
                    // A drain or undrain moves Layer 2 owners: sent as often as the
                    // gossip's datagrams, so one lost copy does not wait for the repeat.
                    let now = passing.borrow().clone();
                    let own = flags.borrow_and_update().clone();
                    self.flags_since = self.health_seq.wrapping_add(1);
                    self.publish_flag_acks();
                    self.send_health(&now, &own, tuning.copies.max(1)).await;
                }
                Ok(()) = seeds.changed() => {
                    let new = seeds.borrow_and_update().clone();
                    self.replace_seeds(new, tuning.announce_every);
                    self.recheck_due = true;
                    self.announce_to_missing_seeds(tuning.announce_every);
                    let now = tuning.lease_timing(self.known.len());
                    if now != timing {
                        timing = now;
                        beat = tokio::time::interval(timing.beat_every);
                        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    }
                }
                done = &mut leave => {
                    // Nothing is claimed from here on: before the others hear of the
                    // leave (and take over), and after the last flush recomputed it.
                    self.electorate.send_replace(BTreeSet::new());
                    // The others drop their hold on this speaker's IPs at once.
                    self.send_beats(true).await;
                    self.send_beats(true).await;
                    let _ = self.foca.leave_cluster(&mut self.runtime);
                    self.flush(&timer_tx, &tuning).await;
                    self.electorate.send_replace(BTreeSet::new());
                    if let Ok(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
            }
            if std::mem::take(&mut self.echo_due) {
                let now = passing.borrow().clone();
                let own = flags.borrow().clone();
                self.send_health(&now, &own, 1).await;
            }
            self.flush(&timer_tx, &tuning).await;
        }
    }

    /// The new seed list, without this member's own address or duplicates; a seed
    /// already known keeps its announce schedule, a new one is due at once.
    fn replace_seeds(&mut self, seeds: Vec<SocketAddr>, base: Duration) {
        let now = Instant::now();
        let mut old: Vec<Seed> = std::mem::take(&mut self.seeds);
        let mut seen = BTreeSet::new();
        for addr in seeds {
            if addr == self.me.addr || !seen.insert(addr) {
                continue;
            }
            let seed = match old.iter().position(|s| s.addr == addr) {
                Some(i) => old.swap_remove(i),
                None => Seed {
                    addr,
                    due: now,
                    interval: base,
                },
            };
            self.seeds.push(seed);
        }
        self.known = self.known();
        let known = &self.known;
        self.leases.retain(|addr| known.contains(addr));
    }

    /// The speakers expected to run: the seeds and this one.
    fn known(&self) -> BTreeSet<SocketAddr> {
        self.seeds
            .iter()
            .map(|s| s.addr)
            .chain(std::iter::once(self.me.addr))
            .collect()
    }

    /// Reads every datagram already queued on the socket, without waiting.
    fn drain_socket(&mut self, buf: &mut [u8]) {
        // Bounded: a flood cannot keep the task here.
        for _ in 0..1024 {
            match self.socket.try_recv_from(buf) {
                Ok((n, from)) => {
                    let packet = buf.get(..n).unwrap_or_default().to_vec();
                    self.receive(&packet, from);
                }
                Err(_) => return,
            }
        }
    }

    /// One heartbeat to every known speaker and every member, each echoing the latest
    /// beat received from its recipient (see [`crate::lease`]).
    async fn send_beats(&mut self, leaving: bool) {
        let stamp = self.beats.next(Instant::now());
        let may_claim = !leaving && self.standing.borrow().may_claim();
        let mut to: BTreeSet<SocketAddr> = self.seeds.iter().map(|s| s.addr).collect();
        to.extend(self.foca.iter_members().map(|m| m.id().addr));
        to.remove(&self.me.addr);
        for addr in to {
            let beat = Beat {
                stamp,
                leaving,
                may_claim,
                echo: self.leases.echo_for(&addr),
            };
            let packet = self.sealer.seal(&lease::encode(&beat));
            if self.socket.send_to(&packet, addr).await.is_ok() {
                self.stats.lock().unwrap_or_else(|p| p.into_inner()).sent += 1;
            }
        }
    }

    fn receive(&mut self, packet: &[u8], from: SocketAddr) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.received += 1;
        // A copy of an authentic datagram just received: dropped before it is decrypted
        // and checked again. Only authentic tags enter the list, and nobody without the
        // key can produce the tag of a datagram not yet sent.
        if self.is_repeat(packet) {
            return;
        }
        let body = match self.sealer.open(packet) {
            Ok(body) => body,
            Err(AuthError::Unauthenticated) => {
                stats.dropped_unauthenticated += 1;
                return;
            }
            Err(AuthError::Malformed) => {
                stats.dropped_malformed += 1;
                return;
            }
        };
        if let Some(beat) = lease::decode(&body) {
            match beat {
                Some(beat) => {
                    drop(stats);
                    // Not remembered as a copy to drop: beats are sent once, and their
                    // sequence numbers already make a repeat stale. The list of recent
                    // tags stays for the gossip's copies.
                    // Only the known speakers' beats count (and take table space).
                    if from != self.me.addr && self.known.contains(&from) {
                        let observed = self.leases.observe(from, beat, Instant::now());
                        if observed == Observed::Left {
                            self.recheck_due = true;
                        }
                    }
                }
                None => stats.dropped_malformed += 1,
            }
            return;
        }
        if let Some(news) = crate::health_news::decode(&body) {
            match news {
                Some(news) => {
                    drop(stats);
                    self.remember(packet);
                    if news.from != self.me.name {
                        let from = news.from.clone();
                        let echoes_me = news.acks.contains_key(&self.me.name);
                        let changed = self.health_table.observe(news);
                        if changed.passing {
                            self.peer_health.send_replace(self.health_table.passing());
                        }
                        if changed.flags {
                            self.peer_flags.send_replace(self.health_table.flags());
                            // Echoed at once, so a speaker waiting on it (an
                            // undrain) does not wait for the next round.
                            if self.health_table.has_flag(&from, Flag::AwaitingAcks) {
                                self.echo_due = true;
                            }
                        }
                        if changed.flags || echoes_me {
                            self.publish_flag_acks();
                        }
                    }
                }
                None => stats.dropped_malformed += 1,
            }
            return;
        }
        if let Some(view) = views::decode(&body) {
            match view {
                Some(view) => {
                    drop(stats);
                    self.remember(packet);
                    self.compare_view(&view);
                }
                None => stats.dropped_malformed += 1,
            }
            return;
        }
        drop(stats);
        self.remember(packet);
        if let Err(error) = self.foca.handle_data(&body, &mut self.runtime) {
            // Our own packets and stale identities also land here; only decode
            // failures are malformed input.
            if matches!(
                error,
                foca::Error::Decode(_) | foca::Error::MalformedPacket | foca::Error::DataTooBig
            ) {
                self.stats
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .dropped_malformed += 1;
            }
        }
    }

    /// Tells a few active members which members this one sees live.
    async fn send_view(&mut self) {
        let live = self.live.borrow().clone();
        let packet = self.sealer.seal(&views::encode(&self.me.name, &live));
        // A few members per round, in turn: all of them within a few rounds, at a
        // cost that does not grow with the square of the cluster.
        let mut members: Vec<SocketAddr> = self.foca.iter_members().map(|m| m.id().addr).collect();
        members.sort();
        let n = members.len();
        let to: Vec<SocketAddr> = (0..VIEW_FANOUT.min(n))
            .filter_map(|k| members.get((self.view_turn + k) % n.max(1)).copied())
            .collect();
        self.view_turn = self.view_turn.wrapping_add(VIEW_FANOUT);
        for addr in to {
            if self.socket.send_to(&packet, addr).await.is_ok() {
                self.stats.lock().unwrap_or_else(|p| p.into_inner()).sent += 1;
            }
        }
    }

    /// Tells every member which checked Services pass here. To all of them (not a few
    /// in turn as views): a Layer 2 owner change waits for it.
    async fn send_health(
        &mut self,
        passing: &BTreeSet<String>,
        flags: &BTreeSet<Flag>,
        copies: u8,
    ) {
        self.health_seq = self.health_seq.wrapping_add(1);
        let acks = self.health_table.echoes();
        let news = crate::health_news::News {
            from: self.me.name.clone(),
            seq: self.health_seq,
            passing: passing.clone(),
            flags: flags.clone(),
            acks,
        };
        let packet = self.sealer.seal(&crate::health_news::encode(&news));
        let members: Vec<SocketAddr> = self.foca.iter_members().map(|m| m.id().addr).collect();
        for _ in 0..copies {
            for addr in &members {
                if self.socket.send_to(&packet, *addr).await.is_ok() {
                    self.stats.lock().unwrap_or_else(|p| p.into_inner()).sent += 1;
                }
            }
        }
    }

    /// Recomputes who has read this speaker's latest flag change.
    fn publish_flag_acks(&mut self) {
        let acks = FlagAcks {
            since: self.flags_since,
            acknowledged: self
                .health_table
                .acknowledging(&self.me.name, self.flags_since),
            can_acknowledge: self.health_table.with_flag(Flag::AcknowledgesFlags),
        };
        self.flag_acks.send_if_modified(|current| {
            let differs = *current != acks;
            if differs {
                *current = acks;
            }
            differs
        });
    }

    /// Logs a member list that differs from this speaker's for longer than gossip
    /// takes to converge, with both lists.
    fn compare_view(&mut self, theirs: &views::View) {
        let ours = self.live.borrow().clone();
        if let Some(d) = self.views.observe(theirs, &ours) {
            warn!(
                peer = %theirs.from,
                theirs = ?theirs.live,
                ours = ?ours,
                only_theirs = ?d.only_theirs,
                only_ours = ?d.only_ours,
                "layer2 membership: the live member lists disagree between this speaker and \
                 {} (a one-way partition, a firewall on the gossip port, or speakers on \
                 different keys or member lists)",
                theirs.from
            );
        }
    }

    /// Whether this authentic datagram is a copy of one received shortly before (same
    /// tag, so the same bytes). Dropping it is at worst the loss SWIM tolerates anyway.
    fn is_repeat(&self, packet: &[u8]) -> bool {
        let tag = tag_of(packet);
        self.recent.iter().any(|t| t.as_slice() == tag)
    }

    /// Remembers the tag of an authentic datagram.
    fn remember(&mut self, packet: &[u8]) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(tag_of(packet).to_vec());
    }

    /// Seeds that are not active members get an announce: the first join, a member
    /// restarted with a new generation, and both sides of a healed partition. A seed
    /// that stays away (a node without a speaker) is asked less and less often, down
    /// to once every [`MAX_ANNOUNCE_BACKOFF`].
    fn announce_to_missing_seeds(&mut self, base: Duration) {
        let active: BTreeSet<SocketAddr> = self.foca.iter_members().map(|m| m.id().addr).collect();
        let now = Instant::now();
        for seed in &mut self.seeds {
            if active.contains(&seed.addr) {
                seed.interval = base;
                seed.due = now;
                continue;
            }
            if now >= seed.due {
                seed.due = now + seed.interval;
                seed.interval = (seed.interval * 2).min(MAX_ANNOUNCE_BACKOFF);
                let seed = seed.addr;
                let placeholder = Node {
                    name: String::new(),
                    addr: seed,
                    generation: 0,
                };
                let _ = self.foca.announce(placeholder, &mut self.runtime);
            }
        }
    }

    async fn flush(&mut self, timer_tx: &mpsc::UnboundedSender<Timer<Node>>, tuning: &Tuning) {
        while let Some((to, data)) = self.runtime.to_send() {
            let packet = self.sealer.seal(&data);
            for _ in 0..tuning.copies.max(1) {
                // A peer that is gone or unreachable is what failure detection is for.
                if self.socket.send_to(&packet, to.addr).await.is_ok() {
                    self.stats.lock().unwrap_or_else(|p| p.into_inner()).sent += 1;
                }
            }
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            let tx = timer_tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = tx.send(timer);
            });
        }
        let mut changed = false;
        while let Some(notification) = self.runtime.to_notify() {
            if let OwnedNotification::Rejoin(node) = &notification {
                self.me = node.clone();
            }
            changed = true;
        }
        if changed {
            let mut live: BTreeSet<String> = self
                .foca
                .iter_members()
                .map(|m| m.id().name.clone())
                .collect();
            live.insert(self.me.name.clone());
            if self.health_table.forget_flags_of_absent(&live) {
                self.peer_flags.send_replace(self.health_table.flags());
            }
            self.live.send_if_modified(|current| {
                let differs = *current != live;
                *current = live;
                differs
            });
        }
        if changed || self.recheck_due {
            self.recheck_due = false;
            self.decide_claim(tuning);
        }
    }

    /// Recomputes the quorum standing and the electorate from the current membership.
    /// Only members in two-way contact count toward the quorum (an owner cut off from
    /// the others in either direction loses the echoes of its beats and lets go before
    /// they can take over); a member SWIM finds down stays a candidate of the election
    /// until its last beat saying it may claim is `takeover_after` old.
    fn decide_claim(&mut self, tuning: &Tuning) {
        let now = Instant::now();
        let known = self.known();
        let timing = tuning.lease_timing(known.len());
        let since_last_check = self
            .last_check
            .map(|at| now.saturating_duration_since(at))
            .unwrap_or_default();
        self.last_check = Some(now);
        // Two-way contact within the lease (see [`crate::lease`]); every other known
        // peer with the reason it does not count. SWIM's suspicion plays no part:
        // under loss it suspects live members, and the echoes already prove contact.
        let mut excluded = BTreeMap::new();
        let mut heard = BTreeSet::from([self.me.addr]);
        for addr in known.iter().filter(|a| **a != self.me.addr) {
            match self.leases.contact(addr, &self.beats, now, timing.lease) {
                Contact::TwoWay => {
                    heard.insert(*addr);
                }
                why => {
                    excluded.insert(*addr, why);
                }
            }
        }
        let standing = quorum::standing(&known, &heard);
        let claim = self.gate.update(standing, now, tuning.settle);
        let was = *self.standing.borrow();
        if heard != self.heard || standing != was {
            let newly: Vec<Excluded> = excluded
                .iter()
                .filter(|(addr, _)| !self.excluded.contains_key(addr))
                .map(|(_, why)| *why)
                .collect();
            {
                let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
                for why in &newly {
                    match why {
                        Contact::TwoWay => {}
                        Contact::NoBeat => stats.excluded_no_beat += 1,
                        Contact::BeatStale { .. } => stats.excluded_beat_stale += 1,
                        Contact::EchoStale { .. } => stats.excluded_echo_stale += 1,
                    }
                }
                if was.may_claim() && !standing.may_claim() {
                    stats.quorum_lost += 1;
                }
            }
            let view = |set: &BTreeSet<SocketAddr>| {
                set.iter().map(ToString::to_string).collect::<Vec<_>>()
            };
            let why: Vec<String> = excluded
                .iter()
                .map(|(addr, why)| format!("{addr}: {why}"))
                .collect();
            let gap_ms = since_last_check.as_millis();
            if standing.may_claim() {
                info!(%standing, heard = ?view(&heard), known = ?view(&known),
                    excluded = ?why, check_gap_ms = gap_ms,
                    "layer2 quorum: this speaker may answer");
            } else {
                warn!(%standing, heard = ?view(&heard), known = ?view(&known),
                    excluded = ?why, check_gap_ms = gap_ms,
                    "layer2 quorum lost: this speaker answers for nothing until it hears \
                     from a majority of the known speakers");
            }
            self.heard = heard;
            self.standing.send_replace(standing);
        }
        let kinds = |m: &BTreeMap<SocketAddr, Excluded>| {
            m.iter()
                .map(|(a, w)| (*a, std::mem::discriminant(w)))
                .collect::<Vec<_>>()
        };
        // A change of kind, not of age: a stale peer is not reported on every check.
        if standing != was || kinds(&excluded) != kinds(&self.excluded) {
            self.quorum.send_replace(QuorumReport {
                standing,
                excluded: excluded.iter().map(|(a, w)| (*a, *w)).collect(),
                since_last_check,
            });
        }
        self.excluded = excluded;
        self.settle_at = match claim {
            Claim::Settling { until } => Some(tokio::time::Instant::from_std(until)),
            Claim::Allowed | Claim::Denied(_) => None,
        };
        let mut electorate = self.live.borrow().clone();
        // Found down, but perhaps only cut off and still answering until its lease
        // runs out: it stays a candidate, so its IPs do not move yet, until
        // `takeover_after` since its last beat that said it may claim.
        electorate.extend(
            self.foca
                .iter_membership_state()
                .filter(|m| m.state() == foca::State::Down)
                .filter(|m| {
                    self.leases
                        .claimed_within(&m.id().addr, now, timing.takeover_after)
                })
                .map(|m| m.id().name.clone()),
        );
        if claim != Claim::Allowed {
            electorate.remove(&self.me.name);
        }
        self.electorate.send_if_modified(|current| {
            let differs = *current != electorate;
            *current = electorate;
            differs
        });
    }
}

/// The authentication tag at the end of a datagram (all of it when shorter).
fn tag_of(packet: &[u8]) -> &[u8] {
    packet
        .get(packet.len().saturating_sub(32)..)
        .unwrap_or_default()
}

/// Sleeps until `at`, forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Feeds one received datagram through everything a member does with it: the
/// authentication check, then SWIM decoding and state update (the body is also fed
/// unauthenticated, as a member holding the secret could send anything). For the
/// `l2_gossip` fuzz target; never panics by contract.
#[doc(hidden)]
pub fn fuzz_receive(packet: &[u8]) {
    let me = Node {
        name: "fuzz".into(),
        addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
        generation: 1,
    };
    let rng = fuzz_rng(packet);
    let mut foca: Swim = Foca::new(me, Tuning::default().foca_config(), rng, PostcardCodec);
    let mut runtime = AccumulatingRuntime::new();
    if let Some(body) = Sealer::new(b"fuzz").and_then(|s| s.open(packet).ok()) {
        let _ = crate::views::decode(&body);
        fuzz_beat(&body);
        let _ = foca.handle_data(&body, &mut runtime);
    }
    let _ = crate::views::decode(packet);
    fuzz_beat(packet);
    let _ = foca.handle_data(packet, &mut runtime);
    while runtime.to_send().is_some() {}
}

/// A body through the beat decoder and the leases (observe, contact, hold), as
/// `Shell::receive` and the quorum check use them.
fn fuzz_beat(body: &[u8]) {
    if let Some(Some(beat)) = lease::decode(body) {
        let now = Instant::now();
        let from = SocketAddr::from(([127, 0, 0, 2], DEFAULT_PORT));
        let mut mine = Beats::new(beat.echo.map(|e| e.generation).unwrap_or_default());
        mine.next(now);
        let mut leases = Leases::default();
        let _ = leases.observe(from, beat, now);
        let _ = leases.contact(&from, &mine, now, Duration::from_millis(160));
        let _ = leases.claimed_within(&from, now, Duration::from_millis(260));
        let _ = lease::encode(&beat);
    }
}

/// The member's random number generator for one fuzz input, seeded from the input
/// (its SHA-256), not the OS: whatever an input does (a crash, a timeout) it does again
/// when replayed.
fn fuzz_rng(packet: &[u8]) -> StdRng {
    use rand::SeedableRng;
    use sha2::Digest;
    StdRng::from_seed(sha2::Sha256::digest(packet).into())
}

/// A sealed announce from another member, as `fuzz_receive` accepts it: the seed of
/// the `l2_gossip` fuzz corpus.
#[doc(hidden)]
pub fn fuzz_seed() -> Vec<u8> {
    let other = Node {
        name: "seed".into(),
        addr: SocketAddr::from(([127, 0, 0, 2], DEFAULT_PORT)),
        generation: 1,
    };
    let target = Node {
        name: String::new(),
        addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
        generation: 0,
    };
    let rng: StdRng = rand::make_rng();
    let mut foca: Swim = Foca::new(other, Tuning::default().foca_config(), rng, PostcardCodec);
    let mut runtime = AccumulatingRuntime::new();
    let _ = foca.announce(target, &mut runtime);
    let body = runtime
        .to_send()
        .map(|(_, data)| data.to_vec())
        .unwrap_or_default();
    Sealer::new(b"fuzz")
        .map(|s| s.seal(&body))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_timing_keeps_its_margins_at_every_size() {
        let tuning = Tuning::default();
        let ms = Duration::from_millis;
        let small = tuning.lease_timing(3);
        assert_eq!((small.beat_every, small.lease), (ms(20), ms(160)));
        assert_eq!(tuning.lease_timing(16), small);
        let t32 = tuning.lease_timing(32);
        assert_eq!((t32.beat_every, t32.lease), (ms(40), ms(160)));
        let t50 = tuning.lease_timing(50);
        assert_eq!(t50.beat_every.as_millis(), 62);
        assert_eq!(t50.lease.as_millis(), 250);
        assert_eq!(t50.takeover_after.as_millis(), 406);
        for known in 1..=200 {
            let t = tuning.lease_timing(known);
            // The owner lets go (lease + recheck tick) well before anyone takes over.
            assert!(
                t.takeover_after >= t.lease + RECHECK_EVERY + ms(60),
                "{known}: {t:?}"
            );
            // At least four beats each way per lease.
            assert!(t.beat_every * 4 <= t.lease, "{known}: {t:?}");
        }
    }

    #[test]
    fn the_fuzz_rng_is_a_function_of_the_input() {
        use rand::Rng;
        let draw = |packet: &[u8]| -> [u64; 4] {
            let mut rng = fuzz_rng(packet);
            std::array::from_fn(|_| rng.next_u64())
        };
        assert_eq!(draw(b"replay me"), draw(b"replay me"));
        assert_ne!(draw(b"replay me"), draw(b"replay m3"));
        assert_eq!(draw(&[]), draw(&[]));
    }

    #[test]
    fn a_sealed_announce_is_accepted_and_answered() {
        let packet = fuzz_seed();
        assert!(packet.len() > 33);
        let me = Node {
            name: "fuzz".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            generation: 1,
        };
        let rng: StdRng = rand::make_rng();
        let mut foca: Swim = Foca::new(me, Tuning::default().foca_config(), rng, PostcardCodec);
        let mut runtime = AccumulatingRuntime::new();
        let body = Sealer::new(b"fuzz").unwrap().open(&packet).unwrap();
        foca.handle_data(&body, &mut runtime).unwrap();
        assert_eq!(foca.num_members(), 1);
        assert!(
            runtime.to_send().is_some(),
            "the announce is answered with a feed"
        );
        // Written out as the fuzz seed when asked.
        if let Some(path) = std::env::var_os("OXLB_WRITE_GOSSIP_SEED") {
            std::fs::write(path, &packet).unwrap();
        }
        fuzz_receive(&packet);
        fuzz_receive(&packet[..20]);
    }
}
