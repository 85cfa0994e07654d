//! `oxlb run` with an unnumbered BGPPeer (`interface: up0`, no peerAddress) against FRR
//! 8.4 with an interface neighbour on the other end of a veth that has no IPv4 and no
//! global IPv6 address, only the kernel's link-local ones (kernel defaults everywhere in
//! the node: duplicate address detection on, no sysctl set).
//!
//! - `generated`: FRR runs what `oxlb router-config --link node1=n1` writes (a
//!   peer-group with `neighbor n1 interface peer-group ...`), and `oxlb run` also
//!   listens (`--bgp-listen`), so FRR's own connection can win;
//! - `plain`: FRR has `neighbor n1 interface remote-as external`, hand-written, `oxlb
//!   run` only connects (its default), and a second BGPPeer names an interface the node
//!   does not have yet: its session says so, and comes up once the interface exists.
//!
//! - `bird`: BIRD 2.0.12 with what `oxlb router-config --flavor bird --link node1=n1`
//!   writes (radv, dynamic BGP from `fe80::/10` on the interface).
//!
//! Each checks that the IPv4 and the IPv6 Service IP are in the router's kernel table
//! via the node's link-local address on the link (`via inet6 fe80::…` for IPv4, RFC
//! 8950), and that a curl from a workstation behind the router reaches the backend on
//! the node. `oxlb status` is read until it shows the session (it refreshes each second).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use oxlb_netlab::{Bird, Frr, Guarded, Netns, netns_tests_enabled, veth, wait_until};
use serde_json::Value;

const V4_POOL: &str = "10.79.1.0/24";
const V6_POOL: &str = "fd00:79:1::/120";

/// Fields drop in order: processes, FRR, then the namespaces.
struct Lab {
    run: Option<Guarded>,
    _backend: Guarded,
    daemon: Daemon,
    node: Netns,
    router: Netns,
    ws: Netns,
    dir: Scratch,
    log: std::path::PathBuf,
}

fn metallb_yaml(extra_peer: bool) -> String {
    let mut yaml = format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: unnum, namespace: metallb-system}}
spec:
  addresses: [{V4_POOL}, {V6_POOL}]
  avoidBuggyIPs: true
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: uplink, namespace: metallb-system}}
spec:
  myASN: 64500
  peerASN: 64501
  interface: up0
  routerID: 10.0.0.11
  holdTime: 9s
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: unnum, namespace: metallb-system}}
spec:
  ipAddressPools: [unnum]
"
    );
    if extra_peer {
        yaml.push_str(
            "---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: later, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  interface: late0
  routerID: 10.0.0.11
  holdTime: 9s
",
        );
    }
    yaml
}

