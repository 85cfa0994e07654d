//! The raw-socket shell around [`crate::decide()`]: one pair of AF_PACKET sockets (ARP,
//! IPv6) per selected interface, replies out of the interface the request came in on,
//! solicited-node multicast memberships for owned IPv6 addresses, gratuitous
//! announcements on take-over, and interface rescans on rtnetlink link events.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use socket2::{SockFilter, Socket};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::decide::{DropReason, Interface, OwnedSet, decide};
use crate::ethernet::{ETHERTYPE_ARP, ETHERTYPE_IPV6, Mac};
use crate::interfaces::{self, Link, Selection};
use crate::{arp, ndp, sys, sysctl};

/// How the responder behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Regular expressions for interface names never used (default:
    /// [`interfaces::DEFAULT_EXCLUDE`]).
    pub exclude: Vec<String>,
    /// Gratuitous announcements per take-over, the first at once (default 5).
    pub gratuitous_count: u32,
    /// Time between them (default 1 s).
    pub gratuitous_interval: Duration,
    /// Where interfaces are read from (default /sys/class/net).
    pub sysfs: PathBuf,
    /// Whether the ARP sysctls of every served interface are set (default) or only
    /// checked, before the responder listens there (see [`crate::kernel_arp`]).
    pub arp_sysctls: sysctl::Policy,
    /// Where they are (default /proc/sys/net/ipv4/conf).
    pub sysctl_root: PathBuf,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            exclude: interfaces::DEFAULT_EXCLUDE
                .iter()
                .map(|s| s.to_string())
                .collect(),
            gratuitous_count: 5,
            gratuitous_interval: Duration::from_secs(1),
            sysfs: PathBuf::from("/sys/class/net"),
            arp_sysctls: sysctl::Policy::Set,
            sysctl_root: PathBuf::from(sysctl::CONF),
        }
    }
}

/// Counters per owned IP (MetalLB's `metallb_layer2_*{ip}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpCounters {
    /// `metallb_layer2_requests_received`: ARP requests / NS for the IP that this
    /// node answers (owned, allowed interface).
    pub requests_received: u64,
    /// `metallb_layer2_responses_sent`.
    pub responses_sent: u64,
    /// `metallb_layer2_gratuitous_sent`: gratuitous ARP frames / unsolicited NAs.
    pub gratuitous_sent: u64,
}

/// A snapshot of the responder's counters and state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub per_ip: BTreeMap<IpAddr, IpCounters>,
    /// Frames not answered, by reason (only frames that reached the responder's
    /// sockets: ARP, and ICMPv6 Neighbor Solicitations after the socket filter).
    pub dropped: BTreeMap<DropReason, u64>,
    /// Failed sends (the interface went away, queue full).
    pub send_errors: u64,
    /// The interfaces currently listened on.
    pub interfaces: Vec<String>,
    /// The ARP sysctls of every served interface, as found or set.
    pub kernel_arp: BTreeMap<String, sysctl::InterfaceArp>,
}

/// A running responder. Dropping it stops every task and closes every socket.
#[derive(Debug)]
pub struct Responder {
    owned: watch::Sender<OwnedSet>,
    shared: Arc<Shared>,
    manager: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    stats: Mutex<Stats>,
    ports: Mutex<BTreeMap<String, Arc<Port>>>,
}

/// One listened-on interface.
#[derive(Debug)]
struct Port {
    interface: Interface,
    index: u32,
    arp: AsyncFd<Socket>,
    ipv6: AsyncFd<Socket>,
    groups: Mutex<BTreeSet<Mac>>,
    /// An IPv6 datagram socket that holds the solicited-node group memberships at the
    /// IP level, so the kernel sends MLD reports (RFC 3810) and switches that snoop
    /// MLD forward the solicitations to this port. `None` where IPv6 is off.
    mld: Option<Socket>,
    ip_groups: Mutex<BTreeSet<Ipv6Addr>>,
}

/// A listener task and the port it serves.
struct Running {
    port: Arc<Port>,
    task: JoinHandle<()>,
}

impl Responder {
    /// Starts listening on the selected interfaces of this network namespace. Must be
    /// called inside a tokio runtime.
    pub fn start(settings: Settings) -> io::Result<Responder> {
        let selection = Selection::new(&settings.exclude).map_err(io::Error::other)?;
        let events = sys::async_fd(sys::link_events_socket()?)?;
        let (owned, owned_rx) = watch::channel(OwnedSet::new());
        let shared = Arc::new(Shared::default());
        // Before the caller adds any service IP to the host: no kernel answers for it
        // on the interfaces served now (later ones are done on their rescan).
        ensure_sysctls(&settings, &selection, &shared);
        let manager = tokio::spawn(manage(
            settings,
            selection,
            events,
            owned_rx,
            shared.clone(),
        ));
        Ok(Responder {
            owned,
            shared,
            manager,
        })
    }

