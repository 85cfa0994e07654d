//! [`Speaker`]: the handle the rest of oxlb uses. Declarative: give it the full desired
//! set of peers and their routes; it starts, keeps, restarts or stops sessions and sends
//! each peer only the difference.

use crate::peer_task::{self, PeerCommand};
use crate::rib::Routes;
use crate::session::{State, Stop};
use crate::settings::{PeerName, PeerSettings, RouteAttributes};
use crate::sockopt;
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Called with (peer name, human message) when a session comes up, goes down or fails.
pub type EventSink = Option<Arc<dyn Fn(&str, &str) + Send + Sync>>;

pub type Desired = BTreeMap<PeerName, (PeerSettings, BTreeMap<IpNet, RouteAttributes>)>;

#[derive(Clone, Default)]
pub struct SpeakerOptions {
    /// Where to accept the peers' connections (normally `[::]:179`); None: active only.
    pub listen: Option<SocketAddr>,
    pub on_event: EventSink,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: PeerName,
    /// For an unnumbered peer: `::` until connected, then the router's link-local address.
    pub address: IpAddr,
    /// The interface of an unnumbered peer (`address` is scoped to it).
    pub interface: Option<String>,
    pub state: State,
    pub established_since: Option<SystemTime>,
    pub prefixes_announced: usize,
    pub prefixes_pending: usize,
    pub updates_sent: u64,
    /// Messages by type and direction, MetalLB's FRR-mode counters.
    pub messages: crate::session::MessageCounts,
    pub last_error: Option<String>,
    /// A negotiated family the session does not announce, and why.
    pub withheld: Option<crate::session::Withheld>,
    /// The Established session negotiated Enhanced Route Refresh (RFC 7313): the peer
    /// can confirm that it processed our UPDATEs ([`Speaker::confirm`]).
    pub enhanced_route_refresh: bool,
    /// Confirmation requests sent on this session so far (numbered from 1).
    pub confirm_requested: u64,
    /// The highest request the peer has confirmed (0: none).
    pub confirmed: u64,
}

impl PeerStatus {
    /// A peer with no session yet: Idle, nothing sent or received.
    pub fn idle(name: PeerName, address: IpAddr) -> PeerStatus {
        PeerStatus {
            name,
            address,
            interface: None,
            state: State::Idle,
            established_since: None,
            prefixes_announced: 0,
            prefixes_pending: 0,
            updates_sent: 0,
            messages: Default::default(),
            last_error: None,
            withheld: None,
            enhanced_route_refresh: false,
            confirm_requested: 0,
            confirmed: 0,
        }
    }
}

/// How [`Speaker::shutdown`] leaves the peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Cease / Administrative Shutdown with this RFC 8203 message: routers withdraw now.
    Withdraw { message: String },
    /// Where graceful restart was negotiated, close without NOTIFICATION so routers keep
    /// our routes as stale until we are back (RFC 4724); others get the Cease.
    GracefulRestart,
}

struct Peer {
    settings: PeerSettings,
    commands: mpsc::UnboundedSender<PeerCommand>,
    status: Arc<Mutex<PeerStatus>>,
    task: tokio::task::JoinHandle<()>,
}

/// Inbound connections find their peer by VRF (the listener they came in on) and remote
/// address; several sessions to one router address (from different source addresses)
/// are told apart by our local address. The same address in two VRFs is two peers.
type Registry = Arc<
    Mutex<
        HashMap<
            (Option<String>, IpAddr),
            Vec<(Option<IpAddr>, PeerName, mpsc::UnboundedSender<PeerCommand>)>,
        >,
    >,
>;

/// Unnumbered peers by interface name: an inbound connection from a link-local address
/// belongs to the peer on the interface its scope names.
type LinkRegistry =
    Arc<Mutex<BTreeMap<String, Vec<(PeerName, mpsc::UnboundedSender<PeerCommand>)>>>>;

/// One listening socket and its accept loop.
type Listener = (Arc<TcpListener>, tokio::task::JoinHandle<()>);

