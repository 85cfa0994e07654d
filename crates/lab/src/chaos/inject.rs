//! Injecting and healing each fault kind. Everything happens inside the lab's own
//! namespaces (commands run through `ip netns exec`) and files (its state directory);
//! processes are signalled only when their command line is the lab's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use oxlb_netlab::wait_until;

use super::kinds::FaultKind;
use super::plan::PlannedFault;
use crate::error::Error;
use crate::exec::{run_in, spawn_detached};
use crate::plan::{BRIDGE, LAN_IF, lan_node_port, node_v4};
use crate::router::birdc;
use crate::state::{RouterKind, State};

/// The gossip port of the lab's speakers (memberlist's default).
const GOSSIP_PORT: &str = "7946";
const POOL_LINE: &str = "    - 172.31.100.0/24\n";
const POOL_EDITED: &str = "    - 172.31.100.0/24\n    - 172.31.101.0/24\n";
const SERVICE_FILE: &str = "chaos-service.yaml";

pub struct Injector {
    pub state: State,
    /// `oxlb run` processes this run restarted (its children, reaped here).
    restarted: BTreeMap<String, Child>,
    relay: Option<Child>,
    /// The fault in force, healed by [`Injector::heal`] (also on drop).
    active: Option<PlannedFault>,
    added_services: usize,
    /// The Service the last service-change added (`default/<name>`).
    pub added_service: Option<String>,
}

impl Injector {
    pub fn new(state: State) -> Injector {
        Injector {
            state,
            restarted: BTreeMap::new(),
            relay: None,
            active: None,
            added_services: 0,
            added_service: None,
        }
    }

    /// The directory holding the built-in configuration (config faults need it).
    pub fn builtin_config_dir(state: &State) -> Option<PathBuf> {
        let dir = state.state_dir.join("config");
        (state.config_paths == [dir.clone()]).then_some(dir)
    }

