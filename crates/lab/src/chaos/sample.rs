//! Looking at the lab: every node's `oxlb status` (its Services' IPs, its BGP session),
//! who answers ARP for each Layer 2 IP (from the router, as `lab status` does), and
//! the router's next hops for each BGP IP.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::timeline::Sample;
use crate::exec::run_in;
use crate::state::State;

/// What one node's status says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeView {
    /// Service -> IPs.
    pub services: BTreeMap<String, BTreeSet<IpAddr>>,
    /// IPs this node lists with protocol `layer2` (announced or not).
    pub layer2: BTreeSet<IpAddr>,
    /// Every BGP session Established (and at least one).
    pub session_up: bool,
}

/// Parses `/api/v1/status` JSON (`oxlb status -o json`).
pub fn parse_status(json: &str) -> Option<NodeView> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut view = NodeView::default();
    for service in value.get("services")?.as_array()? {
        let Some(name) = service.get("service").and_then(|s| s.as_str()) else {
            continue;
        };
        let ips: BTreeSet<IpAddr> = service
            .get("ips")
            .and_then(|i| i.as_array())
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| ip.as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        view.services.insert(name.to_string(), ips);
        for list in ["announced", "not_announced"] {
            for entry in service
                .get(list)
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
            {
                if entry.get("protocol").and_then(|p| p.as_str()) == Some("layer2")
                    && let Some(ip) = entry.get("ip").and_then(|i| i.as_str()?.parse().ok())
                {
                    view.layer2.insert(ip);
                }
            }
        }
    }
    let sessions: Vec<&str> = value
        .get("bgp_sessions")
        .and_then(|s| s.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|s| s.get("state")?.as_str())
                .collect()
        })
        .unwrap_or_default();
    view.session_up = !sessions.is_empty() && sessions.iter().all(|s| *s == "Established");
    Some(view)
}

/// `ip -o route show` (IPv4) and `ip -o -6 route show`: destination host route ->
/// number of next hops (`nexthop` entries, or 1 for a plain `via`).
pub fn parse_routes(text: &str) -> BTreeMap<IpAddr, usize> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        let destination = first.trim_end_matches("/32").trim_end_matches("/128");
        let Ok(ip) = destination.parse::<IpAddr>() else {
            continue;
        };
        let hops = line.matches("nexthop").count();
        let paths = if hops > 0 {
            hops
        } else {
            usize::from(line.contains(" via "))
        };
        if paths > 0 {
            out.insert(ip, paths);
        }
    }
    out
}

pub fn node_view(state: &State, namespace: &str) -> Option<NodeView> {
    let oxlb = state.oxlb_bin.to_string_lossy().into_owned();
    let text = run_in(
        namespace,
        &[
            "timeout",
            "3",
            &oxlb,
            "status",
            "--addr",
            "127.0.0.1:7472",
            "-o",
            "json",
        ],
    )
    .ok()?;
    parse_status(&text)
}

/// One sample. `l2_seen`: every Layer 2 IP seen so far (kept across samples, so an IP
/// whose owner is down is still asked for).
pub fn take(state: &State, t_ms: u64, l2_seen: &mut BTreeSet<IpAddr>) -> Sample {
    let views: Vec<(String, Option<NodeView>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = state
            .nodes
            .iter()
            .map(|node| {
                let name = node.name.clone();
                (name, scope.spawn(move || node_view(state, &node.namespace)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| (name, h.join().ok().flatten()))
            .collect()
    });
    let mut sample = Sample {
        t_ms,
        ..Sample::default()
    };
    for (node, view) in &views {
        let Some(view) = view else {
            sample.sessions.insert(node.clone(), false);
            continue;
        };
        sample.sessions.insert(node.clone(), view.session_up);
        l2_seen.extend(view.layer2.iter().copied());
        for (service, ips) in &view.services {
            sample
                .services
                .entry(service.clone())
                .or_default()
                .insert(node.clone(), ips.clone());
        }
    }
    let l2: Vec<IpAddr> = l2_seen.iter().copied().collect();
    let looks: Vec<(IpAddr, Vec<BTreeSet<String>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = l2
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some((
                    *ip,
                    scope.spawn(move || crate::layer2::arp_answers_per_request(state, *v4)),
                )),
                IpAddr::V6(_) => None,
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(ip, h)| Some((ip, h.join().ok()?.ok()?)))
            .collect()
    });
    for (ip, per_request) in looks {
        let together = crate::layer2::answered_together(&per_request);
        if !together.is_empty() {
            sample.answered_together.insert(ip, together);
        }
        sample
            .answerers
            .insert(ip, per_request.into_iter().flatten().collect());
    }
    let mut routes = String::new();
    for family in ["-4", "-6"] {
        if let Ok(text) = run_in(
            &state.router_namespace,
            &["ip", "-o", family, "route", "show"],
        ) {
            routes.push_str(&text);
        }
    }
    sample.router_paths = parse_routes(&routes)
        .into_iter()
        .filter(|(ip, _)| !l2_seen.contains(ip))
        .collect();
    sample
}

