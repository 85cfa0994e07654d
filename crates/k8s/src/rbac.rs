//! Every Kubernetes API call the controller makes, in one list. The RBAC rules in
//! `deploy/oxlb.yaml` and the Helm chart are generated from it (a test checks they are
//! equal), and the mock-API-server tests check that every request the code sends is
//! covered by it: least privilege, with nothing kept in sync by hand.

use std::collections::BTreeMap;

/// Where a permission applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// In every namespace (a ClusterRole).
    Cluster,
    /// Only in oxlb's own namespace (a Role there).
    OwnNamespace,
}

/// One resource and what the code does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub scope: Scope,
    /// API group, `""` for core.
    pub group: &'static str,
    /// Plural resource name, with `/status` for the status subresource.
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
}

const fn p(
    scope: Scope,
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
) -> Permission {
    Permission {
        scope,
        group,
        resource,
        verbs,
    }
}

const WATCH: &[&str] = &["list", "watch"];
const WATCH_PATCH: &[&str] = &["list", "patch", "watch"];

/// The controller's API calls.
pub const CONTROLLER: &[Permission] = &[
    // Reflectors; `get` re-reads a Service after a write conflict. No write to
    // Services themselves: the pool annotation goes with the ingress through
    // services/status (writer::write_service), as MetalLB's controller writes it.
    p(Scope::Cluster, "", "services", &["get", "list", "watch"]),
    p(Scope::Cluster, "", "services/status", &["patch"]),
    p(Scope::Cluster, "", "namespaces", WATCH),
    p(
        Scope::Cluster,
        "events.k8s.io",
        "events",
        &["create", "patch"],
    ),
    // Reads BGPPeer passwords; creates the memberlist Secret once.
    p(
        Scope::OwnNamespace,
        "",
        "secrets",
        &["list", "watch", "create"],
    ),
    p(Scope::OwnNamespace, "", "configmaps", WATCH),
    // Quarantine records each object's last valid spec on it (an annotation).
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "ipaddresspools",
        WATCH_PATCH,
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "ipaddresspools/status",
        &["patch"],
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "l2advertisements",
        WATCH_PATCH,
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "bgpadvertisements",
        WATCH_PATCH,
    ),
    p(Scope::OwnNamespace, "metallb.io", "bgppeers", WATCH_PATCH),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "bfdprofiles",
        WATCH_PATCH,
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "communities",
        WATCH_PATCH,
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "configurationstates",
        // list + watch: its own object only (field selector), to write it again when
        // deleted.
        &["get", "create", "patch", "list", "watch"],
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "configurationstates/status",
        &["patch"],
    ),
    // Leader election.
    p(
        Scope::OwnNamespace,
        "coordination.k8s.io",
        "leases",
        &["get", "list", "watch", "create", "update"],
    ),
];

/// The speaker's API calls (`oxlb speaker`, the DaemonSet): it reads what decides
/// announcements and writes the per-node status objects and `nodeAssigned` events.
pub const SPEAKER: &[Permission] = &[
    p(Scope::Cluster, "", "services", WATCH),
    // The shared caches watch Namespaces too (the controller's selectors need them).
    p(Scope::Cluster, "", "namespaces", WATCH),
    p(Scope::Cluster, "", "nodes", WATCH),
    p(Scope::Cluster, "discovery.k8s.io", "endpointslices", WATCH),
    p(
        Scope::Cluster,
        "events.k8s.io",
        "events",
        &["create", "patch"],
    ),
    p(Scope::OwnNamespace, "", "secrets", WATCH),
    p(Scope::OwnNamespace, "", "configmaps", WATCH),
    // Which speakers are alive (Layer 2 election).
    p(Scope::OwnNamespace, "", "pods", WATCH),
    p(Scope::OwnNamespace, "metallb.io", "ipaddresspools", WATCH),
    p(Scope::OwnNamespace, "metallb.io", "l2advertisements", WATCH),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "bgpadvertisements",
        WATCH,
    ),
    p(Scope::OwnNamespace, "metallb.io", "bgppeers", WATCH),
    p(Scope::OwnNamespace, "metallb.io", "bfdprofiles", WATCH),
    p(Scope::OwnNamespace, "metallb.io", "communities", WATCH),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "servicel2statuses",
        &["list", "watch", "create", "patch", "delete"],
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "servicel2statuses/status",
        &["patch"],
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "servicebgpstatuses",
        &["list", "watch", "create", "patch", "delete"],
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "servicebgpstatuses/status",
        &["patch"],
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "configurationstates",
        // list + watch: its own object only (field selector), to write it again when
        // deleted.
        &["get", "create", "patch", "list", "watch"],
    ),
    p(
        Scope::OwnNamespace,
        "metallb.io",
        "configurationstates/status",
        &["patch"],
    ),
];

