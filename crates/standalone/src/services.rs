//! The Services from the files, kept between reloads as compact views rather than as
//! the parsed objects (issue 22: a parsed k8s Service is about 1.5 KB; 10,000 of them
//! were 16 MB of the 52 MB `oxlb run` held). Each is projected once, when the files are
//! loaded, and the object dropped; the controller's view is shared with the controller
//! core, not copied.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use oxlb_announce::{ServiceKey, TrafficPolicy};
use oxlb_config::snapshot::Snapshot;
use oxlb_controller::service::ServiceView;

use crate::state::HeldAssignment;

/// What planning reads from one Service of the files.
#[derive(Debug, Clone)]
pub struct FileService {
    /// The controller's view: as written, or with the IPs this host held at the last
    /// plan ([`FileService::view_with`]); the controller keeps this same allocation.
    view: Arc<ServiceView>,
    /// `status.loadBalancer.ingress` and the pool annotation as the file has them (a
    /// status exported from a cluster running MetalLB), for when nothing is held.
    written_status: Box<[IpAddr]>,
    written_pool: Option<Box<str>>,
    traffic_policy: TrafficPolicy,
    /// The `oxlb.io/health-check*` annotations; empty (no allocation) for a Service
    /// without a check, as most are.
    health_annotations: BTreeMap<String, String>,
}

/// The namespace and name of a Service's view (its key is `namespace/name`).
pub fn service_key(view: &ServiceView) -> ServiceKey {
    ServiceKey {
        namespace: view.namespace().to_string(),
        name: view
            .key
            .get(view.namespace().len() + 1..)
            .unwrap_or_default()
            .to_string(),
    }
}

impl FileService {
    /// A Service as loaded. One written without a namespace is in `default`, as
    /// `kubectl apply` would put it.
    pub fn from_object(mut service: Service) -> FileService {
        service
            .metadata
            .namespace
            .get_or_insert_with(|| "default".to_string());
        let view = ServiceView::from_service(&service);
        let health: BTreeMap<String, String> = service
            .metadata
            .annotations
            .take()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(oxlb_health_prefix()))
            .collect();
        FileService {
            written_status: view.status_ips.clone(),
            written_pool: view.status_pool().map(Box::from),
            traffic_policy: oxlb_node::views::traffic_policy(&service),
            health_annotations: health,
            view: Arc::new(view),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> &Arc<str> {
        &self.view.key
    }

    pub fn service_key(&self) -> ServiceKey {
        service_key(&self.view)
    }

    /// The controller's view, shared (the status report's rows derive from it).
    pub fn shared_view(&self) -> Arc<ServiceView> {
        Arc::clone(&self.view)
    }

    pub fn traffic_policy(&self) -> TrafficPolicy {
        self.traffic_policy
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.view
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `None` for a Service without a check.
    pub fn health_annotations(&self) -> Option<&BTreeMap<String, String>> {
        (!self.health_annotations.is_empty()).then_some(&self.health_annotations)
    }

    /// The controller's view with what this host held (`None`: the status as written):
    /// the same view as the object given that status would make, without a copy when
    /// it did not change since the last plan.
    pub fn view_with(&mut self, held: Option<&HeldAssignment>) -> Arc<ServiceView> {
        let (ips, pool) = match held {
            Some(held) => (held.ips.as_slice(), Some(held.pool.as_str())),
            None => (&*self.written_status, self.written_pool.as_deref()),
        };
        if *self.view.status_ips != *ips || self.view.status_pool() != pool {
            self.view = Arc::new(self.view.with_status(ips, pool));
        }
        Arc::clone(&self.view)
    }
}

/// The prefix of oxlb's own health-check annotations.
fn oxlb_health_prefix() -> &'static str {
    "oxlb.io/health-check"
}

/// Takes the Services out of `snapshot` (which then holds none), projecting each and
/// dropping its object before the next, so the peak holds one copy of the list.
pub fn take_services(snapshot: &mut Snapshot) -> Vec<FileService> {
    let objects = std::mem::take(&mut snapshot.services);
    // A new list of its own size: `collect` would reuse the objects' buffer in place
    // (9 MB for 10,000 Services, 15 times the views' size) for as long as the list lives.
    let mut services = Vec::with_capacity(objects.len());
    services.extend(
        objects
            .into_iter()
            .map(|s| FileService::from_object(s.object)),
    );
    services
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;

    fn service(namespace: Option<&str>, annotations: &[(&str, &str)]) -> Service {
        let mut service = Service::default();
        service.metadata.namespace = namespace.map(String::from);
        service.metadata.name = Some("web".into());
        service.metadata.labels = Some(BTreeMap::from([("app".into(), "web".into())]));
        service.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        service.spec = Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            external_traffic_policy: Some("Local".into()),
            ..Default::default()
        });
        service
    }

    #[test]
    fn keeps_what_planning_reads() {
        let file = FileService::from_object(service(
            None,
            &[
                ("oxlb.io/health-check", "tcp://:80"),
                ("metallb.io/address-pool", "a"),
                ("other/x", "y"),
            ],
        ));
        assert_eq!(&**file.key(), "default/web");
        assert_eq!(file.service_key().to_string(), "default/web");
        assert_eq!(file.traffic_policy(), TrafficPolicy::Local);
        assert_eq!(
            file.labels(),
            BTreeMap::from([("app".into(), "web".into())])
        );
        assert_eq!(
            file.health_annotations(),
            Some(&BTreeMap::from([(
                "oxlb.io/health-check".into(),
                "tcp://:80".into()
            )]))
        );
        let plain = FileService::from_object(service(Some("shop"), &[]));
        assert_eq!(plain.health_annotations(), None);
        assert_eq!(plain.service_key().to_string(), "shop/web");
    }

    /// The held IPs are given as a status; the same holding shares the view; none
    /// gives the file's own status back.
    #[test]
    fn view_with_gives_the_held_status_and_shares_an_unchanged_view() {
        let mut file = FileService::from_object(service(Some("shop"), &[]));
        let written = file.view_with(None);
        assert!(written.status_ips.is_empty());
        let held = HeldAssignment {
            ips: vec!["10.0.0.1".parse().unwrap()],
            pool: "a".into(),
        };
        let first = file.view_with(Some(&held));
        assert_eq!(&*first.status_ips, held.ips.as_slice());
        assert_eq!(first.status_pool(), Some("a"));
        let again = file.view_with(Some(&held));
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(file.view_with(None), written);
    }

    /// The list is sized for the views, not left in the parsed objects' buffer.
    #[test]
    fn take_services_empties_the_snapshot_into_a_list_of_its_own_size() {
        let mut snapshot = Snapshot::new("metallb-system");
        for _ in 0..5 {
            snapshot.services.push(oxlb_config::snapshot::Sourced::new(
                service(Some("shop"), &[]),
                Default::default(),
            ));
        }
        let services = take_services(&mut snapshot);
        assert!(snapshot.services.is_empty());
        assert_eq!(services.len(), 5);
        assert_eq!(services.capacity(), 5);
    }
}