pub struct Speaker {
    peers: BTreeMap<PeerName, Peer>,
    by_address: Registry,
    by_interface: LinkRegistry,
    listener: Option<Listener>,
    /// Per VRF with a peer: a listener on the same port bound to the VRF device. With
    /// `net.ipv4.tcp_l3mdev_accept=0` (the kernel default) the default-VRF listener does
    /// not see connections arriving in a VRF (Documentation/networking/vrf.rst).
    vrf_listeners: BTreeMap<String, Listener>,
    options: SpeakerOptions,
}

impl Speaker {
    /// Must be called inside a tokio runtime.
    pub async fn start(options: SpeakerOptions) -> io::Result<Speaker> {
        let by_address: Registry = Arc::default();
        let by_interface: LinkRegistry = Arc::default();
        let listener = match options.listen {
            Some(address) => {
                let listener = Arc::new(TcpListener::bind(address).await?);
                let task = tokio::spawn(accept_loop(
                    Arc::clone(&listener),
                    None,
                    Arc::clone(&by_address),
                    Arc::clone(&by_interface),
                ));
                Some((listener, task))
            }
            None => None,
        };
        Ok(Speaker {
            peers: BTreeMap::new(),
            by_address,
            by_interface,
            listener,
            vrf_listeners: BTreeMap::new(),
            options,
        })
    }

    /// The port the listener got (useful with port 0 in tests).
    pub fn local_port(&self) -> Option<u16> {
        self.listener
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// New peers connect, removed ones get Cease / Peer De-configured, peers whose
    /// settings changed restart, unchanged peers keep their session and get only the
    /// route difference.
    pub fn set_desired(&mut self, desired: Desired) {
        let gone: Vec<PeerName> = self
            .peers
            .iter()
            .filter(|(name, peer)| desired.get(*name).is_none_or(|(s, _)| *s != peer.settings))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(peer) = self.peers.remove(&name) {
                let stop = if desired.contains_key(&name) {
                    Stop::Shutdown {
                        message: "peer settings changed".into(),
                    }
                } else {
                    Stop::Deconfigured
                };
                let (ack, _) = oneshot::channel();
                let _ = peer.commands.send(PeerCommand::Stop(stop, ack));
                self.forget_address(&peer.settings);
            }
        }
        // One Arc per distinct attribute set: 10,000 routes with the same attributes
        // cost one allocation, not 10,000.
        let mut interned: BTreeMap<RouteAttributes, Arc<RouteAttributes>> = BTreeMap::new();
        for (name, (settings, routes)) in desired {
            let routes: Routes = routes
                .into_iter()
                .map(|(prefix, attrs)| {
                    let shared = interned
                        .entry(attrs)
                        .or_insert_with_key(|a| Arc::new(a.clone()));
                    (prefix.trunc(), Arc::clone(shared))
                })
                .collect();
            if !self.peers.contains_key(&name) {
                let peer = self.spawn(settings);
                self.peers.insert(name.clone(), peer);
            }
            if let Some(peer) = self.peers.get(&name) {
                let _ = peer.commands.send(PeerCommand::Routes(routes));
            }
        }
    }

    /// The listener for this peer's VRF, opened the first time a peer in that VRF
    /// appears (and tried again at the next one while the VRF cannot be used: the
    /// session's own connect attempts report why). `None` for the default VRF's.
    fn vrf_listener(&mut self, settings: &PeerSettings) -> Option<(Arc<TcpListener>, u32)> {
        let vrf = settings.vrf.as_ref()?;
        let (main, _) = self.listener.as_ref()?;
        let index = crate::vrf::resolve(vrf).ok()?;
        if let Some((listener, _)) = self.vrf_listeners.get(vrf) {
            return Some((Arc::clone(listener), index));
        }
        let address = main.local_addr().ok()?;
        match bind_in_vrf(address, vrf) {
            Ok(listener) => {
                let listener = Arc::new(listener);
                let task = tokio::spawn(accept_loop(
                    Arc::clone(&listener),
                    Some(vrf.clone()),
                    Arc::clone(&self.by_address),
                    Arc::clone(&self.by_interface),
                ));
                self.vrf_listeners
                    .insert(vrf.clone(), (Arc::clone(&listener), task));
                Some((listener, index))
            }
            Err(e) => {
                if let Some(sink) = &self.options.on_event {
                    sink(
                        &settings.name,
                        &format!(
                            "cannot listen on {address} in VRF {vrf} ({e}): the session \
                             only connects actively"
                        ),
                    );
                }
                None
            }
        }
    }

