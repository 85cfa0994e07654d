//! A two-namespace lab shared by the BFD end-to-end test and the detection benchmark:
//! `router` runs FRR (zebra, bgpd and, with BFD, bfdd) and `node` runs `oxlb run` with
//! one BGPPeer toward the router and one LoadBalancer Service announced by BGP.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use oxlb_netlab::{Frr, Guarded, Netns, veth, wait_until};

pub const WAIT: Duration = Duration::from_secs(60);
pub const ROUTER_IP: &str = "10.97.0.1";
pub const NODE_IP: &str = "10.97.0.2";
pub const SERVICE_IP: &str = "10.200.0.10";
pub const STATUS_ADDR: &str = "127.0.0.1:7472";

/// How the BGP session is watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detection {
    /// BFDProfile `fast` (100 ms x 3) on both sides; BGP hold time `hold_s`.
    Bfd { hold_s: u32 },
    /// No BFD: only the BGP hold timer (`hold_s`) notices a dead path.
    HoldTimer { hold_s: u32 },
    /// BFDProfile `fast` with echoMode and echoInterval `echo_ms` on our side; FRR's
    /// profile with `echo-mode` and echo intervals `echo_ms`, and IP forwarding on in
    /// the router namespace (a router forwards; that is what loops our Echo packets).
    /// Namespace tags start with "echo".
    BfdEcho { hold_s: u32, echo_ms: u32 },
}

pub struct Lab {
    // Field order is drop order: processes first, then the namespaces.
    pub oxlb: Guarded,
    pub frr: Frr,
    pub node: Netns,
    pub router: Netns,
    pub dir: TempDir,
}

impl Lab {
    pub fn new(detection: Detection) -> Lab {
        Lab::start(detection, false)
    }

    /// `bgp_blocked`: the router drops BGP (TCP 179) from before FRR starts until
    /// [`Lab::unblock_bgp`], so BFD can come Up before the BGP session does.
    pub fn start(detection: Detection, bgp_blocked: bool) -> Lab {
        let (router_tag, node_tag) = match detection {
            Detection::BfdEcho { .. } => ("echor", "echon"),
            _ => ("bfdbgpr", "bfdbgpn"),
        };
        let router = Netns::new(router_tag).unwrap();
        let node = Netns::new(node_tag).unwrap();
        veth(&router, "r0", &node, "n0").unwrap();
        router
            .add_address("r0", &format!("{ROUTER_IP}/24"))
            .unwrap();
        node.add_address("n0", &format!("{NODE_IP}/24")).unwrap();
        let reachable = wait_until(WAIT, Duration::from_millis(200), || {
            node.exec(&["ping", "-c1", "-W1", ROUTER_IP])
                .ok()
                .filter(|o| o.status.success())
        });
        assert!(reachable.is_some(), "{ROUTER_IP} unreachable from the node");

        let dir = TempDir::new(node.name());
        if bgp_blocked {
            nft(&router, &dir, "block-bgp.nft", BLOCK_BGP);
        }
        let config_dir = dir.path.join("config");
        let state_dir = dir.path.join("state");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(&state_dir).unwrap();
        std::fs::write(config_dir.join("oxlb.yaml"), oxlb_config(detection)).unwrap();

        let (daemons, bfd_lines): (&[&str], &str) = match detection {
            Detection::Bfd { .. } | Detection::BfdEcho { .. } => (
                &["zebra", "bgpd", "bfdd"],
                " neighbor 10.97.0.2 bfd\n neighbor 10.97.0.2 bfd profile fast\n",
            ),
            Detection::HoldTimer { .. } => (&["zebra", "bgpd"], ""),
        };
        let echo_lines = match detection {
            Detection::BfdEcho { echo_ms, .. } => {
                router.enable_forwarding().unwrap();
                format!(
                    "  echo-mode\n  echo transmit-interval {echo_ms}\n  \
                     echo receive-interval {echo_ms}\n"
                )
            }
            _ => String::new(),
        };
        let frr_config = format!(
            "frr defaults traditional\n\
             bfd\n profile fast\n  receive-interval 100\n  transmit-interval 100\n  \
             detect-multiplier 3\n{echo_lines} !\n!\n\
             router bgp 64501\n bgp router-id {ROUTER_IP}\n no bgp ebgp-requires-policy\n \
             neighbor {NODE_IP} remote-as 64500\n{bfd_lines}!\n"
        );
        let frr = Frr::start(&router, &frr_config, daemons).unwrap();

        let log = dir.path.join("oxlb.log");
        let config_arg = config_dir.to_string_lossy().into_owned();
        let state_arg = state_dir.to_string_lossy().into_owned();
        let oxlb = node
            .spawn(
                &[
                    env!("CARGO_BIN_EXE_oxlb"),
                    "run",
                    "--node",
                    "node1",
                    "-f",
                    &config_arg,
                    "--state-dir",
                    &state_arg,
                    "--listen",
                    STATUS_ADDR,
                    "--no-local-ips",
                ],
                Some(&log),
            )
            .unwrap();
        Lab {
            oxlb,
            frr,
            node,
            router,
            dir,
        }
    }

