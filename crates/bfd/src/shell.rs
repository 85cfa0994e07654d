//! The tokio shell: one task owns every session, the receive sockets and the timers.
//! Callers talk to it through a cloneable [`BfdHandle`]; each peer's state is published
//! on a `watch` channel (the BGP speaker tears its session down when it reads Down).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::demux::Demux;
use crate::echo::{self, EchoInactive, EchoPacket, EchoPath, EchoStatus, LoopedEcho, Mac};
use crate::net::{self, Datagram};
use crate::packet::{DropReason, State};
use crate::profile::{Profile, ProfileError};
use crate::session::{Action, DownCause, Event, Session};

/// What a session's watch channel carries: its state, and why it last went Down (kept
/// through Init until it is Up again, so a client that wakes late still knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub state: State,
    /// `None` while Up, and before the session was ever Up or Init.
    pub down_cause: Option<DownCause>,
}

/// Identifies a BFD session: the peer, our address towards it, the encapsulation
/// (single hop RFC 5881 on UDP 3784, or multihop RFC 5883 on UDP 4784) and, for
/// single-hop sessions that need it, the interface (required for IPv6 link-local
/// peers, e.g. BGP unnumbered; [`crate::net::interface_index`] resolves a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    pub peer: IpAddr,
    pub local: IpAddr,
    pub multihop: bool,
    /// Interface index; `None` = any interface.
    pub interface: Option<u32>,
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hop = if self.multihop {
            "multihop"
        } else {
            "single-hop"
        };
        write!(f, "{} (local {}, {hop}", self.peer, self.local)?;
        if let Some(index) = self.interface {
            write!(f, ", interface #{index}")?;
        }
        f.write_str(")")
    }
}

/// What the rest of oxlb can get wrong when asking for a session.
#[derive(Debug)]
pub enum BfdError {
    Profile(ProfileError),
    /// The peer and local addresses are of different families.
    MixedFamilies(PeerKey),
    AlreadyExists(PeerKey),
    /// Binding a socket failed (address not configured, port taken, not root...).
    Socket(PeerKey, io::Error),
    /// The BFD task has stopped.
    Stopped,
    /// `Bfd::start` was called outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for BfdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BfdError::Profile(error) => error.fmt(f),
            BfdError::MixedFamilies(key) => {
                write!(f, "BFD peer {key}: peer and local address families differ")
            }
            BfdError::AlreadyExists(key) => write!(f, "BFD peer {key} already exists"),
            BfdError::Socket(key, error) => write!(f, "BFD peer {key}: socket: {error}"),
            BfdError::Stopped => f.write_str("the BFD task has stopped"),
            BfdError::NoRuntime => f.write_str("BFD must be started inside a tokio runtime"),
        }
    }
}

impl std::error::Error for BfdError {}

/// One session as seen by `status()` (for `metallb_bfd_session_up{peer}` and the
/// up/down event counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    pub key: PeerKey,
    pub profile: String,
    pub state: State,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    pub diag: crate::packet::Diag,
    /// Transitions into Up / out of Up since the session was added.
    pub up_events: u64,
    pub down_events: u64,
    /// Control packets accepted for this session / sent by it
    /// (`metallb_bfd_control_packet_input` / `_output`).
    pub control_packets_in: u64,
    pub control_packets_out: u64,
    /// The Echo function: off, inactive (and why) or active (RFC 5880 §6.4).
    pub echo: EchoStatus,
    /// Our Echo packets that came back / that we sent
    /// (`metallb_bfd_echo_packet_input` / `_output`).
    pub echo_packets_in: u64,
    pub echo_packets_out: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub sessions: Vec<SessionStatus>,
    /// Received datagrams dropped, by reason (includes those of removed sessions).
    pub dropped: BTreeMap<DropReason, u64>,
}

/// Entry point: `Bfd::start()` spawns the task on the current tokio runtime.
pub struct Bfd;

