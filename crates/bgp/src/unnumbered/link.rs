//! The shell of an unnumbered peer's link: a raw ICMPv6 socket bound to the interface
//! that sends our Router Advertisements (RFC 4861 §6.2: to ff02::1 from our link-local
//! address, hop limit 255) and reads the router's, publishing the [`LinkState`].
//! Waits for the interface when it is missing and starts over when it is recreated.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::time::Instant;

use super::discovery::{LinkState, hop_limit_in, router_from};
use super::ra::{RouterAdvertisement, next_advertisement, solicitation};
use crate::sockopt;

/// How often a missing interface or link-local address is looked for again.
const RECHECK: Duration = Duration::from_secs(1);
/// ff02::1, all nodes (RFC 4291 §2.7.1): where unsolicited RAs go (RFC 4861 §6.2.4).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ff02::2, all routers (RFC 4291 §2.7.1): where Router Solicitations go.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// Starts the task; it ends when every receiver is dropped.
pub(crate) fn spawn(interface: String) -> watch::Receiver<LinkState> {
    let (tx, rx) = watch::channel(LinkState::Starting);
    tokio::spawn(run(interface, tx));
    rx
}

async fn run(interface: String, tx: watch::Sender<LinkState>) {
    let mut sent = 0u32;
    while !tx.is_closed() {
        let Some(index) = sockopt::interface_index(&interface) else {
            set(
                &tx,
                LinkState::NoInterface {
                    interface: interface.clone(),
                },
            );
            tokio::time::sleep(RECHECK).await;
            continue;
        };
        if crate::link_local::usable_on(index).is_none() {
            set(
                &tx,
                LinkState::NoLinkLocal {
                    interface: interface.clone(),
                },
            );
            tokio::time::sleep(RECHECK).await;
            continue;
        }
        let socket = match open(&interface, index) {
            Ok(socket) => socket,
            Err(error) => {
                set(
                    &tx,
                    LinkState::Failed {
                        interface: interface.clone(),
                        error: error.to_string(),
                    },
                );
                tokio::time::sleep(RECHECK * 5).await;
                continue;
            }
        };
        if tx.borrow().router().is_none_or(|(_, i)| i != index) {
            set(
                &tx,
                LinkState::Waiting {
                    interface: interface.clone(),
                    index,
                },
            );
        }
        let mac = mac(&interface);
        let advertisement = RouterAdvertisement::presence(mac).encode();
        // ff02::2, all routers (RFC 4861 §6.3.7): ask for the router's RA at once.
        let to_routers = SocketAddrV6::new(ALL_ROUTERS, 0, 0, index);
        let _ = socket
            .get_ref()
            .send_to(&solicitation(mac), &to_routers.into());
        let mut next = Instant::now();
        let mut buf = vec![0u8; 1500];
        let mut control = vec![0u8; 128];
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {
                    // The interface may have gone, or come back as another one.
                    if sockopt::interface_index(&interface) != Some(index)
                        || crate::link_local::usable_on(index).is_none()
                    {
                        break;
                    }
                    let to = SocketAddrV6::new(ALL_NODES, 0, 0, index);
                    if socket.get_ref().send_to(&advertisement, &to.into()).is_ok() {
                        sent = sent.saturating_add(1);
                    }
                    next = Instant::now() + next_advertisement(sent);
                }
                received = receive(&socket, &mut buf, &mut control) => {
                    let Ok((len, source, control_len)) = received else { break };
                    let Some(source) = source else { continue };
                    let hop_limit = hop_limit_in(&control[..control_len]);
                    if let Ok(address) = router_from(*source.ip(), hop_limit, &buf[..len]) {
                        set(&tx, LinkState::Router {
                            interface: interface.clone(),
                            index,
                            address,
                        });
                    }
                }
                _ = tx.closed() => return,
            }
        }
    }
}

fn set(tx: &watch::Sender<LinkState>, state: LinkState) {
    tx.send_if_modified(|current| {
        let changed = *current != state;
        *current = state;
        changed
    });
}

fn open(interface: &str, index: u32) -> std::io::Result<AsyncFd<Socket>> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.set_multicast_if_v6(index)?;
    // RFC 4861 §6.1.2: receivers drop RAs whose hop limit is not 255.
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    socket.set_multicast_loop_v6(false)?;
    socket.set_recv_hoplimit_v6(true)?;
    socket.set_nonblocking(true)?;
    sockopt::async_fd(socket)
}

async fn receive(
    socket: &AsyncFd<Socket>,
    buf: &mut [u8],
    control: &mut [u8],
) -> std::io::Result<(usize, Option<SocketAddrV6>, usize)> {
    loop {
        let mut guard = socket.readable().await?;
        match guard.try_io(|inner| sockopt::recv_with_control(inner.get_ref(), buf, control)) {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

/// The interface's MAC address for the Source Link-Layer Address option (a SHOULD of
/// RFC 4861 §4.2; left out when it cannot be read).
fn mac(interface: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{interface}/address")).ok()?;
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|part| u8::from_str_radix(part, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    bytes.try_into().ok()
}
