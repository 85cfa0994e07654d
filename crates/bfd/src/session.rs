//! One BFD session in Asynchronous mode (RFC 5880 §6.8), sans I/O: the shell feeds it
//! decoded packets and the current time, and carries out the [`Action`]s it returns.
//! Time is an input, so tests advance it by hand.
//!
//! The Echo function (§6.4, §6.8.9) is driven from here too: the session says when to
//! send an Echo packet ([`Action::SendEcho`]) and goes Down with diagnostic 2 (Echo
//! Function Failed) when none came back for the echo Detection Time; the shell owns
//! the packet socket ([`crate::echo`]).
//!
//! Not implemented (and never advertised): Demand mode (we never set D; a peer in
//! Demand mode is not supported), authentication (packets with the A bit are dropped
//! before they get here).

use std::time::{Duration, Instant};

use crate::echo::{EchoInactive, EchoPath, EchoStatus};
use crate::packet::{ControlPacket, Diag, DropReason, State};

/// §6.8.3: while the session is not Up, bfd.DesiredMinTxInterval is at least 1 s.
pub const SLOW_START_TX: Duration = Duration::from_secs(1);

/// What the session is configured to ask for (from a BFDProfile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// bfd.DesiredMinTxInterval once Up.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub required_min_rx: Duration,
    /// bfd.DetectMult.
    pub detect_mult: u8,
    /// §6.1 Passive role: send nothing until the peer has been heard from.
    pub passive: bool,
    /// The Echo function: `Some(echoInterval)` to run it (the interval we send Echo
    /// packets at, and the Required Min Echo RX we advertise when this host loops the
    /// peer's echoes), `None` for none.
    pub echo: Option<Duration>,
}

/// §6.8.3: "When the Echo function is active, a system SHOULD set
/// bfd.DesiredMinTxInterval to a value of not less than one second".
pub const ECHO_ACTIVE_MIN_TX: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Time has passed; expire whatever is due (call at [`Session::next_deadline`]).
    Timer,
    /// A packet that passed [`ControlPacket::decode`] and was demultiplexed here.
    Received(ControlPacket),
    /// §6.8.16: administrative control.
    AdminDown,
    AdminUp,
    /// New timers / multiplier / role (a changed BFDProfile).
    Configure(SessionConfig),
    /// The shell can (`Some`) or cannot (`None`) send Echo packets towards the peer.
    EchoPath(Option<EchoPath>),
    /// One of our Echo packets came back (its discriminator is ours).
    EchoReceived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Transmit this packet to the peer now.
    Send(ControlPacket),
    /// bfd.SessionState changed. `cause` is set when the session left Init or Up for
    /// Down or AdminDown.
    StateChanged {
        from: State,
        to: State,
        diag: Diag,
        cause: Option<DownCause>,
    },
    /// The received packet was discarded.
    Dropped(DropReason),
    /// Transmit an Echo packet now (§6.8.9), carrying this sequence number.
    SendEcho(u64),
}

/// Why a session left Init or Up. It decides whether the client protocol (BGP) is told
/// that the path failed: RFC 5882 §3.2 has the client act on a failure of the path, and
/// a session the neighbour took down administratively is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DownCause {
    /// §6.8.4: no valid packet for a Detection Time; the path failed as seen from here.
    DetectionTimeExpired,
    /// The neighbour's packets say Down with a diagnostic that names a failed path
    /// (RFC 5880 §4.1: its Detection Time passed, so our packets stopped reaching it,
    /// or it knows its forwarding path is down).
    NeighborDetectedFailure,
    /// The neighbour's packets say Down with any other diagnostic: it reset or replaced
    /// its session. FRR does this when BGP comes up and it learns the source address
    /// (the old session says Down with "neighbor signaled session down" though we never
    /// did, then a new discriminator starts). Its packet just arrived: the path works.
    NeighborReset,
    /// The neighbour signalled AdminDown (§6.8.16); RFC 5882 §3.2: not a path failure.
    NeighborAdminDown,
    /// We took the session down (§6.8.16).
    LocalAdminDown,
    /// §6.8.5: our Echo packets stopped coming back while Control packets may still
    /// flow: the forwarding path failed.
    EchoFailed,
}

impl DownCause {
    /// Whether the client protocol should treat this as a failed path.
    pub fn is_path_failure(self) -> bool {
        matches!(
            self,
            DownCause::DetectionTimeExpired
                | DownCause::NeighborDetectedFailure
                | DownCause::EchoFailed
        )
    }