impl Bfd {
    /// Spawns the BFD task; fails (instead of panicking) outside a tokio runtime.
    pub fn start() -> Result<BfdHandle, BfdError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BfdError::NoRuntime)?;
        let (commands, receiver) = mpsc::unbounded_channel();
        runtime.spawn(run(receiver));
        Ok(BfdHandle {
            commands: Arc::new(commands),
        })
    }
}

#[derive(Debug, Clone)]
pub struct BfdHandle {
    commands: Arc<mpsc::UnboundedSender<Command>>,
}

enum Command {
    Add(
        PeerKey,
        Profile,
        oneshot::Sender<Result<watch::Receiver<Report>, BfdError>>,
    ),
    Remove(PeerKey, oneshot::Sender<bool>),
    Update(PeerKey, Profile, oneshot::Sender<bool>),
    Status(oneshot::Sender<Status>),
}

impl BfdHandle {
    /// Starts a session (Down at first) and returns its state channel. The profile is
    /// validated first: `echo: true` is refused with the error the config layer shows.
    /// The request is queued before this returns, so a later [`BfdHandle::remove_peer`]
    /// is processed after it even if the returned future is awaited elsewhere or later.
    pub fn add_peer(
        &self,
        key: PeerKey,
        profile: Profile,
    ) -> impl std::future::Future<Output = Result<watch::Receiver<Report>, BfdError>> + use<> {
        let queued = self.queue_add(key, profile);
        async move { queued?.await.map_err(|_| BfdError::Stopped)? }
    }

    fn queue_add(
        &self,
        key: PeerKey,
        profile: Profile,
    ) -> Result<oneshot::Receiver<Result<watch::Receiver<Report>, BfdError>>, BfdError> {
        profile.validate().map_err(BfdError::Profile)?;
        if key.peer.is_ipv6() != key.local.is_ipv6() {
            return Err(BfdError::MixedFamilies(key));
        }
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Add(key, profile, reply))
            .map_err(|_| BfdError::Stopped)?;
        Ok(answer)
    }

    /// Applies a changed profile to a running session (a Poll Sequence tells the peer,
    /// RFC 5880 §6.8.3). Returns `Ok(false)` if there is no such session.
    pub async fn update_peer(&self, key: PeerKey, profile: Profile) -> Result<bool, BfdError> {
        profile.validate().map_err(BfdError::Profile)?;
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Update(key, profile, reply))
            .map_err(|_| BfdError::Stopped)?;
        answer.await.map_err(|_| BfdError::Stopped)
    }

    /// Stops a session (the peer sees it go AdminDown). Returns whether it existed.
    pub async fn remove_peer(&self, key: PeerKey) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Remove(key, reply)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    pub async fn status(&self) -> Result<Status, BfdError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Status(reply))
            .map_err(|_| BfdError::Stopped)?;
        answer.await.map_err(|_| BfdError::Stopped)
    }
}

struct Entry {
    key: PeerKey,
    profile: Profile,
    session: Session,
    socket: UdpSocket,
    state_tx: watch::Sender<Report>,
    up_events: u64,
    down_events: u64,
    packets_in: u64,
    packets_out: u64,
    /// Where Echo packets go, once the neighbour entry was found.
    echo_link: Option<EchoLink>,
    echo_in: u64,
    echo_out: u64,
}

/// The link-layer path of one session's Echo packets.
#[derive(Debug, Clone)]
struct EchoLink {
    ifindex: u32,
    peer_mac: Mac,
    our_mac: Mac,
    local: IpAddr,
}

/// One packet socket per interface and family carrying Echo packets (see [`crate::echo_sys`]).
struct EchoSocket {
    fd: Arc<AsyncFd<Socket>>,
    task: tokio::task::JoinHandle<()>,
}

