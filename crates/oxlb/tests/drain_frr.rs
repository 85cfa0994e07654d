//! `oxlb drain` end to end (issue 19): three nodes running `oxlb run`, FRR configured by
//! `oxlb router-config`, an HTTP backend on every node and a steady request load from the
//! workstation through the router (short HTTP requests, one TCP connection each, two
//! clients in parallel, every answer counted). Draining node1 and undraining it again loses no
//! request, not even one the router re-hashes to another node at a next-hop change (the
//! second chance); the router drops node1's path and takes it back.
//!
//! `oxlb drain` returns once FRR has confirmed the withdrawal (RFC 7313: its
//! End-of-Route-Refresh answers a ROUTE-REFRESH request sent after the withdrawal), and
//! right then FRR has no path via node1: the confirmation is real.
//!
//! Prints the number of requests and failures, the time from `oxlb drain` to the
//! confirmation (as `oxlb run` measured it) and to the moment FRR has no path via node1
//! (polled every 20 ms: figures, not assertions).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use oxlb_netlab::{netns_tests_enabled, wait_until};

const VIP: &str = "10.79.0.10";
const REQUESTS: usize = 600;

fn router_config(file: &std::path::Path) -> String {
    frr_router_config(file, 3)
}

/// The load: two loops of REQUESTS / 2 short requests each, one new connection per
/// request, 10 ms pause between a loop's requests; one [`flows::Request`] line per
/// request, written at once.
fn load_script() -> String {
    let each = REQUESTS / 2;
    format!(
        "{} {} wait; echo DONE",
        flows::client_loop(VIP, each, "0.01", "1"),
        flows::client_loop(VIP, each, "0.01", "2")
    )
}

/// Connections opened before the drain whose request is finished after it: opens
/// `argv[2]` connections to `argv[1]`, sends half a request head on each, prints their
/// local ports, waits for a line on stdin, finishes every request and prints
/// `PORT=ANSWER` for each.
const HELD: &str = r#"
import socket, sys
conns = []
for i in range(int(sys.argv[2])):
    c = socket.create_connection((sys.argv[1], 80), timeout=30)
    c.sendall(b"GET / HTTP/1.1\r\n")
    conns.append(c)
print(" ".join(str(c.getsockname()[1]) for c in conns), flush=True)
sys.stdin.readline()
out = []
for c in conns:
    port = c.getsockname()[1]
    try:
        c.sendall(b"Host: held\r\n\r\n")
        data = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            data += d
        out.append("%d=%s" % (port, data.split(b"\r\n\r\n", 1)[-1].decode().strip() or "empty"))
    except Exception as e:
        out.append("%d=error-%s" % (port, type(e).__name__))
print(" ".join(out), flush=True)
"#;

