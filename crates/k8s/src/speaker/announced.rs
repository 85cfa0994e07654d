//! What this node announces per Service, as the cluster sees it: the protocols and
//! their interfaces or peers (for the status objects), the `nodeAssigned` events when a
//! protocol starts, and the services of the node's report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use oxlb_announce::{Announcements, Protocol, RouteCover, ServiceKey, ServiceView};
use oxlb_node::status::{AnnouncedIp, ServiceStatus};

use super::write_budget::SharedBudget;

/// A sorted list of interface or peer names, shared by every Service that has the same
/// one (issue 22: 10,000 Services announced to the same peer kept 10,000 copies of its
/// name, 2.5 MB).
pub type Names = Arc<[String]>;

/// What this node announces per Service: the protocols and, for the status objects,
/// the interfaces (Layer 2) or peers (BGP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announced {
    pub l2_interfaces: Option<Names>,
    pub bgp_peers: Option<Names>,
}

/// Per Service, what this node announces, from the core's Announcements.
pub fn per_service(
    announcements: &Announcements,
    services: &[ServiceView],
) -> BTreeMap<ServiceKey, Announced> {
    let mut interfaces_of: BTreeMap<&ServiceKey, BTreeSet<&str>> = BTreeMap::new();
    for l2 in announcements.l2.values() {
        for key in &l2.services {
            let names = interfaces_of.entry(key).or_default();
            if let oxlb_announce::Interfaces::Only(set) = &l2.interfaces {
                names.extend(set.iter().map(String::as_str));
            }
        }
    }
    let mut peers_of: BTreeMap<&ServiceKey, BTreeSet<&str>> = BTreeMap::new();
    for (peer, routes) in &announcements.bgp {
        let cover = RouteCover::new(routes);
        for service in services {
            let covered = service.ips.iter().any(|ip| cover.covers(ip));
            if covered {
                peers_of.entry(&service.key).or_default().insert(peer);
            }
        }
    }
    let mut shared = SharedNames::default();
    let mut out: BTreeMap<&ServiceKey, Announced> = BTreeMap::new();
    for (key, names) in interfaces_of {
        out.entry(key).or_default().l2_interfaces = Some(shared.get(names));
    }
    for (key, names) in peers_of {
        out.entry(key).or_default().bgp_peers = Some(shared.get(names));
    }
    // Built again from the sorted entries: full B-tree nodes, where inserting one
    // by one leaves them about half full (the map is kept until the next change).
    out.into_iter()
        .map(|(key, announced)| (key.clone(), announced))
        .collect()
}

/// One [`Names`] per distinct list.
#[derive(Default)]
struct SharedNames<'a> {
    lists: BTreeMap<BTreeSet<&'a str>, Names>,
}

impl<'a> SharedNames<'a> {
    fn get(&mut self, names: BTreeSet<&'a str>) -> Names {
        self.lists
            .entry(names)
            .or_insert_with_key(|names| names.iter().map(|n| n.to_string()).collect())
            .clone()
    }
}

/// MetalLB's `nodeAssigned` event text.
fn assigned_message(node: &str, protocol: Protocol) -> String {
    format!("announcing from node \"{node}\" with protocol \"{protocol}\"")
}

/// The `nodeAssigned` events for what started being announced here (MetalLB's text).
pub fn node_assigned_events(
    node: &str,
    before: &BTreeMap<ServiceKey, Announced>,
    now: &BTreeMap<ServiceKey, Announced>,
) -> Vec<(ServiceKey, Protocol, String)> {
    let mut events = Vec::new();
    for (key, announced) in now {
        let old = before.get(key);
        if announced.l2_interfaces.is_some() && old.is_none_or(|o| o.l2_interfaces.is_none()) {
            events.push((
                key.clone(),
                Protocol::Layer2,
                assigned_message(node, Protocol::Layer2),
            ));
        }
        if announced.bgp_peers.is_some() && old.is_none_or(|o| o.bgp_peers.is_none()) {
            events.push((
                key.clone(),
                Protocol::Bgp,
                assigned_message(node, Protocol::Bgp),
            ));
        }
    }
    events
}

