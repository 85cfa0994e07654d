//! One peer's BGP session as a sans-I/O state machine (RFC 4271 §8). The shell feeds it
//! [`Input`]s with the current time and carries out the [`Action`]s it returns; every
//! timer is a deadline the shell sleeps until ([`Session::next_deadline`]).
//!
//! A session may hold two TCP connections at once (ours and the peer's) until connection
//! collision detection (§6.8) keeps one.

use crate::link_addresses::LinkAddresses;
use crate::packet::error::{CloseReason, UnexpectedIn};
use crate::packet::notification::{code, open as open_err};
use crate::packet::open::{AS_TRANS, ExtendedNextHopFamily, GracefulRestartFamily};
use crate::packet::prefix::{AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
use crate::packet::{Capability, Context, Message, Notification, Open, RefreshSubtype};
use crate::rib::{self, AdjRibOut, Encoding, Routes};
use crate::settings::{PeerAsn, PeerSettings};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// IPv4 unicast NLRI with an IPv6 next hop (RFC 8950 §3).
const IPV4_OVER_IPV6: ExtendedNextHopFamily = ExtendedNextHopFamily {
    nlri_afi: AFI_IPV4,
    nlri_safi: SAFI_UNICAST as u16,
    next_hop_afi: AFI_IPV6,
};

/// Identifies one TCP connection; assigned by the shell, unique per session.
pub type ConnId = u64;

/// RFC 4271 §8.2.2: hold timer while waiting for the peer's OPEN ("large value").
const OPEN_HOLD: Duration = Duration::from_secs(240);
/// RFC 4724 §3: how long the peer should keep our routes while we restart.
pub const RESTART_TIME: u16 = 120;
/// A session that drops retries almost at once: a router that restarted (bgpd) has
/// dropped our routes already, so every moment until we are back is an outage. The
/// backoff doubles from here (a refused connection costs nothing), up to connectTime.
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// For a minute after an Established session is lost the peer is most likely
/// restarting (bgpd restart, router reload): retry at least this often meanwhile, since
/// a refused connection costs one SYN and an RST, and every moment down is an outage.
const QUICK_RETRY: Duration = Duration::from_millis(250);
const QUICK_WINDOW: Duration = Duration::from_secs(60);
/// Whatever connectTime says, retry at least hourly (and keep deadlines representable).
const MAX_RETRY: Duration = Duration::from_secs(3600);

/// The RFC 4271 §8.2.2 session states; serialized and displayed by their RFC names.
#[derive(
    Debug,
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum State {
    #[default]
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Cease / Administrative Shutdown with an RFC 8203 message; the session stays down.
    Shutdown { message: String },
    /// Like Shutdown, but when graceful restart was negotiated close the TCP connection
    /// without a NOTIFICATION so the peer keeps our routes as stale (RFC 4724 §4.2).
    Restart,
    /// Cease / Administrative Reset (e.g. BFD went down); reconnects after backoff.
    Reset { reason: String },
    /// Cease / Peer De-configured (removed from the configuration).
    Deconfigured,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Start,
    Stop(Stop),
    Connected {
        conn: ConnId,
        outbound: bool,
        local: SocketAddr,
    },
    ConnectFailed {
        error: ConnectError,
    },
    Message {
        conn: ConnId,
        message: Message,
    },
    /// The peer's bytes on `conn` could not be accepted; the session answers with the
    /// error's NOTIFICATION and closes.
    DecodeError {
        conn: ConnId,
        error: crate::packet::DecodeError,
    },
    Closed {
        conn: ConnId,
        error: Option<String>,
    },
    Routes(Routes),
    /// Ask the peer to confirm that it has processed everything sent so far: a
    /// ROUTE-REFRESH request per negotiated family, confirmed by its EoRR (RFC 7313 §4:
    /// messages on a session are processed in order, so the answer to a request sent
    /// after our UPDATEs comes after the peer has processed them). The outcome is
    /// [`Session::confirmation`] and a [`Report::Confirmed`].
    Confirm,
    Tick,
}

/// Whether the peer has confirmed what we sent (see [`Input::Confirm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Confirmation {
    /// Nothing asked since the session came up (or it is not Established).
    #[default]
    NotAsked,
    /// The peer did not negotiate Enhanced Route Refresh (RFC 7313 §3.1): BGP has no
    /// other acknowledgement of an UPDATE, so what was sent cannot be confirmed.
    Unsupported,
    /// Request `id` went out at `asked_at`; waiting for the EoRR of every family.
    Pending { id: u64, asked_at: Instant },
    /// The peer sent the EoRR of every family after request `id`, `after` it was sent:
    /// it has processed every UPDATE we sent before the request.
    Confirmed { id: u64, after: Duration },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start an outbound TCP connection attempt.
    Connect,
    Send {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    /// Close after flushing what was sent before.
    Close {
        conn: ConnId,
    },
    /// Something the operator should see in the log; the session goes on.
    Report(Report),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A family both sides negotiated is not announced on this session, and why.
    Withheld {
        peer: IpAddr,
        local: IpAddr,
        why: Withheld,
    },
    /// An UPDATE had malformed attributes handled by treat-as-withdraw or attribute
    /// discard (RFC 7606 §2): the session stays up.
    AttributeErrors {
        peer: IpAddr,
        errors: Vec<crate::packet::AttributeError>,
    },
    /// The peer answered confirmation request `id` (RFC 7313 EoRR for every family).
    Confirmed {
        peer: IpAddr,
        id: u64,
        after: Duration,
    },
    /// A ROUTE-REFRESH with a Message Subtype other than 0, 1 or 2, ignored (RFC 7313 §5:
    /// MUST ignore, SHOULD log).
    UnknownRefreshSubtype { peer: IpAddr, subtype: u8 },
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Report::Withheld { peer, local, why } => {
                write!(f, "not announcing to {peer} from {local}: {why}")
            }
            Report::AttributeErrors { peer, errors } => {
                write!(
                    f,
                    "UPDATE from {peer} had malformed attributes (RFC 7606): "
                )?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Report::Confirmed { peer, id, after } => write!(
                f,
                "{peer} confirmed it processed our updates (enhanced route refresh request \
                 {id} answered with End-of-Route-Refresh after {} ms)",
                after.as_millis()
            ),
            Report::UnknownRefreshSubtype { peer, subtype } => write!(
                f,
                "ignored a ROUTE-REFRESH from {peer} with unknown message subtype {subtype} \
                 (RFC 7313 §5)"
            ),
        }
    }
}

