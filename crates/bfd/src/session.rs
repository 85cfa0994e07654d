//! One BFD session in Asynchronous mode (RFC 5880 §6.8), sans I/O: the shell feeds it
//! decoded packets and the current time, and carries out the [`Action`]s it returns.
//! Time is an input, so tests advance it by hand.
//!
//! Not implemented (and never advertised): Demand mode (we never set D; a peer in
//! Demand mode is not supported), the Echo function (Required Min Echo RX is always 0),
//! authentication (packets with the A bit are dropped before they get here).

use std::time::{Duration, Instant};

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
}

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
}

impl DownCause {
    /// Whether the client protocol should treat this as a failed path.
    pub fn is_path_failure(self) -> bool {
        matches!(
            self,
            DownCause::DetectionTimeExpired | DownCause::NeighborDetectedFailure
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
    next_tx: Option<Instant>,
    detect_deadline: Option<Instant>,
    rng: u64,
}

impl Session {
    /// A new session in Down (§6.8.1 initial values). `local_discr` must be non-zero and
    /// unique on this system; `seed` feeds the transmit jitter.
    pub fn new(local_discr: u32, config: SessionConfig, now: Instant, seed: u64) -> Session {
        let desired = advertised_tx(&config, State::Down);
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
            next_tx: None,
            detect_deadline: None,
            rng: seed | 1,
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
        match (self.next_tx, self.detect_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
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
        }
        actions
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
        let desired = advertised_tx(&self.config, self.state);
        let required = duration_us(self.config.required_min_rx);
        let changed = desired != self.desired_min_tx_us || required != self.required_min_rx_us;
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
            required_min_echo_rx_us: 0,
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

fn advertised_tx(config: &SessionConfig, state: State) -> u32 {
    let configured = duration_us(config.desired_min_tx);
    if state == State::Up {
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
