//! The controller's cache entry for a Service: the core's compact view (shared with
//! the core, one copy between them) and the little the writes need besides — the
//! resourceVersion a write is decided from and the uid events name. Nothing else of
//! the object is kept (issue 22: at 100,000 Services kube's store of whole objects
//! was 500 MB).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use oxlb_controller::service::ServiceView;

#[derive(Debug, Clone, PartialEq)]
pub struct CachedService {
    pub view: Arc<ServiceView>,
    pub resource_version: Option<String>,
    pub uid: Option<String>,
}

impl CachedService {
    pub fn from_service(service: &Service) -> CachedService {
        CachedService {
            view: Arc::new(ServiceView::from_service(service)),
            resource_version: service.metadata.resource_version.clone(),
            uid: service.metadata.uid.clone(),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> &str {
        &self.view.key
    }

    pub fn namespace(&self) -> &str {
        self.view.namespace()
    }

    pub fn name(&self) -> &str {
        let key = self.key();
        key.strip_prefix(self.namespace())
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(key)
    }

    /// What events about this Service name, as `Resource::object_ref` makes it: no
    /// resourceVersion, so the event recorder folds repeats on one Service into one
    /// series across its versions.
    pub fn object_ref(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Service".to_string()),
            name: Some(self.name().to_string()),
            namespace: Some(self.namespace().to_string()),
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

    #[test]
    fn events_name_the_service_as_kube_would() {
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "42"},
            "spec": {"type": "LoadBalancer"},
        }))
        .unwrap_or_default();
        let cached = CachedService::from_service(&service);
        assert_eq!(cached.key(), "shop/web");
        assert_eq!(cached.name(), "web");
        assert_eq!(cached.object_ref(), service.object_ref(&()));
    }
}
