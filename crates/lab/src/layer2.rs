//! Who answers for a Layer 2 IP, seen two ways: from the LAN (ARP requests sent from
//! the router, replies counted by sender MAC) and from each node's own `oxlb status`.
//! A correct lab has exactly one node on both, the same one, and it is the node the
//! election (lowest sha256(node#ip) among the live speakers) picks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use crate::error::Error;
use crate::exec::run_in;
use crate::plan::LAN_IF;
use crate::state::State;

/// The nodes (by name; an unknown MAC as itself) that answered ARP requests for `ip`
/// sent from the router onto the LAN. Every node sees the broadcast, so a node that
/// wrongly answers is counted too.
pub fn arp_answerers(state: &State, ip: Ipv4Addr) -> Result<BTreeSet<String>, Error> {
    Ok(arp_answers_per_request(state, ip)?
        .into_iter()
        .flatten()
        .collect())
}

/// How many ARP requests one look sends, one at a time.
const REQUESTS: usize = 3;

/// The answerers of each of [`REQUESTS`] ARP requests for `ip`, sent one after the other
/// from the router. Per request, so that an owner handing over between two requests
/// (one node answers the first, another the next) is told apart from two nodes
/// answering one request, which is the split brain the invariant is about.
pub fn arp_answers_per_request(
    state: &State,
    ip: Ipv4Addr,
) -> Result<Vec<BTreeSet<String>>, Error> {
    let macs = node_macs(state);
    (0..REQUESTS)
        .map(|_| {
            Ok(reply_macs(&arping_once(state, ip)?)
                .into_iter()
                .map(|mac| macs.get(&mac).cloned().unwrap_or(mac))
                .collect())
        })
        .collect()
}