/// Why a negotiated address family is not announced on an Established session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// IPv6 routes over an IPv4 session, but the node has no usable global IPv6
    /// address on the interface toward the peer: no valid next hop to send.
    Ipv6NoAddressOnLink,
    /// IPv4 routes over an IPv6 session, but the peer did not offer the Extended Next
    /// Hop capability for them (RFC 8950 §4): an IPv6 next hop may not be sent.
    Ipv4NoExtendedNextHop,
}

impl std::fmt::Display for Withheld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Withheld::Ipv6NoAddressOnLink => f.write_str(
                "IPv6 prefixes withheld: no global IPv6 address on the interface toward this \
                 IPv4 peer to use as next hop (an IPv4-mapped one cannot be installed); \
                 add one to that interface or peer over IPv6",
            ),
            Withheld::Ipv4NoExtendedNextHop => f.write_str(
                "IPv4 prefixes withheld: the router did not offer the extended next hop \
                 capability (RFC 8950) on this IPv6 session; configure it there (FRR: \
                 neighbor ADDRESS capability extended-nexthop) or peer over IPv4",
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ConnState {
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Debug)]
struct Conn {
    id: ConnId,
    outbound: bool,
    local: SocketAddr,
    /// Our link-local address on the link to the peer, when we share a subnet.
    link: LinkAddresses,
    state: ConnState,
    hold: Duration,
    keepalive: Duration,
    hold_deadline: Option<Instant>,
    keepalive_deadline: Option<Instant>,
    peer_open: Option<Open>,
}

/// What the shell reports upward (metrics, logs, `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub updates_sent: u64,
    pub messages: MessageCounts,
    pub established_at: Option<Instant>,
}

/// What the caller asked of the session: together with its connections (each with its
/// own [`ConnState`]) and whether an outbound attempt is under way, this gives the RFC
/// 4271 §8 [`State`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Created, [`Input::Start`] not yet given.
    NotStarted,
    /// Connecting, accepting, or up; reconnects after failures.
    Running,
    /// Stopped for good (shutdown, restart, de-configured) until the next Start.
    Stopped,
}

#[derive(Debug)]
pub struct Session {
    settings: PeerSettings,
    conns: Vec<Conn>,
    connecting: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// When the last Established connection went down (for [`QUICK_RETRY`]).
    lost_at: Option<Instant>,
    desired: Routes,
    rib: AdjRibOut,
    encoding: Option<Encoding>,
    lifecycle: Lifecycle,
    /// Our first OPEN after start carries the Restart State bit (RFC 4724 §3).
    restarting: bool,
    /// The role the peer announced (RFC 9234); we then announce the matching one, so a
    /// peer in strict mode accepts us from the next connection on.
    peer_role: Option<u8>,
    pub counters: Counters,
    pub last_error: Option<String>,
    /// A family negotiated on the last Established session but not announced.
    pub withheld: Option<Withheld>,
    /// IPv6 was negotiated on the Established session but we have no IPv6 next hop.
    no_ipv6_next_hop: bool,
    /// IPv4 was negotiated on an IPv6 session without the extended next hop.
    no_ipv4_next_hop: bool,
    /// The AFIs (unicast) negotiated on the Established connection (RFC 4760 §8).
    families: Vec<u16>,
    /// The peer sent Route Refresh and Enhanced Route Refresh (we always do): refresh
    /// answers are framed by BoRR/EoRR both ways (RFC 7313 §4).
    enhanced_refresh: bool,
    confirmation: Confirmation,
    /// Families whose EoRR has not come since the pending request.
    confirm_waiting: Vec<u16>,
    /// Numbers the confirmation requests of this session (never reset).
    confirm_seq: u64,
    /// The highest request number the peer confirmed (never reset).
    confirmed_id: u64,
}

