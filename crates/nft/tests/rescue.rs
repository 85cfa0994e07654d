//! The second chance for real: a workstation, a router doing ECMP, three nodes on one
//! LAN bridge, each with the service IP as a local address and a TCP server that
//! answers with its node's name; every namespace at kernel defaults (only the router
//! forwards, as a router does). The router's next hops are changed by hand, as a drain
//! or a node failure changes them, while connections are open.
//!
//! Checked: a connection open on node1 keeps being answered by node1 after the router
//! moves it to node2, then node3, then back (IPv4 and IPv6); a new connection on the
//! node it lands on is that node's; a connection that no node knows any more (its
//! node left the LAN) is reset after about half a second rather than hanging; a
//! connection that existed before its node got the ruleset survives it (conntrack
//! picks it up on a retransmission). Without the ruleset, the first move resets the
//! connection (the baseline, so the test would fail without the rescue).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::Instant;

use oxlb_netlab::{Netns, netns_tests_enabled, veth};
use oxlb_nft::{Plan, in_namespace, install, links_here, send};

const VIP: &str = "10.79.0.10";
const VIP6: &str = "fd00:79::10";

const SERVER: &str = r#"
import socket, sys, threading
name, family = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET6 if family == "6" else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == "6":
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::" if family == "6" else "0.0.0.0", 80))
s.listen(64)
def serve(c):
    while True:
        data = c.recv(1000)
        if not data:
            return
        c.sendall((name + ":" + data.decode()).encode())
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Reads commands on stdin, one answer line each: `connect NAME IP` / `ask NAME MSG`.
const CLIENT: &str = r#"
import socket, sys
conns = {}
for line in sys.stdin:
    cmd, *args = line.split()
    try:
        if cmd == "connect":
            conns[args[0]] = socket.create_connection((args[1], 80), timeout=30)
            answer = "connected"
        else:
            c = conns[args[0]]
            c.sendall(args[1].encode())
            answer = c.recv(100).decode() or "closed"
    except Exception as e:
        answer = "error " + type(e).__name__
    print(answer, flush=True)
"#;

struct Lab {
    _scratch: tempdir::Dir,
    ws: Netns,
    router: Netns,
    _lan: Netns,
    nodes: Vec<Netns>,
    client: Child,
    to_client: ChildStdin,
    from_client: BufReader<ChildStdout>,
}

mod tempdir {
    /// A scratch directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn node_ip(i: usize) -> String {
    format!("10.77.0.{}", 10 + i)
}

fn node_ip6(i: usize) -> String {
    format!("fd00:77::{}", 10 + i)
}