/// One ARP request, every reply that comes within 250 ms (a busy machine's slow second
/// answerer still counts): arping's output.
fn arping_once(state: &State, ip: Ipv4Addr) -> Result<String, Error> {
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", &state.router_namespace])
        .args(["arping", "-i", LAN_IF, "-c", "1", "-w", "0.25"])
        .arg(ip.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Setup(format!("cannot run arping: {e}")))?;
    // Exit status 1 just means no reply; anything else (arping missing: `ip netns
    // exec` says 255) is no measurement at all, not silence.
    if !matches!(output.status.code(), Some(0 | 1)) {
        return Err(Error::Setup(format!(
            "arping in {} failed ({}): {}",
            state.router_namespace,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The nodes seen answering one request together, over all requests of one look.
pub fn answered_together(per_request: &[BTreeSet<String>]) -> BTreeSet<String> {
    per_request
        .iter()
        .filter(|nodes| nodes.len() > 1)
        .flatten()
        .cloned()
        .collect()
}

/// Sender MACs of arping's reply lines ("42 bytes from 02:..:ff (172.31.0.200): ...").
fn reply_macs(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "from")?;
            let mac = words.get(at + 1)?;
            (mac.len() == 17 && mac.bytes().filter(|b| *b == b':').count() == 5)
                .then(|| mac.to_ascii_lowercase())
        })
        .collect()
}

/// Each node's LAN MAC address -> node name.
fn node_macs(state: &State) -> BTreeMap<String, String> {
    state
        .nodes
        .iter()
        .filter_map(|node| {
            let text = run_in(&node.namespace, &["ip", "-o", "link", "show", LAN_IF]).ok()?;
            let words: Vec<&str> = text.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "link/ether")?;
            Some((words.get(at + 1)?.to_ascii_lowercase(), node.name.clone()))
        })
        .collect()
}

/// Layer 2 IP -> the nodes whose `oxlb status` says they answer for it. Nodes whose
/// status cannot be read are left out.
pub fn claimed(state: &State) -> BTreeMap<IpAddr, BTreeSet<String>> {
    let oxlb = state.oxlb_bin.to_string_lossy().into_owned();
    let mut out: BTreeMap<IpAddr, BTreeSet<String>> = BTreeMap::new();
    for node in &state.nodes {
        let Ok(text) = run_in(
            &node.namespace,
            &[
                "timeout",
                "10",
                &oxlb,
                "status",
                "--addr",
                "127.0.0.1:7472",
                "-o",
                "json",
            ],
        ) else {
            continue;
        };
        for ip in status_l2_ips(&text) {
            out.entry(ip).or_default().insert(node.name.clone());
        }
    }
    out
}

/// Nodes whose LAN bridge port is down (`lab fail`).
fn cut_off(state: &State) -> BTreeSet<String> {
    state
        .nodes
        .iter()
        .filter(|node| {
            let port = crate::plan::lan_node_port(node.index);
            run_in(&state.lan_namespace, &["ip", "-o", "link", "show", &port])
                .is_ok_and(|text| !link_is_up(&text))
        })
        .map(|node| node.name.clone())
        .collect()
}

/// Whether `ip -o link show` says the link is administratively up (`<...,UP,...>`).
fn link_is_up(text: &str) -> bool {
    text.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .is_some_and(|(flags, _)| flags.split(',').any(|f| f == "UP"))
}

/// The `l2[].ip` entries of a `/api/v1/status` JSON document.
fn status_l2_ips(json: &str) -> Vec<IpAddr> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    value
        .get("l2")
        .and_then(|l2| l2.as_array())
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e.get("ip")?.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The node the Layer 2 election picks for `ip` among `candidates` (every candidate
/// eligible, as in the built-in configuration: no node selectors, no endpoints).
pub fn elected<'a>(candidates: impl IntoIterator<Item = &'a str>, ip: IpAddr) -> Option<String> {
    oxlb_announce::l2_owner(candidates, &ip).map(str::to_string)
}

/// The status section: each Layer 2 IP with the node(s) claiming it, and for IPv4 who
/// really answers ARP on the LAN.
pub fn report(state: &State) -> String {
    let claims = claimed(state);
    if claims.is_empty() {
        return "  (no node announces a Layer 2 IP)\n".to_string();
    }
    let cut = cut_off(state);
    let mut out = String::new();
    for (ip, nodes) in &claims {
        let owners: Vec<String> = nodes
            .iter()
            .map(|n| {
                if cut.contains(n) {
                    format!("{n} (link cut by `lab fail`: alone, it elects itself; the LAN does not hear it)")
                } else {
                    n.clone()
                }
            })
            .collect();
        let mut line = format!("  {ip:<16} owner: {}", owners.join(", "));
        if nodes.iter().filter(|n| !cut.contains(*n)).count() > 1 {
            line.push_str(" (MORE THAN ONE CONNECTED NODE CLAIMS IT: their membership is split)");
        }
        if let IpAddr::V4(v4) = ip {
            match arp_answerers(state, *v4) {
                Ok(answered) => {
                    let names: Vec<&str> = answered.iter().map(String::as_str).collect();
                    line.push_str(&format!(
                        "; ARP answered by: {}",
                        if names.is_empty() {
                            "nobody".to_string()
                        } else {
                            names.join(", ")
                        }
                    ));
                }
                Err(e) => line.push_str(&format!("; ARP not checked: {e}")),
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_request_answered_by_two_is_answered_together() {
        let set =
            |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| n.to_string()).collect() };
        // A hand-over between requests.
        assert!(answered_together(&[set(&["node1"]), set(&["node2"]), set(&["node2"])]).is_empty());
        assert!(answered_together(&[set(&[]), set(&["node2"])]).is_empty());
        assert_eq!(
            answered_together(&[set(&["node1"]), set(&["node1", "node3"])]),
            set(&["node1", "node3"])
        );
    }

    #[test]
    fn reply_lines_give_their_sender_macs() {
        let text = "ARPING 172.31.0.200\n\
            42 bytes from 02:aa:bb:cc:dd:01 (172.31.0.200): index=0 time=1.2 msec\n\
            42 bytes from 02:AA:BB:CC:DD:02 (172.31.0.200): index=1 time=1.3 msec\n\
            42 bytes from 02:aa:bb:cc:dd:01 (172.31.0.200): index=2 time=1.1 msec\n\
            \n--- 172.31.0.200 statistics ---\n3 packets transmitted, 3 packets received\n";
        let macs: Vec<String> = reply_macs(text).into_iter().collect();
        assert_eq!(macs, ["02:aa:bb:cc:dd:01", "02:aa:bb:cc:dd:02"]);
        assert!(reply_macs("Timeout\nTimeout\n").is_empty());
    }

    #[test]
    fn link_flags_tell_a_cut_port() {
        assert!(link_is_up(
            "5: node1@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP"
        ));
        assert!(!link_is_up(
            "5: node1@if2: <BROADCAST,MULTICAST> mtu 1500 state DOWN"
        ));
        assert!(!link_is_up("garbage"));
    }

    #[test]
    fn status_json_gives_the_layer2_ips() {
        let json = r#"{"node":"node2","l2":[{"ip":"172.31.0.200","interfaces":[]},{"ip":null}]}"#;
        assert_eq!(
            status_l2_ips(json),
            ["172.31.0.200".parse::<IpAddr>().unwrap()]
        );
        assert!(status_l2_ips("not json").is_empty());
    }
}