/// The workstation's ports of the connections node1's backend holds.
fn ports_on(node: &Node) -> Vec<u16> {
    node.ns
        .exec_stdout(&["ss", "-Htn", "state", "established", "( sport = :80 )"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .last()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn epoch() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

fn hops_now(topo: &Topo) -> Vec<String> {
    topo.paths(&format!("{VIP}/32")).into_keys().collect()
}

/// The capture parser reads what tcpdump -nn -e -tt writes, and tells a re-hashed
/// connection (recorded in a probe of this test: established with one node, its request
/// hashed to another after FRR removed a next hop, reset there) from one a single node
/// failed.
#[test]
fn a_connection_split_over_two_nodes_is_a_rehash() {
    let capture = "\
1796620351.850414 16:c2:78:65:94:cc > 5e:e3:dc:b9:51:aa, ethertype IPv4 (0x0800), length 74: 10.78.0.2.44728 > 10.79.0.10.80: Flags [S], seq 184048753, win 64240, length 0
1796620351.850443 5e:e3:dc:b9:51:aa > 16:c2:78:65:94:cc, ethertype IPv4 (0x0800), length 74: 10.79.0.10.80 > 10.78.0.2.44728: Flags [S.], seq 1334535576, ack 184048754, win 65160, length 0
1796620351.850458 16:c2:78:65:94:cc > 5e:e3:dc:b9:51:aa, ethertype IPv4 (0x0800), length 66: 10.78.0.2.44728 > 10.79.0.10.80: Flags [.], ack 1, win 63, length 0
1796620351.852847 16:c2:78:65:94:cc > d6:6d:ad:f3:91:55, ethertype IPv4 (0x0800), length 140: 10.78.0.2.44728 > 10.79.0.10.80: Flags [P.], seq 1:75, ack 1, win 63, length 74: HTTP: GET / HTTP/1.1
1796620351.852875 d6:6d:ad:f3:91:55 > 16:c2:78:65:94:cc, ethertype IPv4 (0x0800), length 54: 10.79.0.10.80 > 10.78.0.2.44728: Flags [R], seq 1334535577, win 0, length 0
1796620352.100000 16:c2:78:65:94:cc > 5e:e3:dc:b9:51:aa, ethertype IPv4 (0x0800), length 74: 10.78.0.2.44730 > 10.79.0.10.80: Flags [S], seq 1, win 64240, length 0
1796620352.100020 5e:e3:dc:b9:51:aa > 16:c2:78:65:94:cc, ethertype IPv4 (0x0800), length 54: 10.79.0.10.80 > 10.78.0.2.44730: Flags [R.], seq 0, ack 2, win 0, length 0
";
    let rehashed = flows::Request::parse("000 56 44728 1796620351.837818334 ").unwrap();
    assert_eq!(rehashed.port, 44728);
    assert!(!rehashed.answered());
    match flows::why_failed(capture, &rehashed, WORKSTATION, VIP) {
        flows::Loss::Rehashed { hops } => assert_eq!(hops.len(), 2),
        other => panic!("{other:?}"),
    }
    let refused = flows::Request::parse("000 7 44730 1796620352.099 ").unwrap();
    assert!(matches!(
        flows::why_failed(capture, &refused, WORKSTATION, VIP),
        flows::Loss::Unexplained(_)
    ));
    let unseen = flows::Request::parse("000 28 44731 1796620352.099 ").unwrap();
    assert!(matches!(
        flows::why_failed(capture, &unseen, WORKSTATION, VIP),
        flows::Loss::Unexplained(_)
    ));
    let answered = flows::Request::parse("200 0 44732 1796620352.2 node2").unwrap();
    assert!(answered.answered());
    assert_eq!(answered.body, "node2");
}

#[test]
fn drain_and_undrain_lose_no_request_through_frr() {
    if !netns_tests_enabled("drain_frr").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let scratch = Scratch::new("we-drain");
    let file = scratch.0.join("metallb.yaml");
    std::fs::write(&file, metallb_yaml("10.79.0.0/24")).unwrap();
    let frr_conf = router_config(&file);
    let mut topo = Topo::build_tagged("we", 3, &frr_conf, &["zebra", "bgpd"]);
    topo.write_config("metallb.yaml", &metallb_yaml("10.79.0.0/24"));
    topo.write_config("services.yaml", &services_yaml(&[("web", Some(VIP))]));
    for i in 0..3 {
        topo.start_backend(i);
    }
    topo.start_run(0);
    // node2 stops with a drain delay: SIGTERM withdraws first, closes 2 s later.
    topo.start_run_with(1, &["--drain-delay-seconds", "2"]);
    topo.start_run(2);
    let all: Vec<String> = (1..=3).map(node_ip).collect();
    let rest: Vec<String> = (2..=3).map(node_ip).collect();
    topo.wait_paths(&format!("{VIP}/32"), &all);
    let names: Vec<String> = topo.nodes.iter().map(|n| format!("{}\n", n.name)).collect();
    wait_until(CONVERGE, Duration::from_millis(200), || {
        topo.curl_from_ws(VIP).ok().filter(|b| names.contains(b))
    })
    .expect("the service answers through the router");

    let load_log = topo.dir.0.join("load.log");
    let capture = flows::Capture::start(&topo.router, &topo.dir.0, 80);
    let load_started = Instant::now();
    let mut load = topo
        .ws
        .spawn(&["sh", "-c", &load_script()], Some(&load_log))
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));

    // FRR 8.4 negotiates enhanced route refresh with oxlb by default.
    let neighbors: serde_json::Value =
        serde_json::from_str(&topo.frr.vtysh("show bgp neighbors json").unwrap()).unwrap();
    let node1 = &neighbors[node_ip(1)]["neighborCapabilities"];
    assert_eq!(
        node1["enhancedRouteRefresh"], "advertisedAndReceived",
        "{node1:#}"
    );

    // Connections open on every node before the drain (their requests half sent),
    // finished once FRR has no path via node1: the router re-hashes node1's onto
    // node2 and node3, and the second chance hands them back to node1.
    let held_script = topo.dir.0.join("held.py");
    std::fs::write(&held_script, HELD).unwrap();
    let mut held = topo
        .ws
        .command("python3")
        .args([held_script.to_str().unwrap(), VIP, "24"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut held_in = held.stdin.take().unwrap();
    let mut held_out = std::io::BufReader::new(held.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut held_out, &mut line).unwrap();
    let held_ports: Vec<u16> = line
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(held_ports.len(), 24, "{line}");
    let on_node1: Vec<u16> = wait_until(CONVERGE, Duration::from_millis(100), || {
        let ports: Vec<u16> = ports_on(&topo.nodes[0])
            .into_iter()
            .filter(|p| held_ports.contains(p))
            .collect();
        (!ports.is_empty()).then_some(ports)
    })
    .expect("some of 24 connections are node1's (ECMP over 3 nodes)");

    // Drain node1: `oxlb drain` returns once FRR confirmed the withdrawal. Meanwhile a
    // thread polls FRR for the moment node1's path is gone.
    let started = Instant::now();
    let gone = std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            wait_until(CONVERGE, Duration::from_millis(20), || {
                (hops_now(&topo) == rest).then(|| started.elapsed())
            })
        });
        eprintln!("drain at {}", epoch());
        let said = topo
            .oxlb(0, &["drain", "--addr", LISTEN])
            .unwrap_or_else(|e| panic!("{e}\n{}", topo.logs()));
        let cli_took = started.elapsed();
        // The real proof: the moment oxlb drain says FRR confirmed, FRR has no path
        // from node1.
        let hops_then = hops_now(&topo);
        (said, cli_took, hops_then, poller.join().unwrap())
    });
    let (said, cli_took, hops_then, gone_after) = gone;
    let status = topo.status(0).unwrap();
    let peers = status["drain"]["peers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!peers.is_empty(), "{status}");
    for p in &peers {
        assert_eq!(p["outcome"], "confirmed", "{status}");
    }
    assert_eq!(
        hops_then, rest,
        "FRR still had node1's path when it confirmed: {said}"
    );
    assert!(said.contains("confirmed after"), "{said}");
    let converged = wait_until(CONVERGE, Duration::from_millis(20), || {
        (hops_now(&topo) == rest).then(|| started.elapsed())
    })
    .unwrap_or_else(|| {
        panic!(
            "FRR kept node1's path: {:?}\n{}",
            hops_now(&topo),
            topo.logs()
        )
    });
    eprintln!("oxlb drain said: {said}");
    eprintln!(
        "oxlb drain returned after {} ms (withdrawal written after {} ms, FRR confirmed after {} ms); \
         FRR had no path via node1 {} ms after the drain began (poll: {:?})",
        cli_took.as_millis(),
        peers[0]["written_after_ms"],
        peers[0]["confirmed_after_ms"],
        converged.as_millis(),
        gone_after.map(|d| d.as_millis())
    );
    assert!(said.contains("drained"), "{said}");
    // FRR has no path via node1 now: finish the held requests.
    std::io::Write::write_all(&mut held_in, b"go\n").unwrap();
    let mut answers = String::new();
    std::io::BufRead::read_line(&mut held_out, &mut answers).unwrap();
    let _ = held.wait();
    let answered: std::collections::BTreeMap<u16, String> = answers
        .split_whitespace()
        .filter_map(|a| {
            let (port, answer) = a.split_once('=')?;
            Some((port.parse().ok()?, answer.to_string()))
        })
        .collect();
    eprintln!(
        "held connections: {} of 24 on node1 ({on_node1:?}); answers after the drain: {answered:?}",
        on_node1.len()
    );
    assert_eq!(answered.len(), 24, "{answers}");
    for port in &held_ports {
        let answer = &answered[port];
        assert!(answer.starts_with("node"), "port {port}: {answer}");
        if on_node1.contains(port) {
            assert_eq!(answer, "node1", "port {port} was node1's");
        }
    }
    let node1_table = topo.nodes[0].second_chance_table();
    let claims = node1_table
        .lines()
        .find(|l| l.contains("meta pkttype set host counter"))
        .unwrap_or_default();
    assert!(
        !claims.contains("counter packets 0 "),
        "node1 took no copy from another node: {node1_table}"
    );
    // A second drain changes nothing and still reports success.
    let again = topo.oxlb(0, &["drain", "--addr", LISTEN]).unwrap();
    assert!(again.contains("drained"), "{again}");
    let status = topo.status(0).unwrap();
    assert_eq!(status["drain"]["drained"], true, "{status}");
    assert_eq!(status["drain"]["converged"], true, "{status}");
    // The sessions stay up: node1 is alive, only withdrawn.
    assert_eq!(
        status["bgp_sessions"][0]["state"], "Established",
        "{status}"
    );

    std::thread::sleep(Duration::from_secs(3));
    eprintln!("undrain at {}", epoch());
    let said = topo.oxlb(0, &["undrain", "--addr", LISTEN]).unwrap();
    assert!(said.contains("undrained"), "{said}");
    topo.wait_paths(&format!("{VIP}/32"), &all);
    assert_eq!(topo.status(0).unwrap()["drain"]["drained"], false);
    std::thread::sleep(Duration::from_secs(2));

    // SIGTERM to node2 (no graceful restart configured): it withdraws first and keeps
    // its sessions and service IP through the drain delay, so nothing in flight breaks.
    let node1_and_3: Vec<String> = [1, 3].into_iter().map(node_ip).collect();
    let sigterm = Instant::now();
    eprintln!("SIGTERM to node2 at {}", epoch());
    let mut run = topo.nodes[1].run.take().unwrap();
    run.signal("TERM").unwrap();
    let withdrawn = wait_until(CONVERGE, Duration::from_millis(20), || {
        (hops_now(&topo) == node1_and_3).then(|| sigterm.elapsed())
    })
    .unwrap_or_else(|| {
        panic!(
            "FRR kept node2's path: {:?}\n{}",
            hops_now(&topo),
            topo.logs()
        )
    });
    let exited = wait_until(CONVERGE, Duration::from_millis(20), || {
        run.child_mut().try_wait().ok().flatten()
    })
    .expect("oxlb run on node2 exits after the drain delay");
    let exit_after = sigterm.elapsed();
    assert!(exited.success());
    eprintln!(
        "SIGTERM to node2: FRR had no path via node2 after {} ms; oxlb run exited after {} ms",
        withdrawn.as_millis(),
        exit_after.as_millis()
    );

    let finished = wait_until(Duration::from_secs(120), Duration::from_millis(200), || {
        load.child_mut().try_wait().ok().flatten()
    });
    assert!(finished.is_some(), "the load did not finish");
    let load_took = load_started.elapsed();
    let text = std::fs::read_to_string(&load_log).unwrap();
    assert!(text.contains("DONE"), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| *l != "DONE").collect();
    let losses = flows::losses(&lines, &capture.stop(), WORKSTATION, VIP);
    let by_node = |n: &str| lines.iter().filter(|l| l.ends_with(n)).count();
    eprintln!(
        "requests {} in {:.1} s ({:.0}/s), failures {}, answered by node1 {}, node2 {}, node3 {}",
        lines.len(),
        load_took.as_secs_f64(),
        lines.len() as f64 / load_took.as_secs_f64(),
        losses.len(),
        by_node("node1"),
        by_node("node2"),
        by_node("node3")
    );
    for (line, why) in &losses {
        eprintln!("failed: {line} -> {why:?}");
    }
    assert_eq!(lines.len(), REQUESTS, "{text}");
    assert!(
        lines.iter().all(|l| flows::Request::parse(l).is_some()),
        "{text}"
    );
    // No request is lost by the drains, not even one open at the instant FRR changed
    // the next hops and re-hashed onto another node: the second chance hands it to the
    // node that has it (before it, such a request was reset; the capture, which says
    // why any failure failed, proved it).
    assert!(losses.is_empty(), "failed requests: {losses:#?}");
    // Every node holds the second-chance ruleset `oxlb run` programmed for the pool;
    // node2's outlives its oxlb run (a restart must not unhook conntrack).
    for node in &topo.nodes {
        let table = node.second_chance_table();
        assert!(
            table.contains("ip daddr 10.79.0.0/24 jump second_chance"),
            "{}: {table}",
            node.name
        );
        let counters: Vec<&str> = table.lines().filter(|l| l.contains("counter")).collect();
        eprintln!("{} second chance: {counters:#?}", node.name);
    }
    // The load really spread over the nodes, node1 included (before and after).
    assert!(by_node("node1") > 0 && by_node("node2") > 0 && by_node("node3") > 0);
}
