//! BFD echo mode over an IPv6 single-hop session, end to end: the same scenario as
//! `bfd_echo_e2e` (IPv4) with `oxlb run` peering FRR 8.4 over IPv6 (fd00:96::/64). FRR's
//! bfdd with `echo-mode` advertises a non-zero Required Min Echo RX; our IPv6 Echo
//! frames (source = destination = our address, hop limit 255, UDP checksum) are looped
//! by the router's IPv6 forwarding plane (ip6 forwarding on in the router namespace, as
//! on any router). Then only the echo path is broken (the router drops forwarded IPv6
//! UDP to port 3785): oxlb takes the session Down with diagnostic 2 and closes the BGP
//! session. Detection is measured from oxlb's log against echo interval x multiplier and
//! printed as a ratio (no timed assertion). The node namespace stays at kernel defaults.
//! The session carries no prefixes: MetalLB (and oxlb) refuse IPv6 prefixes toward an
//! echo peer, and IPv6 sessions carry IPv6 unicast only.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

// The status readers and the log-time parser, shared with the IPv4 test.
mod bfd_lab;

use std::time::{Duration, SystemTime};

use oxlb_netlab::{Frr, Guarded, Netns, veth, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const ROUTER_IP: &str = "fd00:96::1";
const NODE_IP: &str = "fd00:96::2";
const STATUS_ADDR: &str = "127.0.0.1:7473";
const ECHO_MS: u32 = 100;
const MULT: u32 = 3;
const RUNS: usize = 5;

struct Lab {
    // Field order is drop order: processes first, then the namespaces.
    _oxlb: Guarded,
    frr: Frr,
    node: Netns,
    router: Netns,
    dir: std::path::PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    fn start() -> Lab {
        let router = Netns::new("echo6r").unwrap();
        let node = Netns::new("echo6n").unwrap();
        veth(&router, "r0", &node, "n0").unwrap();
        router
            .add_address("r0", &format!("{ROUTER_IP}/64"))
            .unwrap();
        node.add_address("n0", &format!("{NODE_IP}/64")).unwrap();
        let reachable = wait_until(WAIT, Duration::from_millis(200), || {
            node.exec(&["ping", "-6", "-c1", "-W1", ROUTER_IP])
                .ok()
                .filter(|o| o.status.success())
        });
        assert!(reachable.is_some(), "{ROUTER_IP} unreachable from the node");
        // The router's job: it forwards (IPv4 and IPv6), which loops our echoes.
        router.enable_forwarding().unwrap();
        let dir = std::env::temp_dir().join(format!("oxlb-bfd-e2e-{}", node.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("config/oxlb.yaml"), oxlb_config()).unwrap();
        let frr_config = format!(
            "frr defaults traditional\n\
             bfd\n profile fast\n  receive-interval 100\n  transmit-interval 100\n  \
             detect-multiplier 3\n  echo-mode\n  echo transmit-interval {ECHO_MS}\n  \
             echo receive-interval {ECHO_MS}\n !\n!\n\
             router bgp 64501\n bgp router-id 10.96.0.1\n no bgp ebgp-requires-policy\n \
             neighbor {NODE_IP} remote-as 64500\n neighbor {NODE_IP} bfd\n \
             neighbor {NODE_IP} bfd profile fast\n \
             address-family ipv6 unicast\n  neighbor {NODE_IP} activate\n exit-address-family\n!\n"
        );
        let frr = Frr::start(&router, &frr_config, &["zebra", "bgpd", "bfdd"]).unwrap();
        let log = dir.join("oxlb.log");
        let config_arg = dir.join("config").to_string_lossy().into_owned();
        let state_arg = dir.join("state").to_string_lossy().into_owned();
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
            _oxlb: oxlb,
            frr,
            node,
            router,
            dir,
        }
    }

    fn oxlb_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("oxlb.log")).unwrap_or_default()
    }

    fn status(&self) -> Option<serde_json::Value> {
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
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    fn frr_bfd_peer(&self) -> Option<serde_json::Value> {
        let text = self.frr.vtysh("show bfd peers json").ok()?;
        let peers: serde_json::Value = serde_json::from_str(&text).ok()?;
        peers.as_array()?.first().cloned()
    }

    fn nft(&self, rules: &str) {
        let path = self.dir.join("rules.nft");
        std::fs::write(&path, rules).unwrap();
        let out = self
            .router
            .exec(&["nft", "-f", &path.to_string_lossy()])
            .unwrap();
        assert!(out.status.success(), "nft: {out:?}");
    }

    /// The router drops forwarded IPv6 UDP to port 3785: only the echo path breaks.
    fn break_echo(&self) {
        self.nft(
            "table ip6 oxlbecho {\n\
             chain forwarded { type filter hook forward priority 0; udp dport 3785 drop; }\n}\n",
        );
    }

    fn restore_echo(&self) {
        let out = self
            .router
            .exec(&["nft", "delete", "table", "ip6", "oxlbecho"])
            .unwrap();
        assert!(out.status.success(), "nft: {out:?}");
    }
}

fn oxlb_config() -> String {
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
  detectMultiplier: {MULT}
  echoMode: true
  echoInterval: {ECHO_MS}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: router
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: {ROUTER_IP}
  holdTime: 90s
  keepaliveTime: 30s
  bfdProfile: fast
"
    )
}