impl Session {
    pub fn new(settings: PeerSettings) -> Session {
        Session {
            restarting: settings.graceful_restart,
            peer_role: None,
            settings,
            conns: Vec::new(),
            connecting: false,
            retry_at: None,
            backoff: FIRST_RETRY,
            lost_at: None,
            desired: Routes::new(),
            rib: AdjRibOut::default(),
            encoding: None,
            lifecycle: Lifecycle::NotStarted,
            counters: Counters::default(),
            last_error: None,
            withheld: None,
            no_ipv6_next_hop: false,
            no_ipv4_next_hop: false,
            families: Vec::new(),
            enhanced_refresh: false,
            confirmation: Confirmation::NotAsked,
            confirm_waiting: Vec::new(),
            confirm_seq: 0,
            confirmed_id: 0,
        }
    }

    /// How many confirmation requests were sent (each numbered, from 1).
    pub fn confirm_requested(&self) -> u64 {
        self.confirm_seq
    }

    /// The highest confirmation request the peer answered (0: none); monotonic, so a
    /// caller that saw `confirm_requested() == n` before asking waits for `> n`.
    pub fn confirmed_through(&self) -> u64 {
        self.confirmed_id
    }

    /// Whether the peer confirmed what we sent ([`Input::Confirm`]).
    pub fn confirmation(&self) -> Confirmation {
        self.confirmation
    }

    /// Whether the Established session negotiated Enhanced Route Refresh (RFC 7313).
    pub fn enhanced_route_refresh(&self) -> bool {
        self.enhanced_refresh && self.established_conn().is_some()
    }

    pub fn settings(&self) -> &PeerSettings {
        &self.settings
    }

    pub fn state(&self) -> State {
        let best = self.conns.iter().map(|c| c.state).max();
        match best {
            Some(ConnState::Established) => State::Established,
            Some(ConnState::OpenConfirm) => State::OpenConfirm,
            Some(ConnState::OpenSent) => State::OpenSent,
            None if self.connecting => State::Connect,
            None if self.lifecycle == Lifecycle::Running => State::Active,
            None => State::Idle,
        }
    }

    pub fn prefixes_announced(&self) -> usize {
        self.rib.len()
    }

    pub fn prefixes_pending(&self) -> usize {
        self.desired.len().saturating_sub(self.rib.len())
    }

