//! What this node announces per Service, as the cluster sees it: the protocols and
//! their interfaces or peers (for the status objects), the `nodeAssigned` events when a
//! protocol starts, and the services of the node's report.

use std::collections::BTreeMap;

use oxlb_announce::{Announcements, Protocol, RouteCover, ServiceKey, ServiceView};
use oxlb_api::{ServiceBGPStatusStatus, ServiceL2StatusStatus};
use oxlb_node::status::{AnnouncedIp, ServiceStatus};

use super::write_budget::SharedBudget;

/// What this node announces per Service: the protocols and, for the status objects,
/// the interfaces (Layer 2) or peers (BGP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announced {
    pub l2_interfaces: Option<Vec<String>>,
    pub bgp_peers: Option<Vec<String>>,
}

/// Per Service, what this node announces, from the core's Announcements.
pub fn per_service(
    announcements: &Announcements,
    services: &[ServiceView],
) -> BTreeMap<ServiceKey, Announced> {
    let mut out: BTreeMap<ServiceKey, Announced> = BTreeMap::new();
    for l2 in announcements.l2.values() {
        let interfaces = match &l2.interfaces {
            oxlb_announce::Interfaces::All => Vec::new(),
            oxlb_announce::Interfaces::Only(set) => set.iter().cloned().collect(),
        };
        for key in &l2.services {
            let entry = out.entry(key.clone()).or_default();
            let list = entry.l2_interfaces.get_or_insert_with(Vec::new);
            list.extend(interfaces.iter().cloned());
            list.sort();
            list.dedup();
        }
    }
    for (peer, routes) in &announcements.bgp {
        let cover = RouteCover::new(routes);
        for service in services {
            let covered = service.ips.iter().any(|ip| cover.covers(ip));
            if covered {
                let entry = out.entry(service.key.clone()).or_default();
                let peers = entry.bgp_peers.get_or_insert_with(Vec::new);
                if !peers.contains(peer) {
                    peers.push(peer.clone());
                    peers.sort();
                }
            }
        }
    }
    out
}

/// What this node's status objects say it announced before this process started: the
/// `nodeAssigned` events are for what starts being announced, and a restart starts
/// nothing the cluster did not already see.
pub fn before_start(
    l2: &[std::sync::Arc<Option<ServiceL2StatusStatus>>],
    bgp: &[std::sync::Arc<Option<ServiceBGPStatusStatus>>],
) -> BTreeMap<ServiceKey, Announced> {
    let key = |namespace: &Option<String>, name: &Option<String>| {
        Some(ServiceKey {
            namespace: namespace.clone()?,
            name: name.clone()?,
        })
    };
    let mut out: BTreeMap<ServiceKey, Announced> = BTreeMap::new();
    for status in l2.iter().filter_map(|s| s.as_ref().as_ref()) {
        if let Some(key) = key(&status.service_namespace, &status.service_name) {
            out.entry(key).or_default().l2_interfaces = Some(
                status
                    .interfaces
                    .iter()
                    .flatten()
                    .filter_map(|i| i.name.clone())
                    .collect(),
            );
        }
    }
    for status in bgp.iter().filter_map(|s| s.as_ref().as_ref()) {
        if let Some(key) = key(&status.service_namespace, &status.service_name) {
            out.entry(key).or_default().bgp_peers = Some(status.peers.clone().unwrap_or_default());
        }
    }
    out
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
    let covers: Vec<(&String, RouteCover<'_, _>)> = announcements
        .bgp
        .iter()
        .map(|(peer, routes)| (peer, RouteCover::new(routes)))
        .collect();
    services
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
                let peers: Vec<String> = covers
                    .iter()
                    .filter(|(_, cover)| cover.covers(ip))
                    .map(|(peer, _)| (*peer).clone())
                    .collect();
                if !peers.is_empty() {
                    announced.push(AnnouncedIp {
                        ip: *ip,
                        protocol: Protocol::Bgp,
                        via: peers,
                    });
                }
            }
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
        .collect()
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
            l2_interfaces: Some(vec![]),
            bgp_peers: None,
        };
        let both = Announced {
            l2_interfaces: Some(vec!["eth0".into()]),
            bgp_peers: Some(vec!["r".into()]),
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

    /// A restarted speaker reads back what its objects say: no nodeAssigned again for
    /// those, one for a protocol that starts now.
    #[test]
    fn what_the_status_objects_show_counts_as_announced_before_the_start() {
        let l2 = ServiceL2StatusStatus {
            node: Some("n".into()),
            service_name: Some("web".into()),
            service_namespace: Some("ns".into()),
            interfaces: Some(vec![oxlb_api::status::InterfaceInfo {
                name: Some("eth0".into()),
            }]),
        };
        let bgp = ServiceBGPStatusStatus {
            node: Some("n".into()),
            service_name: Some("api".into()),
            service_namespace: Some("ns".into()),
            peers: Some(vec!["router".into()]),
        };
        let unnamed = ServiceBGPStatusStatus {
            service_name: None,
            ..bgp.clone()
        };
        let before = before_start(
            &[std::sync::Arc::new(Some(l2)), std::sync::Arc::new(None)],
            &[
                std::sync::Arc::new(Some(bgp)),
                std::sync::Arc::new(Some(unnamed)),
            ],
        );
        let key = |name: &str| ServiceKey {
            namespace: "ns".into(),
            name: name.into(),
        };
        assert_eq!(before.len(), 2);
        assert_eq!(before[&key("web")].l2_interfaces, Some(vec!["eth0".into()]));
        assert_eq!(before[&key("api")].bgp_peers, Some(vec!["router".into()]));
        let now = BTreeMap::from([
            (
                key("web"),
                Announced {
                    l2_interfaces: Some(vec!["eth0".into()]),
                    bgp_peers: None,
                },
            ),
            (
                key("api"),
                Announced {
                    l2_interfaces: Some(vec![]),
                    bgp_peers: Some(vec!["router".into()]),
                },
            ),
        ]);
        let events = node_assigned_events("n", &before, &now);
        assert_eq!(events.len(), 1);
        assert_eq!((&events[0].0, events[0].1), (&key("api"), Protocol::Layer2));
    }
}