/// RBAC `rules` for one scope: one rule per (group, verbs) listing its resources, in a
/// stable order, as JSON (the manifests' `rules:` value).
pub fn rules(permissions: &[Permission], scope: Scope) -> Vec<serde_json::Value> {
    let mut grouped: BTreeMap<(&str, Vec<&str>), Vec<&str>> = BTreeMap::new();
    for perm in permissions.iter().filter(|p| p.scope == scope) {
        let mut verbs = perm.verbs.to_vec();
        verbs.sort_unstable();
        grouped
            .entry((perm.group, verbs))
            .or_default()
            .push(perm.resource);
    }
    grouped
        .into_iter()
        .map(|((group, verbs), mut resources)| {
            resources.sort_unstable();
            serde_json::json!({
                "apiGroups": [group],
                "resources": resources,
                "verbs": verbs,
            })
        })
        .collect()
}

/// The verb an HTTP request stands for (RBAC's mapping: GET of a collection is list,
/// `?watch=true` is watch).
pub fn verb_of(method: &str, path: &str, query: &str, named: bool) -> &'static str {
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    match method {
        "GET" if watch => "watch",
        "GET" if named => "get",
        "GET" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => {
            let _ = path;
            "unknown"
        }
    }
}

/// A request path parsed into (group, namespace, resource incl. subresource, named).
pub fn parse_path(path: &str) -> Option<(String, Option<String>, String, bool)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => ((*group).to_string(), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, more @ ..] if !more.is_empty() => (Some((*ns).to_string()), more),
        _ => (None, rest),
    };
    match rest {
        [resource] => Some((group, namespace, (*resource).to_string(), false)),
        [resource, _name] => Some((group, namespace, (*resource).to_string(), true)),
        [resource, _name, sub] => Some((group, namespace, format!("{resource}/{sub}"), true)),
        _ => None,
    }
}

/// Whether `permissions` allow the request, for oxlb running in `own_namespace`.
pub fn allows(
    permissions: &[Permission],
    own_namespace: &str,
    method: &str,
    path: &str,
    query: &str,
) -> bool {
    let Some((group, namespace, resource, named)) = parse_path(path) else {
        return false;
    };
    let verb = verb_of(method, path, query, named);
    permissions.iter().any(|p| {
        p.group == group
            && p.resource == resource
            && p.verbs.contains(&verb)
            && match p.scope {
                Scope::Cluster => true,
                Scope::OwnNamespace => namespace.as_deref() == Some(own_namespace),
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_requests_to_rbac() {
        let ns = "metallb-system";
        assert!(allows(
            CONTROLLER,
            ns,
            "GET",
            "/api/v1/services",
            "watch=true&resourceVersion=1"
        ));
        assert!(allows(
            CONTROLLER,
            ns,
            "PATCH",
            "/api/v1/namespaces/a/services/s/status",
            ""
        ));
        assert!(!allows(
            CONTROLLER,
            ns,
            "PUT",
            "/api/v1/namespaces/a/services/s/status",
            ""
        ));
        assert!(allows(
            CONTROLLER,
            ns,
            "GET",
            "/api/v1/namespaces/metallb-system/secrets",
            ""
        ));
        assert!(!allows(
            CONTROLLER,
            ns,
            "GET",
            "/api/v1/namespaces/other/secrets",
            ""
        ));
        assert!(!allows(CONTROLLER, ns, "GET", "/api/v1/secrets", ""));
        assert!(allows(
            CONTROLLER,
            ns,
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/metallb-system/leases/oxlb-controller",
            ""
        ));
    }
}