/// Why a session with echoMode can never run it, or `None` if it may.
fn echo_impossible(key: &PeerKey) -> Option<EchoInactive> {
    if key.multihop {
        Some(EchoInactive::Multihop)
    } else if let IpAddr::V6(local) = key.local
        && (local.is_unicast_link_local() || key.peer.is_ipv6() && is_link_local(key.peer))
    {
        Some(EchoInactive::LinkLocal)
    } else {
        None
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

struct Runtime {
    by_discriminator: HashMap<u32, Entry>,
    demux: Demux,
    /// Receive sockets by (local address, multihop), bound at that address when the
    /// first session from it needs them (see [`net::bind_receiver`]).
    receivers: HashMap<(IpAddr, bool), tokio::task::JoinHandle<()>>,
    datagrams: mpsc::Sender<Datagram>,
    dropped: BTreeMap<DropReason, u64>,
    next_discriminator: u32,
    /// Echo packet sockets by interface index and ethertype (IPv4, IPv6).
    echo_sockets: HashMap<(u32, u16), EchoSocket>,
    echoes: mpsc::Sender<LoopedEcho>,
}

/// How often sessions with echoMode that have no Echo path yet look for one.
const ECHO_RESOLVE: Duration = Duration::from_secs(1);

async fn run(mut commands: mpsc::UnboundedReceiver<Command>) {
    let (datagrams, mut incoming) = mpsc::channel(1024);
    let (echoes, mut looped) = mpsc::channel(1024);
    let mut runtime = Runtime {
        by_discriminator: HashMap::new(),
        demux: Demux::default(),
        receivers: HashMap::new(),
        datagrams,
        dropped: BTreeMap::new(),
        next_discriminator: seed_u32(),
        echo_sockets: HashMap::new(),
        echoes,
    };
    let mut resolve = tokio::time::interval(ECHO_RESOLVE);
    resolve.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = runtime
            .by_discriminator
            .values()
            .filter_map(|e| e.session.next_deadline())
            .min();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => runtime.command(command),
                None => break,
            },
            Some(datagram) = incoming.recv() => runtime.receive(&datagram),
            Some(echo) = looped.recv() => runtime.echo_received(echo),
            _ = resolve.tick() => runtime.resolve_echo_paths(),
            () = sleep => runtime.timers(),
        }
    }
    // The handle is gone: tell every peer we are going away (§6.8.16 AdminDown).
    for key in runtime.demux.keys().copied().collect::<Vec<_>>() {
        runtime.remove(key);
    }
    for task in runtime.receivers.values() {
        task.abort();
    }
    for socket in runtime.echo_sockets.values() {
        socket.task.abort();
    }
}