    /// Replaces the set of owned IPs. IPs newly owned get a gratuitous burst at once.
    pub fn set_owned(&self, owned: OwnedSet) {
        self.owned.send_if_modified(|current| {
            let changed = *current != owned;
            *current = owned;
            changed
        });
    }

    pub fn owned(&self) -> OwnedSet {
        self.owned.borrow().clone()
    }

    pub fn stats(&self) -> Stats {
        let mut stats = lock(&self.shared.stats).clone();
        stats.interfaces = lock(&self.shared.ports).keys().cloned().collect();
        stats
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.manager.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock only leaves counters behind: keep going.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sets (or checks) the ARP sysctls of every selected interface not done yet, and
/// forgets the interfaces that are gone (a new one of the same name is done again).
fn ensure_sysctls(settings: &Settings, selection: &Selection, shared: &Shared) {
    let selected: BTreeSet<String> = interfaces::scan(&settings.sysfs)
        .into_iter()
        .filter(|link| selection.check(link).is_ok())
        .map(|link| link.name)
        .collect();
    let mut stats = lock(&shared.stats);
    stats.kernel_arp.retain(|name, _| selected.contains(name));
    for name in selected {
        stats.kernel_arp.entry(name).or_insert_with_key(|name| {
            sysctl::ensure(&settings.sysctl_root, name, settings.arp_sysctls)
        });
    }
}

/// One log line per ownership change, whatever its size: counts and the first few.
fn log_owned_change(previous: &OwnedSet, owned: &OwnedSet) {
    let taken: Vec<&IpAddr> = owned
        .keys()
        .filter(|ip| !previous.contains_key(*ip))
        .collect();
    let released: Vec<&IpAddr> = previous
        .keys()
        .filter(|ip| !owned.contains_key(*ip))
        .collect();
    if taken.is_empty() && released.is_empty() {
        return;
    }
    tracing::info!(
        owned = owned.len(),
        taken = taken.len(),
        released = released.len(),
        first_taken = %first_few(&taken),
        first_released = %first_few(&released),
        "l2: answering for {} IPs (+{} -{})",
        owned.len(),
        taken.len(),
        released.len()
    );
}

/// Up to 5 items, then how many more: a log field that stays short at 10,000.
pub fn first_few<T: std::fmt::Display>(items: &[T]) -> String {
    let mut text: Vec<String> = items.iter().take(5).map(ToString::to_string).collect();
    if items.len() > 5 {
        text.push(format!("… {} more", items.len() - 5));
    }
    text.join(" ")
}

/// The manager: rescans interfaces on link events, keeps one listener per selected
/// interface, and reacts to ownership changes.
async fn manage(
    settings: Settings,
    selection: Selection,
    events: AsyncFd<Socket>,
    mut owned_rx: watch::Receiver<OwnedSet>,
    shared: Arc<Shared>,
) {
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    let mut bursts: Vec<JoinHandle<()>> = Vec::new();
    let mut previous = OwnedSet::new();
    let mut guard = AbortOnDrop(Vec::new());
    rescan(
        &settings,
        &selection,
        &mut running,
        &owned_rx,
        &shared,
        &mut bursts,
    );
    loop {
        tokio::select! {
            readable = events.readable() => {
                let Ok(mut ready) = readable else { return };
                drain(ready.get_inner());
                ready.clear_ready();
                rescan(&settings, &selection, &mut running, &owned_rx, &shared, &mut bursts);
            }
            changed = owned_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let owned = owned_rx.borrow_and_update().clone();
                log_owned_change(&previous, &owned);
                for run in running.values() {
                    update_groups(&run.port, &owned);
                }
                let taken: Vec<IpAddr> = owned.keys().filter(|ip| !previous.contains_key(ip)).copied().collect();
                if !taken.is_empty() {
                    let ports: Vec<Arc<Port>> = running.values().map(|r| r.port.clone()).collect();
                    bursts.push(tokio::spawn(burst(settings.clone(), taken, ports, owned_rx.clone(), shared.clone())));
                }
                previous = owned;
            }
        }
        bursts.retain(|b| !b.is_finished());
        guard.0 = running
            .values()
            .map(|r| r.task.abort_handle())
            .chain(bursts.iter().map(|b| b.abort_handle()))
            .collect();
    }
}

/// Aborts the listener and burst tasks when the manager itself is aborted.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

fn drain(socket: &Socket) {
    let mut buf = [0u8; 8192];
    let mut reader = socket;
    while reader.read(&mut buf).is_ok_and(|n| n > 0) {}
}

fn rescan(
    settings: &Settings,
    selection: &Selection,
    running: &mut BTreeMap<String, Running>,
    owned_rx: &watch::Receiver<OwnedSet>,
    shared: &Arc<Shared>,
    bursts: &mut Vec<JoinHandle<()>>,
) {
    ensure_sysctls(settings, selection, shared);
    let links: BTreeMap<String, Link> = interfaces::scan(&settings.sysfs)
        .into_iter()
        .filter(|link| selection.check(link).is_ok())
        .map(|link| (link.name.clone(), link))
        .collect();
    // Gone, or the same name now a different device / address: stop listening.
    running.retain(|name, run| {
        let keep = links
            .get(name)
            .is_some_and(|l| l.index == run.port.index && l.mac == run.port.interface.mac);
        if !keep {
            run.task.abort();
            tracing::info!(interface = %name, "l2: stopped listening");
        }
        keep
    });
    let mut added = Vec::new();
    for (name, link) in &links {
        if running.contains_key(name) {
            continue;
        }
        match open_port(link) {
            Ok(port) => {
                let port = Arc::new(port);
                update_groups(&port, &owned_rx.borrow());
                let task = tokio::spawn(listen(port.clone(), owned_rx.clone(), shared.clone()));
                running.insert(
                    name.clone(),
                    Running {
                        port: port.clone(),
                        task,
                    },
                );
                added.push(port);
                tracing::info!(interface = %name, "l2: listening");
            }
            Err(error) => tracing::warn!(interface = %name, %error, "l2: cannot listen"),
        }
    }
    *lock(&shared.ports) = running
        .iter()
        .map(|(n, r)| (n.clone(), r.port.clone()))
        .collect();
    // An interface that (re)appears while IPs are owned: announce them there, so
    // neighbours that learned another MAC meanwhile (link down, partition) move back.
    let owned: Vec<IpAddr> = owned_rx.borrow().keys().copied().collect();
    if !added.is_empty() && !owned.is_empty() {
        bursts.push(tokio::spawn(burst(
            settings.clone(),
            owned,
            added,
            owned_rx.clone(),
            shared.clone(),
        )));
    }
}

/// Accepts only ICMPv6 Neighbor Solicitations on the IPv6 socket, so other IPv6
/// traffic is never copied to user space (classic BPF over the Ethernet frame:
/// next header at byte 20, ICMPv6 type at byte 54).
fn solicitation_filter() -> [SockFilter; 6] {
    const LDB_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    [
        SockFilter::new(LDB_ABS, 0, 0, 20),
        SockFilter::new(JEQ_K, 0, 3, 58),
        SockFilter::new(LDB_ABS, 0, 0, 54),
        SockFilter::new(JEQ_K, 0, 1, 135),
        SockFilter::new(RET_K, 0, 0, 0xffff),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

fn open_port(link: &Link) -> io::Result<Port> {
    let arp = sys::packet_socket(link.index, ETHERTYPE_ARP)?;
    let ipv6 = sys::packet_socket(link.index, ETHERTYPE_IPV6)?;
    ipv6.attach_filter(&solicitation_filter())?;
    // Frames queued between bind and filter may be anything: drop them.
    drain(&ipv6);
    Ok(Port {
        interface: Interface {
            name: link.name.clone(),
            mac: link.mac,
            eligible: true,
        },
        index: link.index,
        arp: sys::async_fd(arp)?,
        ipv6: sys::async_fd(ipv6)?,
        groups: Mutex::new(BTreeSet::new()),
        mld: Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).ok(),
        ip_groups: Mutex::new(BTreeSet::new()),
    })
}

/// Joins the solicited-node groups (RFC 4861 §7.2.1) of the owned IPv6 addresses
/// announced on this port, and leaves the others.
fn update_groups(port: &Port, owned: &OwnedSet) {
    let wanted: BTreeSet<Mac> = owned
        .iter()
        .filter(|(_, o)| o.interfaces.is_empty() || o.interfaces.contains(&port.interface.name))
        .filter_map(|(ip, _)| match ip {
            IpAddr::V6(v6) => Some(ndp::multicast_mac(ndp::solicited_node(*v6))),
            IpAddr::V4(_) => None,
        })
        .collect();
    let mut groups = lock(&port.groups);
    for mac in wanted.difference(&groups) {
        if let Err(error) = sys::packet_membership(port.ipv6.get_ref(), port.index, *mac, true) {
            tracing::warn!(interface = %port.interface.name, %error, "l2: cannot join multicast group");
        }
    }
    for mac in groups.difference(&wanted) {
        let _ = sys::packet_membership(port.ipv6.get_ref(), port.index, *mac, false);
    }
    *groups = wanted;
    drop(groups);
    update_ip_groups(port, owned);
}

/// The same groups joined at the IP level: the link-layer membership above only opens
/// the interface's filter, it sends no MLD report, and a switch snooping MLD would not
/// forward a solicitation to a port that never reported its group.
fn update_ip_groups(port: &Port, owned: &OwnedSet) {
    let Some(socket) = &port.mld else {
        return;
    };
    let wanted: BTreeSet<Ipv6Addr> = owned
        .iter()
        .filter(|(_, o)| o.interfaces.is_empty() || o.interfaces.contains(&port.interface.name))
        .filter_map(|(ip, _)| match ip {
            IpAddr::V6(v6) => Some(ndp::solicited_node(*v6)),
            IpAddr::V4(_) => None,
        })
        .collect();
    let mut groups = lock(&port.ip_groups);
    for group in groups.difference(&wanted) {
        let _ = socket.leave_multicast_v6(group, port.index);
    }
    groups.retain(|g| wanted.contains(g));
    for group in wanted {
        if groups.contains(&group) {
            continue;
        }
        match socket.join_multicast_v6(&group, port.index) {
            // Only what was joined is recorded: a failed join is tried again next time.
            Ok(()) => {
                groups.insert(group);
            }
            Err(error) => {
                tracing::debug!(interface = %port.interface.name, %group, %error, "l2: no MLD membership")
            }
        }
    }
}

/// Answers requests arriving on one port until aborted.
async fn listen(port: Arc<Port>, owned_rx: watch::Receiver<OwnedSet>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let socket = tokio::select! {
            r = port.arp.readable() => r.map(|g| (g, &port.arp)),
            r = port.ipv6.readable() => r.map(|g| (g, &port.ipv6)),
        };
        let Ok((mut ready, fd)) = socket else { return };
        loop {
            let mut reader = fd.get_ref();
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.clear_ready();
                    break;
                }
                Err(error) => {
                    // A pending socket error (ENETDOWN while the link flaps) is
                    // reported once and cleared; the rescan stops this listener if
                    // the interface really went away.
                    tracing::debug!(interface = %port.interface.name, %error, "l2: receive failed");
                    ready.clear_ready();
                    break;
                }
            };
            let frame = buf.get(..n).unwrap_or_default();
            let decision = decide(frame, &owned_rx.borrow(), &port.interface);
            match decision {
                Ok(reply) => {
                    // Out of the socket it came in on: same interface, and the kernel's
                    // idea of the frame's protocol matches its EtherType.
                    let sent = fd.get_ref().send(&reply.frame);
                    let mut stats = lock(&shared.stats);
                    let counters = stats.per_ip.entry(reply.ip).or_default();
                    counters.requests_received += 1;
                    if sent.is_ok() {
                        counters.responses_sent += 1;
                    } else {
                        stats.send_errors += 1;
                    }
                }
                Err(reason) => *lock(&shared.stats).dropped.entry(reason).or_default() += 1,
            }
        }
    }
}

