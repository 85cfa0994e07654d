//! The two socket options std and tokio do not expose: TCP_MD5SIG (RFC 2385 TCP MD5
//! signatures, Linux `struct tcp_md5sig`) and the IP TTL / IPv6 hop limit set before the
//! SYN leaves (RFC 4271 eBGP single-hop uses TTL 1, multihop 255).
#![allow(unsafe_code)] // setsockopt has no safe wrapper for these; each call is one line.

use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;

/// TCP_MD5SIG_MAXKEYLEN in linux/tcp.h.
const MAX_KEY: usize = 80;

/// Linux `struct tcp_md5sig`.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; MAX_KEY],
}

/// TCP_MD5SIG_EXT and TCP_MD5SIG_FLAG_IFINDEX (linux/tcp.h, Linux 5.6+): a key scoped
/// to one L3 master device (a VRF).
const TCP_MD5SIG_EXT: libc::c_int = 32;
const TCP_MD5SIG_FLAG_IFINDEX: u8 = 0x2;

/// Installs (or with an empty key removes) the MD5 key for `peer` on socket `fd`. On an
/// IPv6 socket an IPv4 peer is written in its IPv4-mapped form, as the kernel sees it.
/// `vrf`: the ifindex of the VRF the socket is bound to; the key is then scoped to that
/// VRF (TCP_MD5SIG_EXT with TCP_MD5SIG_FLAG_IFINDEX), so the same peer address in
/// another VRF does not share it.
pub fn set_md5(
    fd: RawFd,
    socket_v6: bool,
    peer: IpAddr,
    key: &[u8],
    vrf: Option<u32>,
) -> io::Result<()> {
    if key.len() > MAX_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP MD5 password longer than 80 octets",
        ));
    }
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut sig = TcpMd5Sig {
        addr: unsafe { std::mem::zeroed() },
        flags: if vrf.is_some() {
            TCP_MD5SIG_FLAG_IFINDEX
        } else {
            0
        },
        prefix_len: 0,
        key_len: key.len() as u16,
        ifindex: vrf.map_or(0, |i| i as libc::c_int),
        key: [0; MAX_KEY],
    };
    sig.key[..key.len()].copy_from_slice(key);
    let storage = &mut sig.addr as *mut libc::sockaddr_storage;
    match (socket_v6, peer) {
        (false, IpAddr::V4(a)) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { storage.cast::<libc::sockaddr_in>().write(sin) };
        }
        (true, peer) => {
            let v6 = match peer {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { storage.cast::<libc::sockaddr_in6>().write(sin6) };
        }
        (false, IpAddr::V6(_)) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "IPv6 peer on an IPv4 socket",
            ));
        }
    }
    let option = if vrf.is_some() {
        TCP_MD5SIG_EXT
    } else {
        libc::TCP_MD5SIG
    };
    setsockopt(fd, libc::IPPROTO_TCP, option, &sig)
}

/// TTL (IPv4) or unicast hop limit (IPv6) of packets sent on `fd`.
pub fn set_ttl(fd: RawFd, socket_v6: bool, ttl: u8) -> io::Result<()> {
    let value = libc::c_int::from(ttl);
    if socket_v6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &value)?;
    }
    // A dual-stack IPv6 socket may carry IPv4: set both where it applies.
    match setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &value) {
        Err(e) if socket_v6 => {
            let _ = e;
            Ok(())
        }
        other => other,
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised T of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The index of interface `name` in this network namespace (`if_nametoindex(3)`), or
/// None when there is no such interface.
pub fn interface_index(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// One datagram from a raw socket with its source and ancillary data (`recvmsg(2)`):
/// (length, source, control length). `control` receives the ancillary data.
pub fn recv_with_control(
    socket: &socket2::Socket,
    buf: &mut [u8],
    control: &mut [u8],
) -> io::Result<(usize, Option<std::net::SocketAddrV6>, usize)> {
    use std::mem::MaybeUninit;
    let mut source = socket2::SockAddr::from(std::net::SocketAddrV6::new(
        std::net::Ipv6Addr::UNSPECIFIED,
        0,
        0,
        0,
    ));
    // SAFETY: [u8] and [MaybeUninit<u8>] have the same layout, and recvmsg only writes
    // initialised bytes into both buffers.
    let data = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    // SAFETY: as above.
    let control = unsafe { &mut *(control as *mut [u8] as *mut [MaybeUninit<u8>]) };
    let mut bufs = [socket2::MaybeUninitSlice::new(data)];
    let mut msg = socket2::MsgHdrMut::new()
        .with_addr(&mut source)
        .with_buffers(&mut bufs)
        .with_control(control);
    let len = socket.recvmsg(&mut msg, 0)?;
    let control_len = msg.control_len();
    Ok((len, source.as_socket_ipv6(), control_len))
}

/// Registers a socket with the tokio reactor.
pub fn async_fd(socket: socket2::Socket) -> io::Result<tokio::io::unix::AsyncFd<socket2::Socket>> {
    // SAFETY: the AsyncFd takes ownership of the Socket, which owns its fd; nothing
    // else closes or duplicates it while it is registered.
    let registered = unsafe { tokio::io::unix::AsyncFd::register(socket) };
    registered.map_err(|e| e.into_parts().1)
}
