//! Transition tables and timer behaviour, advancing time by hand.
use super::*;
use crate::echo::{EchoInactive, EchoPath, EchoStatus};

const MS: Duration = Duration::from_millis(1);

fn config(tx_ms: u64, rx_ms: u64, mult: u8) -> SessionConfig {
    SessionConfig {
        desired_min_tx: Duration::from_millis(tx_ms),
        required_min_rx: Duration::from_millis(rx_ms),
        detect_mult: mult,
        passive: false,
        echo: None,
    }
}

fn sends(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn changes(actions: &[Action]) -> Vec<(State, State, Diag)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, diag, .. } => Some((*from, *to, *diag)),
            _ => None,
        })
        .collect()
}

fn peer_packet(state: State, your: u32) -> ControlPacket {
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
        my_discriminator: 77,
        your_discriminator: your,
        desired_min_tx_us: 100_000,
        required_min_rx_us: 100_000,
        required_min_echo_rx_us: 0,
    }
}

/// Two sessions joined by a wire that delivers at once while `link_up`.
struct Pair {
    now: Instant,
    a: Session,
    b: Session,
    link_up: bool,
    log: Vec<(Duration, char, State, State, Diag)>,
    start: Instant,
}

impl Pair {
    fn new(a: SessionConfig, b: SessionConfig) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            a: Session::new(1, a, now, 11),
            b: Session::new(2, b, now, 22),
            link_up: true,
            log: Vec::new(),
            start: now,
        }
    }

    /// Runs every timer up to `until`, delivering packets across the wire.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next = [self.a.next_deadline(), self.b.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|n| *n <= until) else {
                self.now = until;
                return;
            };
            self.now = self.now.max(next);
            let from_a = self.a.handle(self.now, Event::Timer);
            self.deliver('a', from_a);
            let from_b = self.b.handle(self.now, Event::Timer);
            self.deliver('b', from_b);
        }
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn deliver(&mut self, who: char, actions: Vec<Action>) {
        let mut queue = vec![(who, actions)];
        while let Some((who, actions)) = queue.pop() {
            for (from, to, diag) in changes(&actions) {
                self.log.push((self.now - self.start, who, from, to, diag));
            }
            if !self.link_up {
                continue;
            }
            for packet in sends(&actions) {
                let (target, name) = if who == 'a' {
                    (&mut self.b, 'b')
                } else {
                    (&mut self.a, 'a')
                };
                let reply = target.handle(self.now, Event::Received(packet));
                queue.push((name, reply));
            }
        }
    }
}

#[test]
fn three_way_handshake_brings_both_up() {
    let mut pair = Pair::new(config(100, 100, 3), config(100, 100, 3));
    pair.run_for(5 * MS);
    assert_eq!(pair.a.state(), State::Up);
    assert_eq!(pair.b.state(), State::Up);
    let a_path: Vec<_> = pair
        .log
        .iter()
        .filter(|e| e.1 == 'a')
        .map(|e| (e.2, e.3))
        .collect();
    let b_path: Vec<_> = pair
        .log
        .iter()
        .filter(|e| e.1 == 'b')
        .map(|e| (e.2, e.3))
        .collect();
    // a spoke first: b saw Down first (Down->Init), a saw Init (Down->Up).
    assert_eq!(
        b_path,
        vec![(State::Down, State::Init), (State::Init, State::Up)]
    );
    assert_eq!(a_path, vec![(State::Down, State::Up)]);
    assert_eq!(pair.a.remote_discriminator(), 2);
    assert_eq!(pair.b.remote_discriminator(), 1);
}

