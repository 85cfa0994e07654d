//! Weighted ECMP with mixed paths (issue 19), end to end: `oxlb run` on node1 and node2
//! (BGP only, weighted ECMP, `--members`), FRR configured from `oxlb router-config`,
//! and on node3 an older speaker: a real membership (SWIM and health news, with the
//! memberlist key, from the library every speaker uses) whose news lacks the
//! link-bandwidth flag, which is exactly what a speaker from before the flag sends. A
//! Local Service has a ready endpoint on every node, so node3 would announce it too.
//!
//! 1. node1 and node2 both warn: `oxlb status`, `oxlb explain`, `/api/v1/status`,
//!    `/metrics` and the log name node3, the prefix and the Service;
//! 2. the older speaker leaves: nothing is known of node3 any more, the warning goes;
//! 3. node3 comes back as a speaker of this version (the flag set): no warning.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use oxlb_netlab::{netns_tests_enabled, wait_until};
use serde_json::Value;

const LOCAL_IP: &str = "10.79.0.10";
const KEY: &str = "mx-weighted-ecmp-mixed-test-key-not-secret";
const PORT: u16 = 7946;

fn metallb() -> String {
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: mx-pool
  namespace: metallb-system
spec:
  addresses:
    - 10.79.0.0/24
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: router
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: {ROUTER_LAN}
  holdTime: 9s
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: mx-weighted
  namespace: metallb-system
  annotations:
    oxlb.io/weighted-ecmp: \"true\"
spec:
  ipAddressPools:
    - mx-pool
---
apiVersion: v1
kind: Secret
metadata:
  name: memberlist
  namespace: metallb-system
stringData:
  secretkey: {KEY}
"
    )
}

fn workload() -> String {
    let endpoints: String = (1..=3)
        .map(|i| {
            format!(
                "  - addresses: [\"10.244.{i}.1\"]\n    nodeName: node{i}\n    conditions:\n      ready: true\n"
            )
        })
        .collect();
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: web-local
  namespace: default
  annotations:
    metallb.io/loadBalancerIPs: {LOCAL_IP}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-local-slice
  namespace: default
  labels:
    kubernetes.io/service-name: web-local
addressType: IPv4
endpoints:
{endpoints}"
    )
}

fn member(i: usize) -> String {
    format!("{}:{PORT}", node_ip(i))
}

/// What the speaker on node3 does next.
enum Node3 {
    /// Joins as a speaker from before the link-bandwidth flag: its news has no flag.
    Older,
    /// Joins as a speaker of this version.
    Upgraded,
    Leave,
}

type PeerFlags = tokio::sync::watch::Receiver<oxlb_node::mixed_paths::PeerFlags>;

/// A membership on node3, run from a thread inside node3's namespace (setns moves
/// only that thread; its sockets live there). Dropping it stops it.
struct SpeakerOnNode3 {
    commands:
        Option<tokio::sync::mpsc::UnboundedSender<(Node3, std::sync::mpsc::Sender<PeerFlags>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SpeakerOnNode3 {
    fn start(ns: &oxlb_netlab::Netns) -> SpeakerOnNode3 {
        let netns_path = PathBuf::from("/run/netns").join(ns.name());
        let (commands, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(Node3, std::sync::mpsc::Sender<PeerFlags>)>();
        let thread = std::thread::spawn(move || {
            let file = std::fs::File::open(&netns_path).unwrap();
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let bind: SocketAddr = member(3).parse().unwrap();
                let seeds = vec![member(1).parse().unwrap(), member(2).parse().unwrap()];
                let mut running: Option<oxlb_l2::membership::Membership> = None;
                while let Some((command, reply)) = rx.recv().await {
                    if let Some(m) = running.take() {
                        m.leave().await;
                    }
                    let flags = match command {
                        Node3::Leave => continue,
                        // An older speaker sets no flag at all (it is not drained).
                        Node3::Older => Default::default(),
                        Node3::Upgraded => oxlb_l2::health_news::own_flags(false),
                    };
                    let m = oxlb_l2::membership::Membership::start(
                        "node3",
                        bind,
                        seeds.clone(),
                        Some(KEY.as_bytes()),
                        oxlb_l2::membership::Tuning::default(),
                    )
                    .await
                    .unwrap();
                    m.set_flags(flags);
                    let _ = reply.send(m.watch_peer_flags());
                    running = Some(m);
                }
                if let Some(m) = running {
                    m.leave().await;
                }
            });
        });
        SpeakerOnNode3 {
            commands: Some(commands),
            thread: Some(thread),
        }
    }

    /// Does `what`; returns the flags node3 hears from the others (`None` on leave).
    fn run(&self, what: Node3) -> Option<PeerFlags> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.commands.as_ref()?.send((what, reply)).ok()?;
        answer.recv_timeout(Duration::from_secs(10)).ok()
    }
}

