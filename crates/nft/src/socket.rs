//! The shell: sends a batch on a NETLINK_NETFILTER socket and reads the kernel's
//! acknowledgements.

use std::fs::File;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::netlink::{Attrs, Batch, Family, MsgType, answers, request};
use crate::second_chance::{Link, Step};

/// The kernel refused a request of the batch (nothing of it took effect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub step: Step,
    pub error: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the kernel refused {}: {}", self.step, self.error)
    }
}

/// Runs `work` in this process's network namespace, or in the one at `netns` (a path
/// such as /run/netns/NAME) on a short-lived thread that entered it, so no thread of
/// this process changes namespace (tests program namespaces they created).
pub fn in_namespace<T: Send + 'static>(
    netns: Option<&Path>,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match netns {
        None => work(),
        Some(path) => {
            let path: PathBuf = path.to_path_buf();
            std::thread::spawn(move || {
                let file = File::open(&path)?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                work()
            })
            .join()
            .map_err(|_| io::Error::other("the namespace thread failed"))?
        }
    }
}

/// The interfaces of this namespace with an IPv4 subnet that has a broadcast address
/// (prefix shorter than /31; loopback excluded), for [`crate::Plan::with_links`]. The
/// address is computed from the prefix: the kernel routes the subnet's broadcast
/// address whether or not the address was added with one (`ip addr add` without
/// `brd +` sets none).
pub fn links_here() -> io::Result<Vec<Link>> {
    let mut links = Vec::new();
    for entry in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let address = entry.address.as_ref().and_then(|a| a.as_sockaddr_in());
        let netmask = entry.netmask.as_ref().and_then(|a| a.as_sockaddr_in());
        let (Some(address), Some(netmask)) = (address, netmask) else {
            continue;
        };
        let Some(broadcast) = subnet_broadcast(address.ip(), netmask.ip()) else {
            continue;
        };
        if address.ip().is_loopback() {
            continue;
        }
        if let Ok(index) = nix::net::if_::if_nametoindex(entry.interface_name.as_str()) {
            links.push(Link { index, broadcast });
        }
    }
    Ok(links)
}

/// The directed broadcast address of a subnet; `None` for /31 and /32 (RFC 3021:
/// no broadcast address).
fn subnet_broadcast(address: Ipv4Addr, netmask: Ipv4Addr) -> Option<Ipv4Addr> {
    let mask = u32::from(netmask);
    (mask.leading_ones() < 31).then(|| Ipv4Addr::from(u32::from(address) | !mask))
}

/// Whether this namespace has the table `name` of `family` (an nf_tables GETTABLE:
/// the kernel answers ENOENT when it has none), so that turning the second chance
/// off touches nothing on a host that never had it.
pub fn table_exists(family: Family, name: &str) -> io::Result<bool> {
    let socket = open()?;
    let seq = 1;
    socket.send(&request(
        MsgType::GetTable,
        family,
        seq,
        Attrs::new().string(1, name),
    ))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = (&socket).read(&mut buf)?;
        let got = answers(&buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if let Some(answer) = got.iter().find(|a| a.seq == seq) {
            return match answer.errno {
                0 => Ok(true),
                libc::ENOENT => Ok(false),
                errno => Err(io::Error::from_raw_os_error(errno)),
            };
        }
    }
}

/// Sends `batch` from this thread's network namespace (see [`in_namespace`]).
/// `Ok(Err(_))`: the kernel refused a request (typed with the step that failed);
/// `Err(_)`: the socket could not be used at all.
pub fn send(batch: Batch, steps: &[Step]) -> io::Result<Result<(), Refused>> {
    let socket = open()?;
    let first = batch.acked().start;
    let (bytes, acked) = batch.finish();
    socket.send(&bytes)?;
    let mut waiting: std::collections::BTreeSet<u32> = acked.collect();
    let mut buf = vec![0u8; 1 << 16];
    while !waiting.is_empty() {
        let n = (&socket).read(&mut buf)?;
        let got = answers(&buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        for answer in got {
            waiting.remove(&answer.seq);
            if answer.errno != 0 {
                let step = answer
                    .seq
                    .checked_sub(first)
                    .and_then(|i| steps.get(i as usize))
                    .cloned()
                    .unwrap_or_else(|| format!("request {}", answer.seq));
                return Ok(Err(Refused {
                    step,
                    error: io::Error::from_raw_os_error(answer.errno).to_string(),
                }));
            }
        }
    }
    Ok(Ok(()))
}

fn open() -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.cloexec(),
        Some(Protocol::from(libc::NETLINK_NETFILTER)),
    )?;
    socket.set_send_buffer_size(1 << 20)?;
    socket.set_recv_buffer_size(1 << 20)?;
    // A kernel that never answers is an error, not a hang.
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broadcast_address_is_the_subnets_last() {
        let b = |a: &str, m: &str| subnet_broadcast(a.parse().unwrap(), m.parse().unwrap());
        assert_eq!(
            b("10.77.0.11", "255.255.255.0"),
            Some("10.77.0.255".parse().unwrap())
        );
        assert_eq!(
            b("192.168.1.5", "255.255.254.0"),
            Some("192.168.1.255".parse().unwrap())
        );
        assert_eq!(b("10.0.0.1", "255.255.255.254"), None);
        assert_eq!(b("10.0.0.1", "255.255.255.255"), None);
    }
}