/// The §6.8.6 state table, one received state at a time.
#[test]
fn reception_state_table() {
    use State::*;
    let table = [
        // (local before, received, local after, diag)
        (Down, Down, Init, Diag::None),
        (Down, Init, Up, Diag::None),
        (Down, Up, Down, Diag::None),
        (Down, AdminDown, Down, Diag::None),
        (Init, Down, Init, Diag::None),
        (Init, Init, Up, Diag::None),
        (Init, Up, Up, Diag::None),
        (Init, AdminDown, Down, Diag::NeighborSignaledSessionDown),
        (Up, Down, Down, Diag::NeighborSignaledSessionDown),
        (Up, Init, Up, Diag::None),
        (Up, Up, Up, Diag::None),
        (Up, AdminDown, Down, Diag::NeighborSignaledSessionDown),
    ];
    for (before, received, after, diag) in table {
        let now = Instant::now();
        let mut s = Session::new(5, config(100, 100, 3), now, 1);
        // Walk to `before`.
        match before {
            Down => {}
            Init => {
                s.handle(now, Event::Received(peer_packet(Down, 0)));
            }
            Up => {
                s.handle(now, Event::Received(peer_packet(Init, 5)));
            }
            AdminDown => unreachable!(),
        }
        assert_eq!(s.state(), before);
        let your = if matches!(received, Down | AdminDown) {
            0
        } else {
            5
        };
        s.handle(now, Event::Received(peer_packet(received, your)));
        assert_eq!(s.state(), after, "{before:?} + {received:?}");
        assert_eq!(s.local_diag(), diag, "{before:?} + {received:?}");
    }
}

#[test]
fn slow_start_then_poll_to_profile_timers() {
    let mut pair = Pair::new(config(100, 100, 3), config(100, 100, 3));
    // Before anything is received, a's first packet advertises 1 s (§6.8.3).
    let now = pair.now;
    let first = sends(&pair.a.handle(now, Event::Timer));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].desired_min_tx_us, 1_000_000);
    assert_eq!(first[0].required_min_rx_us, 100_000);
    assert_eq!(first[0].state, State::Down);
    pair.deliver('a', vec![Action::Send(first[0])]);
    pair.run_for(2 * MS);
    // Both Up; the Poll Sequences of both sides ran to their Final at once.
    assert_eq!((pair.a.state(), pair.b.state()), (State::Up, State::Up));
    assert!(!pair.a.polling() && !pair.b.polling());
    assert_eq!(pair.a.transmit_interval(), 100 * MS);
    assert_eq!(pair.a.detection_time(), 300 * MS);
}

#[test]
fn an_up_transition_starts_a_poll_and_a_final_ends_it() {
    let now = Instant::now();
    let mut s = Session::new(5, config(100, 100, 3), now, 1);
    let actions = s.handle(now, Event::Received(peer_packet(State::Init, 5)));
    assert_eq!(s.state(), State::Up);
    let sent = sends(&actions);
    assert!(
        sent.iter()
            .any(|p| p.poll && p.desired_min_tx_us == 100_000 && p.state == State::Up)
    );
    assert!(s.polling());
    // Periodic packets keep P set until the Final.
    let later = now + 150 * MS;
    let periodic = sends(&s.handle(later, Event::Timer));
    assert!(!periodic.is_empty() && periodic.iter().all(|p| p.poll));
    let mut fin = peer_packet(State::Up, 5);
    fin.final_ = true;
    s.handle(later, Event::Received(fin));
    assert!(!s.polling());
}

#[test]
fn a_poll_is_answered_at_once_with_final_and_no_poll() {
    let now = Instant::now();
    let mut s = Session::new(5, config(100, 100, 3), now, 1);
    s.handle(now, Event::Received(peer_packet(State::Init, 5)));
    assert!(s.polling());
    let mut poll = peer_packet(State::Up, 5);
    poll.poll = true;
    let sent = sends(&s.handle(now, Event::Received(poll)));
    let finals: Vec<_> = sent.iter().filter(|p| p.final_).collect();
    assert_eq!(finals.len(), 1);
    assert!(!finals[0].poll, "§6.5: never P and F together");
}

#[test]
fn larger_tx_interval_waits_for_the_final() {
    let mut pair = Pair::new(config(100, 100, 3), config(100, 100, 3));
    pair.run_for(5 * MS);
    assert_eq!(pair.a.state(), State::Up);
    pair.link_up = false;
    let now = pair.now;
    let actions = pair.a.handle(now, Event::Configure(config(300, 100, 3)));
    assert!(
        sends(&actions)
            .iter()
            .any(|p| p.poll && p.desired_min_tx_us == 300_000)
    );
    assert_eq!(
        pair.a.transmit_interval(),
        100 * MS,
        "old interval until the Final"
    );
    let mut fin = peer_packet(State::Up, 1);
    fin.final_ = true;
    pair.a.handle(now, Event::Received(fin));
    assert_eq!(pair.a.transmit_interval(), 300 * MS);
}