    /// A stable name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DownCause::DetectionTimeExpired => "detection_time_expired",
            DownCause::NeighborDetectedFailure => "neighbor_detected_failure",
            DownCause::NeighborReset => "neighbor_reset",
            DownCause::NeighborAdminDown => "neighbor_admin_down",
            DownCause::LocalAdminDown => "local_admin_down",
            DownCause::EchoFailed => "echo_function_failed",
        }
    }
}

impl std::fmt::Display for DownCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state variables of §6.8.1 plus the timers that drive them.
#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diag,
    /// Advertised bfd.DesiredMinTxInterval / bfd.RequiredMinRxInterval (µs).
    desired_min_tx_us: u32,
    required_min_rx_us: u32,
    /// Values in force for our own timing: §6.8.3 keeps the old ones until a Poll
    /// Sequence ends when the change would otherwise be unsafe.
    tx_in_use_us: u32,
    rx_in_use_us: u32,
    remote_min_rx_us: u32,
    remote_desired_min_tx_us: u32,
    remote_detect_mult: u8,
    /// §6.5: a Poll Sequence is in progress (P set on periodic packets).
    polling: bool,
    /// The Required Min Echo RX Interval in our packets (µs).
    advertised_echo_rx_us: u32,
    next_tx: Option<Instant>,
    detect_deadline: Option<Instant>,
    rng: u64,
    /// The Echo function (§6.8.9).
    echo: EchoState,
}

#[derive(Debug, Clone, Default)]
struct EchoState {
    /// What the shell reported; `None`: no way to send Echo packets (yet).
    path: Option<EchoPath>,
    /// bfd.RemoteMinEchoRxInterval: the peer's Required Min Echo RX Interval (µs).
    remote_min_rx_us: u32,
    active: bool,
    next_tx: Option<Instant>,
    deadline: Option<Instant>,
    sequence: u64,
    /// When the last Echo packet went: a session that cycles Down and Up again
    /// still waits out the interval (§6.8.9).
    last_tx: Option<Instant>,
}

impl Session {
    /// A new session in Down (§6.8.1 initial values). `local_discr` must be non-zero and
    /// unique on this system; `seed` feeds the transmit jitter.
    pub fn new(local_discr: u32, config: SessionConfig, now: Instant, seed: u64) -> Session {
        let desired = advertised_tx(&config, State::Down, false);
        let required = duration_us(config.required_min_rx);
        let mut session = Session {
            config,
            state: State::Down,
            remote_state: State::Down,
            local_discr,
            remote_discr: 0,
            local_diag: Diag::None,
            desired_min_tx_us: desired,
            required_min_rx_us: required,
            tx_in_use_us: desired,
            rx_in_use_us: required,
            // §6.8.1: bfd.RemoteMinRxInterval starts at 1 (µs).
            remote_min_rx_us: 1,
            remote_desired_min_tx_us: 0,
            remote_detect_mult: 0,
            polling: false,
            advertised_echo_rx_us: 0,
            next_tx: None,
            detect_deadline: None,
            rng: seed | 1,
            echo: EchoState::default(),
        };
        if session.may_transmit() {
            session.next_tx = Some(now);
        }
        session
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }

    pub fn local_discriminator(&self) -> u32 {
        self.local_discr
    }

    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    pub fn config(&self) -> SessionConfig {
        self.config
    }

    /// Whether a Poll Sequence is in progress.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// §6.8.7: the interval between periodic packets before jitter: the larger of our
    /// bfd.DesiredMinTxInterval (in force) and the peer's Required Min RX.
    pub fn transmit_interval(&self) -> Duration {
        Duration::from_micros(u64::from(self.tx_in_use_us.max(self.remote_min_rx_us)))
    }

    /// §6.8.4 (Asynchronous mode): the peer's Detect Mult times the larger of our
    /// bfd.RequiredMinRxInterval (in force) and the peer's Desired Min TX.
    pub fn detection_time(&self) -> Duration {
        let interval = self.rx_in_use_us.max(self.remote_desired_min_tx_us);
        Duration::from_micros(u64::from(interval) * u64::from(self.remote_detect_mult))
    }