    pub fn oxlb_log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("oxlb.log")).unwrap_or_default()
    }

    /// `oxlb status -o json` run in the node namespace.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self
            .node
            .exec(&[
                env!("CARGO_BIN_EXE_oxlb"),
                "status",
                "-o",
                "json",
                "--addr",
                STATUS_ADDR,
            ])
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn metrics(&self) -> Option<String> {
        let url = format!("http://{STATUS_ADDR}/metrics");
        let out = self.node.exec(&["curl", "-sf", "-m", "5", &url]).ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// FRR's single BFD peer (`show bfd peers json`).
    pub fn frr_bfd_peer(&self) -> Option<serde_json::Value> {
        let text = self.frr.vtysh("show bfd peers json").ok()?;
        let peers: serde_json::Value = serde_json::from_str(&text).ok()?;
        peers.as_array()?.first().cloned()
    }

    /// FRR's BGP neighbor state (`Established`, `Active`, ...).
    pub fn frr_bgp_state(&self) -> Option<String> {
        let text = self
            .frr
            .vtysh(&format!("show bgp neighbors {NODE_IP} json"))
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v[NODE_IP]["bgpState"].as_str().map(str::to_string)
    }

    /// Whether the router's kernel has the service route (installed by zebra).
    pub fn has_route(&self) -> bool {
        self.router
            .exec_stdout(&["ip", "-4", "route", "show", &format!("{SERVICE_IP}/32")])
            .map(|s| s.contains(NODE_IP))
            .unwrap_or(false)
    }

    pub fn wait_route(&self, present: bool) -> Duration {
        let start = Instant::now();
        let seen = wait_until(WAIT, Duration::from_millis(5), || {
            (self.has_route() == present).then_some(())
        });
        if seen.is_none() {
            panic!(
                "the route to {SERVICE_IP} never became {}: {}\nFRR BGP: {:?}\noxlb log:\n{}",
                if present { "present" } else { "absent" },
                self.frr.vtysh("show bgp ipv4 unicast").unwrap_or_default(),
                self.frr_bgp_state(),
                self.oxlb_log()
            );
        }
        start.elapsed()
    }

    /// Drops every packet in and out of the router namespace (nftables), leaving the
    /// link up so neither side learns anything from an interface event.
    pub fn cut(&self) {
        // One nft transaction, so the drop starts at one instant.
        let rules = "table inet oxlbcut {\n\
                     chain in { type filter hook input priority 0; policy drop; }\n\
                     chain out { type filter hook output priority 0; policy drop; }\n}\n";
        nft(&self.router, &self.dir, "cut.nft", rules);
    }

    /// Lets BGP through again (see [`Lab::start`]).
    pub fn unblock_bgp(&self) {
        let out = self
            .router
            .exec(&["nft", "delete", "table", "inet", "oxlbblockbgp"])
            .unwrap();
        assert!(out.status.success(), "nft: {out:?}");
    }

    /// Drops only forwarded UDP to port 3785 at the router: our Echo packets are no
    /// longer looped back, while Control packets (to the router itself) still flow.
    pub fn break_echo(&self) {
        let rules = "table inet oxlbecho {\n\
                     chain forwarded { type filter hook forward priority 0; udp dport 3785 drop; }\n}\n";
        nft(&self.router, &self.dir, "echo.nft", rules);
    }

    pub fn restore_echo(&self) {
        let out = self
            .router
            .exec(&["nft", "delete", "table", "inet", "oxlbecho"])
            .unwrap();
        assert!(out.status.success(), "nft: {out:?}");
    }

    pub fn restore(&self) {
        let out = self
            .router
            .exec(&["nft", "delete", "table", "inet", "oxlbcut"])
            .unwrap();
        assert!(out.status.success(), "nft: {out:?}");
    }
}

