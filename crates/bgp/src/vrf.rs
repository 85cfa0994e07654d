//! Sessions inside a Linux VRF (`vrf: NAME` on a BGPPeer): the socket is bound to the
//! VRF's master device (SO_BINDTODEVICE), so its route lookups, source address and
//! next hop come from the VRF's table and interfaces (Documentation/networking/vrf.rst:
//! "applications that are to work within a VRF need to bind their socket to the VRF
//! device").
//!
//! The decision whether a name is a usable VRF is pure ([`classify`]); [`resolve`] only
//! looks the device up. A name that is missing or not a VRF is an error on that peer:
//! never a session in the default VRF instead.
#![allow(unsafe_code)] // SO_BINDTODEVICE and the ethtool ioctl have no safe wrapper.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;

/// Why a peer's `vrf` cannot be used on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VrfError {
    /// No network device of that name.
    Missing { vrf: String },
    /// A device of that name exists but is not a VRF (its driver is `driver`).
    NotAVrf { vrf: String, driver: String },
    /// Looking the device up failed.
    Lookup { vrf: String, error: String },
}

impl fmt::Display for VrfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VrfError::Missing { vrf } => write!(
                f,
                "VRF {vrf} does not exist on this node: no session is opened (never one in \
                 another VRF); create it (ip link add {vrf} type vrf table N; ip link set \
                 {vrf} up; ip link set UPLINK master {vrf}) or fix spec.vrf"
            ),
            VrfError::NotAVrf { vrf, driver } => write!(
                f,
                "{vrf} is not a VRF device on this node (it is a {driver} device): no \
                 session is opened; spec.vrf must name a Linux VRF (ip link add {vrf} type \
                 vrf table N)"
            ),
            VrfError::Lookup { vrf, error } => {
                write!(f, "cannot look up VRF {vrf}: {error}; no session is opened")
            }
        }
    }
}

/// The kernel's VRF driver name (drivers/net/vrf.c `DRV_NAME`), as ethtool reports it.
pub const VRF_DRIVER: &str = "vrf";

/// Pure: what a lookup of `vrf` found (`None`: no such device; else its ifindex and
/// driver name) means for a session in it.
pub fn classify(vrf: &str, found: Option<(u32, &str)>) -> Result<u32, VrfError> {
    match found {
        None => Err(VrfError::Missing {
            vrf: vrf.to_string(),
        }),
        Some((index, VRF_DRIVER)) => Ok(index),
        Some((_, driver)) => Err(VrfError::NotAVrf {
            vrf: vrf.to_string(),
            driver: if driver.is_empty() {
                "non-VRF".into()
            } else {
                driver.to_string()
            },
        }),
    }
}

/// The interface index of VRF device `vrf`, or why it cannot be used.
pub fn resolve(vrf: &str) -> Result<u32, VrfError> {
    let lookup = |e: io::Error| VrfError::Lookup {
        vrf: vrf.to_string(),
        error: e.to_string(),
    };
    let Ok(name) = std::ffi::CString::new(vrf) else {
        return Err(VrfError::Missing {
            vrf: vrf.to_string(),
        });
    };
    // SAFETY: `name` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => classify(vrf, None),
            _ => Err(lookup(error)),
        };
    }
    let driver = driver_of(vrf).map_err(lookup)?;
    classify(vrf, Some((index, &driver)))
}

/// Linux `struct ethtool_drvinfo` (linux/ethtool.h).
#[repr(C)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;

/// The driver name of device `name` (ETHTOOL_GDRVINFO, what `ethtool -i` prints).
/// Devices without ethtool support give an empty name.
fn driver_of(name: &str) -> io::Result<String> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    // SAFETY: all-zero is a valid DrvInfo and ifreq.
    let mut info: DrvInfo = unsafe { std::mem::zeroed() };
    info.cmd = ETHTOOL_GDRVINFO;
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_data = (&mut info as *mut DrvInfo).cast::<libc::c_char>();
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `request` points at a live ifreq whose data points at a live DrvInfo.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL as _, &mut request) };
    let error = io::Error::last_os_error();
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return match error.raw_os_error() {
            Some(libc::EOPNOTSUPP) => Ok(String::new()),
            _ => Err(error),
        };
    }
    let end = info.driver.iter().position(|b| *b == 0).unwrap_or(32);
    Ok(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}

