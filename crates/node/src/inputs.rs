//! The one pure step from Kubernetes objects to the announce core's input, for
//! `oxlb run` (objects from files) and `oxlb speaker` (objects from the API) alike:
//! Services with their assigned IPs, EndpointSlices, Nodes and the live speakers in;
//! the views [`oxlb_announce::announce`] decides on out.
//!
//! The two shells differ only in where the objects come from, and that decides what a
//! missing object means ([`Source`]); everything else is this one function.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use oxlb_announce::{
    Announcements, Endpoints, Health, Input, NodeView, ServiceKey, ServiceView, TrafficPolicy,
};
use oxlb_config::Config;

use crate::views::{self, SliceView};

/// Where the objects come from: the stated policy for what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `oxlb run`: files, which rarely carry EndpointSlices or every Node.
    /// - A Service without an EndpointSlice has unknown endpoints: it is served on every
    ///   node (a VIP for a process on the host; [`Endpoints::Unknown`]).
    /// - A live speaker without a Node object is a candidate with no labels: otherwise
    ///   every speaker would think it alone may own an IP.
    Files,
    /// `oxlb speaker`: the API, which has every Node and an EndpointSlice for every
    /// Service with a selector (the EndpointSlice controller writes one even when empty).
    /// - A Service without an EndpointSlice has no endpoints (as MetalLB: a Local
    ///   Service is not announced; nothing is served).
    /// - Only Nodes the API knows are candidates (a speaker Pod seen before its Node is
    ///   not elected until the Node is seen).
    Cluster,
}

/// A Service and the addresses it holds (from the controller's decision in `oxlb run`,
/// from its status in a cluster).
#[derive(Debug, Clone)]
pub struct Assigned<'a> {
    pub key: ServiceKey,
    pub traffic_policy: TrafficPolicy,
    /// For the advertisements' Service selectors.
    pub labels: BTreeMap<String, String>,
    pub ips: &'a [IpAddr],
    pub pool: &'a str,
}

impl<'a> Assigned<'a> {
    /// A Service object holding `ips` of `pool`.
    pub fn of_service(service: &Service, ips: &'a [IpAddr], pool: &'a str) -> Assigned<'a> {
        Assigned {
            key: views::service_key(service),
            traffic_policy: views::traffic_policy(service),
            labels: service.metadata.labels.clone().unwrap_or_default(),
            ips,
            pool,
        }
    }
}

/// What [`oxlb_announce::announce`] decides on, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceInput {
    /// This node (a bare view when it has no Node object).
    pub node: NodeView,
    /// Every candidate node, by name.
    pub nodes: BTreeMap<String, NodeView>,
    /// The live speakers (the election's electorate).
    pub live: BTreeSet<String>,
    pub services: Vec<ServiceView>,
}

impl AnnounceInput {
    /// Marks the nodes whose speakers are drained (`oxlb drain`: this node's own state
    /// and what the others told): they stand in no Layer 2 election while a node that
    /// is not drained can answer ([`oxlb_announce::election`]).
    pub fn mark_drained(&mut self, drained: &BTreeSet<String>) {
        self.node.drained = drained.contains(&self.node.name);
        for (name, view) in &mut self.nodes {
            view.drained = drained.contains(name);
        }
    }

    /// This node's announcements under `config`.
    pub fn announce(&self, config: &Config) -> Announcements {
        oxlb_announce::announce(Input {
            config,
            node: &self.node,
            nodes: &self.nodes,
            live_speakers: &self.live,
            services: &self.services,
        })
    }

    /// [`AnnounceInput::announce`] with health checks (`oxlb.io/health-check`): a
    /// checked Service is announced by a node only while its check passes there.
    pub fn announce_checked(&self, config: &Config, health: &Health) -> Announcements {
        oxlb_announce::announce_checked(
            Input {
                config,
                node: &self.node,
                nodes: &self.nodes,
                live_speakers: &self.live,
                services: &self.services,
            },
            health,
        )
    }
}

impl AnnounceInput {
    /// Weighted ECMP: the Services whose prefixes a router would get with and without
    /// the link-bandwidth community, from what the other speakers told
    /// ([`crate::mixed_paths::told`]).
    pub fn mixed_paths(
        &self,
        config: &Config,
        health: &Health,
        told: &BTreeMap<String, oxlb_announce::mixed_paths::LinkBandwidth>,
    ) -> Vec<oxlb_announce::MixedPaths> {
        oxlb_announce::mixed_paths(
            Input {
                config,
                node: &self.node,
                nodes: &self.nodes,
                live_speakers: &self.live,
                services: &self.services,
            },
            health,
            told,
        )
    }
}

/// The pure step. `me`: this node's name. `live`: the speakers known alive; `None`:
/// no liveness source, every node known counts (and this one).
pub fn announce_input<'a>(
    source: Source,
    me: &str,
    assigned: impl IntoIterator<Item = Assigned<'a>>,
    slices: impl IntoIterator<Item = &'a SliceView>,
    nodes: impl IntoIterator<Item = &'a Node>,
    live: Option<&BTreeSet<String>>,
) -> AnnounceInput {
    // Grouped once: every Service then looks at its own slices only.
    let mut by_service: BTreeMap<&ServiceKey, Vec<&SliceView>> = BTreeMap::new();
    for slice in slices {
        if let Some(owner) = &slice.owner {
            by_service.entry(owner).or_default().push(slice);
        }
    }
    let services = assigned
        .into_iter()
        .filter(|a| !a.ips.is_empty())
        .map(|a| {
            let key = a.key;
            let mine = by_service.get(&key).into_iter().flatten().copied();
            let endpoints = match (views::endpoints_of(&key, mine), source) {
                (Endpoints::Unknown, Source::Cluster) => Endpoints::Known(Vec::new()),
                (endpoints, _) => endpoints,
            };
            ServiceView {
                endpoints,
                traffic_policy: a.traffic_policy,
                key,
                ips: a.ips.to_vec(),
                pool: a.pool.to_string(),
                labels: a.labels,
            }
        })
        .collect();
    let mut nodes: BTreeMap<String, NodeView> = nodes
        .into_iter()
        .map(views::node_view)
        .map(|v| (v.name.clone(), v))
        .collect();
    let node = nodes
        .get(me)
        .cloned()
        .unwrap_or_else(|| views::bare_node(me));
    let live = match live {
        Some(live) => live.clone(),
        None => nodes
            .keys()
            .cloned()
            .chain(std::iter::once(me.to_string()))
            .collect(),
    };
    if source == Source::Files {
        for name in &live {
            nodes
                .entry(name.clone())
                .or_insert_with(|| views::bare_node(name));
        }
    }
    AnnounceInput {
        node,
        nodes,
        live,
        services,
    }
}

#[cfg(test)]
#[path = "inputs_tests.rs"]
mod tests;
