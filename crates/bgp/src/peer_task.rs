//! The tokio side of one peer: runs its [`Session`], opens and accepts TCP connections,
//! frames bytes, sleeps until the session's next deadline and carries out its actions.

use crate::link_addresses::LinkAddresses;
use crate::packet::{self, Capability, Context, Message};
use crate::rib::Routes;
use crate::session::{Action, ConnId, ConnectError, Input, Session, SetupStep, State, Stop};
use crate::settings::{PeerAsn, PeerSettings};
use crate::sockopt;
use crate::speaker::{EventSink, PeerStatus};
use crate::unnumbered::LinkState;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) enum PeerCommand {
    Routes(Routes),
    Inbound(TcpStream),
    Reset(String),
    /// Ask the peer to confirm what was sent (RFC 7313; [`Input::Confirm`]).
    Confirm,
    Stop(Stop, oneshot::Sender<()>),
}

enum Event {
    Outbound(Result<TcpStream, ConnectError>),
    Message(ConnId, Message),
    DecodeError(ConnId, packet::DecodeError),
    Closed(ConnId, Option<String>),
}

enum Write {
    Bytes(Vec<u8>),
    Close,
}

struct Conn {
    writer: mpsc::UnboundedSender<Write>,
    reader: tokio::task::JoinHandle<()>,
    done: tokio::task::JoinHandle<()>,
}

/// eBGP without multihop: TTL 1 (directly connected); otherwise 255.
pub(crate) fn ttl(s: &PeerSettings) -> u8 {
    let ibgp = match s.peer_asn {
        PeerAsn::Fixed(asn) => asn == s.local_asn,
        PeerAsn::DynamicInternal => true,
        PeerAsn::DynamicExternal => false,
    };
    if ibgp || s.ebgp_multihop { 255 } else { 1 }
}