/// RFC 5227 §3 / RFC 4861 §7.2.6: announces newly owned IPs at once and then
/// `gratuitous_count - 1` more times, as long as they are still owned.
async fn burst(
    settings: Settings,
    ips: Vec<IpAddr>,
    ports: Vec<Arc<Port>>,
    owned_rx: watch::Receiver<OwnedSet>,
    shared: Arc<Shared>,
) {
    for round in 0..settings.gratuitous_count {
        if round > 0 {
            tokio::time::sleep(settings.gratuitous_interval).await;
        }
        let owned = owned_rx.borrow().clone();
        let mut sent: BTreeMap<IpAddr, u64> = BTreeMap::new();
        let mut errors = 0;
        for ip in &ips {
            let Some(entry) = owned.get(ip) else { continue };
            for port in &ports {
                let name = &port.interface.name;
                if !(entry.interfaces.is_empty() || entry.interfaces.contains(name)) {
                    continue;
                }
                let mac = port.interface.mac;
                let (socket, frames) = match ip {
                    IpAddr::V4(v4) => (
                        &port.arp,
                        vec![
                            arp::gratuitous_request(mac, *v4),
                            arp::gratuitous_reply(mac, *v4),
                        ],
                    ),
                    IpAddr::V6(v6) => (&port.ipv6, vec![ndp::unsolicited_advertisement(mac, *v6)]),
                };
                for frame in frames {
                    match socket.get_ref().send(&frame) {
                        Ok(_) => *sent.entry(*ip).or_default() += 1,
                        Err(_) => errors += 1,
                    }
                }
            }
        }
        let mut stats = lock(&shared.stats);
        for (ip, n) in sent {
            stats.per_ip.entry(ip).or_default().gratuitous_sent += n;
        }
        stats.send_errors += errors;
    }
}
