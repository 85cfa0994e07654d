//! BGPPeer `vrf` end to end (issue 18, part 1) against FRR, inside a VM: this machine's
//! kernel has no VRF (CONFIG_NET_VRF), so the test boots Debian's kernel under QEMU
//! (`oxlb_netlab::vm`) with the host's root read-only and runs itself there again
//! (`OXLB_IN_VM=1`). Inside, in network namespaces at kernel defaults
//! (`tcp_l3mdev_accept=0`):
//!
//! - node: uplink `up0` enslaved to VRF `red` (table 10), a second link `def0` in the
//!   default VRF; `oxlb run` with three BGPPeers: `red-peer` (vrf red, TCP MD5, BFD),
//!   `def-peer` (default VRF), `ghost-peer` (vrf `nosuch`, which does not exist),
//!   `lonely-peer` (vrf `blue`, which exists but holds no interface);
//! - router: FRR with `router bgp 64501` (default VRF) and `router bgp 64501 vrf red`
//!   over its own VRF `red`, as `oxlb router-config` generates them.
//!
//! Checked: both sessions come up at once, each in its own VRF; svc-red's IP lands in
//! FRR's VRF red only, with the node's VRF address as next hop, svc-def's in the default
//! VRF only; BFD is up in VRF red; a curl from the router's side of VRF red reaches the
//! backend on the node (which runs in the VRF) and gets its answer back through it; the
//! ghost peer opens no session and its error names the VRF and the fix, as does the
//! lonely peer's (the peer is unreachable in a VRF without interfaces); `oxlb explain`
//! and `oxlb check` say what return traffic needs. Figures are printed (no timed
//! assertion): VM boot, session up, whole run.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{OXLB, Scratch, paths_of, services_yaml};
use oxlb_netlab::vm::{self, VmSpec};
use oxlb_netlab::{Frr, Netns, netns_tests_enabled, veth, wait_until};

const TEST: &str = "vrf_peers_with_frr_in_a_vm";
const LISTEN: &str = "127.0.0.1:7472";
const NODE_RED: &str = "10.91.0.2";
const ROUTER_RED: &str = "10.91.0.1";
const NODE_DEF: &str = "10.92.0.2";
const ROUTER_DEF: &str = "10.92.0.1";
const VIP_RED: &str = "10.93.0.10";
const VIP_DEF: &str = "10.94.0.10";
/// Generous: the guest may run in software emulation.
const CONVERGE: Duration = Duration::from_secs(240);
/// Once the routes are in, traffic flows or something is wrong.
const TRAFFIC: Duration = Duration::from_secs(60);

#[test]
fn vrf_peers_with_frr_in_a_vm() {
    if vm::in_vm() {
        inner();
        return;
    }
    if !netns_tests_enabled(TEST).unwrap() {
        return;
    }
    let missing = vm::missing_tools();
    assert!(
        missing.is_empty(),
        "{TEST} needs {missing:?} (scripts/install-test-deps.sh installs them)"
    );
    let mut spec = VmSpec::debian().unwrap_or_else(|e| panic!("{TEST}: {e}"));
    spec.modules = ["vrf", "veth", "dummy"].map(String::from).to_vec();
    spec.memory_mb = 1536;
    let started = Instant::now();
    let run = vm::run_this_test(&spec, TEST, Duration::from_secs(1200)).unwrap();
    let console = run.console.replace('\r', "");
    let inner_figures: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("vrf figure:"))
        .collect();
    eprintln!(
        "VM ({}, kernel {}): boot to ready {:?}, whole VM run {:?} (host wall clock, \
         outer test {:?})\n{}",
        if run.kvm {
            "KVM"
        } else {
            "TCG software emulation"
        },
        spec.kernel.display(),
        run.boot,
        run.total,
        started.elapsed(),
        inner_figures.join("\n")
    );
    assert_eq!(
        run.status,
        Some(0),
        "the test inside the VM failed; console:\n{}",
        tail(&console, 150)
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn sh(ns: &Netns, argv: &[&str]) {
    let out = ns.exec(argv).unwrap();
    assert!(
        out.status.success(),
        "{argv:?} in {}: {}{}",
        ns.name(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes VRF `red` (table 10) in `ns` and enslaves `link` to it.
fn vrf_red(ns: &Netns, link: &str) {
    sh(
        ns,
        &["ip", "link", "add", "red", "type", "vrf", "table", "10"],
    );
    sh(ns, &["ip", "link", "set", "red", "up"]);
    sh(ns, &["ip", "link", "set", link, "master", "red"]);
    // The kernel's advice (Documentation/networking/vrf.rst): an unreachable default
    // at the end of the VRF's table, so nothing falls through to the main table.
    sh(
        ns,
        &[
            "ip",
            "route",
            "add",
            "table",
            "10",
            "unreachable",
            "default",
            "metric",
            "4278198272",
        ],
    );
}

fn config_yaml() -> String {
    "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: red, namespace: metallb-system}
spec: {addresses: [10.93.0.0/24]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: def, namespace: metallb-system}
spec: {addresses: [10.94.0.0/24]}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 5}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: red-peer, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.91.0.1, vrf: red, password: s3cret, bfdProfile: fast, holdTime: 30s, routerID: 10.91.0.2}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: def-peer, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.92.0.1, holdTime: 30s}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: ghost-peer, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.95.0.1, vrf: nosuch, holdTime: 30s}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: lonely-peer, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.96.0.1, vrf: blue, holdTime: 30s, routerID: 10.91.0.2}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: red, namespace: metallb-system}
spec: {ipAddressPools: [red], peers: [red-peer]}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: def, namespace: metallb-system}
spec: {ipAddressPools: [def], peers: [def-peer]}
"
    .to_string()
}

