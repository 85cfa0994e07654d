//! The sockets of the shell: one receive socket per (family, single/multi hop) on the
//! well-known port, reporting each datagram's TTL / hop limit and destination address;
//! one transmit socket per session, bound to the local address and a source port in
//! 49152..=65535, sending with TTL 255.
//!
//! RFC 5881 §4 (single hop, UDP 3784) and RFC 5883 §5 (multihop, UDP 4784).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

pub const SINGLE_HOP_PORT: u16 = 3784;
pub const MULTI_HOP_PORT: u16 = 4784;
/// RFC 5881 §4: "The source port MUST be in the range 49152 through 65535."
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// RFC 5881 §5 / RFC 5883 §5: packets are sent with TTL / hop limit 255.
pub const SEND_TTL: u32 = 255;

/// One received datagram with what the IP header said about it.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub bytes: [u8; 64],
    pub len: usize,
    pub source: IpAddr,
    /// Destination address of the packet (IP_PKTINFO / IPV6_PKTINFO), if reported.
    pub destination: Option<IpAddr>,
    /// Received TTL / hop limit (IP_RECVTTL / IPV6_RECVHOPLIMIT); 0 if not reported.
    pub ttl: u8,
    /// Interface the packet came in on (from the same PKTINFO), if reported.
    pub interface: Option<u32>,
    pub multihop: bool,
}

impl Datagram {
    pub fn payload(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// Binds a receive socket on the single- or multihop port at `local`, this side's
/// address of the sessions it serves (with `interface` as the scope of an IPv6
/// link-local address).
///
/// At the session's own address, not the wildcard: two processes on one host that
/// both run BFD from different addresses (the control-plane VIP's `oxlb run` with its
/// `sourceAddress` beside `oxlb speaker`) each get their own peers' packets. Two
/// wildcard sockets on 3784 with SO_REUSEADDR bind without error, but Linux delivers
/// every unicast datagram to one of them only, so the other side's sessions would
/// silently time out; a socket at a specific address is preferred over a wildcard one
/// for datagrams to that address. SO_REUSEADDR stays so a wildcard listener already on
/// the port (a bfdd) does not make the bind fail.
pub fn bind_receiver(
    local: IpAddr,
    interface: Option<u32>,
    multihop: bool,
) -> io::Result<UdpSocket> {
    let port = if multihop {
        MULTI_HOP_PORT
    } else {
        SINGLE_HOP_PORT
    };
    let ipv6 = local.is_ipv6();
    let address = destination(local, port, interface);
    let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    if ipv6 {
        socket.set_only_v6(true)?;
        setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
        setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
    } else {
        setsockopt(&socket, sockopt::Ipv4RecvTtl, &true).map_err(io::Error::from)?;
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
    }
    // Bound to the session's device: an interface (link-local peers) or a VRF's master
    // device, without which a socket outside the VRF never sees the VRF's packets
    // (`net.ipv4.udp_l3mdev_accept=0`, the default; Documentation/networking/vrf.rst).
    if let Some(index) = interface.and_then(NonZeroU32::new) {
        if ipv6 {
            socket.bind_device_by_index_v6(Some(index))?;
        } else {
            socket.bind_device_by_index_v4(Some(index))?;
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}

/// Receives one datagram with its TTL and destination address.
pub async fn receive(socket: &UdpSocket, multihop: bool) -> io::Result<Datagram> {
    socket
        .async_io(Interest::READABLE, || receive_now(socket, multihop))
        .await
}

fn receive_now(socket: &UdpSocket, multihop: bool) -> io::Result<Datagram> {
    let mut bytes = [0u8; 64];
    let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo, nix::libc::c_int);
    let mut iov = [IoSliceMut::new(&mut bytes)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let len = message.bytes;
    let source = message
        .address
        .as_ref()
        .and_then(storage_ip)
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let mut ttl = 0u8;
    let mut destination = None;
    let mut interface = None;
    for control in message.cmsgs().map_err(io::Error::from)? {
        match control {
            ControlMessageOwned::Ipv4Ttl(value) | ControlMessageOwned::Ipv6HopLimit(value) => {
                ttl = u8::try_from(value).unwrap_or(0);
            }
            ControlMessageOwned::Ipv4PacketInfo(info) => {
                destination = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            }
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                destination = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                interface = Some(info.ipi6_ifindex);
            }
            _ => {}
        }
    }
    Ok(Datagram {
        bytes,
        len: len.min(64),
        source: unmap(source),
        destination: destination.map(unmap),
        ttl,
        interface,
        multihop,
    })
}

fn storage_ip(storage: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    storage.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The index of a network interface by name (for [`crate::PeerKey::interface`]).
pub fn interface_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(io::Error::from)
}

/// The name of the interface with index `ifindex` in this process's network namespace.
pub fn interface_name(ifindex: u32) -> Option<String> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .map(|a| a.interface_name)
        .find(|name| interface_index(name).ok() == Some(ifindex))
}

/// The link-layer address of interface `name` (from getifaddrs, so it is the one of
/// this process's network namespace).
pub fn interface_mac(name: &str) -> Option<crate::echo::Mac> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|a| a.interface_name == name)
        .find_map(|a| {
            let link = a.address?;
            let bytes = link.as_link_addr()?.addr()?;
            Some(crate::echo::Mac(bytes))
        })
}

/// Where to send: the peer's port, with the interface as scope for IPv6 link-local.
pub fn destination(peer: IpAddr, port: u16, interface: Option<u32>) -> SocketAddr {
    match peer {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, interface.unwrap_or(0)))
        }
        other => SocketAddr::new(other, port),
    }
}

/// A session's transmit socket: bound to `local` and a free port in 49152..=65535
/// (the same port for the life of the session, RFC 5881 §4), TTL 255, and to the
/// interface when one is given (single hop: the packets must leave on that link).
pub fn bind_sender(local: IpAddr, interface: Option<u32>, first_try: u16) -> io::Result<UdpSocket> {
    let domain = if local.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let offset = u32::from(first_try) % span;
    let mut last_error = io::Error::other("no free source port in 49152..65535");
    // Try every port at most once, starting somewhere spread by the caller.
    for step in 0..span {
        let port = u16::try_from((offset + step) % span + u32::from(*SOURCE_PORTS.start()))
            .unwrap_or(*SOURCE_PORTS.start());
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        let index = interface.and_then(NonZeroU32::new);
        if local.is_ipv6() {
            socket.set_only_v6(true)?;
            socket.set_unicast_hops_v6(SEND_TTL)?;
            if index.is_some() {
                socket.bind_device_by_index_v6(index)?;
            }
        } else {
            socket.set_ttl_v4(SEND_TTL)?;
            if index.is_some() {
                socket.bind_device_by_index_v4(index)?;
            }
        }
        socket.set_nonblocking(true)?;
        match socket.bind(&destination(local, port, interface).into()) {
            Ok(()) => return UdpSocket::from_std(socket.into()),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => last_error = error,
            Err(error) => return Err(error),
        }
    }
    Err(last_error)
}
