//! Host addresses by rtnetlink, in batch: thousands of add/remove requests packed
//! into few `sendmsg` calls (the kernel handles every request of a buffer in one go
//! and acknowledges each), and the addresses of one interface read back by one dump.
//! One `ip` process per address took 27 s for 10,000 addresses (issue 22).
//!
//! Blocking calls (a few milliseconds of kernel work per thousand addresses): async
//! callers run them in `spawn_blocking`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::netlink::{self, AddrOp, Answer};

/// The most request bytes per `sendmsg` (about 800 IPv4 requests): the
/// acknowledgements of one chunk (36 bytes each) stay well inside the receive buffer.
const CHUNK_BYTES: usize = 32 * 1024;
/// EADDRNOTAVAIL: removing an address that is not there (already gone: fine).
const EADDRNOTAVAIL: i32 = 99;
/// ESRCH: removing a route that is not there (already gone: fine).
const ESRCH: i32 = 3;

/// A request packer of [`crate::netlink`].
type Pack = fn(&mut Vec<u8>, AddrOp, &IpAddr, u32, u32);

/// A NETLINK_ROUTE socket in one network namespace, bound to one interface.
#[derive(Debug)]
pub struct HostAddrs {
    socket: Socket,
    index: u32,
    seq: u32,
}

/// Requests the kernel refused: how many, and the first few with their errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub count: usize,
    pub first: Vec<(IpAddr, i32)>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the kernel refused {} address change(s)", self.count)?;
        for (ip, errno) in &self.first {
            write!(f, "; {ip}: {}", io::Error::from_raw_os_error(*errno))?;
        }
        Ok(())
    }
}

impl HostAddrs {
    /// Opens the socket for `interface`, in the namespace at `netns` (a path such as
    /// /run/netns/NAME) or, with `None`, this process's own.
    pub fn open(netns: Option<&Path>, interface: &str) -> io::Result<HostAddrs> {
        let (socket, index) = match netns {
            None => open_here(interface)?,
            Some(path) => {
                // A socket belongs to the namespace its creator was in: create it on a
                // short-lived thread that entered the namespace, so this process's
                // threads never change namespace.
                let path: PathBuf = path.to_path_buf();
                let interface = interface.to_string();
                std::thread::spawn(move || {
                    let file = File::open(&path)?;
                    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(io::Error::from)?;
                    open_here(&interface)
                })
                .join()
                .map_err(|_| io::Error::other("the netlink opener thread failed"))??
            }
        };
        Ok(HostAddrs {
            socket,
            index,
            seq: 0,
        })
    }

    /// The interface's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The addresses on the interface (IPv6 link-local ones included).
    pub fn list(&mut self) -> io::Result<BTreeSet<IpAddr>> {
        self.seq = self.seq.wrapping_add(1);
        let index = self.index;
        Ok(dump(&self.socket, self.seq)?
            .into_iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, ip)| ip)
            .collect())
    }

    /// The destinations of the local routes oxlb put on the interface (table
    /// `local`, `proto static`, /32 or /128; see [`Self::change_local_routes`]).
    pub fn list_local_routes(&mut self) -> io::Result<BTreeSet<IpAddr>> {
        self.seq = self.seq.wrapping_add(1);
        let index = self.index;
        Ok(route_dump(&self.socket, self.seq)?
            .into_iter()
            .filter(|r| {
                r.oif == Some(index)
                    && r.table == netlink::RT_TABLE_LOCAL
                    && r.protocol == netlink::RTPROT_STATIC
                    && r.prefix == if r.dst.is_ipv4() { 32 } else { 128 }
            })
            .map(|r| r.dst)
            .collect())
    }

    /// Adds or removes every address in `ips` (as /32 or /128). Adding one that is
    /// there and removing one that is not both succeed. `Ok(Err(refused))`: the
    /// others were done, these were refused.
    pub fn change(&mut self, op: AddrOp, ips: &[IpAddr]) -> io::Result<Result<(), Refused>> {
        self.batch(op, ips, netlink::push_addr_request, EADDRNOTAVAIL)
    }

    /// Adds or removes a local route (table `local`, through this interface) for every
    /// IP in `ips`: the host accepts their traffic as its own, like an address, at a
    /// fraction of the kernel's cost per address (10,000 both ways in well under a
    /// second; figures in the `batch_figures` benchmark of oxlb-standalone's
    /// tests/vips.rs). Idempotent like [`Self::change`].
    pub fn change_local_routes(
        &mut self,
        op: AddrOp,
        ips: &[IpAddr],
    ) -> io::Result<Result<(), Refused>> {
        self.batch(op, ips, netlink::push_local_route_request, ESRCH)
    }

    fn batch(
        &mut self,
        op: AddrOp,
        ips: &[IpAddr],
        pack: Pack,
        gone_errno: i32,
    ) -> io::Result<Result<(), Refused>> {
        let mut refused = Refused {
            count: 0,
            first: Vec::new(),
        };
        let mut buf = vec![0u8; 64 * 1024];
        for chunk in chunks(ips) {
            let mut request = Vec::with_capacity(CHUNK_BYTES + 128);
            let first_seq = self.seq.wrapping_add(1);
            for ip in chunk {
                self.seq = self.seq.wrapping_add(1);
                pack(&mut request, op, ip, self.index, self.seq);
            }
            self.socket.send(&request)?;
            let mut pending = chunk.len();
            while pending > 0 {
                let n = (&self.socket).read(&mut buf)?;
                for answer in netlink::parse(buf.get(..n).unwrap_or_default()) {
                    let Answer::Ack { seq, errno } = answer else {
                        continue;
                    };
                    let Some(at) = seq.wrapping_sub(first_seq).try_into().ok() else {
                        continue;
                    };
                    let Some(ip) = chunk.get::<usize>(at) else {
                        continue;
                    };
                    pending = pending.saturating_sub(1);
                    let gone_already = op == AddrOp::Remove && errno == -gone_errno;
                    if errno != 0 && !gone_already {
                        refused.count += 1;
                        if refused.first.len() < 3 {
                            refused.first.push((*ip, -errno));
                        }
                    }
                }
            }
        }
        Ok(if refused.count == 0 {
            Ok(())
        } else {
            Err(refused)
        })
    }
}