#[test]
fn smaller_rx_interval_keeps_the_old_detection_time_until_the_final() {
    let now = Instant::now();
    let mut s = Session::new(5, config(100, 300, 3), now, 1);
    let mut init = peer_packet(State::Init, 5);
    init.desired_min_tx_us = 50_000;
    s.handle(now, Event::Received(init));
    let mut fin = peer_packet(State::Up, 5);
    fin.desired_min_tx_us = 50_000;
    fin.final_ = true;
    s.handle(now, Event::Received(fin));
    assert_eq!(s.detection_time(), 900 * MS);
    s.handle(now, Event::Configure(config(100, 100, 3)));
    assert_eq!(s.detection_time(), 900 * MS);
    s.handle(now, Event::Received(fin));
    assert_eq!(s.detection_time(), 300 * MS);
}

#[test]
fn detection_time_expiry_takes_the_session_down() {
    let mut pair = Pair::new(config(100, 100, 3), config(100, 100, 3));
    pair.run_for(Duration::from_secs(2));
    assert_eq!(pair.a.state(), State::Up);
    pair.link_up = false;
    let cut = pair.now;
    // Last packet from b arrived at most one (jittered) interval before the cut, so a
    // stays Up for at least 300 - 100 ms and goes Down by 300 ms after the cut.
    pair.run_until(cut + 199 * MS);
    assert_eq!(pair.a.state(), State::Up);
    pair.run_until(cut + 300 * MS);
    assert_eq!(pair.a.state(), State::Down);
    assert_eq!(pair.b.state(), State::Down);
    assert_eq!(pair.a.local_diag(), Diag::ControlDetectionTimeExpired);
    assert_eq!(
        pair.a.remote_discriminator(),
        0,
        "§6.8.1: RemoteDiscr zeroed"
    );
    // Back on: up again (slow start, so within a few seconds).
    pair.link_up = true;
    pair.run_for(Duration::from_secs(3));
    assert_eq!((pair.a.state(), pair.b.state()), (State::Up, State::Up));
}

#[test]
fn transmit_jitter_is_0_to_25_percent() {
    let mut pair = Pair::new(config(100, 100, 3), config(100, 100, 3));
    pair.run_for(Duration::from_secs(1));
    pair.link_up = false;
    let mut last = None;
    let mut gaps = Vec::new();
    let mut now = pair.now;
    // Drive a alone for 10 s, feeding it b's keepalives so it stays Up.
    let mut keepalive = peer_packet(State::Up, 1);
    keepalive.my_discriminator = 2;
    let end = now + Duration::from_secs(10);
    while let Some(next) = pair.a.next_deadline().filter(|n| *n <= end) {
        now = next;
        if !sends(&pair.a.handle(now, Event::Timer)).is_empty() {
            if let Some(prev) = last {
                gaps.push(now - prev);
            }
            last = Some(now);
        }
        pair.a.handle(now, Event::Received(keepalive));
        assert_eq!(pair.a.state(), State::Up);
    }
    assert!(!gaps.is_empty());
    for gap in gaps {
        assert!(gap >= 75 * MS && gap <= 100 * MS, "{gap:?}");
    }
    let now = Instant::now();
    let mut one = Session::new(9, config(100, 100, 1), now, 3);
    for _ in 0..200 {
        let d = one.jittered_interval();
        assert!(
            d >= Duration::from_millis(750) && d <= Duration::from_millis(900),
            "{d:?}"
        );
    }
}

#[test]
fn passive_session_waits_for_the_peer() {
    let now = Instant::now();
    let mut passive = config(100, 100, 3);
    passive.passive = true;
    let mut s = Session::new(5, passive, now, 1);
    assert_eq!(s.next_deadline(), None);
    assert!(sends(&s.handle(now + Duration::from_secs(10), Event::Timer)).is_empty());
    let reply = s.handle(now, Event::Received(peer_packet(State::Down, 0)));
    assert_eq!(s.state(), State::Init);
    assert!(
        sends(&reply)
            .iter()
            .any(|p| p.your_discriminator == 77 && p.state == State::Init)
    );
}

