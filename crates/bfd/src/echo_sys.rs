//! The packet socket of the Echo function: the one socket call socket2 has no safe
//! wrapper for (binding an AF_PACKET socket to an interface with sockaddr_ll), and the
//! classic BPF filter that keeps everything but arriving UDP-to-3785 frames out.
#![allow(unsafe_code)] // bind(2) with a sockaddr_ll; one call.

use std::io;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use crate::echo::{ECHO_PORT, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// A non-blocking raw AF_PACKET socket on interface `ifindex` that sends whole Ethernet
/// frames and receives only arriving UDP frames to port 3785 of `ethertype`
/// ([`ETHERTYPE_IPV4`] or [`ETHERTYPE_IPV6`]; see [`filter`]).
///
/// Created with protocol 0 (receives nothing), the filter attached, and only then bound
/// to the interface and that ethertype, so no unfiltered frame slips in (packet(7)).
pub fn echo_socket(ifindex: u32, ethertype: u16) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::PACKET,
        Type::RAW.nonblocking().cloexec(),
        Some(Protocol::from(0)),
    )?;
    socket.attach_filter(&filter())?;
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

/// Classic BPF (offsets from the Ethernet header): accept a frame only if it was not
/// sent by this host (pkttype != PACKET_OUTGOING), and is either IPv4, UDP, not a
/// fragment, to UDP port 3785, or IPv6 with UDP as next header (no extension headers,
/// as our Echo frames have none) to UDP port 3785. Everything else the kernel drops
/// before it reaches us, so the socket costs nothing for the node's other traffic on
/// that link. Sockets are bound to one ethertype; the program serves both.
pub fn filter() -> Vec<SockFilter> {
    program()
        .into_iter()
        .map(|(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
        .collect()
}

/// The instructions of [`filter`] as (code, jt, jf, k), testable without a socket.
fn program() -> Vec<(u16, u8, u8, u32)> {
    const LD_W_ABS: u16 = 0x20;
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const LDX_B_MSH: u16 = 0xb1;
    const LD_H_IND: u16 = 0x48;
    const JEQ_K: u16 = 0x15;
    const JSET_K: u16 = 0x45;
    const RET_K: u16 = 0x06;
    // SKF_AD_OFF + SKF_AD_PKTTYPE.
    const PKTTYPE: u32 = 0xffff_f000 + 4;
    const PACKET_OUTGOING: u32 = 4;
    // Jump offsets count from the next instruction: ACCEPT is 16, DROP 17.
    vec![
        (LD_W_ABS, 0, 0, PKTTYPE),                // 0
        (JEQ_K, 15, 0, PACKET_OUTGOING),          // 1: -> drop
        (LD_H_ABS, 0, 0, 12),                     // 2: ethertype
        (JEQ_K, 0, 7, u32::from(ETHERTYPE_IPV4)), // 3: else -> 11
        (LD_B_ABS, 0, 0, 23),                     // 4: IP protocol
        (JEQ_K, 0, 11, 17),                       // 5: UDP
        (LD_H_ABS, 0, 0, 20),                     // 6: flags + fragment offset
        (JSET_K, 9, 0, 0x1fff),                   // 7: a fragment -> drop
        (LDX_B_MSH, 0, 0, 14),                    // 8: X = IP header length
        (LD_H_IND, 0, 0, 16),                     // 9: UDP destination port
        (JEQ_K, 5, 6, u32::from(ECHO_PORT)),      // 10
        (JEQ_K, 0, 5, u32::from(ETHERTYPE_IPV6)), // 11
        (LD_B_ABS, 0, 0, 20),                     // 12: IPv6 next header
        (JEQ_K, 0, 3, 17),                        // 13: UDP
        (LD_H_ABS, 0, 0, 56),                     // 14: UDP destination port
        (JEQ_K, 0, 1, u32::from(ECHO_PORT)),      // 15
        (RET_K, 0, 0, 0xffff),                    // 16: accept
        (RET_K, 0, 0, 0),                         // 17: drop
    ]
}

/// Registers the socket with the tokio reactor.
pub fn async_fd(socket: Socket) -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    // SAFETY: the AsyncFd takes ownership of the Socket, which owns its fd; nothing
    // else closes or duplicates it while it is registered.
    let registered = unsafe { tokio::io::unix::AsyncFd::register(socket) };
    registered.map_err(|e| e.into_parts().1)
}

/// The kernel's usable IPv6 neighbour entries, over rtnetlink (an RTM_GETNEIGH dump;
/// the messages are built and parsed in [`crate::echo`]). Blocking, with a 1 s read
/// timeout; the kernel answers a dump at once.
pub fn ipv6_neighbours() -> io::Result<Vec<crate::echo::Neighbour6>> {
    let socket = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.cloexec(),
        Some(Protocol::from(libc::NETLINK_ROUTE)),
    )?;
    socket.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
    // Unbound and unconnected: the kernel autobinds a port id, and sends with no
    // address go to the kernel (netlink(7)).
    socket.send(&crate::echo::neighbour_dump_request(1))?;
    let mut entries = Vec::new();
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        let len = std::io::Read::read(&mut &socket, &mut buffer)?;
        let dump = crate::echo::parse_neighbour_dump(buffer.get(..len).unwrap_or(&[]));
        entries.extend(dump.entries);
        if dump.done || len == 0 {
            return Ok(entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::{EchoPacket, Mac, build_frame, build_frame6};

    /// A classic BPF interpreter for the instructions [`program`] uses (bpf(4) /
    /// Documentation/networking/filter.rst); `pkttype` is what SKF_AD_PKTTYPE loads.
    fn run(program: &[(u16, u8, u8, u32)], frame: &[u8], pkttype: u32) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let byte = |at: usize| frame.get(at).copied().map(u32::from);
        let half = |at: usize| Some(byte(at)? << 8 | byte(at + 1)?);
        loop {
            let Some(&(code, jt, jf, k)) = program.get(pc) else {
                return 0;
            };
            pc += 1;
            let loaded = match code {
                0x20 if k == 0xffff_f000 + 4 => Some(pkttype),
                0x28 => half(k as usize),
                0x30 => byte(k as usize),
                0x48 => half(x as usize + k as usize),
                0xb1 => {
                    let Some(b) = byte(k as usize) else {
                        return 0;
                    };
                    x = (b & 0x0f) * 4;
                    continue;
                }
                0x15 | 0x45 => {
                    let taken = if code == 0x15 { a == k } else { a & k != 0 };
                    pc += usize::from(if taken { jt } else { jf });
                    continue;
                }
                0x06 => return k,
                other => panic!("instruction {other:#x} not interpreted"),
            };
            // An out-of-bounds load ends the program: the frame is dropped.
            let Some(value) = loaded else {
                return 0;
            };
            a = value;
        }
    }

    const OURS: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const PEER: Mac = Mac([2, 0, 0, 0, 0, 2]);
    const HOST: u32 = 0;
    const OUTGOING: u32 = 4;

    #[test]
    fn the_filter_keeps_only_arriving_udp_3785_of_both_families() {
        let program = program();
        let echo = EchoPacket {
            discriminator: 1,
            sequence: 1,
        };
        let v4 = build_frame(OURS, PEER, "10.0.0.2".parse().unwrap(), 1, &echo);
        let v6 = build_frame6(OURS, PEER, "fd00::2".parse().unwrap(), &echo);
        assert_eq!(run(&program, &v4, HOST), 0xffff);
        assert_eq!(run(&program, &v6, HOST), 0xffff);
        // Our own transmissions, as the packet socket also sees them.
        assert_eq!(run(&program, &v4, OUTGOING), 0);
        assert_eq!(run(&program, &v6, OUTGOING), 0);
        // Another UDP port, another protocol, another ethertype.
        let mut port = v6;
        port[14 + 40 + 3] ^= 1;
        assert_eq!(run(&program, &port, HOST), 0);
        let mut tcp = v6;
        tcp[14 + 6] = 6;
        assert_eq!(run(&program, &tcp, HOST), 0);
        let mut arp = v6;
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(&program, &arp, HOST), 0);
        let mut port4 = v4;
        port4[14 + 20 + 3] ^= 1;
        assert_eq!(run(&program, &port4, HOST), 0);
        // An IPv4 fragment.
        let mut fragment = v4;
        fragment[14 + 7] = 1;
        assert_eq!(run(&program, &fragment, HOST), 0);
        // Truncated frames never read past the end (and are dropped).
        for cut in 0..v6.len() {
            assert!(run(&program, &v6[..cut], HOST) == 0 || cut > 14 + 40 + 3);
        }
    }
}