pub(crate) async fn run(
    settings: PeerSettings,
    mut commands: mpsc::UnboundedReceiver<PeerCommand>,
    status: Arc<Mutex<PeerStatus>>,
    events: EventSink,
) {
    let name = settings.name.clone();
    let mut session = Session::new(settings.clone());
    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<Event>();
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut next_id: ConnId = 1;
    let mut stop_ack: Option<oneshot::Sender<()>> = None;
    // Writers of connections closed by the session, still flushing (a NOTIFICATION).
    let mut closing: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    // Found when a connection attaches, handed to the session once it knows the conn.
    let mut link_local: Option<(ConnId, LinkAddresses)> = None;
    let mut last_reported: (State, Option<String>, Option<Instant>) = (State::Idle, None, None);
    // Unnumbered: our Router Advertisements go out and the router's come in for as long
    // as the peer exists (the task ends with the last receiver).
    let link = settings
        .interface
        .clone()
        .map(crate::unnumbered::link::spawn);
    // Watched here so a session on an interface that goes away (or down) is reset at
    // once rather than when its hold timer expires.
    let mut link_watch = link.clone();
    let mut actions = session.handle(Instant::now(), Input::Start);
    loop {
        for action in actions.drain(..) {
            match action {
                Action::Connect => {
                    let tx = event_tx.clone();
                    let s = settings.clone();
                    let link = link.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(Event::Outbound(connect(&s, link).await));
                    });
                }
                Action::Send { conn, bytes } => {
                    if let Some(c) = conns.get(&conn) {
                        let _ = c.writer.send(Write::Bytes(bytes));
                    }
                }
                Action::Report(report) => {
                    if let Some(sink) = &events {
                        sink(&name, &report.to_string());
                    }
                }
                Action::Close { conn } => {
                    if let Some(c) = conns.remove(&conn) {
                        c.reader.abort();
                        let _ = c.writer.send(Write::Close);
                        // The writer flushes, shuts down and ends by itself; a stop
                        // waits for it (below), so the NOTIFICATION is written before
                        // the process exits.
                        closing.retain(|d: &tokio::task::JoinHandle<()>| !d.is_finished());
                        closing.push(c.done);
                    }
                }
            }
        }
        publish(&session, &status, &events, &name, &mut last_reported);
        if let Some(ack) = stop_ack.take() {
            // Give the writers a moment to flush the NOTIFICATION before we go.
            for (_, c) in conns.drain() {
                let _ = c.writer.send(Write::Close);
                c.reader.abort();
                let _ = tokio::time::timeout(Duration::from_secs(2), c.done).await;
            }
            for done in closing.drain(..) {
                let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
            }
            let _ = ack.send(());
            return;
        }
        let deadline = session.next_deadline();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let now_input = tokio::select! {
            command = commands.recv() => match command {
                Some(PeerCommand::Routes(routes)) => Input::Routes(routes),
                Some(PeerCommand::Inbound(stream)) => {
                    let id = next_id;
                    next_id += 1;
                    match attach(id, stream, &settings, &event_tx, &status) {
                        Some((conn, local)) => {
                            conns.insert(id, conn);
                            link_local = Some((id, link_local_toward(local.ip(), &settings)));
                            Input::Connected { conn: id, outbound: false, local }
                        }
                        None => Input::Tick,
                    }
                }
                Some(PeerCommand::Reset(reason)) => Input::Stop(Stop::Reset { reason }),
                Some(PeerCommand::Confirm) => Input::Confirm,
                Some(PeerCommand::Stop(stop, ack)) => {
                    stop_ack = Some(ack);
                    Input::Stop(stop)
                }
                None => {
                    stop_ack = Some(oneshot::channel().0);
                    Input::Stop(Stop::Deconfigured)
                }
            },
            event = event_rx.recv() => match event {
                Some(Event::Outbound(Ok(stream))) => {
                    let id = next_id;
                    next_id += 1;
                    match attach(id, stream, &settings, &event_tx, &status) {
                        Some((conn, local)) => {
                            conns.insert(id, conn);
                            link_local = Some((id, link_local_toward(local.ip(), &settings)));
                            Input::Connected { conn: id, outbound: true, local }
                        }
                        None => Input::ConnectFailed { error: ConnectError::ClosedAtOnce },
                    }
                }
                Some(Event::Outbound(Err(error))) => Input::ConnectFailed { error },
                Some(Event::Message(conn, message)) => Input::Message { conn, message },
                Some(Event::DecodeError(conn, error)) => Input::DecodeError { conn, error },
                Some(Event::Closed(conn, error)) => {
                    conns.remove(&conn);
                    Input::Closed { conn, error }
                }
                None => Input::Tick,
            },
            changed = link_changed(&mut link_watch) => match changed {
                Some(problem) if session.state() != State::Idle
                    && session.state() != State::Connect
                    && session.state() != State::Active =>
                {
                    Input::Stop(Stop::Reset { reason: problem })
                }
                _ => Input::Tick,
            },
            _ = sleep => Input::Tick,
        };
        actions = session.handle(Instant::now(), now_input);
        if let Some((id, address)) = link_local.take() {
            session.set_link_addresses(id, address);
        }
    }
}

/// Waits for the unnumbered link to change (forever without one); the problem when it
/// can no longer carry the session (interface gone, no link-local address).
async fn link_changed(link: &mut Option<watch::Receiver<LinkState>>) -> Option<String> {
    let Some(watch) = link.as_mut() else {
        return std::future::pending().await;
    };
    if watch.changed().await.is_err() {
        *link = None;
        return None;
    }
    let state = watch.borrow_and_update().clone();
    match state {
        LinkState::NoInterface { .. } | LinkState::NoLinkLocal { .. } => state.problem(),
        _ => None,
    }
}