impl Lab {
    fn build() -> Lab {
        let dir = std::env::temp_dir().join(format!("oxlb-nft-rescue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let scratch = tempdir::Dir(dir.clone());
        std::fs::write(dir.join("server.py"), SERVER).unwrap();
        std::fs::write(dir.join("client.py"), CLIENT).unwrap();
        let ws = Netns::new("scws").unwrap();
        let router = Netns::new("scrtr").unwrap();
        let lan = Netns::new("sclan").unwrap();
        veth(&ws, "wan0", &router, "wan0").unwrap();
        veth(&router, "lan0", &lan, "router").unwrap();
        lan.add_bridge("br0").unwrap();
        lan.attach_to_bridge("router", "br0").unwrap();
        ws.add_address("wan0", "10.78.0.2/24").unwrap();
        router.add_address("wan0", "10.78.0.1/24").unwrap();
        router.add_address("lan0", "10.77.0.1/24").unwrap();
        for (ns, wan, lan_addr) in [
            (&ws, "fd00:78::2/64", None),
            (&router, "fd00:78::1/64", Some("fd00:77::1/64")),
        ] {
            ns.exec(&["ip", "-6", "addr", "add", wan, "dev", "wan0", "nodad"])
                .unwrap();
            if let Some(a) = lan_addr {
                ns.exec(&["ip", "-6", "addr", "add", a, "dev", "lan0", "nodad"])
                    .unwrap();
            }
        }
        router.enable_forwarding().unwrap();
        ws.exec(&["ip", "route", "add", "default", "via", "10.78.0.1"])
            .unwrap();
        ws.exec(&["ip", "-6", "route", "add", "default", "via", "fd00:78::1"])
            .unwrap();
        let mut nodes = Vec::new();
        for i in 1..=3 {
            let ns = Netns::new(&format!("scnode{i}")).unwrap();
            let port = format!("n{i}");
            veth(&ns, &port, &lan, &port).unwrap();
            lan.attach_to_bridge(&port, "br0").unwrap();
            ns.add_address(&port, &format!("{}/24", node_ip(i)))
                .unwrap();
            ns.exec(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{}/64", node_ip6(i)),
                "dev",
                &port,
                "nodad",
            ])
            .unwrap();
            ns.exec(&["ip", "route", "add", "10.78.0.0/24", "via", "10.77.0.1"])
                .unwrap();
            ns.exec(&[
                "ip",
                "-6",
                "route",
                "add",
                "fd00:78::/64",
                "via",
                "fd00:77::1",
            ])
            .unwrap();
            // The service IP is the node's own, as oxlb makes it (a local route).
            ns.exec(&["ip", "route", "add", "local", VIP, "dev", "lo"])
                .unwrap();
            ns.exec(&["ip", "-6", "route", "add", "local", VIP6, "dev", "lo"])
                .unwrap();
            let name = format!("node{i}");
            let server = dir.join("server.py");
            let server = server.to_str().unwrap();
            for family in ["4", "6"] {
                let log = dir.join(format!("{name}-{family}.log"));
                // Killed with the namespace.
                std::mem::forget(
                    ns.spawn(&["python3", server, &name, family], Some(&log))
                        .unwrap(),
                );
            }
            nodes.push(ns);
        }
        let mut client = ws
            .command("python3")
            .arg(dir.join("client.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let to_client = client.stdin.take().unwrap();
        let from_client = BufReader::new(client.stdout.take().unwrap());
        let lab = Lab {
            _scratch: scratch,
            ws,
            router,
            _lan: lan,
            nodes,
            client,
            to_client,
            from_client,
        };
        lab.route(&[1]);
        // The servers are up once a fresh connection is answered.
        oxlb_netlab::wait_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
            || {
                let out = lab
                    .ws
                    .exec_stdout(&[
                        "python3",
                        "-c",
                        &format!(
                            "import socket\nfor a in ('{VIP}','{VIP6}'):\n c=socket.create_connection((a,80),timeout=1); c.sendall(b'x'); print(c.recv(9))"
                        ),
                    ])
                    .unwrap_or_default();
                (out.matches("node1:x").count() == 2).then_some(())
            },
        )
        .expect("the servers answer");
        lab
    }

    /// The router sends the service IPs to these nodes only.
    fn route(&self, nodes: &[usize]) {
        for (vip, ip, family) in [
            (VIP, node_ip as fn(usize) -> String, "-4"),
            (VIP6, node_ip6, "-6"),
        ] {
            let mut argv = vec!["ip", family, "route", "replace", vip];
            let hops: Vec<String> = nodes.iter().map(|&i| ip(i)).collect();
            for hop in &hops {
                argv.extend(["nexthop", "via", hop.as_str()]);
            }
            self.router.exec(&argv).unwrap();
        }
    }

    fn program(&self, node: usize) {
        let plan = Plan::new(
            [
                "10.79.0.0/24".parse().unwrap(),
                "fd00:79::/64".parse().unwrap(),
            ],
            20_000,
        );
        let path = PathBuf::from("/run/netns").join(self.nodes[node - 1].name());
        in_namespace(Some(&path), move || {
            let (batch, steps) = install(&plan.with_links(links_here()?), 1);
            send(batch, &steps)
        })
        .unwrap()
        .unwrap();
    }

    fn say(&mut self, line: &str) -> String {
        writeln!(self.to_client, "{line}").unwrap();
        let mut answer = String::new();
        self.from_client.read_line(&mut answer).unwrap();
        answer.trim().to_string()
    }

    fn connect(&mut self, name: &str, vip: &str) {
        assert_eq!(self.say(&format!("connect {name} {vip}")), "connected");
    }

    fn ask(&mut self, name: &str, message: &str) -> String {
        self.say(&format!("ask {name} {message}"))
    }

    fn counters(&self, node: usize) -> String {
        self.nodes[node - 1]
            .exec_stdout(&["nft", "list", "ruleset"])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("counter"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.client.kill();
        let _ = self.client.wait();
    }
}

#[test]
fn connections_survive_the_router_moving_them_and_orphans_are_reset() {
    if !netns_tests_enabled("nft_rescue").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut lab = Lab::build();

    // Baseline, no ruleset anywhere: moving an open connection resets it.
    lab.route(&[1]);
    lab.connect("base", VIP);
    assert_eq!(lab.ask("base", "a"), "node1:a");
    lab.route(&[2]);
    assert_eq!(lab.ask("base", "b"), "error ConnectionResetError");

    // A connection open on node1 before node1 has the ruleset (nodes 2 and 3 have it).
    lab.route(&[1]);
    lab.program(2);
    lab.program(3);
    lab.connect("old", VIP);
    assert_eq!(lab.ask("old", "a"), "node1:a");
    lab.program(1);
    let started = Instant::now();
    assert_eq!(lab.ask("old", "b"), "node1:b", "picked up by conntrack");
    eprintln!(
        "a connection older than the ruleset: answered after {} ms",
        started.elapsed().as_millis()
    );

    for (vip, label) in [(VIP, "IPv4"), (VIP6, "IPv6")] {
        let conn = format!("c{label}");
        let fresh = format!("f{label}");
        lab.route(&[1]);
        lab.connect(&conn, vip);
        assert_eq!(lab.ask(&conn, "a"), "node1:a", "{label}");
        lab.route(&[2]);
        assert_eq!(lab.ask(&conn, "b"), "node1:b", "{label}: moved to node2");
        lab.route(&[3]);
        assert_eq!(lab.ask(&conn, "c"), "node1:c", "{label}: moved to node3");
        lab.connect(&fresh, vip);
        assert_eq!(
            lab.ask(&fresh, "d"),
            "node3:d",
            "{label}: a new one is node3's"
        );
        lab.route(&[1, 2, 3]);
        for n in 0..20 {
            assert_eq!(
                lab.ask(&conn, &format!("e{n}")),
                format!("node1:e{n}"),
                "{label}"
            );
            assert_eq!(
                lab.ask(&fresh, &format!("f{n}")),
                format!("node3:f{n}"),
                "{label}"
            );
        }
        lab.route(&[1]);
        assert_eq!(
            lab.ask(&fresh, "g"),
            "node3:g",
            "{label}: node3's moved to node1"
        );
        assert_eq!(
            lab.ask("old", &format!("h{label}")),
            format!("node1:h{label}")
        );
    }
    eprintln!("node1 counters:\n{}", lab.counters(1));
    eprintln!("node2 counters:\n{}", lab.counters(2));
    assert!(lab.counters(1).contains("accept"), "{}", lab.counters(1));

    // An orphan: node1, which holds the connection, leaves the LAN; the router sends it
    // to node2, which nobody answers: reset (as without oxlb) after the claim wait.
    lab.route(&[1]);
    lab.connect("orphan", VIP);
    assert_eq!(lab.ask("orphan", "a"), "node1:a");
    lab.nodes[0].link_down("n1").unwrap();
    lab.route(&[2]);
    let started = Instant::now();
    assert_eq!(lab.ask("orphan", "b"), "error ConnectionResetError");
    eprintln!(
        "a connection no node knows: reset after {} ms",
        started.elapsed().as_millis()
    );
}
