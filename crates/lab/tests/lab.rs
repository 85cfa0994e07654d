//! The lab's network without oxlb: a fake `oxlb` executable (it sleeps for `run` and
//! prints a line for `status`) and, where a speaker is needed, a BIRD stand-in in the
//! node namespace announcing the service IP that sits on the node's dummy interface.
//! The real end-to-end demo with `oxlb run` needs the oxlb binary (tested there).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use oxlb_config::{
    AddressRange, BgpAdvertisement, Community, Config, L2Advertisement, Peer, PeerAddress, PeerAsn,
    Pool,
};
use oxlb_lab::{Error, Lab, LabOptions, RouterKind, down, plan};
use oxlb_netlab::{Bird, Netns, netns_tests_enabled, wait_until};

/// The model of the built-in default-config.yaml (the YAML loader is the config
/// crate's; the CLI passes it in).
fn default_config() -> Config {
    let mut config = Config::default();
    let pool = |name: &str, range: AddressRange, avoid: bool| Pool {
        name: name.into(),
        ranges: vec![range],
        addresses_as_written: vec![],
        auto_assign: true,
        avoid_buggy_ips: avoid,
        service_allocation: None,
        labels: BTreeMap::new(),
    };
    config.pools.insert(
        "lab-bgp".into(),
        pool(
            "lab-bgp",
            AddressRange::from_cidr("172.31.100.0/24".parse().unwrap()),
            true,
        ),
    );
    config.pools.insert(
        "lab-l2".into(),
        pool(
            "lab-l2",
            AddressRange::new(
                "172.31.0.200".parse().unwrap(),
                "172.31.0.250".parse().unwrap(),
            )
            .unwrap(),
            false,
        ),
    );
    config.peers.insert(
        "lab-router".into(),
        Peer {
            name: "lab-router".into(),
            my_asn: 64500,
            peer_asn: PeerAsn::Fixed(64501),
            address: PeerAddress::Ip("172.31.0.1".parse().unwrap()),
            source_address: None,
            port: 179,
            hold_time: Duration::from_secs(9),
            keepalive_time: Duration::from_secs(3),
            connect_time: Duration::from_secs(120),
            router_id: None,
            node_selectors: vec![],
            password: None,
            bfd_profile: None,
            graceful_restart: false,
            ebgp_multihop: false,
            vrf: None,
            dual_stack_address_family: false,
            local_asn: None,
        },
    );
    config.bgp_advertisements.insert(
        "lab-bgp".into(),
        BgpAdvertisement {
            name: "lab-bgp".into(),
            pools: BTreeSet::from(["lab-bgp".to_string()]),
            aggregation_length_v4: 32,
            aggregation_length_v6: 128,
            local_pref: None,
            communities: BTreeSet::from([Community::Standard((64500 << 16) | 100)]),
            peers: BTreeSet::new(),
            node_selectors: vec![],
            service_selectors: vec![],
            weighted_ecmp: false,
        },
    );
    config.l2_advertisements.insert(
        "lab-l2".into(),
        L2Advertisement {
            name: "lab-l2".into(),
            pools: BTreeSet::from(["lab-l2".to_string()]),
            node_selectors: vec![],
            interfaces: vec![],
            service_selectors: vec![],
            preferred_nodes: vec![],
        },
    );
    config
}

