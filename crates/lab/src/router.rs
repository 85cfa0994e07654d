//! The lab router: FRR (zebra + bgpd, + bfdd when BFD is configured) or BIRD, configured
//! from oxlb-routercfg's output.

use std::path::Path;
use std::time::Duration;

use oxlb_netlab::{Frr, Netns, wait_until};

use crate::error::Error;
use crate::exec::{log_tail, run_in, spawn_detached};
use crate::state::{RouterKind, State};

/// Starts the router daemon in `ns` and leaves it running.
pub fn start(kind: RouterKind, ns: &str, text: &str, dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir)?;
    match kind {
        RouterKind::Frr => {
            std::fs::write(dir.join("frr.conf"), text)?;
            let mut daemons = vec!["zebra", "bgpd"];
            if text.lines().any(|l| l.trim() == "bfd") {
                daemons.push("bfdd");
            }
            // The guard types below own cleanup on drop; the lab must outlive this
            // process, so both are forgotten and `lab down` cleans up by name.
            let netns = Netns::adopt(ns);
            // Through vtysh: router-config output has FRR 8 `exit` lines (see Frr).
            let started = Frr::start_via_vtysh(&netns, text, &daemons);
            netns.keep();
            let frr = started.map_err(|e| Error::Setup(format!("FRR did not start: {e}")))?;
            std::mem::forget(frr);
            Ok(())
        }
        RouterKind::Bird => {
            let conf = dir.join("bird.conf");
            std::fs::write(&conf, text)?;
            let sock = dir.join("bird.ctl");
            let log = dir.join("bird.log");
            let conf_arg = conf.to_string_lossy().into_owned();
            let sock_arg = sock.to_string_lossy().into_owned();
            let mut child =
                spawn_detached(ns, &["bird", "-f", "-c", &conf_arg, "-s", &sock_arg], &log)?;
            let ready = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return Some(false);
                }
                birdc(&sock, "show status").ok().map(|_| true)
            });
            if ready == Some(true) {
                Ok(())
            } else {
                Err(Error::Setup(format!(
                    "BIRD did not start: {}",
                    log_tail(&log, 20)
                )))
            }
        }
    }
}

pub fn birdc(sock: &Path, command: &str) -> Result<String, Error> {
    let output = std::process::Command::new("birdc")
        .arg("-s")
        .arg(sock)
        .args(command.split_whitespace())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Setup(format!("cannot run birdc: {e}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Setup(format!(
            "birdc {command}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

pub fn vtysh(state: &State, command: &str) -> Result<String, Error> {
    run_in(
        &state.router_namespace,
        &["vtysh", "-N", &state.router_namespace, "-c", command],
    )
}

/// The router's view: BGP sessions, and routes with every ECMP path.
pub fn status(state: &State) -> String {
    let mut out = String::new();
    let mut section = |title: &str, result: Result<String, Error>| {
        out.push_str(&format!("--- {title}\n"));
        match result {
            Ok(text) => out.push_str(text.trim_end()),
            Err(e) => out.push_str(&format!("(unavailable: {e})")),
        }
        out.push('\n');
    };
    match state.router {
        RouterKind::Frr => {
            section(
                "BGP sessions (vtysh: show bgp summary)",
                vtysh(state, "show bgp summary"),
            );
            section(
                "BGP routes, IPv4 (show ip route bgp; several `via` = ECMP)",
                vtysh(state, "show ip route bgp"),
            );
            section(
                "BGP routes, IPv6 (show ipv6 route bgp)",
                vtysh(state, "show ipv6 route bgp"),
            );
        }
        RouterKind::Bird => {
            let sock = state
                .bird_socket
                .clone()
                .unwrap_or_else(|| state.state_dir.join("router/bird.ctl"));
            section(
                "BGP sessions (birdc show protocols)",
                birdc(&sock, "show protocols"),
            );
            section("BGP routes (birdc show route)", birdc(&sock, "show route"));
        }
    }
    section(
        "Router kernel routes (ip route; `nexthop` lines = ECMP)",
        run_in(&state.router_namespace, &["ip", "route", "show"]),
    );
    section(
        "Router LAN neighbours (who answered ARP/NDP: the Layer 2 owner's MAC)",
        run_in(
            &state.router_namespace,
            &["ip", "neigh", "show", "dev", crate::plan::LAN_IF],
        ),
    );
    out
}