impl Runtime {
    fn command(&mut self, command: Command) {
        match command {
            Command::Add(key, profile, reply) => {
                let _ = reply.send(self.add(key, profile));
            }
            Command::Remove(key, reply) => {
                let _ = reply.send(self.remove(key));
            }
            Command::Update(key, profile, reply) => {
                let _ = reply.send(self.update(key, profile));
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn add(&mut self, key: PeerKey, profile: Profile) -> Result<watch::Receiver<Report>, BfdError> {
        if self.demux.discriminator(&key).is_some() {
            return Err(BfdError::AlreadyExists(key));
        }
        self.ensure_receiver(key)?;
        let discriminator = self.allocate_discriminator();
        let socket = net::bind_sender(key.local, key.interface, (discriminator % 16384) as u16)
            .map_err(|e| BfdError::Socket(key, e))?;
        let now = Instant::now();
        let session = Session::new(
            discriminator,
            profile.session_config(),
            now,
            u64::from(discriminator) ^ u64::from(seed_u32()) << 32,
        );
        let (state_tx, state_rx) = watch::channel(Report {
            state: State::Down,
            down_cause: None,
        });
        let entry_minimum_ttl = profile.minimum_ttl;
        self.by_discriminator.insert(
            discriminator,
            Entry {
                key,
                profile,
                session,
                socket,
                state_tx,
                up_events: 0,
                down_events: 0,
                packets_in: 0,
                packets_out: 0,
                echo_link: None,
                echo_in: 0,
                echo_out: 0,
            },
        );
        self.demux.insert(key, discriminator, entry_minimum_ttl);
        // An active session sends its first packet at once.
        self.drive(discriminator, Event::Timer);
        Ok(state_rx)
    }

    fn update(&mut self, key: PeerKey, profile: Profile) -> bool {
        let Some(discriminator) = self.demux.discriminator(&key) else {
            return false;
        };
        let config = profile.session_config();
        self.demux.insert(key, discriminator, profile.minimum_ttl);
        if let Some(entry) = self.by_discriminator.get_mut(&discriminator) {
            entry.profile = profile;
        }
        self.drive(discriminator, Event::Configure(config));
        true
    }

    fn remove(&mut self, key: PeerKey) -> bool {
        let Some(discriminator) = self.demux.remove(&key) else {
            return false;
        };
        // Say AdminDown once so the peer goes Down at once instead of timing out.
        self.drive(discriminator, Event::AdminDown);
        self.by_discriminator.remove(&discriminator);
        // The last session with echoMode gone: close the packet sockets too.
        if !self.by_discriminator.values().any(|e| e.profile.echo) {
            for (_, socket) in self.echo_sockets.drain() {
                socket.task.abort();
            }
        }
        true
    }

    fn status(&self) -> Status {
        let mut sessions: Vec<SessionStatus> = self
            .by_discriminator
            .values()
            .map(|e| SessionStatus {
                key: e.key,
                profile: e.profile.name.clone(),
                state: e.session.state(),
                local_discriminator: e.session.local_discriminator(),
                remote_discriminator: e.session.remote_discriminator(),
                diag: e.session.local_diag(),
                up_events: e.up_events,
                down_events: e.down_events,
                control_packets_in: e.packets_in,
                control_packets_out: e.packets_out,
                echo: match echo_impossible(&e.key) {
                    Some(why) if e.profile.echo => EchoStatus::Inactive(why),
                    _ => e.session.echo_status(),
                },
                echo_packets_in: e.echo_in,
                echo_packets_out: e.echo_out,
            })
            .collect();
        sessions.sort_by_key(|s| s.key);
        Status {
            sessions,
            dropped: self.dropped.clone(),
        }
    }

    fn ensure_receiver(&mut self, key: PeerKey) -> Result<(), BfdError> {
        let slot = (key.local, key.multihop);
        if self.receivers.contains_key(&slot) {
            return Ok(());
        }
        let socket = net::bind_receiver(key.local, key.interface, key.multihop)
            .map_err(|e| BfdError::Socket(key, e))?;
        let sink = self.datagrams.clone();
        let multihop = key.multihop;
        let bound = key.interface;
        let task = tokio::spawn(async move {
            loop {
                match net::receive(&socket, multihop).await {
                    Ok(mut datagram) => {
                        // A socket bound to a device only gets that device's packets;
                        // for a VRF the kernel reports the enslaved interface they came
                        // in on, the session is keyed by the VRF.
                        if bound.is_some() {
                            datagram.interface = bound;
                        }
                        if sink.send(datagram).await.is_err() {
                            return;
                        }
                    }
                    // ICMP errors surfacing on the socket and the like: keep reading.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        });
        self.receivers.insert(slot, task);
        Ok(())
    }

    fn allocate_discriminator(&mut self) -> u32 {
        loop {
            self.next_discriminator = self.next_discriminator.wrapping_add(1);
            let candidate = self.next_discriminator;
            if candidate != 0 && !self.by_discriminator.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    fn receive(&mut self, datagram: &Datagram) {
        match self.demux.select(datagram.into()) {
            Ok((discriminator, packet)) => self.drive(discriminator, Event::Received(packet)),
            Err(reason) => self.count_drop(reason),
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        let due: Vec<u32> = self
            .by_discriminator
            .iter()
            .filter(|(_, e)| e.session.next_deadline().is_some_and(|d| d <= now))
            .map(|(d, _)| *d)
            .collect();
        for discriminator in due {
            self.drive(discriminator, Event::Timer);
        }
    }

    fn drive(&mut self, discriminator: u32, event: Event) {
        let Some(entry) = self.by_discriminator.get_mut(&discriminator) else {
            return;
        };
        if matches!(event, Event::Received(_)) {
            entry.packets_in += 1;
        }
        let actions = entry.session.handle(Instant::now(), event);
        let mut dropped = Vec::new();
        let mut became_up = false;
        for action in actions {
            match action {
                Action::Send(packet) => {
                    let port = if entry.key.multihop {
                        net::MULTI_HOP_PORT
                    } else {
                        net::SINGLE_HOP_PORT
                    };
                    // UDP sends do not block in practice; a full buffer or an
                    // unreachable peer is what BFD exists to detect, so it is not
                    // an error here.
                    let destination = net::destination(entry.key.peer, port, entry.key.interface);
                    if entry
                        .socket
                        .try_send_to(&packet.encode(), destination)
                        .is_ok()
                    {
                        entry.packets_out += 1;
                    }
                }
                Action::StateChanged {
                    from, to, cause, ..
                } => {
                    if to == State::Up {
                        entry.up_events += 1;
                        became_up = true;
                    } else if from == State::Up {
                        entry.down_events += 1;
                    }
                    entry.state_tx.send_modify(|report| {
                        report.state = to;
                        if to == State::Up {
                            report.down_cause = None;
                        } else if cause.is_some() {
                            report.down_cause = cause;
                        }
                    });
                }
                Action::Dropped(reason) => dropped.push(reason),
                Action::SendEcho(sequence) => {
                    let Some(link) = &entry.echo_link else {
                        continue;
                    };
                    let Some(socket) = self
                        .echo_sockets
                        .get(&(link.ifindex, ethertype(link.local)))
                    else {
                        continue;
                    };
                    let packet = EchoPacket {
                        discriminator,
                        sequence,
                    };
                    let sent = match link.local {
                        IpAddr::V4(local) => {
                            let frame = echo::build_frame(
                                link.peer_mac,
                                link.our_mac,
                                local,
                                sequence as u16,
                                &packet,
                            );
                            socket.fd.get_ref().send(&frame)
                        }
                        IpAddr::V6(local) => {
                            let frame =
                                echo::build_frame6(link.peer_mac, link.our_mac, local, &packet);
                            socket.fd.get_ref().send(&frame)
                        }
                    };
                    // Like Control packets: a failed send is what detection is for.
                    if sent.is_ok() {
                        entry.echo_out += 1;
                    }
                }
            }
        }
        // A session that left Up looks its Echo path up again when it is back (the
        // neighbour may have changed its MAC or this host its forwarding).
        if entry.session.state() != State::Up && entry.echo_link.is_some() {
            entry.echo_link = None;
            let _ = entry.session.handle(Instant::now(), Event::EchoPath(None));
        }
        let look_for_echo_path = became_up && entry.profile.echo && entry.echo_link.is_none();
        for reason in dropped {
            self.count_drop(reason);
        }
        // Up: the neighbour entry exists now (our Control packets went to it), so the
        // Echo path is looked up at once rather than at the next periodic look.
        if look_for_echo_path {
            self.resolve_echo_paths();
        }
    }

    /// Sessions with echoMode that are Up and have no Echo path yet look one up: the
    /// peer's complete neighbour entry (ARP for IPv4 from /proc/net/arp, NDP for IPv6
    /// over rtnetlink), our MAC on that link, whether this host forwards that family
    /// there (then it loops the peer's echoes and says so), and the packet socket of
    /// that interface and family.
    fn resolve_echo_paths(&mut self) {
        let wanting: Vec<(u32, IpAddr, IpAddr)> = self
            .by_discriminator
            .iter()
            .filter(|(_, e)| e.profile.echo && e.echo_link.is_none())
            .filter(|(_, e)| echo_impossible(&e.key).is_none())
            .filter(|(_, e)| e.session.state() == State::Up)
            .filter(|(_, e)| e.key.peer.is_ipv4() == e.key.local.is_ipv4())
            .map(|(d, e)| (*d, e.key.peer, e.key.local))
            .collect();
        if wanting.is_empty() {
            return;
        }
        let arp = if wanting.iter().any(|(_, peer, _)| peer.is_ipv4()) {
            std::fs::read_to_string("/proc/net/arp").unwrap_or_default()
        } else {
            String::new()
        };
        let ndp = if wanting.iter().any(|(_, peer, _)| peer.is_ipv6()) {
            crate::echo_sys::ipv6_neighbours().unwrap_or_default()
        } else {
            Vec::new()
        };
        for (discriminator, peer, local) in wanting {
            let found = match peer {
                IpAddr::V4(peer) => echo::find_neighbour(&arp, peer).and_then(|n| {
                    let ifindex = net::interface_index(&n.device).ok()?;
                    Some((n.mac, ifindex, n.device))
                }),
                IpAddr::V6(peer) => ndp
                    .iter()
                    .find(|n| n.address == peer)
                    .and_then(|n| Some((n.mac, n.ifindex, net::interface_name(n.ifindex)?))),
            };
            let Some((peer_mac, ifindex, device)) = found else {
                continue;
            };
            let Some(our_mac) = net::interface_mac(&device) else {
                continue;
            };
            if self
                .ensure_echo_socket(ifindex, ethertype(local), our_mac)
                .is_err()
            {
                continue;
            }
            let family = if local.is_ipv4() { "ipv4" } else { "ipv6" };
            let loops_peer_echoes =
                std::fs::read_to_string(format!("/proc/sys/net/{family}/conf/{device}/forwarding"))
                    .is_ok_and(|v| v.trim() == "1");
            if let Some(entry) = self.by_discriminator.get_mut(&discriminator) {
                entry.echo_link = Some(EchoLink {
                    ifindex,
                    peer_mac,
                    our_mac,
                    local,
                });
            }
            self.drive(
                discriminator,
                Event::EchoPath(Some(EchoPath { loops_peer_echoes })),
            );
        }
    }

    fn ensure_echo_socket(
        &mut self,
        ifindex: u32,
        ethertype: u16,
        our_mac: Mac,
    ) -> std::io::Result<()> {
        if self.echo_sockets.contains_key(&(ifindex, ethertype)) {
            return Ok(());
        }
        let fd = Arc::new(crate::echo_sys::async_fd(crate::echo_sys::echo_socket(
            ifindex, ethertype,
        )?)?);
        let reader = Arc::clone(&fd);
        let sink = self.echoes.clone();
        let task = tokio::spawn(async move {
            let mut frame = [0u8; 128];
            loop {
                let Ok(mut ready) = reader.readable().await else {
                    return;
                };
                match ready.try_io(|inner| std::io::Read::read(&mut inner.get_ref(), &mut frame)) {
                    Ok(Ok(len)) => {
                        let looped = frame
                            .get(..len)
                            .and_then(|f| echo::parse_looped(f, our_mac));
                        if let Some(looped) = looped
                            && sink.send(looped).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(_would_block) => {}
                }
            }
        });
        self.echo_sockets
            .insert((ifindex, ethertype), EchoSocket { fd, task });
        Ok(())
    }

    fn echo_received(&mut self, looped: LoopedEcho) {
        let discriminator = looped.echo.discriminator;
        let Some(entry) = self.by_discriminator.get_mut(&discriminator) else {
            return;
        };
        // Only from the address the session's Echo packets carry, and through a
        // forwarding plane (which decremented the TTL or hop limit 255 they were sent
        // with).
        if entry.echo_link.as_ref().map(|l| l.local) != Some(looped.address)
            || looped.ttl == u8::MAX
        {
            return;
        }
        entry.echo_in += 1;
        self.drive(discriminator, Event::EchoReceived);
    }

    fn count_drop(&mut self, reason: DropReason) {
        *self.dropped.entry(reason).or_insert(0) += 1;
    }
}

/// The ethertype of the Echo frames of a session with local address `local`.
fn ethertype(local: IpAddr) -> u16 {
    if local.is_ipv4() {
        echo::ETHERTYPE_IPV4
    } else {
        echo::ETHERTYPE_IPV6
    }
}

/// A start for discriminators that differs between restarts, so a peer does not
/// mistake a restarted oxlb for the old session (no randomness crate needed).
fn seed_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(1);
    nanos ^ std::process::id().rotate_left(16)
}
