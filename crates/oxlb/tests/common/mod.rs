//! Shared by the `oxlb run` end-to-end test and the convergence bench: a throw-away
//! network (workstation — FRR router — LAN bridge — node namespaces), the files `oxlb run`
//! reads, and small probes of FRR and of the running instances.
//!
//! Address plan (all inside namespaces created here, RFC 1918 ranges):
//! WAN 10.78.0.0/24 (workstation .2, router .1); LAN 10.77.0.0/24 (router .1, nodeN
//! .(10+N), an optional BIRD speaker .20); BGP pool 10.79.0.0/24. Nodes AS 64500, router
//! AS 64501. With IPv6 ([`Topo::build_dual`]) the same plan in ULA space too: WAN
//! fd00:78::/64 (workstation ::2, router ::1); LAN fd00:77::/64 (router ::1, nodeN
//! ::(10+N), a LAN client ::50 beside 10.77.0.50).
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use oxlb_netlab::{Frr, Guarded, Netns, veth, wait_until};
use serde_json::Value;

pub mod flows;

pub const OXLB: &str = env!("CARGO_BIN_EXE_oxlb");

/// The oxlb binary a footprint bench measures: `OXLB_BENCH_BINARY` if set (the static
/// musl build that the image and the releases ship, `scripts/build-static.sh PATH`),
/// else cargo's build of this tree.
pub fn bench_binary() -> String {
    std::env::var("OXLB_BENCH_BINARY").unwrap_or_else(|_| OXLB.to_string())
}
/// The workstation's address (on the WAN side of the router).
pub const WORKSTATION: &str = "10.78.0.2";
pub const ROUTER_LAN: &str = "10.77.0.1";
pub const ROUTER_LAN6: &str = "fd00:77::1";
pub const CLIENT_LAN: &str = "10.77.0.50";
pub const CLIENT_LAN6: &str = "fd00:77::50";
pub const BIRD_LAN: &str = "10.77.0.20";
pub const LISTEN: &str = "127.0.0.1:7472";
/// Generous: a wait for a condition, never a timed assertion.
pub const CONVERGE: Duration = Duration::from_secs(60);

pub fn node_ip(index: usize) -> String {
    format!("10.77.0.{}", 10 + index)
}

pub fn node_ip6(index: usize) -> String {
    format!("fd00:77::{}", 10 + index)
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// The first letters of the namespace names [`Topo`] creates.
    static TAG: std::cell::RefCell<String> = std::cell::RefCell::new("e2e".to_string());
}

