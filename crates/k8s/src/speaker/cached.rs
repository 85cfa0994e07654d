//! The speaker's cache entry for a Service: what the speaker reads of it and nothing
//! else (issue 22: 10,000 Services were 25 MB as objects; even a k8s-openapi Service
//! with every unread field empty is an 824-byte struct plus a B-tree node per map).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use oxlb_announce::{ServiceKey, TrafficPolicy};
use oxlb_config::StringMap;
use oxlb_node::inputs::Assigned;
use oxlb_node::views;

/// The annotations the speaker reads: MetalLB's (the pool the controller wrote) and
/// oxlb's (health checks: an unknown `oxlb.io/` key is reported, so all are kept).
const READ_ANNOTATIONS: [&str; 3] = ["metallb.io/", "metallb.universe.tf/", "oxlb.io/"];
const OXLB_ANNOTATIONS: &str = "oxlb.io/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerService {
    pub key: ServiceKey,
    /// For the events about it.
    pub uid: Option<String>,
    /// For the advertisements' Service selectors.
    pub labels: StringMap,
    /// Only those of [`READ_ANNOTATIONS`].
    pub annotations: StringMap,
    pub load_balancer: bool,
    pub class: Option<String>,
    pub traffic_policy: TrafficPolicy,
    /// `status.loadBalancer.ingress[].ip`.
    pub ingress: Vec<IpAddr>,
}

impl SpeakerService {
    pub fn from_service(service: &Service) -> SpeakerService {
        let meta = &service.metadata;
        let spec = service.spec.as_ref();
        SpeakerService {
            key: views::service_key(service),
            uid: meta.uid.clone(),
            labels: meta.labels.iter().flatten().collect(),
            annotations: meta
                .annotations
                .iter()
                .flatten()
                .filter(|(k, _)| READ_ANNOTATIONS.iter().any(|p| k.starts_with(p)))
                .collect(),
            load_balancer: spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"),
            class: spec.and_then(|s| s.load_balancer_class.clone()),
            traffic_policy: views::traffic_policy(service),
            ingress: service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.as_deref()?.parse().ok())
                .collect(),
        }
    }

    /// The addresses it holds by its status, for this speaker's class: a
    /// `LoadBalancer` Service of `lb_class` with at least one ingress IP, and its pool
    /// from the controller's annotation.
    pub fn held(&self, lb_class: Option<&str>) -> Option<(&[IpAddr], &str)> {
        if !self.load_balancer || self.class.as_deref() != lb_class || self.ingress.is_empty() {
            return None;
        }
        let pool = self
            .annotations
            .get(oxlb_controller::POOL_ANNOTATION)
            .unwrap_or_default();
        Some((&self.ingress, pool))
    }

    /// What the announce decision reads of it, when it holds addresses.
    pub fn assigned(&self, lb_class: Option<&str>) -> Option<Assigned<'_>> {
        let (ips, pool) = self.held(lb_class)?;
        Some(Assigned {
            key: self.key.clone(),
            traffic_policy: self.traffic_policy,
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ips,
            pool,
        })
    }

    /// Its annotations for the health checks, if it has any of oxlb's (the checks
    /// read nothing else; a Service without them has none).
    pub fn health_annotations(
        &self,
    ) -> Option<(ServiceKey, Cow<'static, BTreeMap<String, String>>)> {
        if !self
            .annotations
            .keys()
            .any(|k| k.starts_with(OXLB_ANNOTATIONS))
        {
            return None;
        }
        let map = self
            .annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some((self.key.clone(), Cow::Owned(map)))
    }

    /// What events about this Service name, as `Resource::object_ref` makes it.
    pub fn object_ref(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Service".to_string()),
            name: Some(self.key.name.clone()),
            namespace: Some(self.key.namespace.clone()),
            uid: self.uid.clone(),
            ..ObjectReference::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::Resource;
    use serde_json::json;

    use super::*;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn holds_its_status_addresses_for_its_class_only() {
        let s = service(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1",
                "labels": {"app": "web"},
                "annotations": {"metallb.io/ip-allocated-from-pool": "p1",
                    "oxlb.io/health-check": "tcp:80", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}, {"hostname": "x"}]}},
        }));
        let cached = SpeakerService::from_service(&s);
        let ip: IpAddr = "192.0.2.7".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cached.held(None), Some((&[ip][..], "p1")));
        assert_eq!(cached.held(Some("other")), None);
        let assigned = cached.assigned(None).unwrap_or_else(|| panic!("held"));
        assert_eq!(assigned.traffic_policy, TrafficPolicy::Local);
        assert_eq!(assigned.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(cached.annotations.len(), 2, "kubectl's copy is not kept");
        let (key, annotations) = cached
            .health_annotations()
            .unwrap_or_else(|| panic!("has one"));
        assert_eq!(key.to_string(), "shop/web");
        assert!(annotations.contains_key("oxlb.io/health-check"));
        assert_eq!(cached.object_ref(), s.object_ref(&()));

        let plain = service(json!({"metadata": {"name": "a", "namespace": "n"},
            "spec": {"type": "ClusterIP"}}));
        let cached = SpeakerService::from_service(&plain);
        assert_eq!(cached.held(None), None);
        assert!(cached.health_annotations().is_none());
    }
}