/// Drops BGP both ways at the router; BFD (UDP) still passes.
const BLOCK_BGP: &str = "table inet oxlbblockbgp {\n\
     chain in { type filter hook input priority 0; tcp dport 179 drop; tcp sport 179 drop; }\n\
     chain out { type filter hook output priority 0; tcp dport 179 drop; tcp sport 179 drop; }\n}\n";

/// Loads an nftables ruleset (one transaction) in `ns`.
fn nft(ns: &Netns, dir: &TempDir, file: &str, rules: &str) {
    let path = dir.path.join(file);
    std::fs::write(&path, rules).unwrap();
    let out = ns.exec(&["nft", "-f", &path.to_string_lossy()]).unwrap();
    assert!(out.status.success(), "nft: {out:?}");
}

fn oxlb_config(detection: Detection) -> String {
    let (hold_s, profile) = match detection {
        Detection::Bfd { hold_s } | Detection::BfdEcho { hold_s, .. } => {
            (hold_s, "  bfdProfile: fast\n")
        }
        Detection::HoldTimer { hold_s } => (hold_s, ""),
    };
    let echo = match detection {
        Detection::BfdEcho { echo_ms, .. } => {
            format!("  echoMode: true\n  echoInterval: {echo_ms}\n")
        }
        _ => String::new(),
    };
    // The keepalive is a third of the hold time (RFC 4271 §10 suggests so).
    let keepalive_s = (hold_s / 3).max(1);
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: bgp
  namespace: metallb-system
spec:
  addresses:
    - 10.200.0.0/24
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata:
  name: fast
  namespace: metallb-system
spec:
  receiveInterval: 100
  transmitInterval: 100
  detectMultiplier: 3
{echo}---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: router
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: {ROUTER_IP}
  holdTime: {hold_s}s
  keepaliveTime: {keepalive_s}s
{profile}---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: bgp
  namespace: metallb-system
spec:
  ipAddressPools:
    - bgp
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  annotations:
    metallb.io/loadBalancerIPs: {SERVICE_IP}
spec:
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 80
"
    )
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("oxlb-bfd-e2e-{tag}"));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The BFD session to `peer` in `oxlb status --json`'s `bfd_sessions` (null if none).
pub fn bfd_session_to(status: &serde_json::Value, peer: &str) -> serde_json::Value {
    status["bfd_sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["peer"] == peer).cloned())
        .unwrap_or_default()
}

/// The session to `peer` is Up and its Echo function active.
pub fn echo_active_to(status: &serde_json::Value, peer: &str) -> bool {
    let s = bfd_session_to(status, peer);
    s["up"] == true && s["echo"].as_str().is_some_and(|e| e.starts_with("active"))
}

/// Echo packets that came back on the session to `peer`.
pub fn echo_in_from(status: &serde_json::Value, peer: &str) -> u64 {
    bfd_session_to(status, peer)["echo_packets_in"]
        .as_u64()
        .unwrap_or(0)
}

/// Seconds since the Unix epoch of a log line's RFC 3339 UTC timestamp
/// (`2026-12-07T08:30:01.123456Z ...`, tracing's default).
pub fn log_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let s: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

pub fn epoch_s(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
