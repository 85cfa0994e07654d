//! `oxlb run` end to end over IPv6 and dual stack, with a real router: three node
//! namespaces each running `oxlb run` on the same files, FRR in a router namespace with
//! an IPv4 and an IPv6 eBGP session to every node, a workstation behind the router and a
//! client on the LAN. One scenario, in order:
//!
//! 1. an IPv6-only Service (BGP pool, community) reaches FRR over the IPv6 sessions with
//!    three ECMP paths, the kernel route has three next hops, and a curl from the
//!    workstation through the router is answered by a node;
//! 2. a `RequireDualStack` Service gets one address of each family from one dual-stack
//!    pool; the IPv4 one reaches FRR over the IPv4 sessions, the IPv6 one over the IPv6
//!    sessions, each with three paths;
//! 3. `oxlb status -o json` and `/metrics` show the IPv6 sessions Established and the
//!    IPv6 addresses; `oxlb explain` names them;
//! 4. an IPv6 Service announced by Layer 2: NDP from the LAN client resolves it to the
//!    MAC of the node the election picks; that node's link is cut and the client's
//!    neighbour entry moves to the new owner's MAC (unsolicited NA), and NDP answers
//!    from the new owner.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use oxlb_netlab::{netns_tests_enabled, wait_until};

const V6_POOL: &str = "fd00:79:1::/120";
const DUAL_POOL_V4: &str = "10.79.1.0/24";
const DUAL_POOL_V6: &str = "fd00:79:2::/120";
/// Inside the LAN's /64, so NDP on the LAN resolves it.
const L2_POOL: &str = "fd00:77::1:0/120";