    fn spawn(&mut self, settings: PeerSettings) -> Peer {
        let (commands, rx) = mpsc::unbounded_channel();
        let mut idle = PeerStatus::idle(settings.name.clone(), settings.peer_address);
        idle.interface = settings.interface.clone();
        let status = Arc::new(Mutex::new(idle));
        let listener = match (&settings.interface, &settings.vrf) {
            (Some(_), _) => None,
            (None, Some(_)) => self.vrf_listener(&settings).map(|(l, i)| (l, Some(i))),
            (None, None) => self.listener.as_ref().map(|(l, _)| (Arc::clone(l), None)),
        };
        if let Some(interface) = &settings.interface
            && let Ok(mut registry) = self.by_interface.lock()
        {
            registry
                .entry(interface.clone())
                .or_default()
                .push((settings.name.clone(), commands.clone()));
        }
        if let Some((listener, vrf)) = &listener
            && let Some(password) = &settings.password
        {
            let v6 = listener.local_addr().is_ok_and(|a| a.is_ipv6());
            if let Err(e) = sockopt::set_md5(
                listener.as_raw_fd(),
                v6,
                settings.peer_address,
                password.as_bytes(),
                *vrf,
            ) && let Some(sink) = &self.options.on_event
            {
                sink(
                    &settings.name,
                    &format!("cannot set TCP MD5 password on the listener: {e}"),
                );
            }
        }
        if settings.interface.is_none()
            && let Ok(mut registry) = self.by_address.lock()
        {
            registry
                .entry((settings.vrf.clone(), settings.peer_address))
                .or_default()
                .push((
                    settings.source_address,
                    settings.name.clone(),
                    commands.clone(),
                ));
        }
        let task = tokio::spawn(peer_task::run(
            settings.clone(),
            rx,
            Arc::clone(&status),
            self.options.on_event.clone(),
        ));
        Peer {
            settings,
            commands,
            status,
            task,
        }
    }

    fn forget_address(&self, settings: &PeerSettings) {
        if let Some(interface) = &settings.interface {
            if let Ok(mut registry) = self.by_interface.lock()
                && let Some(entries) = registry.get_mut(interface)
            {
                entries.retain(|(name, _)| *name != settings.name);
                if entries.is_empty() {
                    registry.remove(interface);
                }
            }
            return;
        }
        if let Ok(mut registry) = self.by_address.lock()
            && let Some(entries) = registry.get_mut(&(settings.vrf.clone(), settings.peer_address))
        {
            entries.retain(|(_, name, _)| *name != settings.name);
            if entries.is_empty() {
                registry.remove(&(settings.vrf.clone(), settings.peer_address));
            }
        }
        let listener = match &settings.vrf {
            Some(vrf) => self
                .vrf_listeners
                .get(vrf)
                .map(|(l, _)| (Arc::clone(l), crate::vrf::resolve(vrf).ok())),
            None => self.listener.as_ref().map(|(l, _)| (Arc::clone(l), None)),
        };
        if let Some((listener, vrf)) = listener
            && settings.password.is_some()
        {
            let v6 = listener.local_addr().is_ok_and(|a| a.is_ipv6());
            let _ = sockopt::set_md5(listener.as_raw_fd(), v6, settings.peer_address, &[], vrf);
        }
    }

    pub fn status(&self) -> Vec<PeerStatus> {
        self.peers
            .values()
            .filter_map(|p| p.status.lock().ok().map(|s| s.clone()))
            .collect()
    }