/// A stand-in for `oxlb`: `run` sleeps, `status` prints one line.
fn fake_oxlb(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oxlb-lab-fake-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("oxlb");
    std::fs::write(
        &path,
        "#!/bin/sh\ncase \"$1\" in\n  run) exec sleep 100000 ;;\n  status) echo \"fake oxlb status\" ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn options(tag: &str, router: RouterKind, nodes: usize) -> LabOptions {
    let loader: oxlb_lab::ConfigLoader = Box::new(|_| Ok(default_config()));
    let mut options = LabOptions::new(fake_oxlb(tag), loader);
    options.backend_bin = PathBuf::from(env!("CARGO_BIN_EXE_oxlb-lab-backend"));
    options.nodes = nodes;
    options.router = router;
    options.prefix = format!("oxlbt{}{tag}", std::process::id());
    options.state_dir = PathBuf::from(format!("/run/oxlb-lab-test-{}-{tag}", std::process::id()));
    options
}

/// Removes the lab, and the fake `oxlb`'s directory, even when an assertion fails.
struct Cleanup {
    prefix: String,
    state_dir: PathBuf,
    fake_dir: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = down(&self.prefix, &self.state_dir);
        if let Some(dir) = &self.fake_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn cleanup(options: &LabOptions) -> Cleanup {
    Cleanup {
        prefix: options.prefix.clone(),
        state_dir: options.state_dir.clone(),
        // Only the directory fake_oxlb made (never a real binary's).
        fake_dir: options
            .oxlb_bin
            .parent()
            .filter(|d| {
                d.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("oxlb-lab-fake-"))
            })
            .map(PathBuf::from),
    }
}

fn lab_namespaces(prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn up_and_down_leave_nothing_behind_even_after_a_crash() {
    if !netns_tests_enabled("lab up/down").unwrap() {
        return;
    }
    let options = options("a", RouterKind::Frr, 2);
    let _cleanup = cleanup(&options);
    let prefix = options.prefix.clone();
    let state_dir = options.state_dir.clone();
    let lab = Lab::up(options).unwrap();
    let mut made = lab_namespaces(&prefix);
    made.sort();
    assert_eq!(
        made,
        ["lan", "node1", "node2", "router", "ws"].map(|s| format!("{prefix}-{s}"))
    );
    assert!(lab.describe().contains("node2"), "{}", lab.describe());
    let loaded = Lab::load_from(&state_dir).unwrap();
    assert_eq!(loaded.state(), lab.state());
    let pids: Vec<u32> = lab
        .state()
        .nodes
        .iter()
        .flat_map(|n| n.pids.clone())
        .collect();
    assert!(pids.iter().all(|p| alive(*p)), "node processes not running");
    // The router's FRR instance files exist while it runs.
    assert!(PathBuf::from(format!("/etc/frr/{prefix}-router")).exists());

    // A second `up` with the same prefix is refused.
    let again = Lab::up(self::options("a", RouterKind::Frr, 1)).unwrap_err();
    assert!(matches!(again, Error::AlreadyUp(_)), "{again}");

    // A crash: a stray namespace with the prefix (and a process in it), and the state
    // file gone. `down` still finds and removes everything.
    let stray = format!("{prefix}-node9");
    let ns = Netns::named(&stray).unwrap();
    let sleeper = ns.command("sleep").arg("100000").spawn().unwrap();
    ns.keep();
    std::fs::remove_file(state_dir.join("state.json")).unwrap();

    let removed = down(&prefix, &state_dir).unwrap();
    assert!(removed.iter().any(|r| r.contains(&stray)), "{removed:?}");
    assert!(
        lab_namespaces(&prefix).is_empty(),
        "{:?}",
        lab_namespaces(&prefix)
    );
    assert!(!state_dir.exists());
    assert!(!PathBuf::from(format!("/etc/frr/{prefix}-router")).exists());
    assert!(!PathBuf::from(format!("/var/run/frr/{prefix}-router")).exists());
    let mut sleeper = sleeper;
    let _ = sleeper.wait();
    for pid in pids {
        assert!(!alive(pid), "process {pid} survived down");
    }
    // Down again: nothing left, no error.
    assert!(down(&prefix, &state_dir).unwrap().is_empty());
    assert!(matches!(Lab::load_from(&state_dir), Err(Error::NotUp(_))));
}

/// BIRD announcing `ip`/32 from node `index` to the lab router (AS 64500 -> 64501).
fn stand_in_speaker(index: usize, ip: IpAddr) -> String {
    let me = plan::node_v4(index);
    format!(
        "router id {me};
protocol device {{}}
protocol static oxlb_services {{
	ipv4;
	route {ip}/32 blackhole;
}}
protocol bgp oxlb_router {{
	local {me} as 64500;
	neighbor {} as 64501;
	hold time 9;
	keepalive time 3;
	connect retry time 2;
	error wait time 1, 5;
	ipv4 {{ import none; export where proto = \"oxlb_services\"; }};
}}
",
        plan::ROUTER_LAN_V4
    )
}

fn reaches_backend_through_router(tag: &str, router: RouterKind) {
    let options = options(tag, router, 2);
    let _cleanup = cleanup(&options);
    let lab = Lab::up(options).unwrap();
    let service = IpAddr::V4(plan::DEFAULT_BGP_SERVICE_IP);
    let node1 = lab.node("node1").unwrap().namespace.clone();

    // What `oxlb run` will do on the node: the service IP local to the node (oxlb uses
    // a dummy interface; this kernel may lack the dummy module, and loopback is
    // equivalent here), announced over BGP.
    let ns = Netns::adopt(&node1);
    ns.add_address("lo", &format!("{service}/32")).unwrap();
    let speaker = Bird::start(&ns, &stand_in_speaker(1, service));
    ns.keep();
    let speaker = speaker.unwrap();

    let body = wait_until(Duration::from_secs(60), Duration::from_millis(500), || {
        lab.curl(service).ok()
    });
    assert_eq!(
        body.as_deref(),
        Some("node1\n"),
        "no answer from {service}; status:\n{}\nspeaker:\n{}",
        lab.status(),
        speaker.birdc("show protocols all").unwrap_or_default()
    );

    let status = lab.status();
    assert!(status.contains("fake oxlb status"), "{status}");
    assert!(status.contains(&service.to_string()), "{status}");
    assert!(status.contains("=== node2 (oxlb status) ==="), "{status}");

    // Cutting node1's link stops the traffic (there is no other speaker).
    lab.fail("node1").unwrap();
    let cut = wait_until(Duration::from_secs(30), Duration::from_millis(500), || {
        lab.curl(service).err()
    });
    assert!(cut.is_some(), "traffic still reached node1 after `fail`");
    lab.heal("1").unwrap();
    assert!(matches!(lab.fail("node7"), Err(Error::NoSuchNode(_))));
    drop(speaker);
    lab.down().unwrap();
}

#[test]
fn workstation_reaches_a_node_backend_through_frr() {
    if !netns_tests_enabled("lab through FRR").unwrap() {
        return;
    }
    reaches_backend_through_router("f", RouterKind::Frr);
}

#[test]
fn workstation_reaches_a_node_backend_through_bird() {
    if !netns_tests_enabled("lab through BIRD").unwrap() {
        return;
    }
    reaches_backend_through_router("b", RouterKind::Bird);
}

/// `lab up -f CONFIG` with a user's config that names node1 but has no memberlist
/// Secret: the lab keeps node1's Node object, adds node2's and a Secret in its own
/// directory (passed to every `oxlb run` as a second `-f`), and says so.
#[test]
fn a_users_config_gets_only_the_missing_membership_objects() {
    if !netns_tests_enabled("lab up -f").unwrap() {
        return;
    }
    let mut options = options("u", RouterKind::Frr, 2);
    let _cleanup = cleanup(&options);
    let user_dir = std::env::temp_dir().join(format!("oxlb-lab-user-{}", std::process::id()));
    std::fs::create_dir_all(&user_dir).unwrap();
    let user = user_dir.join("config.yaml");
    std::fs::write(
        &user,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node1\nstatus:\n  addresses:\n    - type: InternalIP\n      address: 172.31.0.11\n",
    )
    .unwrap();
    options.config = vec![user.clone()];
    let state_dir = options.state_dir.clone();
    let lab = Lab::up(options).unwrap();
    let added = state_dir.join("lab-objects");
    assert_eq!(lab.state().config_paths, std::slice::from_ref(&user));
    assert_eq!(lab.state().added_path.as_deref(), Some(added.as_path()));
    let nodes = std::fs::read_to_string(added.join("lab-nodes.yaml")).unwrap();
    assert!(
        nodes.contains("name: node2") && !nodes.contains("name: node1"),
        "{nodes}"
    );
    assert!(added.join("memberlist.yaml").exists());
    let described = lab.describe();
    assert!(
        described.contains("node1 from your configuration kept"),
        "{described}"
    );
    assert!(described.contains("added a Secret"), "{described}");
    // The user's file is untouched.
    assert!(!std::fs::read_to_string(&user).unwrap().contains("Secret"));
    lab.down().unwrap();
    let _ = std::fs::remove_dir_all(user_dir);
}