    /// When the shell must next call `handle(Event::Timer)`.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.next_tx,
            self.detect_deadline,
            self.echo.next_tx,
            self.echo.deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// §6.8.9: Echo packets go no faster than the larger of our echoInterval and the
    /// peer's Required Min Echo RX Interval. `None` when the profile has no echo.
    pub fn echo_interval(&self) -> Option<Duration> {
        let ours = self.config.echo?;
        Some(ours.max(Duration::from_micros(u64::from(self.echo.remote_min_rx_us))))
    }

    /// §6.8.5 leaves "the number of packets, and the means of determining" an Echo
    /// failure to the implementation: here, the echo interval times our own
    /// bfd.DetectMult (the profile's detectMultiplier; the Echo packets are ours, the
    /// peer's Detect Mult is about our Control packets). FRR's bfdd multiplies by the
    /// remote Detect Mult instead; with equal multipliers they agree.
    pub fn echo_detection_time(&self) -> Option<Duration> {
        Some(self.echo_interval()? * u32::from(self.config.detect_mult))
    }

    /// Whether the Echo function runs, and if not, why (as far as the session knows:
    /// the shell adds multihop / IPv6).
    pub fn echo_status(&self) -> EchoStatus {
        if self.config.echo.is_none() {
            return EchoStatus::Disabled;
        }
        match (self.echo_interval(), self.echo_detection_time()) {
            (Some(interval), Some(detection_time)) if self.echo.active => EchoStatus::Active {
                interval,
                detection_time,
            },
            _ => EchoStatus::Inactive(self.echo_blocker().unwrap_or(EchoInactive::SessionNotUp)),
        }
    }

    /// The Required Min Echo RX Interval we advertise (µs): non-zero only when the
    /// profile has echo and the shell found that this host loops the peer's Echo
    /// packets (RFC 5880 §4.1: zero means we do not support receiving them).
    fn required_min_echo_rx_us(&self) -> u32 {
        match (self.config.echo, self.echo.path) {
            (Some(interval), Some(path)) if path.loops_peer_echoes => duration_us(interval),
            _ => 0,
        }
    }