#[test]
fn remote_min_rx_is_honoured() {
    let now = Instant::now();
    let mut s = Session::new(5, config(100, 100, 3), now, 1);
    let mut init = peer_packet(State::Init, 5);
    init.required_min_rx_us = 500_000;
    s.handle(now, Event::Received(init));
    assert_eq!(s.transmit_interval(), 500 * MS);
    // Required Min RX 0: the peer wants no periodic packets (§6.8.7).
    init.required_min_rx_us = 0;
    s.handle(now, Event::Received(init));
    assert!(sends(&s.handle(now + Duration::from_secs(5), Event::Timer)).is_empty());
}

#[test]
fn packet_for_another_discriminator_is_dropped() {
    let now = Instant::now();
    let mut s = Session::new(5, config(100, 100, 3), now, 1);
    let actions = s.handle(now, Event::Received(peer_packet(State::Up, 6)));
    assert_eq!(actions, vec![Action::Dropped(DropReason::NoSession)]);
    assert_eq!(s.remote_discriminator(), 0);
}

#[test]
fn admin_down_is_signalled_and_drops_input() {
    let mut pair = Pair::new(config(100, 100, 3), config(100, 100, 3));
    pair.run_for(5 * MS);
    let now = pair.now;
    let actions = pair.a.handle(now, Event::AdminDown);
    assert_eq!(
        changes(&actions),
        vec![(State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    pair.deliver('a', actions);
    assert_eq!(pair.b.state(), State::Down);
    assert_eq!(pair.b.local_diag(), Diag::NeighborSignaledSessionDown);
    let dropped = pair
        .a
        .handle(now, Event::Received(peer_packet(State::Down, 1)));
    assert_eq!(dropped, vec![Action::Dropped(DropReason::AdminDown)]);
    let actions = pair.a.handle(now, Event::AdminUp);
    pair.deliver('a', actions);
    pair.run_for(Duration::from_secs(3));
    assert_eq!((pair.a.state(), pair.b.state()), (State::Up, State::Up));
}

/// Random event sequences (a deterministic xorshift drives them): no panic, and the
/// packets and timers keep the invariants of RFC 5880 whatever the peer sends.
#[test]
fn random_event_sequences_keep_the_invariants() {
    for seed in 1..=20u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let start = Instant::now();
        let mut now = start;
        let mut cfg = config(100, 100, 3);
        let mut s = Session::new(42, cfg, now, seed);
        let intervals = [0u32, 1, 10_000, 100_000, 1_000_000, u32::MAX];
        for _ in 0..3000 {
            let event = match next() % 20 {
                0 => Event::AdminDown,
                1 => Event::AdminUp,
                2 => {
                    cfg = SessionConfig {
                        desired_min_tx: Duration::from_millis(10 + next() % 2000),
                        required_min_rx: Duration::from_millis(10 + next() % 2000),
                        detect_mult: 1 + (next() % 255) as u8,
                        passive: next() % 2 == 0,
                        echo: None,
                    };
                    Event::Configure(cfg)
                }
                3..=10 => {
                    let state = [State::AdminDown, State::Down, State::Init, State::Up]
                        [(next() % 4) as usize];
                    Event::Received(ControlPacket {
                        diag: Diag::None,
                        state,
                        poll: next() % 3 == 0,
                        final_: next() % 3 == 0,
                        control_plane_independent: false,
                        authentication_present: false,
                        demand: false,
                        multipoint: false,
                        detect_mult: 1 + (next() % 255) as u8,
                        my_discriminator: 1 + (next() % 3) as u32,
                        your_discriminator: [0, 42, 43][(next() % 3) as usize],
                        desired_min_tx_us: intervals[(next() % 6) as usize],
                        required_min_rx_us: intervals[(next() % 6) as usize],
                        required_min_echo_rx_us: 0,
                    })
                }
                _ => {
                    now += Duration::from_millis(next() % 400);
                    Event::Timer
                }
            };
            let actions = s.handle(now, event);
            for packet in sends(&actions) {
                assert!(!(packet.poll && packet.final_), "§6.5: P and F together");
                assert_eq!(packet.my_discriminator, 42);
                assert_eq!(packet.detect_mult, cfg.detect_mult);
                assert_eq!(packet.required_min_echo_rx_us, 0);
                if packet.state != State::Up {
                    assert!(packet.desired_min_tx_us >= 1_000_000, "§6.8.3 slow start");
                }
                // Encodes to something our own decoder accepts or drops with a reason.
                let _ = ControlPacket::decode(&packet.encode());
            }
            if event == Event::Timer {
                // Every due timer was consumed: no busy loop in the shell.
                assert!(s.next_deadline().is_none_or(|d| d > now), "seed {seed}");
            }
            if s.config().passive && s.remote_discriminator() == 0 && event == Event::Timer {
                assert!(sends(&actions).is_empty(), "§6.1 passive role");
            }
        }
    }
}

fn causes(actions: &[Action]) -> Vec<Option<DownCause>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { cause, .. } => Some(*cause),
            _ => None,
        })
        .collect()
}