/// Per Service, what this node announces, for `metallb_speaker_announced`.
pub(super) fn report_services(
    announcements: &Announcements,
    services: &[ServiceView],
) -> Vec<ServiceStatus> {
    // One shared name a peer for every Service's row (issue 22).
    let covers: Vec<(Arc<str>, RouteCover<'_, _>)> = announcements
        .bgp
        .iter()
        .map(|(peer, routes)| (Arc::from(peer.as_str()), RouteCover::new(routes)))
        .collect();
    let mut report: Vec<ServiceStatus> = services
        .iter()
        .filter_map(|service| {
            let mut announced = Vec::new();
            for ip in &service.ips {
                if announcements
                    .l2
                    .get(ip)
                    .is_some_and(|l2| l2.services.contains(&service.key))
                {
                    announced.push(AnnouncedIp {
                        ip: *ip,
                        protocol: Protocol::Layer2,
                        via: Vec::new(),
                    });
                }
                let mut peers: Vec<Arc<str>> = covers
                    .iter()
                    .filter(|(_, cover)| cover.covers(ip))
                    .map(|(peer, _)| Arc::clone(peer))
                    .collect();
                // Collected with room for 4: 64 bytes a Service for one peer's name.
                peers.shrink_to_fit();
                if !peers.is_empty() {
                    announced.push(AnnouncedIp {
                        ip: *ip,
                        protocol: Protocol::Bgp,
                        via: peers,
                    });
                }
            }
            announced.shrink_to_fit();
            (!announced.is_empty()).then(|| ServiceStatus {
                service: service.key.to_string(),
                ips: service.ips.clone(),
                pool: Some(service.pool.clone()),
                announced,
                weight: announcements
                    .weights
                    .get(&service.key)
                    .map(oxlb_node::weights::status),
                ..ServiceStatus::default()
            })
        })
        .collect();
    // Kept until the next change: without the slack of a growing Vec (up to half of
    // it, 1.2 MB at 10,000 Services).
    report.shrink_to_fit();
    report
}

/// A `nodeAssigned` event waiting for this speaker's write budget: the Service is
/// looked up when it is sent (a queue of 10,000 object references was 3 MB).
pub(super) struct AssignedEvent {
    pub service: ServiceKey,
    pub protocol: Protocol,
}

/// Records the `nodeAssigned` events in order, each under the speaker's
/// [`SharedBudget`]: a node starting to announce 10,000 Services sends them at its
/// share of the cluster's budget, not all at once (the queue holds at most one per
/// Service and protocol that started). A Service gone meanwhile gets none.
pub(super) fn spawn_assigned_events(
    recorder: crate::event_sink::EventSink,
    node: String,
    services: crate::projected::Projected<super::SpeakerService>,
    budget: SharedBudget,
    mut events: tokio::sync::mpsc::UnboundedReceiver<AssignedEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let key = format!("{}/{}", event.service.namespace, event.service.name);
            let Some(service) = services.get(&key) else {
                continue;
            };
            budget.spend(1).await;
            if events.is_empty() {
                // The last of a burst: give back what the burst freed.
                oxlb_node::memory::release_freed();
            }
            publish_node_assigned(
                &recorder,
                &service.object_ref(),
                event.protocol,
                assigned_message(&node, event.protocol),
            )
            .await;
        }
    })
}

async fn publish_node_assigned(
    recorder: &crate::event_sink::EventSink,
    service: &k8s_openapi::api::core::v1::ObjectReference,
    protocol: Protocol,
    message: String,
) {
    let event = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Normal,
        reason: "nodeAssigned".to_string(),
        note: Some(message.clone()),
        action: format!("nodeAssigned-{protocol}"),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, service).await {
        tracing::warn!(error = %e, "recording nodeAssigned failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_assigned_only_when_a_protocol_starts() {
        let key = ServiceKey {
            namespace: "ns".into(),
            name: "s".into(),
        };
        let l2 = Announced {
            l2_interfaces: Some(Names::from([])),
            bgp_peers: None,
        };
        let both = Announced {
            l2_interfaces: Some(["eth0".to_string()].into()),
            bgp_peers: Some(["r".to_string()].into()),
        };
        let none = BTreeMap::new();
        let with_l2 = BTreeMap::from([(key.clone(), l2)]);
        let with_both = BTreeMap::from([(key.clone(), both)]);
        assert_eq!(node_assigned_events("n", &none, &with_l2).len(), 1);
        assert!(node_assigned_events("n", &with_l2, &with_l2).is_empty());
        let events = node_assigned_events("n", &with_l2, &with_both);
        assert_eq!(
            events,
            [(
                key,
                Protocol::Bgp,
                "announcing from node \"n\" with protocol \"bgp\"".to_string()
            )]
        );
    }
}