    /// What keeps the Echo function from running, if anything.
    fn echo_blocker(&self) -> Option<EchoInactive> {
        if self.state != State::Up {
            Some(EchoInactive::SessionNotUp)
        } else if self.echo.remote_min_rx_us == 0 {
            // §6.8.9: MUST NOT send Echo packets when the peer's value is zero.
            Some(EchoInactive::PeerDoesNotLoop)
        } else if self.echo.path.is_none() {
            Some(EchoInactive::NoLinkLayerPath)
        } else {
            None
        }
    }

    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Timer => self.on_timer(now, &mut actions),
            Event::Received(packet) => self.on_packet(now, &packet, &mut actions),
            Event::AdminDown => {
                if self.state != State::AdminDown {
                    self.set_state_because(
                        State::AdminDown,
                        Diag::AdministrativelyDown,
                        Some(DownCause::LocalAdminDown),
                        now,
                        &mut actions,
                    );
                    self.detect_deadline = None;
                }
            }
            Event::AdminUp => {
                if self.state == State::AdminDown {
                    self.set_state(State::Down, Diag::None, now, &mut actions);
                }
            }
            Event::Configure(config) => self.configure(config, now, &mut actions),
            Event::EchoPath(path) => {
                self.echo.path = path;
                // The advertised Required Min Echo RX may change: a Poll tells the peer.
                self.apply_timers(now, &mut actions);
            }
            Event::EchoReceived => {
                // §6.8.5: an Echo packet back restarts the echo detection timer.
                if self.echo.active {
                    self.echo.deadline = self.echo_detection_time().map(|d| now + d);
                }
            }
        }
        self.update_echo(now, &mut actions);
        actions
    }

    /// Starts or stops the Echo function as its conditions change (§6.8.9).
    fn update_echo(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let wanted = self.config.echo.is_some() && self.echo_blocker().is_none();
        if wanted == self.echo.active {
            return;
        }
        self.echo.active = wanted;
        if wanted {
            let interval = self.echo_interval().unwrap_or_default();
            self.echo.next_tx = Some(self.echo.last_tx.map_or(now, |at| (at + interval).max(now)));
            // The first Detection Time counts from activation.
            self.echo.deadline = self.echo_detection_time().map(|d| now + d);
        } else {
            self.echo.next_tx = None;
            self.echo.deadline = None;
        }
        // §6.8.3: slower Control packets while Echo is active, back when it stops.
        if self.state == State::Up {
            self.apply_timers(now, actions);
        }
        // The first Echo packet goes at once (unless one went less than an interval ago).
        self.on_echo_timer(now, actions);
    }

    fn on_echo_timer(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if !self.echo.active || self.state != State::Up {
            return;
        }
        if self.echo.deadline.is_some_and(|deadline| deadline <= now) {
            // §6.8.5 / §6.8.6: the Echo function failed: Down, diagnostic 2.
            self.echo.active = false;
            self.echo.next_tx = None;
            self.echo.deadline = None;
            self.set_state_because(
                State::Down,
                Diag::EchoFunctionFailed,
                Some(DownCause::EchoFailed),
                now,
                actions,
            );
            return;
        }
        if self.echo.next_tx.is_some_and(|at| at <= now) {
            self.echo.sequence = self.echo.sequence.wrapping_add(1);
            actions.push(Action::SendEcho(self.echo.sequence));
            self.echo.last_tx = Some(now);
            // §6.8.9: never faster than the peer's Required Min Echo RX: no jitter
            // below the interval.
            self.echo.next_tx = self.echo_interval().map(|i| now + i);
        }
    }

    fn on_timer(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if self.detect_deadline.is_some_and(|deadline| deadline <= now) {
            // §6.8.4: no valid packet for a Detection Time.
            self.detect_deadline = None;
            // §6.8.1: bfd.RemoteDiscr is zeroed when a Detection Time passes without a
            // packet, so a restarted peer (new discriminator) can be found again.
            self.remote_discr = 0;
            self.remote_state = State::Down;
            if matches!(self.state, State::Init | State::Up) {
                self.set_state_because(
                    State::Down,
                    Diag::ControlDetectionTimeExpired,
                    Some(DownCause::DetectionTimeExpired),
                    now,
                    actions,
                );
            }
            if !self.may_transmit() {
                self.next_tx = None;
            }
        }
        if self.next_tx.is_some_and(|at| at <= now) {
            if self.may_transmit() {
                actions.push(Action::Send(self.packet(false)));
                self.next_tx = Some(now + self.jittered_interval());
            } else {
                self.next_tx = None;
            }
        }
        self.on_echo_timer(now, actions);
    }

    /// §6.8.6, the part after the stateless checks done by the decoder.
    fn on_packet(&mut self, now: Instant, packet: &ControlPacket, actions: &mut Vec<Action>) {
        if packet.your_discriminator != 0 && packet.your_discriminator != self.local_discr {
            actions.push(Action::Dropped(DropReason::NoSession));
            return;
        }
        let was_transmitting = self.may_transmit();
        self.remote_discr = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_min_rx_us = packet.required_min_rx_us;
        self.remote_desired_min_tx_us = packet.desired_min_tx_us;
        self.remote_detect_mult = packet.detect_mult;
        self.echo.remote_min_rx_us = packet.required_min_echo_rx_us;
        // §6.5: a Final ends our Poll Sequence; parameters held back take effect.
        if packet.final_ && self.polling {
            self.polling = false;
            self.tx_in_use_us = self.desired_min_tx_us;
            self.rx_in_use_us = self.required_min_rx_us;
        }
        if self.state == State::AdminDown {
            actions.push(Action::Dropped(DropReason::AdminDown));
            return;
        }
        // The state table of §6.8.6.
        if packet.state == State::AdminDown {
            if self.state != State::Down {
                self.set_state_because(
                    State::Down,
                    Diag::NeighborSignaledSessionDown,
                    Some(DownCause::NeighborAdminDown),
                    now,
                    actions,
                );
            }
        } else {
            match (self.state, packet.state) {
                (State::Down, State::Down) => {
                    self.set_state(State::Init, self.local_diag, now, actions)
                }
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.set_state(State::Up, self.local_diag, now, actions)
                }
                (State::Up, State::Down) => {
                    let cause = if packet.diag.is_path_failure() {
                        DownCause::NeighborDetectedFailure
                    } else {
                        DownCause::NeighborReset
                    };
                    self.set_state_because(
                        State::Down,
                        Diag::NeighborSignaledSessionDown,
                        Some(cause),
                        now,
                        actions,
                    )
                }
                _ => {}
            }
        }
        // §6.8.6: a Poll is answered at once with a Final (P clear, §6.5).
        if packet.poll {
            actions.push(Action::Send(self.packet(true)));
        }
        // The peer's Required Min RX may have shortened our interval, or a passive
        // session may just have learned it can talk: do not wait out an old timer.
        if self.may_transmit() {
            let soonest = now + self.jittered_interval();
            if !was_transmitting {
                self.next_tx = Some(now);
            } else if self.next_tx.is_none_or(|at| at > soonest) {
                self.next_tx = Some(soonest);
            }
        } else {
            self.next_tx = None;
        }
        // §6.8.4: every packet not discarded restarts the detection timer.
        self.detect_deadline = Some(now + self.detection_time());
    }

    fn configure(&mut self, config: SessionConfig, now: Instant, actions: &mut Vec<Action>) {
        self.config = config;
        self.apply_timers(now, actions);
        if self.may_transmit() {
            if self.next_tx.is_none() {
                self.next_tx = Some(now);
            }
        } else {
            self.next_tx = None;
        }
    }

    /// Recomputes the advertised intervals from the config and the state (§6.8.3),
    /// starting a Poll Sequence when they change while Up.
    fn apply_timers(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let desired = advertised_tx(&self.config, self.state, self.echo.active);
        let required = duration_us(self.config.required_min_rx);
        let echo_rx = self.required_min_echo_rx_us();
        let changed = desired != self.desired_min_tx_us
            || required != self.required_min_rx_us
            || echo_rx != self.advertised_echo_rx_us;
        self.advertised_echo_rx_us = echo_rx;
        let up = self.state == State::Up;
        // §6.8.3: a larger tx interval, or a smaller rx interval, is used for our own
        // timing only once the Poll Sequence has ended; the safe direction applies now.
        if !up || desired < self.tx_in_use_us {
            self.tx_in_use_us = desired;
        }
        if !up || required > self.rx_in_use_us {
            self.rx_in_use_us = required;
        }
        self.desired_min_tx_us = desired;
        self.required_min_rx_us = required;
        if !up {
            self.polling = false;
        } else if changed {
            self.polling = true;
            // Start it now rather than at the next periodic packet.
            if self.may_transmit() {
                actions.push(Action::Send(self.packet(false)));
                self.next_tx = Some(now + self.jittered_interval());
            }
        }
    }

    fn set_state(&mut self, to: State, diag: Diag, now: Instant, actions: &mut Vec<Action>) {
        self.set_state_because(to, diag, None, now, actions);
    }

    fn set_state_because(
        &mut self,
        to: State,
        diag: Diag,
        cause: Option<DownCause>,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.local_diag = diag;
        actions.push(Action::StateChanged {
            from,
            to,
            diag,
            cause,
        });
        let polled_before = actions.len();
        self.apply_timers(now, actions);
        // Tell the peer at once instead of at the next periodic packet (the Poll that
        // apply_timers may have sent already carries the new state).
        if actions.len() == polled_before && self.may_transmit() {
            actions.push(Action::Send(self.packet(false)));
        }
    }

    /// §6.8.7 and §6.1: whether periodic packets may be sent at all.
    fn may_transmit(&self) -> bool {
        if self.config.passive && self.remote_discr == 0 {
            return false;
        }
        self.remote_min_rx_us != 0
    }

    fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            // §6.5: never P and F together; the Poll continues on the next packet.
            poll: self.polling && !final_,
            final_,
            control_plane_independent: false,
            authentication_present: false,
            demand: false,
            multipoint: false,
            detect_mult: self.config.detect_mult,
            my_discriminator: self.local_discr,
            your_discriminator: self.remote_discr,
            desired_min_tx_us: self.desired_min_tx_us,
            required_min_rx_us: self.required_min_rx_us,
            required_min_echo_rx_us: self.advertised_echo_rx_us,
        }
    }

    /// §6.8.7: the interval reduced by a random 0..25 % (10..25 % when Detect Mult is
    /// 1) so that peers do not synchronise.
    fn jittered_interval(&mut self) -> Duration {
        let base = self.transmit_interval();
        let (min_pct, span) = if self.config.detect_mult == 1 {
            (75, 15)
        } else {
            (75, 25)
        };
        let pct = min_pct + (self.next_random() % (span + 1));
        base * u32::try_from(pct).unwrap_or(100) / 100
    }

    /// xorshift64: jitter needs spread, not secrecy.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

fn advertised_tx(config: &SessionConfig, state: State, echo_active: bool) -> u32 {
    let configured = duration_us(config.desired_min_tx);
    if state == State::Up && echo_active {
        configured.max(duration_us(ECHO_ACTIVE_MIN_TX))
    } else if state == State::Up {
        configured
    } else {
        configured.max(duration_us(SLOW_START_TX))
    }
}

fn duration_us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
