//! Builders for Services, Namespaces and pools, and a harness that plays the shell
//! (writes the desired status back and checks that this changes nothing more).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Namespace, Service, ServicePort, ServiceSpec,
    ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use oxlb_config::{AddressRange, Config, LabelSelector, Pool, ServiceAllocation};
use oxlb_controller::{Change, Controller, Desired, Outcome, POOL_ANNOTATION};

pub fn range(text: &str) -> AddressRange {
    match text.split_once('-') {
        Some((a, b)) => AddressRange::new(a.trim().parse().unwrap(), b.trim().parse().unwrap())
            .expect("valid range"),
        None => AddressRange::from_cidr(text.parse().unwrap()),
    }
}

pub struct PoolBuilder(pub Pool);

pub fn pool(name: &str, addresses: &[&str]) -> PoolBuilder {
    let mut ranges: Vec<AddressRange> = addresses.iter().map(|a| range(a)).collect();
    ranges.sort();
    PoolBuilder(Pool {
        name: name.to_string(),
        ranges,
        addresses_as_written: addresses.iter().map(|a| a.to_string()).collect(),
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
        labels: BTreeMap::new(),
    })
}

impl PoolBuilder {
    pub fn manual(mut self) -> Self {
        self.0.auto_assign = false;
        self
    }
    pub fn buggy(mut self) -> Self {
        self.0.avoid_buggy_ips = true;
        self
    }
    fn alloc(&mut self) -> &mut ServiceAllocation {
        self.0
            .service_allocation
            .get_or_insert_with(Default::default)
    }
    pub fn priority(mut self, p: u32) -> Self {
        self.alloc().priority = p;
        self
    }
    pub fn namespaces(mut self, ns: &[&str]) -> Self {
        self.alloc().namespaces = ns.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn ns_selector(mut self, k: &str, v: &str) -> Self {
        self.alloc().namespace_selectors.push(selector(k, v));
        self
    }
    pub fn svc_selector(mut self, k: &str, v: &str) -> Self {
        self.alloc().service_selectors.push(selector(k, v));
        self
    }
}

fn selector(k: &str, v: &str) -> LabelSelector {
    LabelSelector {
        match_labels: [(k.to_string(), v.to_string())].into(),
        match_expressions: vec![],
    }
}

pub fn config(pools: Vec<PoolBuilder>) -> Config {
    Config {
        pools: pools.into_iter().map(|p| (p.0.name.clone(), p.0)).collect(),
        ..Config::default()
    }
}

pub struct Svc(pub Service);

/// A LoadBalancer Service `ns/name` with no ports.
pub fn svc(key: &str) -> Svc {
    let (ns, name) = key.split_once('/').unwrap_or(("default", key));
    Svc(Service {
        metadata: ObjectMeta {
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".to_string()),
            ..Default::default()
        }),
        status: None,
    })
}

impl Svc {
    fn spec(&mut self) -> &mut ServiceSpec {
        self.0.spec.get_or_insert_with(Default::default)
    }
    pub fn ann(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(k.to_string(), v.to_string());
        self
    }
    pub fn ips(self, v: &str) -> Self {
        self.ann("metallb.io/loadBalancerIPs", v)
    }
    pub fn in_pool(self, p: &str) -> Self {
        self.ann("metallb.io/address-pool", p)
    }
    pub fn share(self, k: &str) -> Self {
        self.ann("metallb.io/allow-shared-ip", k)
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.to_string(), v.to_string());
        self
    }
    pub fn lb_ip(mut self, ip: &str) -> Self {
        self.spec().load_balancer_ip = Some(ip.to_string());
        self
    }
    pub fn families(mut self, f: &[&str]) -> Self {
        self.spec().ip_families = Some(f.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn cluster_ips(mut self, ips: &[&str]) -> Self {
        self.spec().cluster_ips = Some(ips.iter().map(|s| s.to_string()).collect());
        self.spec().cluster_ip = ips.first().map(|s| s.to_string());
        self
    }
    pub fn policy(mut self, p: &str) -> Self {
        self.spec().ip_family_policy = Some(p.to_string());
        self
    }
    pub fn v6(self) -> Self {
        self.families(&["IPv6"])
    }
    pub fn dual(self) -> Self {
        self.families(&["IPv4", "IPv6"]).policy("RequireDualStack")
    }
    pub fn prefer_dual(self) -> Self {
        self.families(&["IPv4", "IPv6"]).policy("PreferDualStack")
    }
    pub fn port(mut self, proto: &str, port: i32) -> Self {
        self.spec()
            .ports
            .get_or_insert_with(Default::default)
            .push(ServicePort {
                protocol: Some(proto.to_string()),
                port,
                ..Default::default()
            });
        self
    }
    pub fn tcp(self, port: i32) -> Self {
        self.port("TCP", port)
    }
    pub fn local(mut self, selector: &[(&str, &str)]) -> Self {
        self.spec().external_traffic_policy = Some("Local".to_string());
        self.spec().selector = Some(
            selector
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }
    pub fn cluster(mut self) -> Self {
        self.spec().external_traffic_policy = Some("Cluster".to_string());
        self
    }
    pub fn kind(mut self, t: &str) -> Self {
        self.spec().type_ = Some(t.to_string());
        self
    }
    pub fn class(mut self, c: &str) -> Self {
        self.spec().load_balancer_class = Some(c.to_string());
        self
    }
    pub fn status(mut self, ips: &[&str]) -> Self {
        self.0.status = Some(status_of(ips.iter().map(|s| s.parse().unwrap())));
        self
    }
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.0.metadata.namespace.as_deref().unwrap_or(""),
            self.0.metadata.name.as_deref().unwrap_or("")
        )
    }
}

