//! The few socket calls socket2 has no safe wrapper for: binding an AF_PACKET socket
//! to one interface (sockaddr_ll), packet-level multicast membership (packet_mreq) and
//! binding a NETLINK_ROUTE socket to the link multicast group (sockaddr_nl).
#![allow(unsafe_code)] // bind(2)/setsockopt(2) with kernel structs; each call is one line.

use std::io;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

use crate::ethernet::Mac;

/// A non-blocking raw AF_PACKET socket receiving `ethertype` frames of one interface.
///
/// Created with protocol 0 (receives nothing) and only then bound to the interface
/// and protocol, so no frame of another interface slips in between socket() and
/// bind() (packet(7)).
pub fn packet_socket(ifindex: u32, ethertype: u16) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::PACKET,
        Type::RAW.nonblocking().cloexec(),
        Some(Protocol::from(0)),
    )?;
    let address = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ethertype.to_be(),
        sll_ifindex: i32::try_from(ifindex).map_err(io::Error::other)?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `address` is a valid sockaddr_ll living across the call, and the length
    // passed is its size.
    let rc = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&raw const address).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// Joins (or leaves) a link-layer multicast group on the socket's interface, so a NIC
/// that filters multicast passes frames for an IPv6 solicited-node group up to us
/// (packet(7) PACKET_ADD_MEMBERSHIP). Memberships end when the socket closes.
pub fn packet_membership(socket: &Socket, ifindex: u32, group: Mac, join: bool) -> io::Result<()> {
    let mut address = [0u8; 8];
    address[..6].copy_from_slice(&group.0);
    let request = libc::packet_mreq {
        mr_ifindex: i32::try_from(ifindex).map_err(io::Error::other)?,
        mr_type: libc::PACKET_MR_MULTICAST as u16,
        mr_alen: 6,
        mr_address: address,
    };
    let option = if join {
        libc::PACKET_ADD_MEMBERSHIP
    } else {
        libc::PACKET_DROP_MEMBERSHIP
    };
    // SAFETY: `request` is a valid packet_mreq living across the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            option,
            (&raw const request).cast::<libc::c_void>(),
            size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking NETLINK_ROUTE socket subscribed to link changes (RTMGRP_LINK) and
/// address changes, so interface selection is redone on events rather than by polling.
pub fn link_events_socket() -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.nonblocking().cloexec(),
        Some(Protocol::from(libc::NETLINK_ROUTE)),
    )?;
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    let mut address: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    address.nl_family = libc::AF_NETLINK as u16;
    address.nl_groups =
        (libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR) as u32;
    // SAFETY: `address` is a valid sockaddr_nl living across the call, with its size.
    let rc = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&raw const address).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// Registers a socket with the tokio reactor.
pub fn async_fd(socket: Socket) -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    // SAFETY: the AsyncFd takes ownership of the Socket, which owns its fd; nothing
    // else closes or duplicates it while it is registered.
    let registered = unsafe { tokio::io::unix::AsyncFd::register(socket) };
    registered.map_err(|e| e.into_parts().1)
}