fn tagged(name: &str) -> String {
    TAG.with(|t| format!("{}{name}", t.borrow()))
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "oxlb-{tag}-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One node: its namespace, its `oxlb run` (if running) and HTTP backend.
pub struct Node {
    pub name: String,
    pub ip: String,
    /// Its IPv6 LAN address when the network is dual-stack.
    pub ip6: Option<String>,
    pub run: Option<Guarded>,
    pub backend: Option<Guarded>,
    pub state_dir: PathBuf,
    pub log: PathBuf,
    pub ns: Netns,
}

impl Node {
    /// `nft list table ip oxlb` in the node: the second-chance ruleset oxlb programmed
    /// (empty if none).
    pub fn second_chance_table(&self) -> String {
        self.ns
            .exec_stdout(&["nft", "list", "table", "ip", "oxlb"])
            .unwrap_or_default()
    }
}

/// Fields drop in order: processes, FRR, then the namespaces (which kill the rest).
pub struct Topo {
    pub nodes: Vec<Node>,
    pub frr: Frr,
    pub bird_ns: Option<Netns>,
    /// A host on the LAN itself (dual-stack topologies): asks ARP/NDP for Layer 2 IPs.
    pub client: Option<Netns>,
    pub ws: Netns,
    pub router: Netns,
    pub lan: Netns,
    /// Holds `config/` (what `oxlb run -f` watches), the state dirs and the logs.
    pub dir: Scratch,
}

impl Topo {
    /// Builds the network and starts FRR; no `oxlb run` yet. `bird`: also a namespace on
    /// the LAN at [`BIRD_LAN`] that FRR accepts as a neighbour.
    pub fn build(nodes: usize, bird: bool) -> Topo {
        Topo::build_inner(nodes, bird, None, &["zebra", "bgpd"], false)
    }

    /// As [`Topo::build`] with IPv6 beside IPv4 on every link (duplicate address
    /// detection off, so addresses work at once), IPv6 BGP sessions from FRR to every
    /// node, and a LAN client namespace.
    pub fn build_dual(nodes: usize) -> Topo {
        Topo::build_inner(nodes, false, None, &["zebra", "bgpd"], true)
    }

    /// [`Topo::build_dual`] with namespace names starting with `tag`.
    pub fn build_dual_tagged(tag: &str, nodes: usize) -> Topo {
        TAG.with(|t| *t.borrow_mut() = tag.to_string());
        let topo = Topo::build_dual(nodes);
        TAG.with(|t| *t.borrow_mut() = "e2e".to_string());
        topo
    }

    /// Like [`Topo::build`], with the router's frr.conf and daemons given (e.g. from
    /// `oxlb router-config`, with `bfdd`), loaded through vtysh as FRR's init does.
    pub fn build_with_frr(nodes: usize, frr_conf: &str, daemons: &[&str]) -> Topo {
        Topo::build_inner(nodes, false, Some(frr_conf), daemons, false)
    }

    /// [`Topo::build_with_frr`] with namespace names starting with `tag` (each helper or
    /// test family has its own, so leftovers are attributable).
    pub fn build_tagged(tag: &str, nodes: usize, frr_conf: &str, daemons: &[&str]) -> Topo {
        TAG.with(|t| *t.borrow_mut() = tag.to_string());
        let topo = Topo::build_inner(nodes, false, Some(frr_conf), daemons, false);
        TAG.with(|t| *t.borrow_mut() = "e2e".to_string());
        topo
    }

    /// `frr_conf`: `None` for the built-in one (a neighbour per node, and BIRD),
    /// started by bgpd itself; given, it is loaded through vtysh.
    fn build_inner(
        nodes: usize,
        bird: bool,
        frr_conf: Option<&str>,
        daemons: &[&str],
        v6: bool,
    ) -> Topo {
        let mut neighbours = Vec::new();
        let dir = Scratch::new("e2e");
        std::fs::create_dir_all(dir.0.join("config")).unwrap();
        let ws = Netns::new(&tagged("ws")).unwrap();
        let router = Netns::new(&tagged("rtr")).unwrap();
        let lan = Netns::new(&tagged("lan")).unwrap();
        if v6 {
            for ns in [&ws, &router, &lan] {
                no_dad(ns);
            }
        }
        veth(&ws, "wan0", &router, "wan0").unwrap();
        veth(&router, "lan0", &lan, "router").unwrap();
        lan.add_bridge("br0").unwrap();
        lan.attach_to_bridge("router", "br0").unwrap();
        ws.add_address("wan0", &format!("{WORKSTATION}/24"))
            .unwrap();
        router.add_address("wan0", "10.78.0.1/24").unwrap();
        router
            .add_address("lan0", &format!("{ROUTER_LAN}/24"))
            .unwrap();
        router.enable_forwarding().unwrap();
        // Spread flows over the ECMP paths by ports too, so curls reach several nodes.
        router
            .exec(&["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"])
            .unwrap();
        ws.exec(&["ip", "route", "add", "default", "via", "10.78.0.1"])
            .unwrap();
        if v6 {
            ws.add_address("wan0", "fd00:78::2/64").unwrap();
            router.add_address("wan0", "fd00:78::1/64").unwrap();
            router
                .add_address("lan0", &format!("{ROUTER_LAN6}/64"))
                .unwrap();
            router
                .exec(&["sysctl", "-qw", "net.ipv6.fib_multipath_hash_policy=1"])
                .unwrap();
            ws.exec(&["ip", "-6", "route", "add", "default", "via", "fd00:78::1"])
                .unwrap();
        }

        let mut out = Vec::new();
        for index in 1..=nodes {
            let ns = Netns::new(&tagged(&format!("node{index}"))).unwrap();
            if v6 {
                no_dad(&ns);
            }
            attach(&lan, &ns, &format!("n{index}"), &node_ip(index));
            neighbours.push(node_ip(index));
            if v6 {
                attach6(&ns, &node_ip6(index));
                neighbours.push(node_ip6(index));
            }
            let state_dir = dir.0.join(format!("state-node{index}"));
            out.push(Node {
                name: format!("node{index}"),
                ip: node_ip(index),
                ip6: v6.then(|| node_ip6(index)),
                run: None,
                backend: None,
                log: dir.0.join(format!("node{index}-oxlb.log")),
                state_dir,
                ns,
            });
        }
        let bird_ns = bird.then(|| {
            let ns = Netns::new(&tagged("bird")).unwrap();
            attach(&lan, &ns, "bird", BIRD_LAN);
            neighbours.push(BIRD_LAN.to_string());
            ns
        });
        let client = v6.then(|| {
            let ns = Netns::new(&tagged("cli")).unwrap();
            no_dad(&ns);
            attach(&lan, &ns, "client", CLIENT_LAN);
            attach6(&ns, CLIENT_LAN6);
            ns
        });
        let frr = match frr_conf {
            Some(conf) => Frr::start_via_vtysh(&router, conf, daemons).unwrap(),
            None => Frr::start(&router, &frr_config(&neighbours), daemons).unwrap(),
        };
        Topo {
            nodes: out,
            frr,
            bird_ns,
            client,
            ws,
            router,
            lan,
            dir,
        }
    }

    /// A Node object per node with its LAN InternalIP, each document led by `---`
    /// (what a Layer 2 configuration needs for the speakers to find each other).
    pub fn node_objects_yaml(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {}\nstatus:\n  addresses:\n\
                     \x20   - type: InternalIP\n      address: {}\n",
                    n.name, n.ip
                )
            })
            .collect()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.0.join("config")
    }

    /// Replaces `config/NAME` atomically (written beside, renamed in), as an editor does.
    pub fn write_config(&self, name: &str, text: &str) {
        let staging = self.dir.0.join(format!(".{name}.new"));
        std::fs::write(&staging, text).unwrap();
        std::fs::rename(&staging, self.config_dir().join(name)).unwrap();
    }

    /// Starts `oxlb run` on node `i` (0-based) with its state dir.
    pub fn start_run(&mut self, i: usize) {
        self.start_run_with(i, &[]);
    }

    /// [`Topo::start_run`] with extra `oxlb run` arguments.
    pub fn start_run_with(&mut self, i: usize, extra: &[&str]) {
        let config = self.config_dir();
        let node = &mut self.nodes[i];
        let run = node
            .ns
            .spawn(
                &[
                    OXLB,
                    "run",
                    "--node",
                    &node.name,
                    "-f",
                    config.to_str().unwrap(),
                    "--state-dir",
                    node.state_dir.to_str().unwrap(),
                    "--listen",
                    LISTEN,
                    "--log-level",
                    "debug",
                ]
                .into_iter()
                .chain(extra.iter().copied())
                .collect::<Vec<_>>(),
                Some(&node.log),
            )
            .unwrap();
        node.run = Some(run);
    }

    /// SIGTERM to node `i`'s `oxlb run`; waits for it to exit and returns whether it
    /// exited with status 0.
    pub fn stop_run(&mut self, i: usize) -> bool {
        let mut run = self.nodes[i].run.take().expect("oxlb run is running");
        run.signal("TERM").unwrap();
        let status = wait_until(CONVERGE, Duration::from_millis(50), || {
            run.child_mut().try_wait().ok().flatten()
        })
        .unwrap_or_else(|| panic!("oxlb run on node {} ignored SIGTERM", i + 1));
        status.success()
    }

    pub fn start_backend(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = self.dir.0.join(format!("{}-backend.log", node.name));
        node.backend = Some(
            node.ns
                .spawn(&[OXLB, "lab-backend", &node.name], Some(&log))
                .unwrap(),
        );
    }

    /// The next hops FRR has for `prefix` (one per path), each with its communities.
    pub fn paths(&self, prefix: &str) -> BTreeMap<String, String> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let text = self
            .frr
            .vtysh(&format!("show bgp {family} unicast {prefix} json"))
            .unwrap_or_default();
        paths_of(&text)
    }

    /// Waits until FRR has exactly `hops` as next hops of `prefix`; panics with FRR's
    /// view and the logs if that does not happen.
    pub fn wait_paths(&self, prefix: &str, hops: &[String]) -> BTreeMap<String, String> {
        let found = wait_until(CONVERGE, Duration::from_millis(100), || {
            let paths = self.paths(prefix);
            paths.keys().eq(hops.iter()).then_some(paths)
        });
        found.unwrap_or_else(|| {
            panic!(
                "FRR never had {prefix} via exactly {hops:?}; it has {:?}\n{}",
                self.paths(prefix),
                self.logs()
            )
        })
    }

    /// FRR's count of established connections per neighbour (it grows on every reset).
    pub fn sessions(&self) -> BTreeMap<String, (u64, u64)> {
        let text = self
            .frr
            .vtysh("show bgp neighbors json")
            .unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let mut out = BTreeMap::new();
        if let Some(map) = json.as_object() {
            for (peer, n) in map {
                let est = n["connectionsEstablished"].as_u64().unwrap_or(0);
                let dropped = n["connectionsDropped"].as_u64().unwrap_or(0);
                out.insert(peer.clone(), (est, dropped));
            }
        }
        out
    }

    /// `oxlb ARGS` inside node `i`'s namespace; stdout, or the error with stderr.
    pub fn oxlb(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let output = self.nodes[i]
            .ns
            .command(OXLB)
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "oxlb {args:?} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// `oxlb status -o json` of node `i`.
    pub fn status(&self, i: usize) -> Option<Value> {
        let text = self
            .oxlb(i, &["status", "-o", "json", "--addr", LISTEN])
            .ok()?;
        serde_json::from_str(&text).ok()
    }

    /// service ("ns/name") → its IPs, as node `i` reports them.
    pub fn assignments(&self, i: usize) -> Option<BTreeMap<String, Vec<String>>> {
        let status = self.status(i)?;
        let mut out = BTreeMap::new();
        for s in status["services"].as_array()? {
            let ips = s["ips"]
                .as_array()?
                .iter()
                .filter_map(|ip| ip.as_str().map(str::to_string))
                .collect();
            out.insert(s["service"].as_str()?.to_string(), ips);
        }
        Some(out)
    }

    /// The body of `/healthz` on node `i`.
    pub fn healthz(&self, i: usize) -> String {
        self.nodes[i]
            .ns
            .exec_stdout(&[
                "curl",
                "-s",
                "--max-time",
                "3",
                &format!("http://{LISTEN}/healthz"),
            ])
            .unwrap_or_default()
    }

    /// GET http://IP/ from the workstation, through the router.
    pub fn curl_from_ws(&self, ip: &str) -> Result<String, String> {
        self.ws
            .exec_stdout(&["curl", "-s", "--max-time", "3", &format!("http://{ip}/")])
            .map_err(|e| e.to_string())
    }

    /// The tail of every node's `oxlb run` log, for failure messages (env
    /// `OXLB_E2E_LOG_LINES`: how many lines, default 25).
    pub fn logs(&self) -> String {
        let keep = std::env::var("OXLB_E2E_LOG_LINES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(25);
        let mut out = String::new();
        for node in &self.nodes {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(keep)..];
            out.push_str(&format!(
                "--- {} ({}) ---\n{}\n",
                node.name,
                node.log.display(),
                tail.join("\n")
            ));
        }
        out
    }
}