fn bfd_session(status: &serde_json::Value) -> serde_json::Value {
    bfd_lab::bfd_session_to(status, ROUTER_IP)
}

fn echo_active(status: &serde_json::Value) -> bool {
    bfd_lab::echo_active_to(status, ROUTER_IP)
}

fn bgp_established(status: &serde_json::Value) -> bool {
    status["bgp_sessions"]
        .as_array()
        .and_then(|s| s.first())
        .is_some_and(|s| s["state"] == "Established")
}

fn echo_in(status: &serde_json::Value) -> u64 {
    bfd_lab::echo_in_from(status, ROUTER_IP)
}

fn wait_status(
    lab: &Lab,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_until(WAIT, Duration::from_millis(100), || {
        lab.status().filter(|s| check(s))
    })
    .unwrap_or_else(|| {
        panic!(
            "oxlb status never showed {what}: {:?}\nFRR: {}\noxlb log:\n{}",
            lab.status(),
            lab.frr.vtysh("show bfd peers json").unwrap_or_default(),
            lab.oxlb_log()
        )
    })
}

#[test]
fn ipv6_echo_failure_takes_bfd_and_bgp_down_with_diag_echo_function_failed() {
    if !oxlb_netlab::netns_tests_enabled("bfd_echo_v6_e2e").unwrap() {
        return;
    }
    let lab = Lab::start();
    wait_status(&lab, "the IPv6 BGP session Established", bgp_established);
    let status = wait_status(&lab, "IPv6 BFD up with echo active", echo_active);
    eprintln!("oxlb BFD session: {}", bfd_session(&status));
    let first = echo_in(&status);
    let status = wait_status(&lab, "IPv6 echo packets coming back", |s| {
        echo_in(s) > first + 20
    });
    let session = bfd_session(&status);
    assert_eq!(
        session["echo"],
        format!(
            "active: every {ECHO_MS} ms, detection {} ms",
            ECHO_MS * MULT
        ),
        "{session}"
    );
    let peer = lab.frr_bfd_peer().unwrap_or_default();
    eprintln!("FRR's BFD peer with echo active: {peer}");
    assert_eq!(peer["peer"], NODE_IP, "{peer}");
    assert_eq!(peer["echo-receive-interval"], ECHO_MS, "{peer}");
    // The node does not forward IPv6 (kernel default): we advertise 0.
    assert_eq!(peer["remote-echo-receive-interval"], 0, "{peer}");

    let mut ratios = Vec::new();
    for run in 1..=RUNS {
        let status = wait_status(&lab, "BFD up with echo active", echo_active);
        let before_in = echo_in(&status);
        wait_status(&lab, "echoes flowing", |s| echo_in(s) > before_in + 5);
        let log_len = lab.oxlb_log().len();
        let before = SystemTime::now();
        lab.break_echo();
        let after = SystemTime::now();
        let line = wait_until(WAIT, Duration::from_millis(20), || {
            let log = lab.oxlb_log();
            log.get(log_len..)?
                .lines()
                .find(|l| l.contains("went Down") && l.contains("echo_function_failed"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no echo failure logged\noxlb log:\n{}", lab.oxlb_log()));
        let at = bfd_lab::log_time(&line).unwrap_or_else(|| panic!("no timestamp in {line:?}"));
        let floor = f64::from(ECHO_MS * MULT) / 1000.0;
        let (low, high) = (at - bfd_lab::epoch_s(after), at - bfd_lab::epoch_s(before));
        eprintln!(
            "run {run}: IPv6 echo failure detected {:.0}..{:.0} ms after the echo path broke; \
             echo interval x multiplier = {:.0} ms; ratio {:.2}..{:.2}",
            low * 1000.0,
            high * 1000.0,
            floor * 1000.0,
            low / floor,
            high / floor
        );
        ratios.push((low / floor, high / floor));
        let peer = wait_until(WAIT, Duration::from_millis(100), || {
            lab.frr_bfd_peer()
                .filter(|p| p["remote-diagnostic"] == "echo function failed")
        });
        assert!(peer.is_some(), "FRR never saw diagnostic 2");
        if run == 1 {
            let closed = wait_until(WAIT, Duration::from_millis(50), || {
                lab.oxlb_log()
                    .get(log_len..)?
                    .lines()
                    .find(|l| l.contains("BFD session went Down: closing the BGP session"))
                    .map(str::to_string)
            });
            assert!(closed.is_some(), "BGP not closed:\n{}", lab.oxlb_log());
            eprintln!("run {run}: {}", closed.unwrap_or_default());
        }
        lab.restore_echo();
    }
    let lows: Vec<f64> = ratios.iter().map(|r| r.0).collect();
    let highs: Vec<f64> = ratios.iter().map(|r| r.1).collect();
    eprintln!(
        "IPv6 echo detection / (echo interval x multiplier) over {RUNS} runs: \
         lower bounds {lows:.2?}, upper bounds {highs:.2?}"
    );
    wait_status(&lab, "BFD up with echo active again", echo_active);
    wait_status(&lab, "BGP Established again", bgp_established);
}