    fn node_index(&self, node: &str) -> Result<usize, Error> {
        self.state
            .nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.index)
            .ok_or_else(|| Error::NoSuchNode(node.to_string()))
    }

    fn namespace(&self, node: &str) -> Result<String, Error> {
        self.state
            .nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.namespace.clone())
            .ok_or_else(|| Error::NoSuchNode(node.to_string()))
    }

    /// Injects `fault`; returns what was done, in words.
    pub fn inject(&mut self, fault: &PlannedFault, seed: u64) -> Result<String, Error> {
        self.active = Some(fault.clone());
        let node = fault.node.clone().unwrap_or_default();
        match fault.kind {
            FaultKind::Kill => self
                .signal_run(&node, "KILL")
                .map(|pid| format!("SIGKILL {pid}")),
            FaultKind::Term => self
                .signal_run(&node, "TERM")
                .map(|pid| format!("SIGTERM {pid}")),
            FaultKind::LinkFlap => self.link(&node, "down").map(|()| "LAN port down".into()),
            FaultKind::Partition => self
                .gossip_rules(&node, "-I")
                .map(|()| format!("gossip (port {GOSSIP_PORT}) dropped, LAN up")),
            FaultKind::Lossy => self.relay_on(&node, fault, seed),
            FaultKind::BgpdRestart => self.restart_router(),
            FaultKind::RouterReload => self.reload_router(),
            FaultKind::PoolEdit => self
                .edit_pool(true)
                .map(|()| "lab-bgp += 172.31.101.0/24".into()),
            FaultKind::ServiceChange => self.add_service(),
        }
    }

    /// Undoes the fault in force (nothing to undo for router restarts and reloads).
    pub fn heal(&mut self) -> Result<(), Error> {
        let Some(fault) = self.active.take() else {
            return Ok(());
        };
        let node = fault.node.clone().unwrap_or_default();
        match fault.kind {
            FaultKind::Kill | FaultKind::Term => self.start_run(&node),
            FaultKind::LinkFlap => self.link(&node, "up"),
            FaultKind::Partition => self.gossip_rules(&node, "-D"),
            FaultKind::Lossy => self.relay_off(&node),
            FaultKind::BgpdRestart | FaultKind::RouterReload => Ok(()),
            FaultKind::PoolEdit => self.edit_pool(false),
            FaultKind::ServiceChange => self.remove_service(),
        }
    }

    /// The pid of the node's `oxlb run`, checked by its command line (never a
    /// recycled pid).
    fn run_pid(&self, node: &str) -> Option<u32> {
        let node_dir = self.state.state_dir.join("nodes").join(node);
        let wanted = node_dir.to_string_lossy().into_owned();
        let listed = self
            .state
            .nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.pids.first().copied());
        let restarted = self.restarted.get(node).map(Child::id);
        [restarted, listed].into_iter().flatten().find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let args: Vec<String> = cmdline
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                args.iter().any(|a| a == "run") && args.contains(&wanted)
            })
        })
    }

    fn signal_run(&mut self, node: &str, signal: &str) -> Result<u32, Error> {
        let pid = self.run_pid(node).ok_or_else(|| {
            Error::Setup(format!(
                "the oxlb run of {node} is not running (see its log)"
            ))
        })?;
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .map_err(|e| Error::Setup(format!("kill: {e}")))?;
        // Wait until it is gone (reaping it when it is ours), so the restart does not
        // race the old process for its ports.
        let mut child = self.restarted.remove(node);
        let gone = wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
            if let Some(child) = child.as_mut() {
                return matches!(child.try_wait(), Ok(Some(_))).then_some(());
            }
            (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
        });
        if gone.is_none() {
            return Err(Error::Setup(format!(
                "the oxlb run of {node} ({pid}) did not exit within 20 s of SIG{signal}"
            )));
        }
        Ok(pid)
    }

    fn start_run(&mut self, node: &str) -> Result<(), Error> {
        let ns = self.namespace(node)?;
        let node_dir = self.state.state_dir.join("nodes").join(node);
        let argv = crate::build::node_run_argv(
            &self.state.oxlb_bin,
            node,
            &node_dir,
            &self.state.config_paths,
            self.state.added_path.as_deref(),
        );
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let log = self
            .state
            .state_dir
            .join("logs")
            .join(format!("{node}-oxlb.log"));
        let child = spawn_detached(&ns, &argv, &log)?;
        // Recorded so `lab down` and a later chaos run find the new process.
        if let Some(first) = self
            .state
            .nodes
            .iter_mut()
            .find(|n| n.name == node)
            .and_then(|entry| entry.pids.first_mut())
        {
            *first = child.id();
        }
        self.restarted.insert(node.to_string(), child);
        self.state.write()
    }

    fn link(&self, node: &str, updown: &str) -> Result<(), Error> {
        let port = lan_node_port(self.node_index(node)?);
        run_in(
            &self.state.lan_namespace,
            &["ip", "link", "set", &port, updown],
        )
        .map(drop)
    }

    /// Inserts (`-I`) or deletes (`-D`) the rules dropping gossip both ways, UDP and
    /// TCP (memberlist uses both). ARP, BGP and the Services still flow.
    fn gossip_rules(&self, node: &str, op: &str) -> Result<(), Error> {
        let ns = self.namespace(node)?;
        for chain in ["INPUT", "OUTPUT"] {
            for proto in ["udp", "tcp"] {
                for port in ["--dport", "--sport"] {
                    run_in(
                        &ns,
                        &[
                            "iptables",
                            op,
                            chain,
                            "-p",
                            proto,
                            port,
                            GOSSIP_PORT,
                            "-j",
                            "DROP",
                        ],
                    )?;
                }
            }
        }
        Ok(())
    }

    fn relay_names(index: usize) -> (String, String) {
        (format!("cx{index}"), format!("cxb{index}"))
    }

    /// Moves the node's bridge port behind a relay, then checks with a ping from the
    /// router that frames really are lost and delayed.
    fn relay_on(&mut self, node: &str, fault: &PlannedFault, seed: u64) -> Result<String, Error> {
        let index = self.node_index(node)?;
        let lan = self.state.lan_namespace.clone();
        let port = lan_node_port(index);
        let (via, bridge_side) = Injector::relay_names(index);
        run_in(
            &lan,
            &[
                "ip",
                "link",
                "add",
                &via,
                "type",
                "veth",
                "peer",
                "name",
                &bridge_side,
            ],
        )?;
        run_in(&lan, &["ip", "link", "set", &bridge_side, "master", BRIDGE])?;
        run_in(&lan, &["ip", "link", "set", &bridge_side, "up"])?;
        run_in(&lan, &["ip", "link", "set", &via, "up"])?;
        run_in(&lan, &["ip", "link", "set", &port, "nomaster"])?;
        let oxlb = self.state.oxlb_bin.to_string_lossy().into_owned();
        let (loss, delay, seed) = (
            fault.loss_percent.to_string(),
            fault.delay_ms.to_string(),
            seed.to_string(),
        );
        let log = self.state.state_dir.join("logs").join("chaos-relay.log");
        let relay = spawn_detached(
            &lan,
            &[
                &oxlb,
                "lab-relay",
                "--port",
                &port,
                "--via",
                &via,
                "--loss",
                &loss,
                "--delay-ms",
                &delay,
                "--seed",
                &seed,
            ],
            &log,
        )?;
        self.relay = Some(relay);
        // The proof: 20 pings from the router through the relay.
        let target = node_v4(index).to_string();
        let ping = std::process::Command::new("ip")
            .args(["netns", "exec", &self.state.router_namespace])
            .args([
                "ping", "-n", "-q", "-c", "20", "-i", "0.05", "-W", "1", "-I", LAN_IF, &target,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::Setup(format!("ping: {e}")))?;
        let text = String::from_utf8_lossy(&ping.stdout);
        let (lost, avg) = parse_ping(&text);
        let verified = avg.is_some_and(|avg| avg >= 2.0 * fault.delay_ms as f64 * 0.9);
        let detail = format!(
            "relay: {}% loss and {} ms delay each way; ping through it: {} lost, avg rtt {}{}",
            fault.loss_percent,
            fault.delay_ms,
            lost.map_or("?".into(), |l| format!("{l}%")),
            avg.map_or("?".into(), |a| format!("{a:.1} ms")),
            if verified {
                ""
            } else {
                " (NOT VERIFIED: rtt below twice the delay)"
            }
        );
        if verified {
            Ok(detail)
        } else {
            Err(Error::Setup(detail))
        }
    }

    fn relay_off(&mut self, node: &str) -> Result<(), Error> {
        let index = self.node_index(node)?;
        let lan = self.state.lan_namespace.clone();
        // The relay first: with it running and both ports on the bridge, frames loop.
        if let Some(mut relay) = self.relay.take() {
            let _ = relay.kill();
            let _ = relay.wait();
        }
        let (via, _) = Injector::relay_names(index);
        let deleted = run_in(&lan, &["ip", "link", "del", &via]);
        run_in(
            &lan,
            &["ip", "link", "set", &lan_node_port(index), "master", BRIDGE],
        )?;
        deleted.map(drop)
    }

    fn frr_paths(&self) -> (String, PathBuf, PathBuf) {
        let instance = self.state.router_namespace.clone();
        let etc = PathBuf::from("/etc/frr").join(&instance);
        let run = PathBuf::from("/var/run/frr").join(&instance);
        (instance, etc, run)
    }

    fn vtysh_file(&self, file: &Path) -> Result<(), Error> {
        let (instance, _, _) = self.frr_paths();
        let file = file.to_string_lossy().into_owned();
        run_in(
            &self.state.router_namespace,
            &["vtysh", "-N", &instance, "-f", &file],
        )
        .map(drop)
    }

    /// Restarts the router's BGP daemon as an operator's `systemctl restart` would.
    fn restart_router(&mut self) -> Result<String, Error> {
        match self.state.router {
            RouterKind::Frr => {
                let (instance, etc, run) = self.frr_paths();
                let pid_file = run.join("bgpd.pid");
                let pid = std::fs::read_to_string(&pid_file)
                    .map_err(|e| Error::Setup(format!("{}: {e}", pid_file.display())))?
                    .trim()
                    .to_string();
                std::process::Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .map_err(|e| Error::Setup(format!("kill: {e}")))?;
                let gone = wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
                    (!Path::new("/proc").join(&pid).exists()).then_some(())
                });
                if gone.is_none() {
                    return Err(Error::Setup(format!("bgpd ({pid}) ignored SIGTERM")));
                }
                // As the lab started it: an empty file, then the config through vtysh.
                let empty = etc.join("empty.conf").to_string_lossy().into_owned();
                let pid_arg = pid_file.to_string_lossy().into_owned();
                run_in(
                    &self.state.router_namespace,
                    &[
                        "/usr/lib/frr/bgpd",
                        "-N",
                        &instance,
                        "-d",
                        "-i",
                        &pid_arg,
                        "-f",
                        &empty,
                    ],
                )?;
                let ready = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
                    crate::router::vtysh(&self.state, "show bgp summary").ok()
                });
                if ready.is_none() {
                    return Err(Error::Setup("bgpd did not come back within 20 s".into()));
                }
                self.vtysh_file(&etc.join("frr.conf"))?;
                Ok(format!("bgpd {pid} SIGTERM, started again, config applied"))
            }
            RouterKind::Bird => {
                let sock = self.bird_socket();
                let _ = birdc(&sock, "down");
                let dir = self.state.state_dir.join("router");
                let conf = dir.join("bird.conf").to_string_lossy().into_owned();
                let sock_arg = sock.to_string_lossy().into_owned();
                let log = dir.join("bird.log");
                let _ = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
                    birdc(&sock, "show status").is_err().then_some(())
                });
                spawn_detached(
                    &self.state.router_namespace,
                    &["bird", "-f", "-c", &conf, "-s", &sock_arg],
                    &log,
                )?;
                let ready = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
                    birdc(&sock, "show status").ok()
                });
                ready
                    .map(|_| "BIRD stopped and started again".to_string())
                    .ok_or_else(|| Error::Setup("BIRD did not come back within 20 s".into()))
            }
        }
    }

    fn bird_socket(&self) -> PathBuf {
        self.state
            .bird_socket
            .clone()
            .unwrap_or_else(|| self.state.state_dir.join("router/bird.ctl"))
    }

    fn reload_router(&self) -> Result<String, Error> {
        match self.state.router {
            RouterKind::Frr => {
                let (_, etc, _) = self.frr_paths();
                self.vtysh_file(&etc.join("frr.conf"))?;
                Ok("frr.conf applied again (vtysh -f)".into())
            }
            RouterKind::Bird => {
                birdc(&self.bird_socket(), "configure")?;
                Ok("birdc configure".into())
            }
        }
    }

    fn config_dir(&self) -> Result<PathBuf, Error> {
        Injector::builtin_config_dir(&self.state).ok_or_else(|| {
            Error::Config("config faults need the lab's built-in configuration".into())
        })
    }

    /// Writes `text` to `dir/name` atomically (a temporary file outside the watched
    /// directory, renamed in), so `oxlb run` never reads half a file.
    fn write_config(&self, dir: &Path, name: &str, text: &str) -> Result<(), Error> {
        let tmp = self.state.state_dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, dir.join(name))?;
        Ok(())
    }

    fn edit_pool(&self, edit: bool) -> Result<(), Error> {
        let dir = self.config_dir()?;
        let text = std::fs::read_to_string(dir.join("lab.yaml"))?;
        let edited = if edit {
            text.replacen(POOL_LINE, POOL_EDITED, 1)
        } else {
            text.replacen(POOL_EDITED, POOL_LINE, 1)
        };
        if edited == text {
            return Err(Error::Setup(
                "the lab-bgp pool is not as the lab wrote it".into(),
            ));
        }
        self.write_config(&dir, "lab.yaml", &edited)
    }

    fn add_service(&mut self) -> Result<String, Error> {
        let dir = self.config_dir()?;
        self.added_services += 1;
        let n = self.added_services;
        // Alternately from the BGP and the Layer 2 pool.
        let pool = if n % 2 == 1 { "lab-bgp" } else { "lab-l2" };
        let name = format!("chaos-{n}");
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n  \
             annotations:\n    metallb.io/address-pool: {pool}\nspec:\n  type: LoadBalancer\n  \
             ports:\n    - name: http\n      port: 80\n      protocol: TCP\n      targetPort: 80\n"
        );
        self.write_config(&dir, SERVICE_FILE, &text)?;
        self.added_service = Some(format!("default/{name}"));
        Ok(format!("Service default/{name} added (pool {pool})"))
    }

    fn remove_service(&mut self) -> Result<(), Error> {
        let dir = self.config_dir()?;
        let path = dir.join(SERVICE_FILE);
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        Ok(())
    }
}