/// Joins `ns` to the LAN bridge with address `ip`, default route via the router; the
/// bridge port in the LAN namespace is named `port`.
pub fn attach(lan: &Netns, ns: &Netns, port: &str, ip: &str) {
    veth(ns, "lan0", lan, port).unwrap();
    lan.attach_to_bridge(port, "br0").unwrap();
    ns.add_address("lan0", &format!("{ip}/24")).unwrap();
    ns.exec(&["ip", "route", "add", "default", "via", ROUTER_LAN])
        .unwrap();
}

/// Turns IPv6 duplicate address detection off for every interface made later in `ns`,
/// link-local addresses included, so they are usable at once.
fn no_dad(ns: &Netns) {
    ns.exec(&[
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
    ])
    .unwrap();
}

/// The IPv6 LAN address of a namespace already on the LAN, default route via the router.
fn attach6(ns: &Netns, ip: &str) {
    ns.add_address("lan0", &format!("{ip}/64")).unwrap();
    ns.exec(&["ip", "-6", "route", "add", "default", "via", ROUTER_LAN6])
        .unwrap();
}

/// eBGP from the router (AS 64501) to every speaker (AS 64500). Passive: the speakers
/// connect. `maximum-paths 3`: one ECMP path per node.
fn frr_config(neighbours: &[String]) -> String {
    let mut c = String::from(
        "frr defaults traditional\nhostname router\n\
         router bgp 64501\n bgp router-id 10.77.0.1\n no bgp ebgp-requires-policy\n\
         \x20neighbor nodes peer-group\n neighbor nodes remote-as 64500\n neighbor nodes passive\n",
    );
    let (v6, v4): (Vec<&String>, Vec<&String>) = neighbours.iter().partition(|n| n.contains(':'));
    for n in v4 {
        c.push_str(&format!(" neighbor {n} peer-group nodes\n"));
    }
    if v6.is_empty() {
        c.push_str(" address-family ipv4 unicast\n  maximum-paths 3\n exit-address-family\n");
        return c;
    }
    // IPv6 sessions carry IPv6 unicast only (MP-BGP, RFC 4760), as the nodes' BGPPeers
    // to an IPv6 address negotiate.
    c.push_str(
        " neighbor nodes6 peer-group\n neighbor nodes6 remote-as 64500\n neighbor nodes6 passive\n",
    );
    for n in v6 {
        c.push_str(&format!(" neighbor {n} peer-group nodes6\n"));
    }
    c.push_str(
        " address-family ipv4 unicast\n  maximum-paths 3\n  no neighbor nodes6 activate\n exit-address-family\n\
         \x20address-family ipv6 unicast\n  maximum-paths 3\n  neighbor nodes6 activate\n exit-address-family\n",
    );
    c
}

