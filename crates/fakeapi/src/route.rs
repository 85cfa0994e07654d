//! Request paths: which collection, namespace, object and subresource a path names,
//! and the kinds the fake knows.

use serde_json::Value;

/// Where a request goes: `/api/v1/namespaces/ns/services/name/status` is collection
/// `/api/v1/services`, namespace `ns`, name `name`, subresource `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub collection: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Route {
    /// `None` for anything that is not a resource path (`/version`, `/api`, `/apis/g`).
    pub fn parse(path: &str) -> Option<Route> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let prefix_len = match parts.first() {
            Some(&"api") => 2,
            Some(&"apis") => 3,
            _ => return None,
        };
        let prefix = parts.get(..prefix_len)?.join("/");
        let rest = parts.get(prefix_len..)?;
        let (namespace, rest) = match rest {
            ["namespaces", ns, more @ ..] if !more.is_empty() => (Some(ns.to_string()), more),
            _ => (None, rest),
        };
        let resource = rest.first().filter(|r| !r.is_empty())?;
        if rest.len() > 3 {
            return None;
        }
        Some(Route {
            collection: format!("/{prefix}/{resource}"),
            namespace,
            name: rest.get(1).map(|s| s.to_string()),
            sub: rest.get(2).map(|s| s.to_string()),
        })
    }

    pub fn key(&self, name: &str) -> (String, String) {
        (self.namespace.clone().unwrap_or_default(), name.to_string())
    }

    /// `services`, or `leases.coordination.k8s.io`: how the API server names the
    /// resource in its messages.
    pub fn resource(&self) -> String {
        let parts: Vec<&str> = self.collection.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["apis", group, _, plural] => format!("{plural}.{group}"),
            [.., plural] => plural.to_string(),
            [] => String::new(),
        }
    }
}

pub(crate) fn kind_of(collection: &str) -> (&'static str, &'static str) {
    match collection.rsplit('/').next().unwrap_or("") {
        "services" => ("v1", "Service"),
        "namespaces" => ("v1", "Namespace"),
        "secrets" => ("v1", "Secret"),
        "configmaps" => ("v1", "ConfigMap"),
        "pods" => ("v1", "Pod"),
        "nodes" => ("v1", "Node"),
        "ipaddresspools" => ("metallb.io/v1beta1", "IPAddressPool"),
        "l2advertisements" => ("metallb.io/v1beta1", "L2Advertisement"),
        "bgpadvertisements" => ("metallb.io/v1beta1", "BGPAdvertisement"),
        "bgppeers" => ("metallb.io/v1beta2", "BGPPeer"),
        "bfdprofiles" => ("metallb.io/v1beta1", "BFDProfile"),
        "communities" => ("metallb.io/v1beta1", "Community"),
        "configurationstates" => ("metallb.io/v1beta1", "ConfigurationState"),
        "servicel2statuses" => ("metallb.io/v1beta1", "ServiceL2Status"),
        "servicebgpstatuses" => ("metallb.io/v1beta1", "ServiceBGPStatus"),
        "leases" => ("coordination.k8s.io/v1", "Lease"),
        "endpointslices" => ("discovery.k8s.io/v1", "EndpointSlice"),
        "events" => ("events.k8s.io/v1", "Event"),
        "customresourcedefinitions" => ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        _ => ("v1", "Unknown"),
    }
}

/// The collection path of an object given as JSON. Panics on a kind the fake does not
/// know: a mistake in the test that seeds it, not input from the system under test.
#[allow(clippy::panic)]
pub fn collection_of(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let kind = object["kind"].as_str().unwrap_or("");
    let plural = match kind {
        "Service" => "services",
        "Namespace" => "namespaces",
        "Secret" => "secrets",
        "ConfigMap" => "configmaps",
        "Pod" => "pods",
        "Node" => "nodes",
        "IPAddressPool" => "ipaddresspools",
        "L2Advertisement" => "l2advertisements",
        "BGPAdvertisement" => "bgpadvertisements",
        "BGPPeer" => "bgppeers",
        "BFDProfile" => "bfdprofiles",
        "Community" => "communities",
        "ConfigurationState" => "configurationstates",
        "ServiceL2Status" => "servicel2statuses",
        "ServiceBGPStatus" => "servicebgpstatuses",
        "Lease" => "leases",
        "EndpointSlice" => "endpointslices",
        "CustomResourceDefinition" => "customresourcedefinitions",
        other => panic!("unknown kind {other}"),
    };
    if api_version.contains('/') {
        format!("/apis/{api_version}/{plural}")
    } else {
        format!("/api/{api_version}/{plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = Route::parse("/api/v1/namespaces/ns/services/name/status").unwrap();
        assert_eq!(r.collection, "/api/v1/services");
        assert_eq!(r.namespace.as_deref(), Some("ns"));
        assert_eq!(r.name.as_deref(), Some("name"));
        assert_eq!(r.sub.as_deref(), Some("status"));
        let r = Route::parse("/api/v1/namespaces/ns").unwrap();
        assert_eq!(
            (r.collection.as_str(), r.name.as_deref()),
            ("/api/v1/namespaces", Some("ns"))
        );
        let r = Route::parse("/apis/coordination.k8s.io/v1/namespaces/m/leases").unwrap();
        assert_eq!(r.resource(), "leases.coordination.k8s.io");
        assert_eq!(r.namespace.as_deref(), Some("m"));
        for bad in ["/version", "/api", "/apis", "/apis/g/v1", "/", "/x/y/z"] {
            assert_eq!(Route::parse(bad), None, "{bad}");
        }
    }
}