impl Drop for SpeakerOnNode3 {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until node3 hears node1 and node2 say they attach the link-bandwidth
/// community: the news flows both ways, and this version sends the flag.
fn wait_flag_heard(flags: &PeerFlags) {
    let heard = wait_until(CONVERGE, Duration::from_millis(100), || {
        let now = flags.borrow().clone();
        ["node1", "node2"]
            .iter()
            .all(|n| {
                now.get(*n)
                    .is_some_and(|f| f.contains(&oxlb_l2::membership::Flag::LinkBandwidth))
            })
            .then_some(now)
    });
    assert!(heard.is_some(), "node3 heard {:?}", flags.borrow());
}

/// The mixed-paths rows of node `i`'s status.
fn mixed(topo: &Topo, i: usize) -> Vec<Value> {
    topo.status(i)
        .and_then(|s| s["weighted_ecmp_mixed"].as_array().cloned())
        .unwrap_or_default()
}

fn wait_mixed(topo: &Topo, i: usize, want: impl Fn(&[Value]) -> bool, what: &str) -> Vec<Value> {
    wait_until(CONVERGE, Duration::from_millis(100), || {
        let rows = mixed(topo, i);
        want(&rows).then_some(rows)
    })
    .unwrap_or_else(|| {
        panic!(
            "node{}: never {what}: {:?}\n{}",
            i + 1,
            mixed(topo, i),
            topo.logs()
        )
    })
}

#[test]
fn an_older_speaker_beside_weighted_ecmp_is_warned_of() {
    if !netns_tests_enabled("weighted_ecmp_mixed").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let scratch = Scratch::new("mx-rc");
    let file = scratch.0.join("metallb.yaml");
    std::fs::write(&file, metallb()).unwrap();
    let frr_conf = router_config(&file);
    let mut topo = Topo::build_tagged("mx", 3, &frr_conf, &["zebra", "bgpd"]);
    topo.write_config("metallb.yaml", &metallb());
    topo.write_config("workload.yaml", &workload());
    // No Node objects: the speakers know each other from --members only.
    let members = [member(1), member(2), member(3)].join(",");
    for i in 0..2 {
        topo.start_run_with(i, &["--members", &members]);
    }
    let node3 = SpeakerOnNode3::start(&topo.nodes[2].ns);
    let flags = node3.run(Node3::Older).expect("node3 joins");
    wait_flag_heard(&flags);

    // 1. Both nodes of this version warn, naming node3 and the prefix.
    for i in 0..2 {
        let rows = wait_mixed(&topo, i, |r| !r.is_empty(), "warned of node3");
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = &rows[0];
        assert_eq!(row["service"], "default/web-local", "{row}");
        assert_eq!(
            row["prefixes"],
            serde_json::json!([format!("{LOCAL_IP}/32")])
        );
        assert_eq!(row["without_community"], serde_json::json!(["node3"]));
        assert_eq!(row["with_community"], serde_json::json!(["node1", "node2"]));
    }
    let want = format!(
        "WARNING: Weighted ECMP: node3 announces {LOCAL_IP}/32 (default/web-local) without the \
         link-bandwidth community (an older oxlb)"
    );
    let status = topo.oxlb(0, &["status", "--addr", LISTEN]).unwrap();
    assert!(status.contains(&want), "{status}");
    let explain = topo
        .oxlb(1, &["explain", "default/web-local", "--addr", LISTEN])
        .unwrap();
    assert!(explain.contains(&want), "{explain}");
    eprintln!("explain on node2:\n{explain}");
    let metrics = topo.nodes[0]
        .ns
        .exec_stdout(&["curl", "-s", &format!("http://{LISTEN}/metrics")])
        .unwrap();
    let line = "oxlb_bgp_weighted_ecmp_paths_without_community{service=\"default/web-local\"} 1";
    assert!(
        metrics.lines().any(|l| l == line),
        "no {line:?} in\n{metrics}"
    );
    let log = std::fs::read_to_string(&topo.nodes[0].log).unwrap_or_default();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("node3 announces")
            && l.contains("web-local")),
        "no warning in node1's log:\n{log}"
    );
    // The router has node1's and node2's paths, each with the community (node3's
    // speaker here announces nothing: the warning is about what it would send).
    let with_bandwidth = wait_until(CONVERGE, Duration::from_millis(200), || {
        let text = topo
            .frr
            .vtysh(&format!("show bgp ipv4 unicast {LOCAL_IP}/32 json"))
            .unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let paths = json["paths"].as_array().cloned().unwrap_or_default();
        (paths.len() == 2
            && paths.iter().all(|p| {
                p["extendedCommunity"]["string"]
                    .as_str()
                    .is_some_and(|c| c.contains("LB:"))
            }))
        .then_some(paths.len())
    });
    assert!(with_bandwidth.is_some(), "FRR: {}", topo.logs());

    // 2. The older speaker leaves: node3 is unknown again, not guessed.
    node3.run(Node3::Leave);
    for i in 0..2 {
        wait_mixed(
            &topo,
            i,
            <[Value]>::is_empty,
            "dropped the warning after node3 left",
        );
    }

    // 3. node3 upgraded: its news carries the flag; nothing is mixed. Once node3
    // hears the others, they hear it (news goes to every member each second); a few
    // seconds more give each of them several of its datagrams.
    let flags = node3.run(Node3::Upgraded).expect("node3 rejoins");
    wait_flag_heard(&flags);
    std::thread::sleep(Duration::from_secs(3));
    for i in 0..2 {
        let rows = mixed(&topo, i);
        assert!(rows.is_empty(), "node{}: {rows:?}\n{}", i + 1, topo.logs());
    }
    drop(node3);
}

/// `oxlb router-config --flavor frr` for the three nodes.
fn router_config(file: &std::path::Path) -> String {
    frr_router_config(file, 3)
}