/// A session brought Up by a peer's packets (local discriminator 1, the peer's 77).
fn up_session(now: Instant) -> Session {
    let mut session = Session::new(1, config(100, 100, 3), now, 11);
    session.handle(now, Event::Received(peer_packet(State::Down, 0)));
    session.handle(now, Event::Received(peer_packet(State::Up, 1)));
    assert_eq!(session.state(), State::Up);
    session
}

/// Why the session went Down decides whether BGP is told the path failed: only a
/// detection here, or a neighbour whose diagnostic names a failed path (RFC 5880 §4.1),
/// is one; a neighbour's AdminDown (RFC 5882 §3.2) or a Down with any other diagnostic
/// (FRR 8.4's old session says "neighbor signaled session down" when it replaces it)
/// is not.
#[test]
fn the_down_cause_tells_a_failed_path_from_a_reset() {
    let now = Instant::now();
    let neighbour_down = |diag: Diag| {
        let mut session = up_session(now);
        let mut packet = peer_packet(State::Down, 1);
        packet.diag = diag;
        causes(&session.handle(now, Event::Received(packet)))
    };
    for diag in [
        Diag::ControlDetectionTimeExpired,
        Diag::EchoFunctionFailed,
        Diag::ForwardingPlaneReset,
        Diag::PathDown,
        Diag::ConcatenatedPathDown,
        Diag::ReverseConcatenatedPathDown,
    ] {
        assert_eq!(
            neighbour_down(diag),
            vec![Some(DownCause::NeighborDetectedFailure)],
            "{diag:?}"
        );
    }
    for diag in [
        Diag::None,
        Diag::NeighborSignaledSessionDown,
        Diag::AdministrativelyDown,
        Diag::Reserved(20),
    ] {
        assert_eq!(
            neighbour_down(diag),
            vec![Some(DownCause::NeighborReset)],
            "{diag:?}"
        );
    }

    let mut session = up_session(now);
    let actions = session.handle(now, Event::Received(peer_packet(State::AdminDown, 1)));
    assert_eq!(causes(&actions), vec![Some(DownCause::NeighborAdminDown)]);

    let mut session = up_session(now);
    let later = now + Duration::from_secs(5);
    assert_eq!(
        causes(&session.handle(later, Event::Timer)),
        vec![Some(DownCause::DetectionTimeExpired)]
    );

    let mut session = up_session(now);
    assert_eq!(
        causes(&session.handle(now, Event::AdminDown)),
        vec![Some(DownCause::LocalAdminDown)]
    );
    // Coming back Up carries no cause.
    let mut session = up_session(now);
    session.handle(now, Event::Received(peer_packet(State::Down, 1)));
    let actions = session.handle(now, Event::Received(peer_packet(State::Init, 1)));
    assert_eq!(causes(&actions), vec![None]);

    let paths: Vec<bool> = [
        DownCause::DetectionTimeExpired,
        DownCause::NeighborDetectedFailure,
        DownCause::NeighborReset,
        DownCause::NeighborAdminDown,
        DownCause::LocalAdminDown,
    ]
    .iter()
    .map(|c| c.is_path_failure())
    .collect();
    assert_eq!(paths, vec![true, true, false, false, false]);
}

// ---- The Echo function (RFC 5880 §6.4, §6.8.5, §6.8.9) ----

fn echo_config(echo_ms: u64) -> SessionConfig {
    SessionConfig {
        echo: Some(Duration::from_millis(echo_ms)),
        ..config(100, 100, 3)
    }
}

/// A peer packet in `state` that advertises `echo_rx_ms` as Required Min Echo RX.
fn echo_peer_packet(state: State, echo_rx_ms: u32) -> ControlPacket {
    ControlPacket {
        required_min_echo_rx_us: echo_rx_ms * 1000,
        ..peer_packet(state, 1)
    }
}