/// next hop → communities text, from `show bgp ipv4 unicast PREFIX json`.
pub fn paths_of(text: &str) -> BTreeMap<String, String> {
    let json: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let mut out = BTreeMap::new();
    for path in json["paths"].as_array().into_iter().flatten() {
        let hop = path["nexthops"][0]["ip"]
            .as_str()
            .or_else(|| path["peer"]["peerId"].as_str())
            .unwrap_or("?")
            .to_string();
        let communities = path["community"]["string"]
            .as_str()
            .unwrap_or("")
            .to_string();
        out.insert(hop, communities);
    }
    out
}

/// The metallb.io objects: a BGP pool, the router as peer, an advertisement with a
/// plain and a well-known community (65535:65282 = no-advertise).
/// `oxlb router-config --flavor frr -f FILE` for nodes 1..=`nodes` (nodeN=its LAN
/// address): the router's side as a user would generate it.
pub fn frr_router_config(file: &std::path::Path, nodes: usize) -> String {
    let mut command = std::process::Command::new(OXLB);
    command
        .args(["router-config", "--flavor", "frr", "-f"])
        .arg(file);
    for i in 1..=nodes {
        command.args(["--node", &format!("node{i}={}", node_ip(i))]);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "oxlb router-config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

pub fn metallb_yaml(pool: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: e2e-bgp
  namespace: metallb-system
spec:
  addresses:
    - {pool}
  avoidBuggyIPs: true
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
  name: e2e-bgp
  namespace: metallb-system
spec:
  ipAddressPools:
    - e2e-bgp
  communities:
    - \"64500:100\"
    - \"65535:65282\"
"
    )
}

/// A LoadBalancer Service; `requested`: the `metallb.io/loadBalancerIPs` annotation.
pub fn service_yaml(name: &str, requested: Option<&str>) -> String {
    let annotations = requested
        .map(|ip| format!("  annotations:\n    metallb.io/loadBalancerIPs: {ip}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
{annotations}spec:
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 80
"
    )
}

pub fn services_yaml(services: &[(&str, Option<&str>)]) -> String {
    services
        .iter()
        .map(|(name, ip)| service_yaml(name, *ip))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// (VmRSS, VmHWM) of process `pid`, in KiB (the footprint benches).
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Where a process's resident size is, by mapping (`/proc/PID/smaps`): malloc's heap,
/// anonymous mappings (thread stacks, blocks malloc maps on their own), the binary,
/// other files.
pub fn rss_by_mapping(pid: u32) -> String {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let mut kib = std::collections::BTreeMap::<&str, u64>::new();
    let mut kind = "anonymous";
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            let n: u64 = rss
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            *kib.entry(kind).or_default() += n;
        } else if line.split_whitespace().nth(1).is_some_and(|p| p.len() == 4) && line.contains('-')
        {
            let path = line.split_whitespace().nth(5).unwrap_or("");
            kind = match path {
                "" => "anonymous",
                "[heap]" => "heap",
                p if std::path::Path::new(p) == exe => "binary",
                p if p.starts_with('[') => "kernel",
                _ => "other files",
            };
        }
    }
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").map(|t| t.trim().to_string()))
        .unwrap_or_default();
    let mut parts: Vec<String> = kib
        .iter()
        .map(|(k, v)| format!("{k} {:.1} MiB", *v as f64 / 1024.0))
        .collect();
    parts.push(format!("{threads} threads"));
    parts.join(", ")
}

/// The router's neighbours (speaker addresses) and how many prefixes each sent.
/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