    /// Cease / Administrative Reset and reconnect (BFD calls this when its session drops).
    pub fn reset_peer(&self, name: &str, reason: &str) {
        if let Some(peer) = self.peers.get(name) {
            let _ = peer.commands.send(PeerCommand::Reset(reason.to_string()));
        }
    }

    /// Asks peer `name` to confirm that it has processed every UPDATE sent so far: a
    /// ROUTE-REFRESH request whose EoRR answers it (RFC 7313). Progress shows in
    /// [`PeerStatus::confirm_requested`] / [`PeerStatus::confirmed`].
    pub fn confirm(&self, name: &str) {
        if let Some(peer) = self.peers.get(name) {
            let _ = peer.commands.send(PeerCommand::Confirm);
        }
    }

    /// Stops every session as `mode` says and waits (a few seconds at most) until the
    /// NOTIFICATIONs are on the wire.
    pub async fn shutdown(mut self, mode: ShutdownMode) {
        if let Some((_, task)) = self.listener.take() {
            task.abort();
        }
        for (_, (_, task)) in std::mem::take(&mut self.vrf_listeners) {
            task.abort();
        }
        let mut acks = Vec::new();
        for (_, peer) in std::mem::take(&mut self.peers) {
            let stop = match &mode {
                ShutdownMode::Withdraw { message } => Stop::Shutdown {
                    message: message.clone(),
                },
                ShutdownMode::GracefulRestart => Stop::Restart,
            };
            let (ack, done) = oneshot::channel();
            if peer.commands.send(PeerCommand::Stop(stop, ack)).is_ok() {
                acks.push((done, peer.task));
            }
        }
        for (done, task) in acks {
            let _ = tokio::time::timeout(Duration::from_secs(3), done).await;
            task.abort();
        }
    }
}

/// A listener on `address` bound to VRF device `vrf` (SO_BINDTODEVICE before bind: with
/// `tcp_l3mdev_accept=0` the kernel keeps it apart from the default VRF's listener on
/// the same port).
fn bind_in_vrf(address: SocketAddr, vrf: &str) -> io::Result<TcpListener> {
    let socket = if address.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    crate::vrf::bind_to_device(socket.as_raw_fd(), vrf)?;
    socket.bind(address)?;
    socket.listen(1024)
}

async fn accept_loop(
    listener: Arc<TcpListener>,
    vrf: Option<String>,
    registry: Registry,
    links: LinkRegistry,
) {
    loop {
        let Ok((stream, remote)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let ip = peer_task::unmap(remote.ip());
        let local = stream.local_addr().ok().map(|a| peer_task::unmap(a.ip()));
        if vrf.is_none()
            && let Some(commands) = unnumbered_peer(&links, remote)
        {
            let _ = commands.send(PeerCommand::Inbound(stream));
            continue;
        }
        let peer = registry.lock().ok().and_then(|r| {
            let entries = r.get(&(vrf.clone(), ip))?;
            entries
                .iter()
                .find(|(source, _, _)| source.is_some() && *source == local)
                .or_else(|| entries.iter().find(|(source, _, _)| source.is_none()))
                .or_else(|| entries.first())
                .map(|(_, _, commands)| commands.clone())
        });
        match peer {
            Some(commands) => {
                let _ = commands.send(PeerCommand::Inbound(stream));
            }
            None => drop(stream), // not a configured peer (RFC 4271 §8: refuse)
        }
    }
}

/// The unnumbered peer an inbound connection belongs to: one from a link-local address
/// on an interface that has an unnumbered peer (the scope names the interface).
fn unnumbered_peer(
    links: &LinkRegistry,
    remote: SocketAddr,
) -> Option<mpsc::UnboundedSender<PeerCommand>> {
    let SocketAddr::V6(remote) = remote else {
        return None;
    };
    if !remote.ip().is_unicast_link_local() || remote.scope_id() == 0 {
        return None;
    }
    let links = links.lock().ok()?;
    links
        .iter()
        .find(|(interface, _)| sockopt::interface_index(interface) == Some(remote.scope_id()))
        .and_then(|(_, peers)| peers.first())
        .map(|(_, commands)| commands.clone())
}
