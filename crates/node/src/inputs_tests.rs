use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::{Endpoint as K8sEndpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use oxlb_announce::{Endpoint, Endpoints};
use proptest::prelude::*;

use super::*;

fn service(namespace: Option<&str>, name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: namespace.map(str::to_string),
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn slice(namespace: Option<&str>, owner: Option<&str>, nodes: &[&str]) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            namespace: namespace.map(str::to_string),
            labels: owner.map(|o| {
                BTreeMap::from([("kubernetes.io/service-name".to_string(), o.to_string())])
            }),
            ..Default::default()
        },
        endpoints: nodes
            .iter()
            .map(|n| K8sEndpoint {
                node_name: Some(n.to_string()),
                ..Default::default()
            })
            .collect(),
        address_type: "IPv4".into(),
        ports: None,
    }
}

fn node(name: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("zone".into(), name.into())])),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn ips() -> Vec<IpAddr> {
    vec!["192.0.2.1".parse().unwrap()]
}

fn assigned<'a>(services: &'a [Service], ips: &'a [IpAddr]) -> Vec<Assigned<'a>> {
    services
        .iter()
        .map(|service| Assigned::of_service(service, ips, "p"))
        .collect()
}

#[test]
fn a_service_without_slices_is_served_everywhere_from_files_and_nowhere_in_a_cluster() {
    let services = [service(Some("web"), "front")];
    let ips = ips();
    let files = announce_input(Source::Files, "n1", assigned(&services, &ips), [], [], None);
    assert_eq!(files.services[0].endpoints, Endpoints::Unknown);
    let cluster = announce_input(
        Source::Cluster,
        "n1",
        assigned(&services, &ips),
        [],
        [],
        None,
    );
    assert_eq!(cluster.services[0].endpoints, Endpoints::Known(Vec::new()));
    // Both keep what else the Service says.
    assert_eq!(files.services[0].pool, "p");
    assert_eq!(cluster.services[0].ips, ips);
}

#[test]
fn a_services_slices_are_its_own_namespace_and_name_only() {
    let services = [service(Some("web"), "front"), service(None, "front")];
    let slices = [
        slice(Some("web"), Some("front"), &["n1"]),
        slice(Some("web"), Some("back"), &["n2"]),
        slice(None, Some("front"), &["n3"]),
        slice(Some("web"), None, &["n4"]),
    ]
    .map(|s| views::slice_view(&s));
    let ips = ips();
    let input = announce_input(
        Source::Cluster,
        "n1",
        assigned(&services, &ips),
        &slices,
        [],
        None,
    );
    let nodes_of = |i: usize| match &input.services[i].endpoints {
        Endpoints::Known(endpoints) => endpoints
            .iter()
            .map(|e| e.node.as_deref().unwrap_or_default().to_string())
            .collect::<Vec<_>>(),
        Endpoints::Unknown => vec!["unknown".into()],
    };
    assert_eq!(nodes_of(0), ["n1"]);
    // A Service and a slice written without a namespace are both in `default`.
    assert_eq!(nodes_of(1), ["n3"]);
}

#[test]
fn services_without_addresses_are_left_out() {
    let services = [service(Some("web"), "front")];
    let input = announce_input(Source::Files, "n1", assigned(&services, &[]), [], [], None);
    assert!(input.services.is_empty());
}

#[test]
fn without_liveness_every_known_node_and_this_one_is_live() {
    let nodes = [node("a"), node("b")];
    let input = announce_input(Source::Cluster, "me", [], [], &nodes, None);
    assert_eq!(
        input.live,
        BTreeSet::from(["a".to_string(), "b".to_string(), "me".to_string()])
    );
    // This node has no Node object: a bare view, and not a candidate in a cluster.
    assert_eq!(input.node.name, "me");
    assert!(input.node.labels.is_empty());
    assert!(!input.nodes.contains_key("me"));
    let known = announce_input(Source::Cluster, "a", [], [], &nodes, None);
    assert_eq!(known.node.labels.get("zone").map(String::as_str), Some("a"));
}

#[test]
fn live_speakers_without_a_node_are_candidates_from_files_only() {
    let nodes = [node("a")];
    let live = BTreeSet::from(["a".to_string(), "ghost".to_string()]);
    let files = announce_input(Source::Files, "a", [], [], &nodes, Some(&live));
    assert!(files.nodes["ghost"].labels.is_empty());
    assert_eq!(files.live, live);
    let cluster = announce_input(Source::Cluster, "a", [], [], &nodes, Some(&live));
    assert!(!cluster.nodes.contains_key("ghost"));
    assert_eq!(cluster.live, live);
}

fn arb_slice() -> impl Strategy<Value = EndpointSlice> {
    (
        prop::option::of(prop::sample::select(vec!["a", "b", "default"])),
        prop::option::of(prop::sample::select(vec!["s1", "s2", "s3"])),
        prop::collection::vec(prop::sample::select(vec!["n1", "n2", "n3"]), 0..3),
    )
        .prop_map(|(ns, owner, nodes)| slice(ns, owner, &nodes))
}

proptest! {
    /// Grouping the slices once gives each Service exactly what scanning every slice
    /// gives ([`views::endpoints_of`]), with the source's policy for none; every
    /// Service with addresses is kept, in order.
    #[test]
    fn grouped_slices_match_a_full_scan(
        slices in prop::collection::vec(arb_slice(), 0..8),
        keys in prop::collection::vec(
            (prop::option::of(prop::sample::select(vec!["a", "b"])),
             prop::sample::select(vec!["s1", "s2", "s3"])),
            0..5),
        cluster in any::<bool>(),
    ) {
        let source = if cluster { Source::Cluster } else { Source::Files };
        let slices: Vec<views::SliceView> = slices.iter().map(views::slice_view).collect();
        let services: Vec<Service> = keys.iter().map(|(ns, name)| service(*ns, name)).collect();
        let ips = ips();
        let input = announce_input(source, "n1", assigned(&services, &ips), &slices, [], None);
        prop_assert_eq!(input.services.len(), services.len());
        for (view, service) in input.services.iter().zip(&services) {
            let key = views::service_key(service);
            prop_assert_eq!(&view.key, &key);
            let scanned = views::endpoints_of(&key, &slices);
            let expected = match (scanned, source) {
                (Endpoints::Unknown, Source::Cluster) => Endpoints::Known(Vec::<Endpoint>::new()),
                (e, _) => e,
            };
            prop_assert_eq!(&view.endpoints, &expected);
        }
    }

    /// Every live speaker is a candidate when the objects come from files; in a cluster
    /// the candidates are exactly the Nodes the API has.
    #[test]
    fn candidates_follow_the_source(
        known in prop::collection::btree_set(prop::sample::select(vec!["a", "b", "c"]), 0..3),
        live in prop::collection::btree_set(prop::sample::select(vec!["a", "b", "c", "d"]), 0..4),
    ) {
        let nodes: Vec<Node> = known.iter().map(|n| node(n)).collect();
        let live: BTreeSet<String> = live.iter().map(|s| s.to_string()).collect();
        let files = announce_input(Source::Files, "a", [], [], &nodes, Some(&live));
        prop_assert!(live.iter().all(|l| files.nodes.contains_key(l)));
        let cluster = announce_input(Source::Cluster, "a", [], [], &nodes, Some(&live));
        let names: BTreeSet<&str> = cluster.nodes.keys().map(String::as_str).collect();
        prop_assert_eq!(names, known.iter().copied().collect::<BTreeSet<&str>>());
    }
}