#[test]
fn run_end_to_end_ipv6_and_dual_stack_with_frr() {
    if !netns_tests_enabled("run_end_to_end_ipv6_and_dual_stack_with_frr").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut topo = Topo::build_dual(3);
    topo.write_config("metallb.yaml", &metallb_v6_yaml());
    topo.write_config("nodes.yaml", &nodes_yaml(&topo));
    topo.write_config("services.yaml", &services_v6_yaml());
    for i in 0..3 {
        topo.start_backend(i);
        topo.start_run(i);
    }
    let hops4: Vec<String> = topo.nodes.iter().map(|n| n.ip.clone()).collect();
    let hops6: Vec<String> = topo.nodes.iter().map(|n| n.ip6.clone().unwrap()).collect();

    // Every node computes the same assignments on its own.
    let assignments = wait_until(CONVERGE, Duration::from_millis(200), || {
        let all: Vec<_> = (0..3).map(|i| topo.assignments(i)).collect::<Option<_>>()?;
        let first: &std::collections::BTreeMap<String, Vec<String>> = &all[0];
        (first.len() == 3 && all.iter().all(|a| a == first)).then(|| first.clone())
    })
    .unwrap_or_else(|| panic!("nodes do not agree on the assignments\n{}", topo.logs()));
    eprintln!("assignments: {assignments:?}");
    let v6_ip = assignments["default/svc-v6"].clone();
    assert_eq!(v6_ip, vec!["fd00:79:1::".to_string()], "lowest address");
    let v6_ip = v6_ip[0].clone();
    let dual = assignments["default/svc-dual"].clone();
    // MetalLB: one address of each family from the same pool, IPv4 first as ipFamilies.
    // avoidBuggyIPs skips the IPv4 .0 only; it means nothing for IPv6.
    assert_eq!(
        dual,
        vec!["10.79.1.1".to_string(), "fd00:79:2::".to_string()],
        "dual-stack Service"
    );
    let l2_ip = assignments["default/svc-l2"][0].clone();
    assert!(l2_ip.starts_with("fd00:77::1:"), "{l2_ip}");

    // 1. The IPv6 Service: three ECMP paths over the IPv6 sessions, with the community.
    let paths = topo.wait_paths(&format!("{v6_ip}/128"), &hops6);
    for (hop, communities) in &paths {
        assert!(
            communities.contains("64500:106"),
            "path via {hop} lacks the community: {communities:?}"
        );
    }
    // RFC 2545 §3: on the shared LAN each path's next hop carries the node's link-local
    // address too, and FRR installs the route through it.
    let link_locals: Vec<String> = topo.nodes.iter().map(|n| link_local(&n.ns)).collect();
    let found = wait_until(CONVERGE, Duration::from_millis(200), || {
        let found = link_local_hops(&topo, &format!("{v6_ip}/128"));
        (found.len() == 3).then_some(found)
    });
    let mut found = found.unwrap_or_default();
    found.sort();
    let mut want = link_locals.clone();
    want.sort();
    assert_eq!(found, want, "link-local next hops in FRR");
    let kernel = wait_until(CONVERGE, Duration::from_millis(200), || {
        let route = kernel_route(&topo, &format!("{v6_ip}/128"));
        (route.matches("nexthop via").count() == 3
            && link_locals
                .iter()
                .all(|h| route.contains(&format!("via {h} "))))
        .then_some(route)
    })
    .unwrap_or_else(|| {
        panic!(
            "the router's kernel route to {v6_ip} lacks next hops: {}",
            kernel_route(&topo, &format!("{v6_ip}/128"))
        )
    });
    eprintln!("router kernel route:\n{kernel}");
    // The IPv6 address reached FRR only over the IPv6 sessions.
    assert!(
        topo.paths(&format!("{v6_ip}/128"))
            .keys()
            .all(|h| h.contains(':'))
    );
    let names: Vec<String> = topo.nodes.iter().map(|n| format!("{}\n", n.name)).collect();
    let body = wait_until(CONVERGE, Duration::from_millis(200), || {
        curl6_from_ws(&topo, &v6_ip)
            .ok()
            .filter(|b| names.contains(b))
    });
    assert!(
        body.is_some(),
        "curl -6 http://[{v6_ip}]/ from the workstation: {:?}\n{}",
        curl6_from_ws(&topo, &v6_ip),
        topo.logs()
    );
    for node in &topo.nodes {
        // A local route through oxlb0 makes the IP the host's own (see vips.rs).
        let on_host = node
            .ns
            .exec_stdout(&[
                "ip", "-6", "route", "show", "table", "local", "dev", "oxlb0",
            ])
            .unwrap();
        assert!(
            on_host.contains(&format!("local {v6_ip} proto static")),
            "{}: {on_host}",
            node.name
        );
    }

    // 2. The dual-stack Service: each family over its own sessions, three paths each.
    topo.wait_paths(&format!("{}/32", dual[0]), &hops4);
    topo.wait_paths(&format!("{}/128", dual[1]), &hops6);
    for ip in &dual {
        let body = wait_until(CONVERGE, Duration::from_millis(200), || {
            let reply = if ip.contains(':') {
                curl6_from_ws(&topo, ip)
            } else {
                topo.curl_from_ws(ip)
            };
            reply.ok().filter(|b| names.contains(b))
        });
        assert!(body.is_some(), "curl {ip} from the workstation");
    }

    // 3. Status and metrics show the IPv6 sessions and addresses.
    for i in 0..3 {
        let status = wait_until(CONVERGE, Duration::from_millis(200), || {
            let status = topo.status(i)?;
            let sessions = status["bgp_sessions"].as_array()?;
            sessions
                .iter()
                .any(|s| {
                    s["peer"] == "router6"
                        && s["state"] == "Established"
                        && s["address"] == format!("[{ROUTER_LAN6}]:179")
                        && s["prefixes_announced"].as_u64() == Some(2)
                })
                .then_some(status)
        })
        .unwrap_or_else(|| {
            panic!(
                "node{}: no Established IPv6 session with 2 prefixes: {:?}",
                i + 1,
                topo.status(i)
            )
        });
        let text = status.to_string();
        assert!(text.contains(&v6_ip) && text.contains(&dual[1]), "{text}");
    }
    let metrics = topo.nodes[0]
        .ns
        .exec_stdout(&[
            "curl",
            "-s",
            "--max-time",
            "3",
            &format!("http://{LISTEN}/metrics"),
        ])
        .unwrap();
    // MetalLB labels a session by its address and port.
    assert!(
        metrics.contains(&format!(
            "metallb_bgp_session_up{{peer=\"[{ROUTER_LAN6}]:179\",vrf=\"default\"}} 1"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("ip=\"{v6_ip}\"")),
        "no announced metric for {v6_ip}: {metrics}"
    );
    let explain = topo
        .oxlb(0, &["explain", "default/svc-dual", "--addr", LISTEN])
        .unwrap();
    eprintln!("explain on node1:\n{explain}");
    assert!(
        explain.contains(&dual[0]) && explain.contains(&dual[1]),
        "{explain}"
    );

    // 4. Layer 2 over NDP: the elected node answers, and another after it fails.
    let l2: IpAddr = l2_ip.parse().unwrap();
    let node_names: Vec<&str> = topo.nodes.iter().map(|n| n.name.as_str()).collect();
    let owner = oxlb_announce::l2_owner(node_names.iter().copied(), &l2).unwrap();
    let owner_index = node_names.iter().position(|n| *n == owner).unwrap();
    let macs: Vec<String> = topo.nodes.iter().map(|n| lan_mac(&n.ns)).collect();
    // Once the speakers see each other (membership), only the elected one announces.
    wait_l2_announcers(&topo, &l2_ip, owner_index, None);
    // The owner's LAN port is in the solicited-node group (RFC 4861 §7.2.1): its filter
    // takes the group's frames, and it is a member at the IP level, so the kernel sends
    // MLD reports and a snooping switch forwards the solicitations. The others are not.
    let (group, group_mac) = solicited_node(&l2);
    // (link-layer member, IP-level member) of node i's LAN port.
    let memberships = |i: usize| {
        let text = topo.nodes[i]
            .ns
            .exec_stdout(&["ip", "maddress", "show", "dev", "lan0"])
            .unwrap_or_default();
        (
            text.contains(&group_mac),
            text.contains(&format!("inet6 {group}")),
        )
    };
    let joined = |i: usize| memberships(i) == (true, true);
    assert!(
        wait_until(CONVERGE, Duration::from_millis(200), || joined(owner_index)
            .then_some(()))
        .is_some(),
        "{owner} did not join {group} on lan0: {:?}",
        memberships(owner_index)
    );
    for i in (0..3).filter(|i| *i != owner_index) {
        assert_eq!(
            memberships(i),
            (false, false),
            "{} joined {group} without owning it",
            node_names[i]
        );
    }
    let client = topo.client.as_ref().unwrap();
    let answered = wait_until(CONVERGE, Duration::from_millis(300), || {
        ndisc_mac(client, &l2_ip).filter(|m| *m == macs[owner_index])
    });
    assert!(
        answered.is_some(),
        "NDP for {l2_ip} never answered by {owner} ({}): {:?}\n{}",
        macs[owner_index],
        ndisc_mac(client, &l2_ip),
        topo.logs()
    );
    // A ping fills the client's neighbour cache with the owner's MAC.
    let ping = client
        .exec(&["ping", "-6", "-c", "1", "-W", "2", &l2_ip])
        .unwrap();
    assert!(ping.status.success(), "ping -6 {l2_ip}: {ping:?}");
    assert_eq!(
        neighbour_mac(client, &l2_ip),
        Some(macs[owner_index].clone())
    );

    // The owner's cable is pulled (its port on the LAN bridge goes down).
    let cut = std::time::Instant::now();
    topo.lan
        .link_down(&format!("n{}", owner_index + 1))
        .unwrap();
    let survivors: Vec<&str> = node_names.iter().copied().filter(|n| *n != owner).collect();
    let next = oxlb_announce::l2_owner(survivors.iter().copied(), &l2).unwrap();
    let next_index = node_names.iter().position(|n| *n == next).unwrap();
    wait_l2_announcers(&topo, &l2_ip, next_index, Some(owner_index));
    // The unsolicited NA (Override) moves the client's existing entry by itself.
    let moved = wait_until(CONVERGE, Duration::from_millis(200), || {
        neighbour_mac(client, &l2_ip).filter(|m| *m == macs[next_index])
    });
    // A figure to read, not an assertion: polled every 200 ms.
    let takeover = cut.elapsed();
    assert!(
        moved.is_some(),
        "the client's neighbour entry for {l2_ip} stayed {:?}, expected {next} ({})\n{}",
        neighbour_mac(client, &l2_ip),
        macs[next_index],
        topo.logs()
    );
    assert_eq!(ndisc_mac(client, &l2_ip), Some(macs[next_index].clone()));
    assert!(joined(next_index), "{next} did not join {group} on lan0");
    let ping = client
        .exec(&["ping", "-6", "-c", "1", "-W", "2", &l2_ip])
        .unwrap();
    assert!(ping.status.success(), "ping -6 {l2_ip} after the failover");
    eprintln!(
        "Layer 2 {l2_ip}: {owner} -> {next}; the client's neighbour entry moved {} ms after the cut",
        takeover.as_millis()
    );
}

/// Waits until, among the nodes not in `ignore`, exactly `expected` announces `ip` by
/// Layer 2 (a node cut off the LAN believes it is alone and owns everything: ignored).
fn wait_l2_announcers(topo: &Topo, ip: &str, expected: usize, ignore: Option<usize>) {
    let announcers = || -> Vec<usize> {
        (0..topo.nodes.len())
            .filter(|i| Some(*i) != ignore)
            .filter(|i| {
                topo.status(*i).is_some_and(|s| {
                    s["l2"]
                        .as_array()
                        .is_some_and(|l2| l2.iter().any(|e| e["ip"] == ip))
                })
            })
            .collect()
    };
    let found = wait_until(CONVERGE, Duration::from_millis(200), || {
        (announcers() == [expected]).then_some(())
    });
    assert!(
        found.is_some(),
        "Layer 2 announcers of {ip}: {:?}, expected only {expected}\n{}",
        announcers(),
        topo.logs()
    );
}

/// `ip`'s solicited-node group (ff02::1:ff + the low 24 bits, RFC 4291 §2.7.1) and its
/// Ethernet address (33:33 + the group's low 32 bits, RFC 2464 §7), as `ip maddress`
/// prints them.
fn solicited_node(ip: &IpAddr) -> (String, String) {
    let IpAddr::V6(v6) = ip else {
        panic!("{ip} is not IPv6")
    };
    let o = v6.octets();
    let group = std::net::Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    let mac = format!("33:33:ff:{:02x}:{:02x}:{:02x}", o[13], o[14], o[15]);
    (group.to_string(), mac)
}

/// The link-local address of `ns`'s LAN interface.
fn link_local(ns: &oxlb_netlab::Netns) -> String {
    let text = ns
        .exec_stdout(&[
            "ip", "-6", "-o", "address", "show", "dev", "lan0", "scope", "link",
        ])
        .unwrap();
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .unwrap_or_else(|| panic!("no link-local address: {text}"));
    word.split('/').next().unwrap().to_string()
}

/// The link-local next hops FRR holds for `prefix`, one per path that has one.
fn link_local_hops(topo: &Topo, prefix: &str) -> Vec<String> {
    let text = topo
        .frr
        .vtysh(&format!("show bgp ipv6 unicast {prefix} json"))
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    json["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|path| {
            path["nexthops"].as_array()?.iter().find_map(|hop| {
                (hop["scope"] == "link-local")
                    .then(|| hop["ip"].as_str().map(str::to_string))
                    .flatten()
            })
        })
        .collect()
}