/// Every address of this process's network namespace, with its interface index.
pub fn all_addresses() -> io::Result<Vec<(u32, IpAddr)>> {
    let socket = netlink_socket()?;
    dump(&socket, 1)
}

/// Every local route of this process's network namespace (destination, prefix
/// length): the kernel takes their destinations as its own, like addresses.
pub fn local_routes() -> io::Result<Vec<(IpAddr, u8)>> {
    let socket = netlink_socket()?;
    Ok(route_dump(&socket, 1)?
        .into_iter()
        .map(|r| (r.dst, r.prefix))
        .collect())
}

/// One local route of a dump.
struct LocalRoute {
    dst: IpAddr,
    prefix: u8,
    table: u32,
    protocol: u8,
    oif: Option<u32>,
}

fn route_dump(socket: &Socket, seq: u32) -> io::Result<Vec<LocalRoute>> {
    socket.send(&netlink::route_dump_request(seq))?;
    let mut found = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = (&*socket).read(&mut buf)?;
        for answer in netlink::parse(buf.get(..n).unwrap_or_default()) {
            match answer {
                Answer::LocalRoute {
                    dst,
                    prefix,
                    table,
                    protocol,
                    oif,
                } => found.push(LocalRoute {
                    dst,
                    prefix,
                    table,
                    protocol,
                    oif,
                }),
                Answer::Done { seq: done } if done == seq => return Ok(found),
                Answer::Ack { seq: s, errno } if s == seq && errno != 0 => {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                _ => {}
            }
        }
    }
}

fn dump(socket: &Socket, seq: u32) -> io::Result<Vec<(u32, IpAddr)>> {
    socket.send(&netlink::dump_request(seq))?;
    let mut found = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = (&*socket).read(&mut buf)?;
        for answer in netlink::parse(buf.get(..n).unwrap_or_default()) {
            match answer {
                Answer::Address { index, ip } => found.push((index, ip)),
                Answer::Done { seq: done } if done == seq => return Ok(found),
                Answer::Ack { seq: s, errno } if s == seq && errno != 0 => {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                _ => {}
            }
        }
    }
}

/// Slices of `ips` whose requests fit one send each.
fn chunks(ips: &[IpAddr]) -> std::slice::Chunks<'_, IpAddr> {
    // The largest request (an IPv6 add) is 72 bytes.
    ips.chunks((CHUNK_BYTES / 72).max(1))
}

fn open_here(interface: &str) -> io::Result<(Socket, u32)> {
    let socket = netlink_socket()?;
    let index = nix::net::if_::if_nametoindex(interface).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("no interface {interface:?}: {e}"),
        )
    })?;
    Ok((socket, index))
}

fn netlink_socket() -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.cloexec(),
        Some(Protocol::from(libc::NETLINK_ROUTE)),
    )?;
    // Room for a chunk's acknowledgements and a dump's parts; a stuck kernel answer
    // is an error, not a hang.
    socket.set_recv_buffer_size(1 << 20)?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(socket)
}