fn echo_sends(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::SendEcho(_)))
        .count()
}

/// An echo session brought Up, with a path, the peer looping at `peer_echo_ms`.
fn echo_up(now: Instant, echo_ms: u64, peer_echo_ms: u32) -> Session {
    let mut s = Session::new(1, echo_config(echo_ms), now, 5);
    s.handle(now, Event::Received(peer_packet(State::Down, 0)));
    s.handle(
        now,
        Event::EchoPath(Some(EchoPath {
            loops_peer_echoes: false,
        })),
    );
    let actions = s.handle(
        now,
        Event::Received(echo_peer_packet(State::Up, peer_echo_ms)),
    );
    assert_eq!(s.state(), State::Up);
    assert_eq!(
        echo_sends(&actions),
        1,
        "the first Echo packet goes at once"
    );
    s
}

#[test]
fn echo_runs_only_while_up_with_a_peer_that_loops_and_a_path() {
    let now = Instant::now();
    // No path: inactive, no echo.
    let mut s = Session::new(1, echo_config(50), now, 5);
    assert_eq!(
        s.echo_status(),
        EchoStatus::Inactive(EchoInactive::SessionNotUp)
    );
    s.handle(now, Event::Received(echo_peer_packet(State::Down, 50)));
    let actions = s.handle(now, Event::Received(echo_peer_packet(State::Up, 50)));
    assert_eq!(s.state(), State::Up);
    assert_eq!(echo_sends(&actions), 0);
    assert_eq!(
        s.echo_status(),
        EchoStatus::Inactive(EchoInactive::NoLinkLayerPath)
    );
    // Peer advertises 0: §6.8.9 MUST NOT send.
    let mut s = echo_up(now, 50, 50);
    let actions = s.handle(now, Event::Received(echo_peer_packet(State::Up, 0)));
    assert_eq!(echo_sends(&actions), 0);
    assert_eq!(
        s.echo_status(),
        EchoStatus::Inactive(EchoInactive::PeerDoesNotLoop)
    );
    let later = now + 200 * MS;
    assert_eq!(echo_sends(&s.handle(later, Event::Timer)), 0);
    assert_eq!(s.state(), State::Up, "no echo expected, none missed");
    // A profile without echo never sends one.
    let mut s = up_session(now);
    assert_eq!(s.echo_status(), EchoStatus::Disabled);
    assert_eq!(echo_sends(&s.handle(later, Event::Timer)), 0);
}

#[test]
fn echo_interval_is_the_larger_of_ours_and_the_peers() {
    let now = Instant::now();
    let s = echo_up(now, 50, 200);
    assert_eq!(s.echo_interval(), Some(200 * MS));
    assert_eq!(s.echo_detection_time(), Some(600 * MS));
    let s = echo_up(now, 300, 20);
    assert_eq!(s.echo_interval(), Some(300 * MS));
    assert_eq!(
        s.echo_status(),
        EchoStatus::Active {
            interval: 300 * MS,
            detection_time: 900 * MS
        }
    );
}

#[test]
fn echo_packets_keep_the_session_up_and_their_loss_takes_it_down_with_diag_2() {
    let start = Instant::now();
    let mut s = echo_up(start, 50, 50);
    let mut now = start;
    let mut sent_at = Vec::new();
    // Echoes come back, Control packets keep arriving: Up for 2 s.
    while now < start + Duration::from_secs(2) {
        now += 10 * MS;
        if echo_sends(&s.handle(now, Event::Timer)) > 0 {
            sent_at.push(now);
            s.handle(now, Event::EchoReceived);
        }
        if (now - start).as_millis().is_multiple_of(100) {
            s.handle(now, Event::Received(echo_peer_packet(State::Up, 50)));
        }
    }
    assert_eq!(s.state(), State::Up);
    // §6.8.9: never faster than max(ours, peer's) = 50 ms.
    for pair in sent_at.windows(2) {
        assert!(pair[1] - pair[0] >= 50 * MS);
    }
    assert!(sent_at.len() >= 35, "{}", sent_at.len());
    // Echoes stop coming back; Control packets still flow.
    let broken = now;
    let mut down = None;
    while down.is_none() && now < broken + Duration::from_secs(2) {
        now += 10 * MS;
        let actions = s.handle(now, Event::Timer);
        if let Some((_, to, diag)) = changes(&actions).first() {
            down = Some((now, *to, *diag, causes(&actions)));
        }
        s.handle(now, Event::Received(echo_peer_packet(State::Up, 50)));
    }
    let (at, to, diag, cause) = down.unwrap();
    assert_eq!((to, diag), (State::Down, Diag::EchoFunctionFailed));
    assert_eq!(cause, vec![Some(DownCause::EchoFailed)]);
    assert!(DownCause::EchoFailed.is_path_failure());
    // Last echo back at most one interval before the break; detection = 150 ms.
    let elapsed = at - broken;
    assert!(elapsed <= 150 * MS, "{elapsed:?}");
    assert!(elapsed >= 100 * MS, "{elapsed:?}");
}