    /// The earliest moment [`Input::Tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timers = self
            .conns
            .iter()
            .flat_map(|c| [c.hold_deadline, c.keepalive_deadline]);
        let retry = if self.wants_outbound() {
            self.retry_at
        } else {
            None
        };
        timers.chain([retry]).flatten().min()
    }

    /// The shell found our addresses on the link to the peer of connection `conn`: the
    /// link-local one (RFC 2545 §3) and, for an IPv4 session, the global IPv6 one; used
    /// in the IPv6 next hop once that connection is Established.
    pub fn set_link_addresses(&mut self, conn: ConnId, link: LinkAddresses) {
        if let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) {
            c.link = link;
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if let Input::Message { message, .. } = &input {
            self.counters.messages.received(message);
        }
        self.dispatch(now, input, &mut out);
        for action in &out {
            if let Action::Send { bytes, .. } = action {
                self.counters.messages.sent(bytes);
            }
        }
        out
    }

    fn dispatch(&mut self, now: Instant, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Start => {
                self.lifecycle = Lifecycle::Running;
                if self.conns.is_empty() && !self.connecting {
                    self.connecting = true;
                    out.push(Action::Connect);
                }
            }
            Input::Stop(stop) => self.stop(now, stop, out),
            Input::Connected {
                conn,
                outbound,
                local,
            } => self.connected(now, conn, outbound, local, out),
            Input::ConnectFailed { error } => {
                self.connecting = false;
                // Right after losing the session a refused connection is expected (the
                // router restarts): the reason the session went down stays the error.
                let expected = error == ConnectError::Refused
                    && self.last_error.is_some()
                    && self.recently_up(now);
                if self.wants_outbound() && !expected {
                    self.last_error = Some(format!(
                        "could not connect to {}: {error}{}",
                        self.peer_text(),
                        if self.settings.password.is_some() && error.could_be_md5() {
                            " (a TCP MD5 password is set: a wrong or missing password on \
                             the peer makes it drop our packets silently)"
                        } else {
                            ""
                        }
                    ));
                }
                if self.wants_outbound() {
                    self.schedule_retry(now);
                }
            }
            Input::Message { conn, message } => self.message(now, conn, message, out),
            Input::DecodeError { conn, error } => {
                let reason = format!(
                    "we closed the session with {}: its message was malformed ({error})",
                    self.peer_text()
                );
                self.fail(now, conn, Some(CloseReason::Malformed(error)), reason, out);
            }
            Input::Closed { conn, error } => {
                if self.conns.iter().any(|c| c.id == conn) {
                    let reason = match error {
                        Some(e) => format!("connection to {} failed: {e}", self.peer_text()),
                        None => format!("peer {} closed the TCP connection", self.peer_text()),
                    };
                    self.conn_down(now, conn, reason);
                }
            }
            Input::Routes(routes) => {
                self.desired = routes;
                self.sync(out);
            }
            Input::Confirm => self.confirm(now, out),
            Input::Tick => self.tick(now, out),
        }
    }

    fn confirm(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(conn) = self.established_conn() else {
            return;
        };
        if !self.enhanced_refresh {
            self.confirmation = Confirmation::Unsupported;
            return;
        }
        self.confirm_seq += 1;
        let id = self.confirm_seq;
        // A new request supersedes a pending one: its EoRR comes after both.
        self.confirm_waiting = self.families.clone();
        if self.confirm_waiting.is_empty() {
            // No family negotiated: nothing was ever sent to confirm.
            self.confirmed(now, id, now, out);
            return;
        }
        let ctx = self.context();
        let mut bytes = Vec::new();
        for &afi in &self.families {
            // RFC 2918 §3 / RFC 7313 §3.2: subtype 0, a normal request.
            Message::RouteRefresh {
                afi,
                safi: SAFI_UNICAST,
                subtype: RefreshSubtype::Request,
            }
            .encode(ctx, &mut bytes);
        }
        out.push(Action::Send { conn, bytes });
        self.confirmation = Confirmation::Pending { id, asked_at: now };
    }

    fn confirmed(&mut self, now: Instant, id: u64, asked_at: Instant, out: &mut Vec<Action>) {
        let after = now.saturating_duration_since(asked_at);
        self.confirmation = Confirmation::Confirmed { id, after };
        self.confirmed_id = self.confirmed_id.max(id);
        out.push(Action::Report(Report::Confirmed {
            peer: self.peer(),
            id,
            after,
        }));
    }

    /// A ROUTE-REFRESH on the Established connection `id`.
    fn refresh_received(
        &mut self,
        now: Instant,
        id: ConnId,
        afi: u16,
        safi: u8,
        subtype: RefreshSubtype,
        out: &mut Vec<Action>,
    ) {
        match subtype {
            RefreshSubtype::Request => self.refresh_requested(id, afi, safi, out),
            // RFC 7313 §4.2: the peer may also frame a refresh it sends on its own;
            // we keep no received routes, so only a pending confirmation cares.
            RefreshSubtype::Begin => {}
            RefreshSubtype::End => {
                let Confirmation::Pending {
                    id: request,
                    asked_at,
                } = self.confirmation
                else {
                    return;
                };
                if safi != SAFI_UNICAST {
                    return;
                }
                self.confirm_waiting.retain(|&f| f != afi);
                if self.confirm_waiting.is_empty() {
                    self.confirmed(now, request, asked_at, out);
                }
            }
            // RFC 7313 §5: any other subtype MUST be ignored and SHOULD be logged.
            RefreshSubtype::Other(subtype) => {
                out.push(Action::Report(Report::UnknownRefreshSubtype {
                    peer: self.peer(),
                    subtype,
                }));
            }
        }
    }

    /// RFC 2918 §4: answer a request by re-advertising the Adj-RIB-Out of that family;
    /// with Enhanced Route Refresh framed by BoRR and EoRR (RFC 7313 §4.2).
    fn refresh_requested(&mut self, id: ConnId, afi: u16, safi: u8, out: &mut Vec<Action>) {
        // RFC 2918 §4: a family not negotiated at session establishment is ignored.
        if safi != SAFI_UNICAST || !self.families.contains(&afi) {
            return;
        }
        let Some(enc) = &self.encoding else {
            return;
        };
        let mut enc = enc.clone();
        if afi != AFI_IPV4 {
            enc.next_hop_v4 = None;
            enc.next_hop_v4_extended = None;
        }
        if afi != AFI_IPV6 {
            enc.next_hop_v6 = None;
        }
        let ctx = enc.ctx;
        let marker = |subtype| Message::RouteRefresh { afi, safi, subtype }.to_bytes(ctx);
        let mut bytes = Vec::new();
        if self.enhanced_refresh {
            bytes.extend(marker(RefreshSubtype::Begin));
        }
        let packed = self.rib.resend(&enc);
        self.counters.updates_sent += packed.messages;
        bytes.extend(packed.bytes);
        if self.enhanced_refresh {
            bytes.extend(marker(RefreshSubtype::End));
        }
        if !bytes.is_empty() {
            out.push(Action::Send { conn: id, bytes });
        }
    }

    fn peer(&self) -> IpAddr {
        self.settings.peer_address
    }

    /// The peer in messages: its address, or for an unnumbered peer the interface it is
    /// found on (its link-local address is the shell's to learn).
    fn peer_text(&self) -> String {
        match &self.settings.interface {
            Some(interface) => format!("{interface} (unnumbered)"),
            None => self.settings.peer_address.to_string(),
        }
    }

    /// Whether an outbound attempt is due: none under way, and no connection that can
    /// still become the session. An inbound connection whose peer never sent an OPEN
    /// does not count: it may be a stray or half-dead socket from the peer's address
    /// and must not keep us from reconnecting until its 240 s hold timer fires.
    fn wants_outbound(&self) -> bool {
        !self.connecting
            && self.lifecycle == Lifecycle::Running
            && !self
                .conns
                .iter()
                .any(|c| c.outbound || c.state != ConnState::OpenSent)
    }

    /// Within [`QUICK_WINDOW`] of losing an Established session.
    fn recently_up(&self, now: Instant) -> bool {
        self.lost_at
            .is_some_and(|at| now.saturating_duration_since(at) < QUICK_WINDOW)
    }

    fn schedule_retry(&mut self, now: Instant) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        let delay = if self.recently_up(now) {
            self.backoff.min(QUICK_RETRY)
        } else {
            self.backoff
        };
        self.retry_at = Some(now + delay);
        // Exponential backoff capped by connectTime (RFC 4271 §8.1.3 leaves the policy open).
        let cap = self
            .settings
            .connect_retry_time
            .clamp(FIRST_RETRY, MAX_RETRY);
        self.backoff = self.backoff.saturating_mul(2).min(cap);
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Some(at) = self.retry_at
            && at <= now
            && self.wants_outbound()
        {
            self.retry_at = None;
            self.connecting = true;
            out.push(Action::Connect);
        }
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.hold_deadline.is_some_and(|d| d <= now))
            .map(|c| c.id)
            .collect();
        for id in expired {
            // RFC 4271 §6.5 / §8.2.2 event 10: hold timer expired.
            let hold = self.conns.iter().find(|c| c.id == id).map(|c| c.hold);
            let reason = format!(
                "hold timer expired: no message from {} in {} s",
                self.peer_text(),
                hold.unwrap_or(OPEN_HOLD).as_secs()
            );
            self.fail(now, id, Some(CloseReason::HoldTimerExpired), reason, out);
        }
        let ctx = self.context();
        for c in &mut self.conns {
            if let Some(at) = c.keepalive_deadline
                && at <= now
            {
                out.push(Action::Send {
                    conn: c.id,
                    bytes: Message::Keepalive.to_bytes(ctx),
                });
                c.keepalive_deadline = Some(now + c.keepalive);
            }
        }
    }

    fn context(&self) -> Context {
        Context {
            four_octet_as: self.encoding.as_ref().is_some_and(|e| e.ctx.four_octet_as),
        }
    }

    fn connected(
        &mut self,
        now: Instant,
        id: ConnId,
        outbound: bool,
        local: SocketAddr,
        out: &mut Vec<Action>,
    ) {
        if outbound {
            self.connecting = false;
        }
        if self.lifecycle != Lifecycle::Running {
            out.push(Action::Close { conn: id });
            return;
        }
        if !outbound {
            // A new connection from the peer supersedes an older inbound one on which
            // it never sent an OPEN: the peer would not open a second connection while
            // the first still worked, so the old one is dead or was never the peer.
            let stale: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|c| !c.outbound && c.state == ConnState::OpenSent)
                .map(|c| c.id)
                .collect();
            for old in stale {
                self.fail_quiet(old, CloseReason::ConnectionCollision, out);
            }
        }
        if self.conns.len() >= 2 {
            out.push(Action::Close { conn: id });
            return;
        }
        let open = self.our_open();
        out.push(Action::Send {
            conn: id,
            bytes: Message::Open(open).to_bytes(Context {
                four_octet_as: false,
            }),
        });
        self.conns.push(Conn {
            id,
            outbound,
            local,
            link: LinkAddresses::default(),
            state: ConnState::OpenSent,
            hold: OPEN_HOLD,
            keepalive: Duration::ZERO,
            hold_deadline: Some(now + OPEN_HOLD),
            keepalive_deadline: None,
            peer_open: None,
        });
    }

    fn our_open(&self) -> Open {
        let s = &self.settings;
        let mut capabilities = Vec::new();
        if s.ipv4 {
            capabilities.push(Capability::Multiprotocol {
                afi: AFI_IPV4,
                safi: SAFI_UNICAST,
            });
        }
        if s.ipv6 {
            capabilities.push(Capability::Multiprotocol {
                afi: AFI_IPV6,
                safi: SAFI_UNICAST,
            });
        }
        if s.ipv4 && s.peer_address.is_ipv6() {
            // IPv4 routes over an IPv6 session with an IPv6 next hop (RFC 8950 §3).
            capabilities.push(Capability::ExtendedNextHop(vec![IPV4_OVER_IPV6]));
        }
        capabilities.push(Capability::RouteRefresh);
        // RFC 7313 §3.1: we frame our refresh answers and use the peer's EoRR as the
        // confirmation that it processed our UPDATEs (Input::Confirm).
        capabilities.push(Capability::EnhancedRouteRefresh);
        if let Some(role) = self
            .peer_role
            .and_then(crate::packet::open::complementary_role)
        {
            capabilities.push(Capability::Role(role));
        }
        capabilities.push(Capability::FourOctetAs(s.local_asn));
        if s.graceful_restart {
            let families = [(s.ipv4, AFI_IPV4), (s.ipv6, AFI_IPV6)]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, afi)| GracefulRestartFamily {
                    afi,
                    safi: SAFI_UNICAST,
                    // The data plane (kube-proxy) forwards while we restart.
                    forwarding_preserved: true,
                })
                .collect();
            capabilities.push(Capability::GracefulRestart {
                restarting: self.restarting,
                restart_time: RESTART_TIME,
                families,
            });
        } else {
            // RFC 4724 §3: without any <AFI, SAFI> the capability says only that we
            // support the receiving speaker's procedures (End-of-RIB), and the peer keeps
            // none of our routes when the session drops. Routers need it to answer a
            // route refresh request with BoRR/EoRR: FRR sends a BoRR only after its
            // End-of-RIB (RFC 7313 §4), and its End-of-RIB only to a peer that sent this
            // capability; without it a drain could not be confirmed.
            capabilities.push(Capability::GracefulRestart {
                restarting: false,
                restart_time: 0,
                families: Vec::new(),
            });
        }
        Open {
            version: 4,
            my_as: u16::try_from(s.local_asn).unwrap_or(AS_TRANS),
            hold_time: u16::try_from(s.hold_time.as_secs()).unwrap_or(u16::MAX),
            bgp_id: s.router_id,
            capabilities,
        }
    }

    fn message(&mut self, now: Instant, id: ConnId, message: Message, out: &mut Vec<Action>) {
        let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
            return;
        };
        if conn.state != ConnState::OpenSent && conn.hold > Duration::ZERO {
            conn.hold_deadline = Some(now + conn.hold);
        }
        let state = conn.state;
        match (state, message) {
            (_, Message::Notification(n)) => {
                let reason = format!(
                    "peer {} closed the session: {}",
                    self.peer_text(),
                    self.explain(&n)
                );
                self.conn_down(now, id, reason);
                out.push(Action::Close { conn: id });
            }
            (ConnState::OpenSent, Message::Open(open)) => self.open_received(now, id, open, out),
            (ConnState::OpenConfirm, Message::Keepalive) => self.established(now, id, out),
            (ConnState::Established, Message::Keepalive) => {}
            (ConnState::Established, Message::Update(update)) => {
                // Received routes are validated by the decoder and otherwise ignored;
                // what RFC 7606 made us withdraw or discard is reported.
                if !update.errors.is_empty() {
                    out.push(Action::Report(Report::AttributeErrors {
                        peer: self.peer(),
                        errors: update.errors,
                    }));
                }
            }
            (ConnState::Established, Message::RouteRefresh { afi, safi, subtype }) => {
                self.refresh_received(now, id, afi, safi, subtype, out)
            }
            (state, message) => {
                // RFC 6608: FSM error subcode says in which state the surprise came.
                let sub = match state {
                    ConnState::OpenSent => UnexpectedIn::OpenSent,
                    ConnState::OpenConfirm => UnexpectedIn::OpenConfirm,
                    ConnState::Established => UnexpectedIn::Established,
                };
                let reason = format!(
                    "we closed the session with {}: unexpected {} in state {:?}",
                    self.peer_text(),
                    message.kind(),
                    state
                );
                self.fail(
                    now,
                    id,
                    Some(CloseReason::UnexpectedMessage { state: sub }),
                    reason,
                    out,
                );
            }
        }
    }

    fn explain(&self, n: &Notification) -> String {
        if n.code == code::OPEN_MESSAGE && n.subcode == open_err::BAD_PEER_AS {
            // The peer does not say what it expected; say what we sent so the
            // operator can compare with the router's neighbor statement.
            return format!(
                "{n} (it expected a different AS, we sent {})",
                self.settings.local_asn
            );
        }
        n.to_string()
    }

    fn open_received(&mut self, now: Instant, id: ConnId, open: Open, out: &mut Vec<Action>) {
        let peer_asn = open.asn();
        let role = open.capabilities.iter().find_map(|c| match c {
            Capability::Role(r) => Some(*r),
            _ => None,
        });
        if role.is_some() && peer_asn != self.settings.local_asn {
            self.peer_role = role;
        }
        let s = self.settings.clone();
        let bad_as = match s.peer_asn {
            PeerAsn::Fixed(asn) => peer_asn != asn,
            PeerAsn::DynamicInternal => peer_asn != s.local_asn,
            PeerAsn::DynamicExternal => peer_asn == s.local_asn,
        };
        if bad_as {
            let expected = match s.peer_asn {
                PeerAsn::Fixed(asn) => asn.to_string(),
                PeerAsn::DynamicInternal => format!("{} (iBGP)", s.local_asn),
                PeerAsn::DynamicExternal => format!("anything but {} (eBGP)", s.local_asn),
            };
            let reason = format!(
                "we closed the session with {}: OPEN error / Bad Peer AS (we expected {expected}, it sent {peer_asn})",
                self.peer_text()
            );
            return self.fail(now, id, Some(CloseReason::BadPeerAs), reason, out);
        }
        // RFC 6286 §2.2: inside one AS the identifiers must differ.
        if peer_asn == s.local_asn && open.bgp_id == s.router_id {
            let reason = format!(
                "we closed the session with {}: it uses our router ID {}",
                self.peer_text(),
                s.router_id
            );
            let n = CloseReason::BadBgpIdentifier { id: open.bgp_id };
            return self.fail(now, id, Some(n), reason, out);
        }
        if !self.resolve_collision(now, id, &open, out) {
            return;
        }
        // RFC 4271 §4.2: the smaller hold time wins; keepalive a third of it at most.
        let ours = s.hold_time.as_secs().min(u64::from(u16::MAX));
        let hold = Duration::from_secs(ours.min(u64::from(open.hold_time)));
        let keepalive = if hold.is_zero() {
            Duration::ZERO
        } else {
            let k = s.keepalive_time.min(hold / 3);
            if k.is_zero() { hold / 3 } else { k }
        };
        let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
            return;
        };
        conn.state = ConnState::OpenConfirm;
        conn.hold = hold;
        conn.keepalive = keepalive;
        conn.hold_deadline = (!hold.is_zero()).then(|| now + hold);
        conn.keepalive_deadline = (!keepalive.is_zero()).then(|| now + keepalive);
        conn.peer_open = Some(open);
        out.push(Action::Send {
            conn: id,
            bytes: Message::Keepalive.to_bytes(Context {
                four_octet_as: false,
            }),
        });
    }

    fn established(&mut self, now: Instant, id: ConnId, out: &mut Vec<Action>) {
        let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
            return;
        };
        conn.state = ConnState::Established;
        let local = conn.local.ip();
        let link = conn.link;
        let Some(peer_open) = conn.peer_open.clone() else {
            return;
        };
        let s = self.settings.clone();
        let peer_mp: Vec<u16> = peer_open
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol {
                    afi,
                    safi: SAFI_UNICAST,
                } => Some(*afi),
                _ => None,
            })
            .collect();
        // RFC 4760 §8: no MP capability at all means IPv4 unicast only.
        let peer_has = |afi| peer_mp.contains(&afi) || (peer_mp.is_empty() && afi == AFI_IPV4);
        let v4 = s.ipv4 && peer_has(AFI_IPV4);
        let v6 = s.ipv6 && peer_has(AFI_IPV6);
        let peer_gr = peer_open.has(|c| matches!(c, Capability::GracefulRestart { .. }));
        // RFC 7313 §4: BoRR/EoRR only when both sides advertised the capability (we
        // always do); a request needs the peer's Route Refresh capability (RFC 2918 §4).
        self.enhanced_refresh = peer_open.has(|c| matches!(c, Capability::EnhancedRouteRefresh))
            && peer_open.has(|c| matches!(c, Capability::RouteRefresh));
        self.families = [(v4, AFI_IPV4), (v6, AFI_IPV6)]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, afi)| afi)
            .collect();
        self.confirmation = Confirmation::NotAsked;
        self.confirm_waiting.clear();
        // RFC 8950 §4: IPv4 NLRI with an IPv6 next hop only when both sides sent the
        // capability for that tuple (we send it on IPv6 sessions carrying IPv4).
        let peer_ext_nh = peer_open
            .has(|c| matches!(c, Capability::ExtendedNextHop(f) if f.contains(&IPV4_OVER_IPV6)));
        // IPv6 routes over an IPv4 session need an IPv6 next hop of ours on that link
        // (RFC 4760 §3); an IPv4-mapped one cannot be installed by the router. The
        // explicit setting wins and then goes alone, without a link-local address.
        let (v6_next_hop, link) = match (local, s.ipv6_next_hop) {
            (IpAddr::V6(own), _) => (Some(own), link),
            (IpAddr::V4(_), Some(explicit)) => (Some(explicit), LinkAddresses::default()),
            (IpAddr::V4(_), None) => (link.global, link),
        };
        let enc = Encoding {
            local_asn: s.local_asn,
            ibgp: peer_open.asn() == s.local_asn,
            ctx: Context {
                four_octet_as: peer_open.has(|c| matches!(c, Capability::FourOctetAs(_))),
            },
            next_hop_v4: match local {
                IpAddr::V4(a) if v4 => Some(a),
                _ => None,
            },
            next_hop_v6: if v6 { v6_next_hop } else { None },
            // RFC 2545 §3: only beside our own global address on a shared subnet.
            next_hop_v6_link_local: link.link_local.filter(|_| v6 && v6_next_hop.is_some()),
            next_hop_v4_extended: match local {
                IpAddr::V6(own) if v4 && peer_ext_nh => Some((own, link.link_local)),
                _ => None,
            },
        };
        // Reported by `sync` once IPv6 prefixes are actually held back.
        self.no_ipv6_next_hop = v6 && v6_next_hop.is_none();
        self.no_ipv4_next_hop =
            v4 && enc.next_hop_v4.is_none() && enc.next_hop_v4_extended.is_none();
        self.withheld = None;
        // Only one connection may be Established; any leftover is closed.
        let others: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.id != id)
            .map(|c| c.id)
            .collect();
        for other in others {
            self.fail_quiet(other, CloseReason::ConnectionCollision, out);
        }
        self.restarting = false;
        self.backoff = FIRST_RETRY;
        self.counters.established_at = Some(now);
        self.last_error = None;
        self.rib.clear();
        let ctx = enc.ctx;
        // A withheld family still gets its End-of-RIB: what we announce there (nothing)
        // is complete.
        let families = [
            (
                enc.next_hop_v4.is_some() || enc.next_hop_v4_extended.is_some(),
                AFI_IPV4,
            ),
            (v6, AFI_IPV6),
        ];
        self.encoding = Some(enc);
        self.sync(out);
        // RFC 4724 §2: End-of-RIB after the initial update, for every family.
        if s.graceful_restart || peer_gr {
            for (_, afi) in families.iter().filter(|(on, _)| *on) {
                out.push(Action::Send {
                    conn: id,
                    bytes: rib::end_of_rib(*afi, ctx),
                });
                self.counters.updates_sent += 1;
            }
        }
    }

    fn established_conn(&self) -> Option<ConnId> {
        self.conns
            .iter()
            .find(|c| c.state == ConnState::Established)
            .map(|c| c.id)
    }

    fn sync(&mut self, out: &mut Vec<Action>) {
        let (Some(conn), Some(enc)) = (self.established_conn(), self.encoding.as_ref()) else {
            return;
        };
        let wants = |v6: bool| self.desired.keys().any(|p| p.addr().is_ipv6() == v6);
        let withheld = if self.no_ipv6_next_hop && wants(true) {
            Some(Withheld::Ipv6NoAddressOnLink)
        } else if self.no_ipv4_next_hop && wants(false) {
            Some(Withheld::Ipv4NoExtendedNextHop)
        } else {
            None
        };
        if let (Some(why), Some(conn)) = (withheld, self.conns.iter().find(|c| c.id == conn))
            && self.withheld != withheld
        {
            out.push(Action::Report(Report::Withheld {
                peer: self.settings.peer_address,
                local: conn.local.ip(),
                why,
            }));
        }
        self.withheld = withheld;
        let packed = self.rib.sync(&self.desired, enc);
        self.counters.updates_sent += packed.messages;
        if !packed.bytes.is_empty() {
            out.push(Action::Send {
                conn,
                bytes: packed.bytes,
            });
        }
    }

    /// Sends the NOTIFICATION for `n` (if any) and closes connection `id`; the
    /// session goes down.
    fn fail(
        &mut self,
        now: Instant,
        id: ConnId,
        n: Option<CloseReason>,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        if let Some(n) = n.and_then(|reason| reason.notification()) {
            out.push(Action::Send {
                conn: id,
                bytes: Message::Notification(n).to_bytes(self.context()),
            });
        }
        out.push(Action::Close { conn: id });
        self.conn_down(now, id, reason);
    }

    fn conn_down(&mut self, now: Instant, id: ConnId, reason: String) {
        let Some(index) = self.conns.iter().position(|c| c.id == id) else {
            return;
        };
        let conn = self.conns.remove(index);
        if conn.state == ConnState::Established {
            self.lost_at = Some(now);
            self.rib.clear();
            self.encoding = None;
            self.counters.established_at = None;
            self.families.clear();
            self.enhanced_refresh = false;
            self.confirmation = Confirmation::NotAsked;
            self.confirm_waiting.clear();
        }
        self.last_error = Some(reason);
        if self.wants_outbound() {
            self.schedule_retry(now);
        }
    }
}

mod closing;
mod connect_error;
mod counts;

pub use connect_error::{ConnectError, SetupStep};
pub use counts::MessageCounts;

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

#[cfg(test)]
use tests as tests_support;

#[cfg(test)]
#[path = "session_reconnect_tests.rs"]
mod reconnect_tests;

#[cfg(test)]
#[path = "session_family_tests.rs"]
mod family_tests;