fn publish(
    session: &Session,
    status: &Mutex<PeerStatus>,
    events: &EventSink,
    name: &str,
    last: &mut (State, Option<String>, Option<Instant>),
) {
    let state = session.state();
    let now = (Instant::now(), SystemTime::now());
    if let Ok(mut s) = status.lock() {
        s.state = state;
        // Converted to wall time once per session, so it is stable for comparisons.
        if session.counters.established_at != last.2 {
            s.established_since = session
                .counters
                .established_at
                .and_then(|at| now.1.checked_sub(now.0.saturating_duration_since(at)));
        }
        s.prefixes_announced = session.prefixes_announced();
        s.prefixes_pending = session.prefixes_pending();
        s.updates_sent = session.counters.updates_sent;
        s.messages = session.counters.messages.clone();
        s.last_error = session.last_error.clone();
        s.withheld = session.withheld;
        s.enhanced_route_refresh = session.enhanced_route_refresh();
        s.confirm_requested = session.confirm_requested();
        s.confirmed = session.confirmed_through();
    }
    if let Some(sink) = events {
        if session.last_error != last.1
            && let Some(error) = &session.last_error
        {
            sink(name, error);
        }
        if state != last.0 && (state == State::Established || last.0 == State::Established) {
            sink(name, &format!("session {}", state.name()));
        }
    }
    *last = (
        state,
        session.last_error.clone(),
        session.counters.established_at,
    );
}

/// How long an outbound attempt to an unnumbered peer waits for its router to show up.
const LINK_WAIT: Duration = Duration::from_secs(3);

/// Where an outbound connection goes: the configured address, or for an unnumbered
/// peer the router's link-local address on its interface, waited for (up to the connect
/// limit) until its Router Advertisement arrives.
async fn remote(
    s: &PeerSettings,
    link: Option<watch::Receiver<LinkState>>,
    limit: Duration,
) -> Result<SocketAddr, ConnectError> {
    let Some(mut link) = link else {
        return Ok(SocketAddr::new(s.peer_address, s.peer_port));
    };
    // Not the whole connect limit: a missing interface is reported within seconds
    // (and the attempt retried with the session's backoff).
    let wait = limit.min(LINK_WAIT);
    let found = match tokio::time::timeout(wait, link.wait_for(|s| s.router().is_some())).await {
        Ok(Ok(state)) => state.router(),
        _ => None,
    };
    if let Some((address, index)) = found {
        return Ok(SocketAddr::V6(SocketAddrV6::new(
            address,
            s.peer_port,
            0,
            index,
        )));
    }
    let state = link.borrow().clone();
    Err(ConnectError::NoLinkPeer(state.problem().unwrap_or_else(
        || "no router found on the link yet".to_string(),
    )))
}

async fn connect(
    s: &PeerSettings,
    link: Option<watch::Receiver<LinkState>>,
) -> Result<TcpStream, ConnectError> {
    let setup = |step| {
        move |e: std::io::Error| ConnectError::Setup {
            step,
            error: e.to_string(),
        }
    };
    let limit = s
        .connect_retry_time
        .clamp(Duration::from_secs(1), Duration::from_secs(30));
    let remote = remote(s, link, limit).await?;
    let socket = match remote {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(setup(SetupStep::Socket))?;
    let v6 = remote.is_ipv6();
    // Inside a VRF: bound to its device before anything else, so the source address
    // and the route to the peer come from the VRF (never the default VRF instead).
    let vrf = match &s.vrf {
        Some(name) => {
            let index = crate::vrf::resolve(name).map_err(|e| ConnectError::Setup {
                step: SetupStep::Vrf,
                error: e.to_string(),
            })?;
            crate::vrf::bind_to_device(socket.as_raw_fd(), name).map_err(|e| {
                ConnectError::Setup {
                    step: SetupStep::Vrf,
                    error: format!("cannot bind the socket to VRF {name}: {e}"),
                }
            })?;
            Some(index)
        }
        None => None,
    };
    if let Some(source) = s.source_address {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(setup(SetupStep::SourceAddress(source)))?;
    }
    if let Some(password) = &s.password {
        sockopt::set_md5(
            socket.as_raw_fd(),
            v6,
            remote.ip(),
            password.as_bytes(),
            vrf,
        )
        .map_err(setup(SetupStep::Md5))?;
    }
    sockopt::set_ttl(socket.as_raw_fd(), v6, ttl(s)).map_err(setup(SetupStep::Ttl))?;
    match tokio::time::timeout(limit, socket.connect(remote)).await {
        Ok(Ok(stream)) => Ok(stream),
        // No route inside the VRF: the VRF exists but does not hold the way to the
        // peer; say so with the VRF's interfaces rather than the bare errno.
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable
            ) && s.vrf.is_some() =>
        {
            let name = s.vrf.as_deref().unwrap_or_default();
            Err(ConnectError::Setup {
                step: SetupStep::Vrf,
                error: crate::vrf::unreachable_in(
                    name,
                    remote.ip(),
                    &crate::vrf::members(name),
                    &e.to_string(),
                ),
            })
        }
        Ok(Err(e)) => Err(ConnectError::from_io(&e)),
        Err(_) => Err(ConnectError::Timeout {
            secs: limit.as_secs(),
        }),
    }
}