/// The router's side as a user would generate it: `oxlb router-config` for the VRF
/// peer (FRR `router bgp 64501 vrf red`, MD5, BFD profile) and for the default-VRF
/// peer, one file.
fn router_config(metallb: &std::path::Path) -> String {
    let generate = |router: &str, node: &str| {
        let out = std::process::Command::new(OXLB)
            .args(["router-config", "--flavor", "frr", "-f"])
            .arg(metallb)
            .args([
                "--router-address",
                router,
                "--node",
                &format!("node1={node}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "oxlb router-config --router-address {router}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let red = generate(ROUTER_RED, NODE_RED);
    assert!(red.contains("router bgp 64501 vrf red"), "{red}");
    let default: String = generate(ROUTER_DEF, NODE_DEF)
        .lines()
        .filter(|l| !l.starts_with("frr defaults"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{red}{default}")
}

fn vtysh(frr: &Frr, command: &str) -> String {
    frr.vtysh(command).unwrap_or_default()
}

fn oxlb(ns: &Netns, args: &[&str]) -> String {
    let out = ns.command(OXLB).args(args).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn status(ns: &Netns) -> serde_json::Value {
    serde_json::from_str(&oxlb(ns, &["status", "-o", "json", "--addr", LISTEN]))
        .unwrap_or(serde_json::Value::Null)
}

fn session<'a>(status: &'a serde_json::Value, peer: &str) -> Option<&'a serde_json::Value> {
    status["bgp_sessions"]
        .as_array()?
        .iter()
        .find(|s| s["peer"] == peer)
}

fn inner() {
    let whole = Instant::now();
    let dir = Scratch::new("vrf");
    let node = Netns::new("vrfnode").unwrap();
    let router = Netns::new("vrfrtr").unwrap();
    veth(&node, "up0", &router, "r-red").unwrap();
    veth(&node, "def0", &router, "r-def").unwrap();
    vrf_red(&node, "up0");
    vrf_red(&router, "r-red");
    // VRF blue exists on the node but holds no interface (the kernel's advice still
    // followed: an unreachable default at the end of its table).
    for argv in [
        &["ip", "link", "add", "blue", "type", "vrf", "table", "20"][..],
        &["ip", "link", "set", "blue", "up"],
        &[
            "ip",
            "route",
            "add",
            "table",
            "20",
            "unreachable",
            "default",
            "metric",
            "4278198272",
        ],
    ] {
        sh(&node, argv);
    }
    node.add_address("up0", &format!("{NODE_RED}/24")).unwrap();
    node.add_address("def0", &format!("{NODE_DEF}/24")).unwrap();
    router
        .add_address("r-red", &format!("{ROUTER_RED}/24"))
        .unwrap();
    router
        .add_address("r-def", &format!("{ROUTER_DEF}/24"))
        .unwrap();
    let config = dir.0.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("metallb.yaml"), config_yaml()).unwrap();
    let frr_conf = router_config(&config.join("metallb.yaml"));
    let frr = Frr::start_via_vtysh(&router, &frr_conf, &["zebra", "bgpd", "bfdd"])
        .unwrap_or_else(|e| panic!("FRR with the generated config: {e}\n{frr_conf}"));
    std::fs::write(
        config.join("services.yaml"),
        services_yaml(&[("svc-red", Some(VIP_RED)), ("svc-def", Some(VIP_DEF))]),
    )
    .unwrap();
    // `oxlb check` says what return traffic through the VRF needs.
    let check = oxlb(&node, &["check", "-f", config.to_str().unwrap()]);
    eprintln!("oxlb check:\n{check}");
    assert!(
        check.contains("10.91.0.1 in VRF red")
            && check.contains("runs inside VRF red")
            && check.contains("docs/vrf.md"),
        "{check}"
    );

    // Backends: one in VRF red (a process in the VRF answers the VRF's clients, and
    // its replies leave through the VRF), one in the default VRF.
    let red_backend = node
        .spawn(
            &[
                "ip",
                "vrf",
                "exec",
                "red",
                OXLB,
                "lab-backend",
                "node-in-red",
            ],
            Some(&dir.0.join("backend-red.log")),
        )
        .unwrap();
    let def_backend = node
        .spawn(
            &[OXLB, "lab-backend", "node-in-default"],
            Some(&dir.0.join("backend-def.log")),
        )
        .unwrap();
    let log = dir.0.join("run.log");
    let started = Instant::now();
    let run = node
        .spawn(
            &[
                OXLB,
                "run",
                "--node",
                "node1",
                "-f",
                config.to_str().unwrap(),
                "--state-dir",
                dir.0.join("state").to_str().unwrap(),
                "--listen",
                LISTEN,
                "--log-level",
                "debug",
            ],
            Some(&log),
        )
        .unwrap();
    let logs = || {
        format!(
            "--- oxlb run log:\n{}\n--- FRR: {}\n{}",
            tail(&std::fs::read_to_string(&log).unwrap_or_default(), 60),
            vtysh(&frr, "show bgp vrf all summary"),
            vtysh(&frr, "show bgp vrf red neighbors 10.91.0.2")
                .lines()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        )
    };

    // 1. Both sessions Established, each in its VRF.
    let up = wait_until(CONVERGE, Duration::from_millis(200), || {
        let s = status(&node);
        let est = |p: &str| session(&s, p).is_some_and(|x| x["state"] == "Established");
        (est("red-peer") && est("def-peer")).then(|| started.elapsed())
    })
    .unwrap_or_else(|| panic!("sessions never Established\n{}", logs()));
    eprintln!("vrf figure: both sessions Established {up:?} after oxlb run started");
    let s = status(&node);
    assert_eq!(session(&s, "red-peer").unwrap()["vrf"], "red", "{s}");
    let frr_red = vtysh(&frr, "show bgp vrf red neighbors 10.91.0.2 json");
    assert!(frr_red.contains("Established"), "{frr_red}");

    // 2. Routes: svc-red only in VRF red (next hop the node's VRF address), svc-def
    // only in the default VRF.
    let red_paths = wait_until(CONVERGE, Duration::from_millis(200), || {
        let p = paths_of(&vtysh(
            &frr,
            &format!("show bgp vrf red ipv4 unicast {VIP_RED}/32 json"),
        ));
        (!p.is_empty()).then_some(p)
    })
    .unwrap_or_else(|| panic!("{VIP_RED} never reached FRR's VRF red\n{}", logs()));
    assert_eq!(
        red_paths.keys().collect::<Vec<_>>(),
        [NODE_RED],
        "{red_paths:?}"
    );
    let def_paths = wait_until(CONVERGE, Duration::from_millis(200), || {
        let p = paths_of(&vtysh(
            &frr,
            &format!("show bgp ipv4 unicast {VIP_DEF}/32 json"),
        ));
        (!p.is_empty()).then_some(p)
    })
    .unwrap_or_else(|| panic!("{VIP_DEF} never reached FRR's default VRF\n{}", logs()));
    assert_eq!(
        def_paths.keys().collect::<Vec<_>>(),
        [NODE_DEF],
        "{def_paths:?}"
    );
    assert!(
        paths_of(&vtysh(
            &frr,
            &format!("show bgp ipv4 unicast {VIP_RED}/32 json")
        ))
        .is_empty(),
        "svc-red leaked into the default VRF"
    );
    assert!(
        paths_of(&vtysh(
            &frr,
            &format!("show bgp vrf red ipv4 unicast {VIP_DEF}/32 json")
        ))
        .is_empty(),
        "svc-def leaked into VRF red"
    );
    let kernel = router
        .exec_stdout(&["ip", "route", "show", "table", "10", VIP_RED])
        .unwrap_or_default();
    assert!(kernel.contains(NODE_RED), "router's table 10: {kernel}");
    eprintln!(
        "vrf figure: routes in FRR {:?} after oxlb run started",
        started.elapsed()
    );

    // 3. Traffic: from the router's side of VRF red to the backend in the VRF, and back.
    let curl = |args: &[&str]| {
        router
            .exec_stdout(&[&["curl", "-s", "--max-time", "5"], args].concat())
            .unwrap_or_default()
    };
    let body = wait_until(TRAFFIC, Duration::from_millis(500), || {
        Some(curl(&["--interface", "red", &format!("http://{VIP_RED}/")]))
            .filter(|b| b.contains("node-in-red"))
    });
    if body.is_none() {
        let both = |ns: &Netns, argv: &[&str]| {
            ns.exec(argv)
                .map(|o| {
                    format!(
                        "$ {}\n{}{}",
                        argv.join(" "),
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                })
                .unwrap_or_default()
        };
        panic!(
            "curl through VRF red failed\n{}\n{}\n{}\n{}\n{}\n{}\nbackend log: {}\n{}",
            both(
                &router,
                &[
                    "curl",
                    "-sv",
                    "--max-time",
                    "5",
                    "--interface",
                    "red",
                    &format!("http://{VIP_RED}/")
                ]
            ),
            both(&node, &["ip", "vrf", "pids", "red"]),
            both(&node, &["ip", "rule"]),
            both(&node, &["ip", "route", "show", "table", "10"]),
            both(&node, &["ip", "route", "show", "table", "local"]),
            both(&node, &["ss", "-tlnp"]),
            std::fs::read_to_string(dir.0.join("backend-red.log")).unwrap_or_default(),
            logs()
        );
    }
    let body = wait_until(CONVERGE, Duration::from_millis(500), || {
        Some(curl(&[&format!("http://{VIP_DEF}/")])).filter(|b| b.contains("node-in-default"))
    });
    assert!(body.is_some(), "curl in the default VRF\n{}", logs());

    // 4. BFD up in VRF red, on both sides.
    let bfd = wait_until(CONVERGE, Duration::from_millis(500), || {
        let text = vtysh(&frr, "show bfd vrf red peers json");
        let theirs: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let theirs_up = theirs.as_array().is_some_and(|a| {
            a.iter()
                .any(|b| b["peer"] == NODE_RED && b["status"] == "up")
        });
        let ours = status(&node);
        // Our row: the router's address (MetalLB's label), in VRF red.
        let ours_up = ours["bfd_sessions"].as_array().is_some_and(|a| {
            a.iter()
                .any(|b| b["peer"] == ROUTER_RED && b["vrf"] == "red" && b["up"] == true)
        });
        (theirs_up && ours_up).then_some(text)
    });
    assert!(
        bfd.is_some(),
        "BFD never up in VRF red: {}\nours: {}\n{}",
        vtysh(&frr, "show bfd vrf red peers"),
        status(&node)["bfd_sessions"],
        logs()
    );
    eprintln!(
        "vrf figure: BFD up in VRF red {:?} after oxlb run started",
        started.elapsed()
    );

    // 5. The VRF that does not exist: no session, a clear error on that peer.
    let s = status(&node);
    let ghost = session(&s, "ghost-peer").unwrap_or_else(|| panic!("{s}"));
    assert_ne!(ghost["state"], "Established");
    let error = ghost["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("VRF nosuch does not exist on this node") && error.contains("ip link add"),
        "{ghost}"
    );
    let run_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(run_log.contains("VRF nosuch does not exist"), "{}", logs());
    // The VRF without interfaces: the same, with the reason and the fix.
    let lonely = wait_until(CONVERGE, Duration::from_millis(500), || {
        let s = status(&node);
        let peer = session(&s, "lonely-peer")?.clone();
        let error = peer["last_error"].as_str()?.to_string();
        error
            .contains("unreachable in VRF blue")
            .then_some((peer, error))
    });
    let (lonely, error) = lonely.unwrap_or_else(|| panic!("{}\n{}", status(&node), logs()));
    eprintln!("vrf figure: lonely-peer's error: {error}");
    assert_ne!(lonely["state"], "Established");
    assert!(
        error.contains("the VRF has no interface") && error.contains("master blue"),
        "{lonely}"
    );
    // The listener in VRF red bound beside the default VRF's on the same port
    // (tcp_l3mdev_accept=0 keeps them apart).
    assert!(!run_log.contains("cannot listen on"), "{}", logs());

    // 6. explain says what the return path needs.
    let explain = oxlb(&node, &["explain", "default/svc-red", "--addr", LISTEN]);
    eprintln!("oxlb explain default/svc-red:\n{explain}");
    assert!(
        explain.contains("red-peer") && explain.contains("runs inside VRF red"),
        "{explain}"
    );
    eprintln!(
        "vrf figure: whole inner test {:?} (guest clock)",
        whole.elapsed()
    );
    drop(run);
    drop(red_backend);
    drop(def_backend);
}
