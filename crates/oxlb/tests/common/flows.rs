//! Why a request of a load through the router failed, told from the router's own view
//! of its connection: tcpdump on the router's LAN port records every TCP packet to and
//! from the Service, and a failed request is looked up by its client port.
//!
//! The one loss a drain cannot prevent: a connection that is open at the instant the
//! router changes the next hops of the Service's prefix may be hashed to another node
//! for its next packet (the withdrawn node's flows must move; Linux hash-threshold
//! multipath moves part of the surviving nodes' flows as well), and that node, which
//! never saw the connection, resets it. The capture proves it: the client's packets of
//! that one connection went to two different nodes' MAC addresses. Any other failure —
//! a node refusing or resetting a connection that reached only it, a request that never
//! got through — is a fault of the drain and is reported as unexplained.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oxlb_netlab::{Guarded, Netns, wait_until};

/// The curl `-w` format each request of a load writes first on its line:
/// HTTP code (000: none), curl's exit code, the client's TCP port.
pub const CURL_WRITE_OUT: &str = "%{http_code} %{exitcode} %{local_port}";

/// One request of a load: `CODE EXIT PORT STARTED BODY...` (STARTED: epoch seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub code: String,
    pub curl_exit: u32,
    pub port: u16,
    pub started: f64,
    pub body: String,
}

impl Request {
    pub fn parse(line: &str) -> Option<Request> {
        let mut fields = line.splitn(5, ' ');
        Some(Request {
            code: fields.next()?.to_string(),
            curl_exit: fields.next()?.parse().ok()?,
            port: fields.next()?.parse().ok()?,
            started: fields.next()?.parse().ok()?,
            body: fields.next().unwrap_or("").trim().to_string(),
        })
    }

    pub fn answered(&self) -> bool {
        self.code == "200"
    }
}

/// The shell loop of one client: `count` short requests to `http://ip/`, one new
/// connection each, `pause` between them, one [`Request`] line per request written at
/// once; `tag` keeps the body file apart from other clients'.
pub fn client_loop(ip: &str, count: usize, pause: &str, tag: &str) -> String {
    format!(
        "( for i in $(seq {count}); do \
             rm -f /tmp/oxlb-load.$$.{tag}; t=$(date +%s.%N); \
             w=$(curl -s --max-time 3 -o /tmp/oxlb-load.$$.{tag} -w '{CURL_WRITE_OUT}' http://{ip}/); \
             echo \"$w $t $(cat /tmp/oxlb-load.$$.{tag} 2>/dev/null)\"; \
             sleep {pause}; \
           done; rm -f /tmp/oxlb-load.$$.{tag} ) &"
    )
}

/// Why one failed request failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// The router sent this connection's packets to more than one node (their MACs):
    /// a re-hash at a next-hop change.
    Rehashed { hops: BTreeSet<String> },
    /// Anything else; the text says what the capture showed.
    Unexplained(String),
}

/// tcpdump on the router's LAN port (`lan0`), TCP port `port`, until [`Capture::stop`].
pub struct Capture {
    tcpdump: Guarded,
    pcap: PathBuf,
}

impl Capture {
    pub fn start(router: &Netns, dir: &Path, port: u16) -> Capture {
        let pcap = dir.join("router-lan0.pcap");
        let log = dir.join("router-lan0.tcpdump.log");
        let pcap_arg = pcap.to_str().unwrap().to_string();
        let tcpdump = router
            .spawn(
                &[
                    "tcpdump",
                    "-i",
                    "lan0",
                    "-nn",
                    "-U",
                    "-B",
                    "8192",
                    "-w",
                    &pcap_arg,
                    &format!("tcp port {port}"),
                ],
                Some(&log),
            )
            .unwrap();
        // tcpdump says "listening on lan0" once the capture runs.
        let listening = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|t| t.contains("listening on"))
        });
        assert!(listening.is_some(), "tcpdump did not start");
        Capture { tcpdump, pcap }
    }

    /// Stops the capture (SIGTERM: tcpdump writes out what it holds) and returns the
    /// packets as `tcpdump -nn -e -tt` lines.
    pub fn stop(mut self) -> String {
        self.tcpdump.signal("TERM").unwrap();
        let exited = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            self.tcpdump.has_exited().then_some(())
        });
        assert!(exited.is_some(), "tcpdump did not stop");
        let output = std::process::Command::new("tcpdump")
            .args(["-nn", "-e", "-tt", "-r"])
            .arg(&self.pcap)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// One packet of `tcpdump -nn -e -tt` output: time, destination MAC, source and
/// destination `address.port`.
struct Packet<'a> {
    at: f64,
    to_mac: &'a str,
    from: &'a str,
    to: &'a str,
}

fn packet(line: &str) -> Option<Packet<'_>> {
    // 1796620351.850414 16:c2:..:cc > 5e:e3:..:aa, ethertype IPv4 (0x0800), length 74:
    //     10.78.0.2.44728 > 10.79.0.10.80: Flags [S], ...
    let mut words = line.split_whitespace();
    let at = words.next()?.parse().ok()?;
    let _from_mac = words.next()?;
    (words.next()? == ">").then_some(())?;
    let to_mac = words.next()?.trim_end_matches(',');
    let (_, ip_part) = line.split_once("length ")?;
    let (_, ip_part) = ip_part.split_once(": ")?;
    let mut ip_words = ip_part.split_whitespace();
    let from = ip_words.next()?;
    (ip_words.next()? == ">").then_some(())?;
    let to = ip_words.next()?.trim_end_matches(':');
    Some(Packet {
        at,
        to_mac,
        from,
        to,
    })
}

/// Why `request` (a failed one) failed: the nodes (MACs) the router sent its
/// connection's packets to — client `client_ip`, Service `service_ip`:80 — from its
/// start until 4 s later (curl gives up after 3 s; the window keeps a later reuse of
/// the same client port out).
pub fn why_failed(capture: &str, request: &Request, client_ip: &str, service_ip: &str) -> Loss {
    let from = format!("{client_ip}.{}", request.port);
    let to = format!("{service_ip}.80");
    let window = request.started - 0.05..request.started + 4.0;
    let hops: BTreeSet<String> = capture
        .lines()
        .filter_map(packet)
        .filter(|p| window.contains(&p.at) && p.from == from && p.to == to)
        .map(|p| p.to_mac.to_string())
        .collect();
    match hops.len() {
        0 => Loss::Unexplained(format!(
            "no packet of port {} reached the LAN (curl exit {})",
            request.port, request.curl_exit
        )),
        1 => Loss::Unexplained(format!(
            "every packet of port {} went to one node ({}), which failed it (curl exit {})",
            request.port,
            hops.iter().next().unwrap(),
            request.curl_exit
        )),
        _ => Loss::Rehashed { hops },
    }
}

/// Every failed request of `lines` with why it failed.
pub fn losses(
    lines: &[&str],
    capture: &str,
    client_ip: &str,
    service_ip: &str,
) -> Vec<(String, Loss)> {
    lines
        .iter()
        .filter_map(|l| Request::parse(l).map(|r| (l, r)))
        .filter(|(_, r)| !r.answered())
        .map(|(l, r)| {
            (
                l.to_string(),
                why_failed(capture, &r, client_ip, service_ip),
            )
        })
        .collect()
}
