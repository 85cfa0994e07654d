//! Loss and delay on a link without the netem qdisc (this project's CI kernel has
//! none): `oxlb lab-relay`, run inside the LAN namespace, copies every frame between a
//! node's bridge port and a veth whose other end took the port's place on the bridge,
//! dropping a share of them and holding the rest for a fixed delay.
//!
//! ```text
//!  node lan0 ══ nodeN ⇄ relay ⇄ cxN ══ cxbN ── br0
//! ```
//!
//! AF_PACKET sockets (packet(7)) with PACKET_VNET_HDR, so segmentation and checksum
//! offload state travel with each frame (a TSO super-frame or a frame whose checksum
//! the NIC was to fill in is passed on as such), and PACKET_IGNORE_OUTGOING, so the
//! relay does not read back the frames it sends.
#![allow(unsafe_code)] // socket(2)/bind(2)/setsockopt(2)/recv(2)/send(2) on AF_PACKET.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::plan::Rng;

const ETH_P_ALL: u16 = 0x0003;
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// A TSO/GRO super-frame plus the 10-byte virtio header.
const MAX_FRAME: usize = 65_536 + 64;

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The node's bridge port.
    pub port: String,
    /// The veth facing the bridge.
    pub via: String,
    pub loss_percent: u8,
    pub delay: Duration,
    pub seed: u64,
}

fn ifindex(name: &str) -> io::Result<i32> {
    // `ip netns exec` mounts the namespace's own sysfs.
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .map_err(|e| io::Error::other(format!("no interface {name}: {e}")))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("bad ifindex for {name}: {text:?}")))
}

fn set_int(
    fd: &OwnedFd,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid fd, a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A raw socket on one interface, every protocol, with the virtio header.
fn packet_socket(interface: &str) -> io::Result<OwnedFd> {
    let index = ifindex(interface)?;
    // SAFETY: plain socket(2); the fd is owned right after.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            0, // receive nothing until bound to the interface (packet(7))
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_int(&fd, libc::SOL_PACKET, PACKET_VNET_HDR, 1)?;
    set_int(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)?;
    let address = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETH_P_ALL.to_be(),
        sll_ifindex: index,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: a live sockaddr_ll and its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const address).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn send(fd: &OwnedFd, frame: &[u8]) -> io::Result<usize> {
    // SAFETY: `frame` is readable for its length; the socket is bound, so no address.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Copies frames `from` -> `to` until an error: drops `loss_percent` of them, sends
/// the rest `delay` after they arrived, in order.
fn direction(from: OwnedFd, to: OwnedFd, loss_percent: u8, delay: Duration, seed: u64) {
    let (queue, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        for (at, frame) in due {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            // A frame the other side cannot take (link down) is simply lost.
            let _ = send(&to, &frame);
        }
    });
    let mut rng = Rng::new(seed);
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let Ok(n) = recv(&from, &mut buf) else {
            // EINTR or the interface going away: keep going; a vanished interface
            // ends the relay when it is killed.
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        if rng.between(1, 100) <= u64::from(loss_percent) {
            continue;
        }
        if queue
            .send((Instant::now() + delay, buf[..n].to_vec()))
            .is_err()
        {
            return;
        }
    }
}

/// Runs until killed.
pub fn run(options: &RelayOptions) -> io::Result<()> {
    let port_in = packet_socket(&options.port)?;
    let via_in = packet_socket(&options.via)?;
    let port_out = port_in.try_clone()?;
    let via_out = via_in.try_clone()?;
    let (loss, delay, seed) = (options.loss_percent, options.delay, options.seed);
    let up = std::thread::spawn(move || direction(port_in, via_out, loss, delay, seed));
    direction(via_in, port_out, loss, delay, seed ^ 0x5555_5555);
    let _ = up.join();
    Ok(())
}
