//! The shell of [`crate::kernel_arp`]: reads and writes the ARP sysctls of this
//! network namespace under /proc/sys/net/ipv4/conf, logs every change with its reason
//! and every failure with the setting and its fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::kernel_arp::{Knob, KnobState, needed};

/// Whether the responder may change the sysctls or only checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Raise what is too low (the default); a failure is an error (`oxlb run`, whose
    /// service IPs are local addresses: the kernel would answer for them).
    #[default]
    Set,
    /// Raise what is too low where allowed; a failure is a warning, because whether
    /// it matters depends on what else makes service IPs local (the speaker: only
    /// kube-proxy in IPVS mode does; its host check says so when it does).
    SetIfAllowed,
    /// Only read and report.
    Check,
}

/// Where the per-interface IPv4 settings live (this process's namespace).
pub const CONF: &str = "/proc/sys/net/ipv4/conf";

/// The state of both knobs of one interface.
pub type InterfaceArp = BTreeMap<Knob, KnobState>;

fn read(root: &Path, interface: &str, knob: Knob) -> std::io::Result<u32> {
    let text = std::fs::read_to_string(root.join(interface).join(knob.name()))?;
    text.trim()
        .parse()
        .map_err(|e| std::io::Error::other(format!("unexpected value {text:?}: {e}")))
}

/// The effective value of `knob` on `interface`: the larger of `all` and its own.
pub fn effective(root: &Path, interface: &str, knob: Knob) -> std::io::Result<u32> {
    Ok(read(root, "all", knob)?.max(read(root, interface, knob)?))
}

/// Makes (or, with [`Policy::Check`], checks) both knobs safe on `interface`, logging
/// what it changed and why, and what it could not change with the fix.
pub fn ensure(root: &Path, interface: &str, policy: Policy) -> InterfaceArp {
    ensure_with(root, interface, policy, |path, value| {
        std::fs::write(path, format!("{value}\n"))
    })
}

/// [`ensure`] with the write given (tests stand in a read-only /proc/sys).
fn ensure_with(
    root: &Path,
    interface: &str,
    policy: Policy,
    write: impl Fn(&Path, u32) -> std::io::Result<()>,
) -> InterfaceArp {
    Knob::ALL
        .into_iter()
        .map(|knob| (knob, ensure_one(root, interface, knob, policy, &write)))
        .collect()
}

fn ensure_one(
    root: &Path,
    interface: &str,
    knob: Knob,
    policy: Policy,
    write: &impl Fn(&Path, u32) -> std::io::Result<()>,
) -> KnobState {
    let setting = knob.setting(interface);
    let values = read(root, "all", knob).and_then(|all| Ok((all, read(root, interface, knob)?)));
    let (all, own) = match values {
        Ok(values) => values,
        Err(e) => {
            let error = format!("cannot read {setting}: {e}");
            tracing::error!(setting, "layer2: {error}");
            return KnobState::Unsafe {
                effective: 0,
                error: Some(error),
            };
        }
    };
    let Some(wanted) = needed(knob, all, own) else {
        return KnobState::Safe(all.max(own));
    };
    if policy == Policy::Check {
        tracing::warn!(
            setting,
            value = own,
            all,
            wanted,
            "layer2: {setting} is {own} (all: {all}); oxlb only checks it here. Set it to \
             {wanted} {}",
            knob.why()
        );
        return KnobState::Unsafe {
            effective: all.max(own),
            error: None,
        };
    }
    let path: PathBuf = root.join(interface).join(knob.name());
    let written = write(&path, wanted)
        .and_then(|()| read(root, interface, knob))
        .and_then(|now| {
            if now == wanted {
                Ok(())
            } else {
                Err(std::io::Error::other(format!("it reads back as {now}")))
            }
        });
    match written {
        Ok(()) => {
            tracing::info!(
                setting,
                from = own,
                to = wanted,
                "layer2: set {setting}={wanted} (was {own}) {}",
                knob.why()
            );
            KnobState::Changed {
                from: own,
                to: wanted,
            }
        }
        Err(e) => {
            let error = format!(
                "cannot set {setting}={wanted} (it is {own}, all: {all}): {e}. Without it this \
                 node's kernel answers ARP for service IPs it does not own, also after oxlb \
                 stops or crashes. Fix: `sysctl -w {setting}={wanted}` on the host (or \
                 net.ipv4.conf.all.{}={wanted}), or give oxlb a writable /proc/sys (a \
                 privileged container)",
                knob.name()
            );
            if policy == Policy::Set {
                tracing::error!(setting, "layer2: {error}");
            } else {
                tracing::warn!(
                    setting,
                    "layer2: {error}. It matters only where service IPs are local addresses \
                     (kube-proxy in IPVS mode): the host check reports it then"
                );
            }
            KnobState::Unsafe {
                effective: all.max(own),
                error: Some(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(all: (u32, u32), eth: (u32, u32)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, (ignore, announce)) in [("all", all), ("eth0", eth)] {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            std::fs::write(
                dir.path().join(name).join("arp_ignore"),
                format!("{ignore}\n"),
            )
            .unwrap();
            std::fs::write(
                dir.path().join(name).join("arp_announce"),
                format!("{announce}\n"),
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn raises_what_is_too_low_at_the_interface_level_only() {
        let dir = conf((0, 1), (0, 0));
        let state = ensure(dir.path(), "eth0", Policy::Set);
        assert_eq!(
            state[&Knob::ArpIgnore],
            KnobState::Changed { from: 0, to: 1 }
        );
        assert_eq!(
            state[&Knob::ArpAnnounce],
            KnobState::Changed { from: 0, to: 2 }
        );
        assert_eq!(read(dir.path(), "eth0", Knob::ArpIgnore).unwrap(), 1);
        assert_eq!(read(dir.path(), "all", Knob::ArpIgnore).unwrap(), 0);
        // Again: nothing to do.
        let again = ensure(dir.path(), "eth0", Policy::Set);
        assert_eq!(again[&Knob::ArpIgnore], KnobState::Safe(1));
    }

    #[test]
    fn all_high_enough_means_no_write_and_check_only_changes_nothing() {
        let dir = conf((1, 2), (0, 0));
        let state = ensure(dir.path(), "eth0", Policy::Set);
        assert_eq!(state[&Knob::ArpIgnore], KnobState::Safe(1));
        assert_eq!(read(dir.path(), "eth0", Knob::ArpIgnore).unwrap(), 0);
        let dir = conf((0, 0), (0, 0));
        let state = ensure(dir.path(), "eth0", Policy::Check);
        assert!(!state[&Knob::ArpIgnore].is_safe());
        assert_eq!(read(dir.path(), "eth0", Knob::ArpIgnore).unwrap(), 0);
    }

    #[test]
    fn a_setting_that_cannot_be_written_is_an_error_naming_it_and_the_fix() {
        let dir = conf((0, 0), (0, 0));
        // What writing to a read-only /proc/sys returns (root ignores file modes, so a
        // read-only file cannot stand in).
        let read_only = |_: &Path, _: u32| Err(std::io::Error::from_raw_os_error(30));
        let state = ensure_with(dir.path(), "eth0", Policy::Set, read_only);
        let KnobState::Unsafe {
            error: Some(error), ..
        } = &state[&Knob::ArpIgnore]
        else {
            panic!("{state:?}");
        };
        assert!(error.contains("net.ipv4.conf.eth0.arp_ignore"), "{error}");
        assert!(error.contains("sysctl -w"), "{error}");
    }
}
