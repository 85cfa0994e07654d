//! Checks made before anything is created, each failing with what to do.

use std::path::Path;

use crate::error::Error;
use crate::state::RouterKind;

pub fn check(router: RouterKind, oxlb_bin: &Path, backend_bin: &Path) -> Result<(), Error> {
    if !is_root() {
        return Err(Error::Precondition(
            "run as root (the lab creates network namespaces)".into(),
        ));
    }
    require_program(
        "ip",
        "the `ip` command is missing: apt-get install iproute2",
    )?;
    require_program("curl", "curl is not installed: apt-get install curl")?;
    match router {
        RouterKind::Frr => {
            if !Path::new("/usr/lib/frr/bgpd").exists() || !Path::new("/usr/lib/frr/zebra").exists()
            {
                return Err(Error::Precondition(
                    "FRR is not installed: apt-get install frr (or use --router bird)".into(),
                ));
            }
            require_program("vtysh", "FRR is not installed: apt-get install frr")?;
        }
        RouterKind::Bird => {
            require_program("bird", "BIRD is not installed: apt-get install bird2")?;
            require_program("birdc", "BIRD is not installed: apt-get install bird2")?;
        }
    }
    for (what, bin) in [("oxlb", oxlb_bin), ("HTTP backend", backend_bin)] {
        if !bin.exists() {
            return Err(Error::Precondition(format!(
                "the {what} executable {} does not exist",
                bin.display()
            )));
        }
    }
    Ok(())
}

/// The demo's Layer 2 checks count who answers ARP on the LAN with arping.
pub fn check_arping() -> Result<(), Error> {
    require_program("arping", "arping is not installed: apt-get install arping")
}

pub use oxlb_netlab::is_root;

fn require_program(name: &str, message: &str) -> Result<(), Error> {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(Error::Precondition(message.into()))
    }
}