/// `ip -6 route show PREFIX` in the router namespace (ECMP: one `nexthop via` per path).
fn kernel_route(topo: &Topo, prefix: &str) -> String {
    topo.router
        .exec_stdout(&["ip", "-6", "route", "show", prefix])
        .unwrap_or_default()
}

fn curl6_from_ws(topo: &Topo, ip: &str) -> Result<String, String> {
    topo.ws
        .exec_stdout(&[
            "curl",
            "-6",
            "-g",
            "-s",
            "--max-time",
            "3",
            &format!("http://[{ip}]/"),
        ])
        .map_err(|e| e.to_string())
}

fn lan_mac(ns: &oxlb_netlab::Netns) -> String {
    ns.exec_stdout(&["cat", "/sys/class/net/lan0/address"])
        .unwrap()
        .trim()
        .to_lowercase()
}

/// The MAC an NDP solicitation for `ip` is answered with (ndisc6), if any.
fn ndisc_mac(ns: &oxlb_netlab::Netns, ip: &str) -> Option<String> {
    let out = ns
        .command("ndisc6")
        .args(["-1", "-q", "-r", "2", "-w", "500", ip, "lan0"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_lowercase();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The link-layer address of the client's neighbour entry for `ip`.
fn neighbour_mac(ns: &oxlb_netlab::Netns, ip: &str) -> Option<String> {
    let text = ns
        .exec_stdout(&["ip", "-6", "neigh", "show", ip, "dev", "lan0"])
        .ok()?;
    let mut words = text.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_lowercase)
}

/// Pools: IPv6 by BGP (community), dual-stack by BGP, IPv6 on the LAN by Layer 2. Peers:
/// the router over IPv4 and over IPv6. The memberlist Secret lets the speakers see each
/// other die.
fn metallb_v6_yaml() -> String {
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: v6-bgp
  namespace: metallb-system
spec:
  addresses:
    - {V6_POOL}
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: dual
  namespace: metallb-system
spec:
  addresses:
    - {DUAL_POOL_V4}
    - {DUAL_POOL_V6}
  autoAssign: false
  avoidBuggyIPs: true
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: v6-l2
  namespace: metallb-system
spec:
  addresses:
    - {L2_POOL}
  autoAssign: false
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
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: router6
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: {ROUTER_LAN6}
  holdTime: 9s
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: v6-bgp
  namespace: metallb-system
spec:
  ipAddressPools:
    - v6-bgp
  communities:
    - \"64500:106\"
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: dual
  namespace: metallb-system
spec:
  ipAddressPools:
    - dual
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: v6-l2
  namespace: metallb-system
spec:
  ipAddressPools:
    - v6-l2
---
apiVersion: v1
kind: Secret
metadata:
  name: memberlist
  namespace: metallb-system
stringData:
  secretkey: e2e-v6-membership-key-not-secret
"
    )
}

/// Node objects: the speakers find each other's membership address (InternalIP).
fn nodes_yaml(topo: &Topo) -> String {
    topo.nodes
        .iter()
        .map(|n| {
            format!(
                "apiVersion: v1
kind: Node
metadata:
  name: {}
status:
  addresses:
    - type: InternalIP
      address: {}
    - type: InternalIP
      address: {}
",
                n.name,
                n.ip,
                n.ip6.as_deref().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn service_v6_yaml(name: &str, pool: &str, families: &[&str], policy: &str) -> String {
    let families = families
        .iter()
        .map(|f| format!("    - {f}\n"))
        .collect::<String>();
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
  annotations:
    metallb.io/address-pool: {pool}
spec:
  type: LoadBalancer
  ipFamilyPolicy: {policy}
  ipFamilies:
{families}  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 80
"
    )
}

fn services_v6_yaml() -> String {
    [
        service_v6_yaml("svc-v6", "v6-bgp", &["IPv6"], "SingleStack"),
        service_v6_yaml("svc-dual", "dual", &["IPv4", "IPv6"], "RequireDualStack"),
        service_v6_yaml("svc-l2", "v6-l2", &["IPv6"], "SingleStack"),
    ]
    .join("---\n")
}