#[test]
fn control_packets_slow_to_one_second_while_echo_is_active() {
    let now = Instant::now();
    let mut s = echo_up(now, 50, 50);
    // §6.8.3 SHOULD: DesiredMinTx >= 1 s while Echo is active, via a Poll Sequence.
    let actions = s.handle(now, Event::Timer);
    let _ = actions;
    let p = s.packet(false);
    assert_eq!(p.desired_min_tx_us, 1_000_000);
    assert!(s.polling());
    // Echo stops (the peer no longer loops): back to the profile's 100 ms.
    s.handle(now, Event::Received(echo_peer_packet(State::Up, 0)));
    assert_eq!(s.packet(false).desired_min_tx_us, 100_000);
}

#[test]
fn required_min_echo_rx_is_advertised_only_when_this_host_loops() {
    let now = Instant::now();
    let s = echo_up(now, 50, 50);
    assert_eq!(s.packet(false).required_min_echo_rx_us, 0);
    let mut s = s;
    s.handle(
        now,
        Event::EchoPath(Some(EchoPath {
            loops_peer_echoes: true,
        })),
    );
    assert_eq!(s.packet(false).required_min_echo_rx_us, 50_000);
    // Without echoMode never, whatever the host does.
    let mut s = up_session(now);
    s.handle(
        now,
        Event::EchoPath(Some(EchoPath {
            loops_peer_echoes: true,
        })),
    );
    assert_eq!(s.packet(false).required_min_echo_rx_us, 0);
}

proptest::proptest! {
    /// Any sequence of events: Echo packets only while Up with a path and a peer that
    /// loops, never faster than the peer allows, and a Down for a missed echo always
    /// carries diagnostic 2.
    #[test]
    fn echo_invariants_hold_for_any_event_sequence(
        steps in proptest::collection::vec((0u8..8, 0u32..400, 0u32..300), 1..300)
    ) {
        let start = Instant::now();
        let mut now = start;
        let mut s = Session::new(1, echo_config(50), now, 9);
        let mut last_echo: Option<Instant> = None;
        for (kind, a, b) in steps {
            let event = match kind {
                0 => Event::Received(echo_peer_packet(State::Down, b)),
                1 => Event::Received(echo_peer_packet(State::Init, b)),
                2 | 3 => Event::Received(echo_peer_packet(State::Up, b)),
                4 => Event::EchoReceived,
                5 => Event::EchoPath(if a % 3 == 0 { None } else {
                    Some(EchoPath { loops_peer_echoes: a % 2 == 0 })
                }),
                _ => {
                    now += Duration::from_millis(u64::from(a));
                    Event::Timer
                }
            };
            let floor = s.echo_interval();
            let actions = s.handle(now, event);
            if echo_sends(&actions) > 0 {
                proptest::prop_assert_eq!(s.state(), State::Up);
                if let (Some(prev), Some(floor)) = (last_echo, floor) {
                    proptest::prop_assert!(now - prev >= floor.min(Duration::from_millis(50)));
                }
                last_echo = Some(now);
            }
            for (_, to, diag) in changes(&actions) {
                if causes(&actions).contains(&Some(DownCause::EchoFailed)) {
                    proptest::prop_assert_eq!((to, diag), (State::Down, Diag::EchoFunctionFailed));
                }
            }
            for p in sends(&actions) {
                if p.required_min_echo_rx_us != 0 {
                    proptest::prop_assert_eq!(p.required_min_echo_rx_us, 50_000);
                }
            }
            if event == Event::Timer {
                proptest::prop_assert!(s.next_deadline().is_none_or(|d| d > now));
            }
        }
    }
}