impl Drop for Injector {
    /// A run that stops half-way (an error) leaves no fault behind.
    fn drop(&mut self) {
        let _ = self.heal();
        if let Some(mut relay) = self.relay.take() {
            let _ = relay.kill();
            let _ = relay.wait();
        }
    }
}

/// `ping -q` summary: packet loss in percent and the average round trip in ms.
pub fn parse_ping(text: &str) -> (Option<u32>, Option<f64>) {
    let lost = text.lines().find_map(|line| {
        let at = line.find("% packet loss")?;
        line[..at].rsplit([' ', ',']).next()?.parse().ok()
    });
    let avg = text.lines().find_map(|line| {
        let (_, values) = line.split_once(" = ")?;
        values.split('/').nth(1)?.parse().ok()
    });
    (lost, avg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summaries_parse() {
        let text = "PING 172.31.0.11 (172.31.0.11) from 172.31.0.1 lan0: 56(84) bytes of data.\n\n\
            --- 172.31.0.11 ping statistics ---\n\
            20 packets transmitted, 13 received, 35% packet loss, time 1012ms\n\
            rtt min/avg/max/mdev = 60.112/61.402/63.871/1.022 ms\n";
        assert_eq!(parse_ping(text), (Some(35), Some(61.402)));
        assert_eq!(
            parse_ping("20 packets transmitted, 0 received, 100% packet loss, time 1s\n"),
            (Some(100), None)
        );
    }

    #[test]
    fn the_pool_edit_is_reversible_on_the_builtin_config() {
        let text = crate::build::DEFAULT_CONFIG_YAML;
        assert_eq!(text.matches(POOL_LINE).count(), 1);
        let edited = text.replacen(POOL_LINE, POOL_EDITED, 1);
        assert_ne!(edited, text);
        assert_eq!(edited.replacen(POOL_EDITED, POOL_LINE, 1), text);
    }
}