fn services_yaml() -> String {
    ["IPv4", "IPv6"]
        .iter()
        .map(|family| {
            format!(
                "apiVersion: v1
kind: Service
metadata: {{name: svc-{family}, namespace: default}}
spec:
  type: LoadBalancer
  ipFamilyPolicy: SingleStack
  ipFamilies: [{family}]
  ports: [{{name: http, port: 80, protocol: TCP, targetPort: 80}}]
"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The router daemon.
enum Daemon {
    Frr(Frr),
    Bird(Bird),
}

impl Daemon {
    /// Whether the session on the router's interface `interface` is Established.
    fn established(&self, interface: &str) -> bool {
        match self {
            Daemon::Frr(frr) => {
                let text = frr
                    .vtysh(&format!("show bgp neighbors {interface} json"))
                    .unwrap_or_default();
                let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                json[interface]["bgpState"] == "Established"
            }
            // A dynamic protocol instance per accepted connection: oxlb_uplink_n1_1.
            Daemon::Bird(bird) => bird
                .birdc("show protocols")
                .unwrap_or_default()
                .lines()
                .any(|l| {
                    l.starts_with(&format!("oxlb_uplink_{interface}_")) && l.contains("Established")
                }),
        }
    }

    /// The daemon's view of the sessions and of `prefix`, for failure messages.
    fn describe(&self, prefix: &str) -> String {
        match self {
            Daemon::Frr(frr) => format!(
                "{}\n{}",
                frr.vtysh("show bgp summary").unwrap_or_default(),
                frr.vtysh(&format!("show bgp {prefix}")).unwrap_or_default()
            ),
            Daemon::Bird(bird) => format!(
                "{}\n{}\n{}",
                bird.birdc("show protocols all").unwrap_or_default(),
                bird.birdc("show route all").unwrap_or_default(),
                bird.log()
            ),
        }
    }
}

/// The router's configuration from `oxlb router-config --flavor FLAVOR --link node1=n1`.
fn generated_config(flavor: &str, file: &std::path::Path) -> String {
    let output = std::process::Command::new(OXLB)
        .args([
            "router-config",
            "--flavor",
            flavor,
            "--link",
            "node1=n1",
            "-f",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "oxlb router-config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `neighbor IFNAME interface remote-as external`, as the FRR docs show it.
fn plain_frr_config() -> String {
    "frr defaults traditional
hostname router
router bgp 64501
 bgp router-id 10.78.0.1
 no bgp ebgp-requires-policy
 neighbor n1 interface remote-as external
 neighbor n2 interface remote-as external
 address-family ipv6 unicast
  neighbor n1 activate
  neighbor n2 activate
 exit-address-family
exit
"
    .to_string()
}

impl Lab {
    /// Builds ws — router — node; the node's link has only link-local addresses.
    /// `router_config(config file)`: the router's configuration (frr.conf, or
    /// bird.conf with `bird`).
    fn build(
        extra_peer: bool,
        bird: bool,
        router_config: impl Fn(&std::path::Path) -> String,
    ) -> Lab {
        let dir = Scratch::new("unnum");
        std::fs::create_dir_all(dir.0.join("config")).unwrap();
        let ws = Netns::new("unws").unwrap();
        let router = Netns::new("unrtr").unwrap();
        let node = Netns::new("unnode").unwrap();
        veth(&ws, "wan0", &router, "wan0").unwrap();
        veth(&router, "n1", &node, "up0").unwrap();
        ws.add_address("wan0", "10.78.0.2/24").unwrap();
        ws.add_address("wan0", "fd00:78::2/64").unwrap();
        router.add_address("wan0", "10.78.0.1/24").unwrap();
        router.add_address("wan0", "fd00:78::1/64").unwrap();
        router.enable_forwarding().unwrap();
        ws.exec(&["ip", "route", "add", "default", "via", "10.78.0.1"])
            .unwrap();
        ws.exec(&["ip", "-6", "route", "add", "default", "via", "fd00:78::1"])
            .unwrap();
        let config = dir.0.join("config");
        std::fs::write(config.join("metallb.yaml"), metallb_yaml(extra_peer)).unwrap();
        std::fs::write(config.join("services.yaml"), services_yaml()).unwrap();
        let router_conf = router_config(&config.join("metallb.yaml"));
        eprintln!("router configuration:\n{router_conf}");
        let daemon = if bird {
            Daemon::Bird(Bird::start(&router, &router_conf).unwrap())
        } else {
            Daemon::Frr(Frr::start_via_vtysh(&router, &router_conf, &["zebra", "bgpd"]).unwrap())
        };
        let backend = node
            .spawn(
                &[OXLB, "lab-backend", "node1"],
                Some(&dir.0.join("backend.log")),
            )
            .unwrap();
        let log = dir.0.join("oxlb.log");
        Lab {
            run: None,
            _backend: backend,
            daemon,
            node,
            router,
            ws,
            dir,
            log,
        }
    }

    fn start_run(&mut self, extra: &[&str]) {
        let config = self.dir.0.join("config");
        let state = self.dir.0.join("state");
        self.run = Some(
            self.node
                .spawn(
                    &[
                        OXLB,
                        "run",
                        "--node",
                        "node1",
                        "-f",
                        config.to_str().unwrap(),
                        "--state-dir",
                        state.to_str().unwrap(),
                        "--listen",
                        LISTEN,
                        "--log-level",
                        "debug",
                    ]
                    .into_iter()
                    .chain(extra.iter().copied())
                    .collect::<Vec<_>>(),
                    Some(&self.log),
                )
                .unwrap(),
        );
    }

    fn logs(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn status(&self) -> Option<Value> {
        let out = self
            .node
            .command(OXLB)
            .args(["status", "-o", "json", "--addr", LISTEN])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    fn session(&self, peer: &str) -> Option<Value> {
        let status = self.status()?;
        status["bgp_sessions"]
            .as_array()?
            .iter()
            .find(|s| s["peer"] == peer)
            .cloned()
    }

    /// The service IPs (IPv4, IPv6) as the node assigned them.
    fn service_ips(&self) -> Option<(String, String)> {
        let status = self.status()?;
        let ip = |name: &str| -> Option<String> {
            let s = status["services"]
                .as_array()?
                .iter()
                .find(|s| s["service"] == name)?;
            Some(s["ips"][0].as_str()?.to_string())
        };
        Some((ip("default/svc-IPv4")?, ip("default/svc-IPv6")?))
    }

    fn curl(&self, ip: &str) -> Option<String> {
        let url = if ip.contains(':') {
            format!("http://[{ip}]/")
        } else {
            format!("http://{ip}/")
        };
        self.ws
            .exec_stdout(&["curl", "-g", "-s", "--max-time", "3", &url])
            .ok()
    }
}

/// The first usable link-local address of `interface` in `ns`.
fn link_local(ns: &Netns, interface: &str) -> Option<String> {
    let text = ns
        .exec_stdout(&[
            "ip", "-6", "-o", "address", "show", "dev", interface, "scope", "link",
        ])
        .ok()?;
    if text.contains("tentative") {
        return None;
    }
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)?;
    Some(word.split('/').next()?.to_string())
}

/// The whole scenario against the router configuration `frr_config` builds.
/// `extra_peer`: also the BGPPeer on an interface created later. `run_args`: extra
/// `oxlb run` arguments.
fn scenario(
    name: &str,
    extra_peer: bool,
    bird: bool,
    run_args: &[&str],
    router_config: impl Fn(&std::path::Path) -> String,
) {
    if !netns_tests_enabled(name).unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut lab = Lab::build(extra_peer, bird, router_config);
    // UNNUM_CAPTURE=1: print the router's first Router Advertisement (hex), the
    // source of the codec's test vector.
    let capture = std::env::var_os("UNNUM_CAPTURE").map(|_| {
        lab.node
            .spawn(
                &[
                    "tcpdump",
                    "-i",
                    "up0",
                    "-c",
                    "1",
                    "-x",
                    "-n",
                    "-l",
                    "icmp6 and ip6[40] == 134",
                ],
                Some(&lab.dir.0.join("ra.txt")),
            )
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(if capture.is_some() {
        500
    } else {
        0
    }));
    let started = Instant::now();
    lab.start_run(run_args);

    // The session comes up with no address configured on either end of the link.
    let up = wait_until(CONVERGE, Duration::from_millis(50), || {
        lab.daemon.established("n1").then(Instant::now)
    })
    .unwrap_or_else(|| {
        panic!(
            "the router's session on n1 never Established:\n{}\n{}",
            lab.daemon.describe("::/0"),
            lab.logs()
        )
    });
    eprintln!(
        "MEASURED {name}: session Established in the router {:.2} s after `oxlb run` started",
        (up - started).as_secs_f64()
    );

    let node_ll = wait_until(CONVERGE, Duration::from_millis(100), || {
        link_local(&lab.node, "up0")
    })
    .unwrap();
    let router_ll = link_local(&lab.router, "n1").unwrap();
    let (v4, v6) = wait_until(CONVERGE, Duration::from_millis(100), || lab.service_ips())
        .unwrap_or_else(|| panic!("no service IPs: {:?}\n{}", lab.status(), lab.logs()));

    // FRR installs both via the node's link-local address on n1: the IPv4 one as an
    // IPv6 next hop (RFC 8950).
    let v4_route = wait_until(CONVERGE, Duration::from_millis(100), || {
        let route = lab
            .router
            .exec_stdout(&["ip", "route", "show", &format!("{v4}/32")])
            .unwrap_or_default();
        route
            .contains(&format!("via inet6 {node_ll} dev n1"))
            .then_some(route)
    })
    .unwrap_or_else(|| {
        panic!(
            "no IPv4 kernel route via inet6 {node_ll}: {:?}\n{}\n{}",
            lab.router.exec_stdout(&["ip", "route"]),
            lab.daemon.describe(&format!("ipv4 unicast {v4}/32")),
            lab.logs()
        )
    });
    eprintln!("router: {}", v4_route.trim());
    let v6_route = wait_until(CONVERGE, Duration::from_millis(100), || {
        let route = lab
            .router
            .exec_stdout(&["ip", "-6", "route", "show", &format!("{v6}/128")])
            .unwrap_or_default();
        route
            .contains(&format!("via {node_ll} dev n1"))
            .then_some(route)
    })
    .unwrap_or_else(|| {
        panic!(
            "no IPv6 kernel route via {node_ll}: {:?}\n{}\n{}",
            lab.router.exec_stdout(&["ip", "-6", "route"]),
            lab.daemon.describe(&format!("ipv6 unicast {v6}/128")),
            lab.logs()
        )
    });
    eprintln!("router: {}", v6_route.trim());

    // The node's return routes toward the workstation: through the router's link-local
    // address (the test's topology, as a host route table would be set up).
    lab.node
        .exec(&[
            "ip",
            "route",
            "add",
            "10.78.0.0/24",
            "via",
            "inet6",
            &router_ll,
            "dev",
            "up0",
        ])
        .unwrap();
    lab.node
        .exec(&[
            "ip",
            "-6",
            "route",
            "add",
            "fd00:78::/64",
            "via",
            &router_ll,
            "dev",
            "up0",
        ])
        .unwrap();
    for ip in [&v4, &v6] {
        let body = wait_until(CONVERGE, Duration::from_millis(200), || {
            lab.curl(ip).filter(|b| b == "node1\n")
        });
        assert!(
            body.is_some(),
            "curl {ip} from the workstation: {:?}",
            lab.curl(ip)
        );
    }

    // Status names the router's link-local address on the interface (a snapshot taken
    // each second: read until it shows the session up with both prefixes).
    wait_until(CONVERGE, Duration::from_millis(200), || {
        lab.session("uplink").filter(|s| {
            s["state"] == "Established"
                && s["address"] == format!("[{router_ll}%up0]:179")
                && s["prefixes_announced"].as_u64() == Some(2)
        })
    })
    .unwrap_or_else(|| panic!("status: {:?}\n{}", lab.status(), lab.logs()));

    if extra_peer {
        // An interface the node does not have: a clear error on that peer, naming the
        // interface and the fix, and the other peer unaffected.
        let error = wait_until(CONVERGE, Duration::from_millis(200), || {
            let session = lab.session("later")?;
            session["last_error"].as_str().map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no error on peer later: {:?}", lab.status()));
        assert!(
            error.contains("interface late0 does not exist on this node")
                && error.contains("spec.interface"),
            "{error}"
        );
        let log = std::fs::read_to_string(&lab.log).unwrap_or_default();
        assert!(
            log.contains("late0 does not exist"),
            "the log does not say it: {}",
            lab.logs()
        );
        // It appears: the session comes up on it without a restart.
        let appeared = Instant::now();
        veth(&lab.router, "n2", &lab.node, "late0").unwrap();
        wait_until(CONVERGE, Duration::from_millis(50), || {
            lab.daemon.established("n2").then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "no session on late0 once it exists: {}\n{:?}\n{}",
                lab.daemon.describe("::/0"),
                lab.session("later"),
                lab.logs()
            )
        });
        eprintln!(
            "MEASURED {name}: session on the late interface Established {:.2} s after it was created",
            appeared.elapsed().as_secs_f64()
        );
        assert!(lab.daemon.established("n1"));

        // It goes away: the session is reset at once (not after its hold time), the
        // status says why, and it comes back with the interface.
        let before = wait_until(CONVERGE, Duration::from_millis(100), || {
            let session = lab.session("later")?;
            (session["state"] == "Established").then_some(session["last_error"].clone())
        })
        .unwrap();
        let gone = Instant::now();
        lab.node.exec(&["ip", "link", "del", "late0"]).unwrap();
        let error = wait_until(CONVERGE, Duration::from_millis(100), || {
            let session = lab.session("later")?;
            let error = session["last_error"].as_str()?.to_string();
            (session["state"] != "Established"
                && session["last_error"] != before
                && error.contains("interface late0"))
            .then_some(error)
        })
        .unwrap_or_else(|| panic!("no error once late0 is gone: {:?}", lab.session("later")));
        eprintln!(
            "MEASURED {name}: interface gone -> peer down with the error in status in {:.2} s \
             (status refreshes each second; hold time 9 s): {error}",
            gone.elapsed().as_secs_f64()
        );
        veth(&lab.router, "n2", &lab.node, "late0").unwrap();
        wait_until(CONVERGE, Duration::from_millis(50), || {
            lab.daemon.established("n2").then_some(())
        })
        .unwrap_or_else(|| panic!("no session once late0 is back\n{}", lab.logs()));
        assert!(lab.daemon.established("n1"));
    }
    if capture.is_some() {
        eprintln!(
            "{}",
            std::fs::read_to_string(lab.dir.0.join("ra.txt")).unwrap_or_default()
        );
    }
    if std::env::var_os("UNNUM_DEBUG").is_some() {
        eprintln!("{}", std::fs::read_to_string(&lab.log).unwrap_or_default());
    }
    drop(lab);
}

#[test]
fn unnumbered_with_the_generated_frr_config() {
    // Listening too: the router's connection to our link-local address is accepted
    // and matched to the peer by the interface its scope names.
    scenario(
        "unnumbered_with_the_generated_frr_config",
        false,
        false,
        &["--bgp-listen", "[::]:179"],
        |file| generated_config("frr", file),
    );
}

/// BIRD 2.0.12 with what `oxlb router-config --flavor bird --link node1=n1` writes:
/// `radv` on the link and a dynamic BGP protocol accepting the node's link-local
/// address (BIRD is passive there: the node connects, after BIRD's RA).
#[test]
fn unnumbered_with_the_generated_bird_config() {
    scenario(
        "unnumbered_with_the_generated_bird_config",
        false,
        true,
        &[],
        |file| generated_config("bird", file),
    );
}

#[test]
fn unnumbered_with_neighbor_interface_remote_as_external() {
    scenario(
        "unnumbered_with_neighbor_interface_remote_as_external",
        true,
        false,
        &[],
        |_| plain_frr_config(),
    );
}