fn status_of(ips: impl Iterator<Item = IpAddr>) -> ServiceStatus {
    ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(
                ips.map(|ip| LoadBalancerIngress {
                    ip: Some(ip.to_string()),
                    ..Default::default()
                })
                .collect(),
            ),
        }),
        ..Default::default()
    }
}

pub fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The Service as the shell would write it back.
pub fn written(service: &Service, desired: &Desired) -> Service {
    let mut service = service.clone();
    if let Desired::Status { ingress, pool } = desired {
        service.status = Some(status_of(ingress.iter().copied()));
        let annotations = service
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        annotations.remove("metallb.universe.tf/ip-allocated-from-pool");
        match pool {
            Some(p) => annotations.insert(POOL_ANNOTATION.to_string(), p.clone()),
            None => annotations.remove(POOL_ANNOTATION),
        };
    }
    service
}

/// A controller plus the cluster's current objects, playing the shell.
pub struct Cluster {
    pub controller: Controller,
    pub services: BTreeMap<String, Service>,
    pub namespaces: Vec<Namespace>,
}

impl Cluster {
    pub fn new(config: Config) -> Cluster {
        Cluster::with_class(config, None)
    }

    pub fn with_class(config: Config, class: Option<&str>) -> Cluster {
        Cluster {
            controller: Controller::new(config, class.map(str::to_string)),
            services: BTreeMap::new(),
            namespaces: Vec::new(),
        }
    }

    /// Applies changes, writes back what the outcome asks, and checks that the write-back
    /// is quiet (no events, nothing more to write). Returns the first outcome.
    pub fn apply(&mut self, changes: Vec<Change>) -> Outcome {
        for change in &changes {
            match change {
                Change::UpsertService(s) => {
                    let s = Svc((**s).clone());
                    self.services.insert(s.key(), s.0);
                }
                Change::DeleteService { namespace, name } => {
                    self.services.remove(&format!("{namespace}/{name}"));
                }
                _ => {}
            }
        }
        let outcome = self.controller.apply(changes);
        self.write_back(&outcome);
        outcome
    }

    pub fn sync(&mut self, services: Vec<Svc>) -> Outcome {
        self.services = services.into_iter().map(|s| (s.key(), s.0)).collect();
        let list: Vec<Service> = self.services.values().cloned().collect();
        let outcome = self.controller.sync(&list, &self.namespaces.clone());
        self.write_back(&outcome);
        outcome
    }

    pub fn upsert(&mut self, s: Svc) -> Outcome {
        self.apply(vec![Change::UpsertService(std::sync::Arc::new(s.0))])
    }

    pub fn delete(&mut self, key: &str) -> Outcome {
        let (namespace, name) = key.split_once('/').unwrap();
        self.apply(vec![Change::DeleteService {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }])
    }

    pub fn set_config(&mut self, config: Config) -> Outcome {
        self.apply(vec![Change::SetConfig(Box::new(config))])
    }

    fn write_back(&mut self, outcome: &Outcome) {
        let mut writes = Vec::new();
        let mut written_keys = BTreeSet::new();
        for (key, result) in &outcome.services {
            if result.needs_update
                && let Some(current) = self.services.get(key)
            {
                let updated = written(current, &result.desired);
                self.services.insert(key.clone(), updated.clone());
                writes.push(Change::UpsertService(std::sync::Arc::new(updated)));
                written_keys.insert(key.clone());
            }
        }
        if writes.is_empty() {
            return;
        }
        // Other pending Services may legitimately report a new failure reason here
        // (an address they wanted was just taken); the written ones must be quiet.
        let echo = self.controller.apply(writes);
        for (key, result) in echo
            .services
            .iter()
            .filter(|(k, _)| written_keys.contains(*k))
        {
            assert!(
                result.events.is_empty() && !result.needs_update,
                "writing back {key} was not quiet: {result:?}"
            );
        }
    }

    /// A fresh controller fed every Service with its status: nothing may move.
    pub fn restart_check(&self) {
        let mut fresh = Controller::new(self.controller.config().clone(), None);
        let list: Vec<Service> = self.services.values().cloned().collect();
        fresh.sync(&list, &self.namespaces);
        let before: BTreeMap<String, Desired> = self.controller.all_desired();
        for (key, desired) in &before {
            if !desired.ingress().is_empty() {
                assert_eq!(
                    fresh.desired(key).as_ref(),
                    Some(desired),
                    "restart moved {key}"
                );
            }
        }
    }

    pub fn ingress(&self, key: &str) -> Vec<String> {
        self.controller
            .desired(key)
            .map(|d| d.ingress().iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    pub fn pool_of(&self, key: &str) -> Option<String> {
        self.controller
            .desired(key)
            .and_then(|d| d.pool().map(str::to_string))
    }
}

/// Every IP held, with its holders (for invariants).
pub fn holders(controller: &Controller) -> BTreeMap<IpAddr, BTreeSet<String>> {
    let mut map: BTreeMap<IpAddr, BTreeSet<String>> = BTreeMap::new();
    for (key, desired) in controller.all_desired() {
        for ip in desired.ingress() {
            map.entry(*ip).or_default().insert(key.clone());
        }
    }
    map
}