/// Whether the lab looks whole in `sample`: every node reported with its session
/// Established, every BGP Service IP routed over every node (the built-in
/// configuration announces from all), every Layer 2 IP answered by exactly one node.
pub fn whole(sample: &Sample, nodes: usize, l2: &BTreeSet<IpAddr>) -> bool {
    let sessions = sample.sessions.len() == nodes && sample.sessions.values().all(|up| *up);
    let ips: BTreeSet<IpAddr> = sample
        .services
        .values()
        .flat_map(|by_node| by_node.values().flatten().copied())
        .collect();
    let served = ips.iter().all(|ip| {
        if l2.contains(ip) {
            sample.answerers.get(ip).is_some_and(|a| a.len() == 1)
        } else {
            sample.router_paths.get(ip).is_some_and(|n| *n == nodes)
        }
    });
    sessions && served && !ips.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_gives_services_layer2_ips_and_sessions() {
        let json = r#"{"node":"node1","services":[
            {"service":"default/web-bgp","ips":["172.31.100.10"],"announced":[{"ip":"172.31.100.10","protocol":"bgp","via":[]}],"not_announced":[]},
            {"service":"default/web-l2","ips":["172.31.0.200"],"announced":[],"not_announced":[{"ip":"172.31.0.200","protocol":"layer2","reason":"NotOwner","detail":""}]}],
            "bgp_sessions":[{"peer":"lab-router","state":"Established"}]}"#;
        let view = parse_status(json).unwrap();
        assert_eq!(view.services.len(), 2);
        assert!(view.session_up);
        assert_eq!(
            view.layer2.iter().collect::<Vec<_>>(),
            [&"172.31.0.200".parse::<IpAddr>().unwrap()]
        );
        let down = json.replace("\"Established\"", "\"Connect\"");
        assert!(!parse_status(&down).unwrap().session_up);
        assert!(parse_status("{}").is_none());
    }

    #[test]
    fn routes_count_their_next_hops() {
        let text = "default via 172.31.254.2 dev wan0\n\
            172.31.0.0/24 dev lan0 proto kernel scope link src 172.31.0.1\n\
            172.31.100.10 nhid 20 proto bgp metric 20 \tnexthop via 172.31.0.11 dev lan0 weight 1 \tnexthop via 172.31.0.12 dev lan0 weight 1 \n\
            172.31.100.11 nhid 21 via 172.31.0.13 dev lan0 proto bgp metric 20 \n";
        let routes = parse_routes(text);
        assert_eq!(routes.len(), 2, "{routes:?}");
        assert_eq!(routes[&"172.31.100.10".parse::<IpAddr>().unwrap()], 2);
        assert_eq!(routes[&"172.31.100.11".parse::<IpAddr>().unwrap()], 1);
    }

    #[test]
    fn whole_needs_sessions_paths_and_one_answerer() {
        let bgp: IpAddr = "172.31.100.10".parse().unwrap();
        let l2: IpAddr = "172.31.0.200".parse().unwrap();
        let mut s = Sample::default();
        for node in ["node1", "node2"] {
            s.sessions.insert(node.into(), true);
            let by_node = s.services.entry("default/web".into()).or_default();
            by_node.insert(node.into(), BTreeSet::from([bgp]));
            s.services
                .entry("default/l2".into())
                .or_default()
                .insert(node.into(), BTreeSet::from([l2]));
        }
        s.router_paths.insert(bgp, 2);
        s.answerers
            .insert(l2, BTreeSet::from(["node1".to_string()]));
        let l2s = BTreeSet::from([l2]);
        assert!(whole(&s, 2, &l2s));
        let mut one_path = s.clone();
        one_path.router_paths.insert(bgp, 1);
        assert!(!whole(&one_path, 2, &l2s));
        let mut two = s.clone();
        two.answerers.insert(
            l2,
            BTreeSet::from(["node1".to_string(), "node2".to_string()]),
        );
        assert!(!whole(&two, 2, &l2s));
        let mut down = s;
        down.sessions.insert("node2".into(), false);
        assert!(!whole(&down, 2, &l2s));
    }
}