/// Splits the stream into a framing reader and a writer task.
fn attach(
    id: ConnId,
    stream: TcpStream,
    settings: &PeerSettings,
    events: &mpsc::UnboundedSender<Event>,
    status: &Mutex<PeerStatus>,
) -> Option<(Conn, SocketAddr)> {
    let local = stream.local_addr().ok()?;
    // An unnumbered peer's address is only known once connected: show it.
    if settings.interface.is_some()
        && let Ok(remote) = stream.peer_addr()
        && let Ok(mut status) = status.lock()
    {
        status.address = remote.ip();
    }
    let _ = stream.set_nodelay(true);
    let _ = sockopt::set_ttl(stream.as_raw_fd(), local.is_ipv6(), ttl(settings));
    let local = SocketAddr::new(unmap(local.ip()), local.port());
    let (read, write) = stream.into_split();
    let (writer, rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_loop(id, read, events.clone()));
    let done = tokio::spawn(write_loop(id, write, rx, events.clone()));
    Some((
        Conn {
            writer,
            reader,
            done,
        },
        local,
    ))
}

/// Our addresses on the link toward the peer: over IPv6 the link-local one when on a
/// shared subnet (RFC 2545 §3); over IPv4, for IPv6 routes, the global IPv6 address of
/// the interface toward the peer and its link-local one (only looked up when the session
/// may carry IPv6).
fn link_local_toward(local: IpAddr, settings: &PeerSettings) -> LinkAddresses {
    match (local, settings.peer_address) {
        (IpAddr::V6(local), IpAddr::V6(peer)) => LinkAddresses {
            global: None,
            link_local: crate::link_local::lookup(local, peer),
        },
        (IpAddr::V4(_), IpAddr::V4(peer)) if settings.ipv6 => {
            crate::link_addresses::lookup_for_ipv4_peer(peer)
        }
        _ => LinkAddresses::default(),
    }
}

pub(crate) fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

async fn read_loop(id: ConnId, mut read: OwnedReadHalf, events: mpsc::UnboundedSender<Event>) {
    let mut buf: Vec<u8> = Vec::with_capacity(packet::MAX_MESSAGE_LEN * 2);
    let mut chunk = vec![0u8; 64 * 1024];
    // We always offer 4-octet AS, so the peer's OPEN alone decides (RFC 6793 §4).
    let mut ctx = Context {
        four_octet_as: false,
    };
    loop {
        let n = match read.read(&mut chunk).await {
            Ok(0) => {
                let _ = events.send(Event::Closed(id, None));
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = events.send(Event::Closed(id, Some(e.to_string())));
                return;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut used_total = 0;
        loop {
            match packet::decode(&buf[used_total..], ctx) {
                Ok(Some((message, used))) => {
                    used_total += used;
                    if let Message::Open(open) = &message {
                        ctx.four_octet_as = open.has(|c| matches!(c, Capability::FourOctetAs(_)));
                    }
                    if events.send(Event::Message(id, message)).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    let _ = events.send(Event::DecodeError(id, error));
                    return;
                }
            }
        }
        buf.drain(..used_total);
    }
}

async fn write_loop(
    id: ConnId,
    mut write: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Write>,
    events: mpsc::UnboundedSender<Event>,
) {
    while let Some(item) = rx.recv().await {
        match item {
            Write::Bytes(bytes) => {
                if let Err(e) = write.write_all(&bytes).await {
                    let _ = events.send(Event::Closed(id, Some(e.to_string())));
                    return;
                }
            }
            Write::Close => break,
        }
    }
    let _ = write.shutdown().await;
}