/// Binds socket `fd` to network device `device` (SO_BINDTODEVICE): for a VRF device,
/// the socket then lives in that VRF.
pub fn bind_to_device(fd: RawFd, device: &str) -> io::Result<()> {
    // SAFETY: `device` points at `device.len()` readable bytes.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            device.as_ptr().cast::<libc::c_void>(),
            device.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Pure: the error for a peer the kernel has no route to inside `vrf` (`error`: what
/// connect(2) said), naming the VRF's interfaces (`members`) and the fix. A VRF that
/// exists but does not hold the uplink toward the peer is the usual cause.
pub fn unreachable_in(vrf: &str, peer: IpAddr, members: &[String], error: &str) -> String {
    let fix = format!(
        "enslave the interface toward the peer (ip link set UPLINK master {vrf}), or fix \
         spec.vrf / spec.peerAddress"
    );
    if members.is_empty() {
        format!("{peer} is unreachable in VRF {vrf} ({error}): the VRF has no interface; {fix}")
    } else {
        format!(
            "{peer} is unreachable in VRF {vrf} ({error}): none of its interfaces ({}) \
             routes to it; {fix}, or add a route in the VRF's table",
            members.join(", ")
        )
    }
}

/// The interfaces enslaved to `vrf`, sorted: the `lower_IFNAME` links sysfs keeps in the
/// master device's directory. Empty when there are none or the VRF cannot be read.
pub fn members(vrf: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/sys/class/net/{vrf}"))
        .map(|dir| {
            dir.filter_map(|entry| {
                let name = entry.ok()?.file_name();
                Some(name.to_str()?.strip_prefix("lower_")?.to_string())
            })
            .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_vrf_device_is_a_vrf() {
        assert_eq!(classify("red", Some((7, "vrf"))), Ok(7));
        assert_eq!(
            classify("red", None),
            Err(VrfError::Missing { vrf: "red".into() })
        );
        assert_eq!(
            classify("eth0", Some((2, "virtio_net"))),
            Err(VrfError::NotAVrf {
                vrf: "eth0".into(),
                driver: "virtio_net".into()
            })
        );
        assert!(matches!(
            classify("lo", Some((1, ""))),
            Err(VrfError::NotAVrf { driver, .. }) if driver == "non-VRF"
        ));
    }

    #[test]
    fn the_errors_name_the_vrf_and_the_fix_and_never_promise_a_default_vrf_session() {
        let missing = VrfError::Missing { vrf: "red".into() }.to_string();
        assert!(missing.contains("VRF red does not exist"), "{missing}");
        assert!(missing.contains("ip link add red type vrf"), "{missing}");
        assert!(missing.contains("no session is opened"), "{missing}");
        let not = VrfError::NotAVrf {
            vrf: "eth0".into(),
            driver: "veth".into(),
        }
        .to_string();
        assert!(not.contains("not a VRF device"), "{not}");
    }

    #[test]
    fn an_unreachable_peer_names_the_vrfs_interfaces_and_the_fix() {
        let peer: IpAddr = "10.91.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let empty = unreachable_in("blue", peer, &[], "Network is unreachable");
        assert!(
            empty.contains("10.91.0.1 is unreachable in VRF blue"),
            "{empty}"
        );
        assert!(empty.contains("the VRF has no interface"), "{empty}");
        assert!(empty.contains("ip link set UPLINK master blue"), "{empty}");
        let some = unreachable_in("blue", peer, &["eth2".into(), "eth3".into()], "No route");
        assert!(
            some.contains("none of its interfaces (eth2, eth3)"),
            "{some}"
        );
    }

    #[test]
    fn a_device_that_does_not_exist_is_missing() {
        assert_eq!(
            resolve("oxlb-no-such-vrf"),
            Err(VrfError::Missing {
                vrf: "oxlb-no-such-vrf".into()
            })
        );
        // The loopback exists everywhere and is no VRF.
        assert!(matches!(resolve("lo"), Err(VrfError::NotAVrf { .. })));
    }
}
