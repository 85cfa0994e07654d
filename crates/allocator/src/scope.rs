//! Which pools a service may draw from (`serviceAllocation`) and in which order.

use std::collections::BTreeMap;

use std::sync::LazyLock;

use oxlb_config::{Pool, StringMap, selector::any_matches};

type Labels = BTreeMap<String, String>;

static NO_LABELS: Labels = BTreeMap::new();
static NO_SERVICE_LABELS: LazyLock<StringMap> = LazyLock::new(StringMap::default);

/// What `serviceAllocation` looks at: the service's namespace, its labels and the labels
/// of its namespace (for `namespaceSelectors`).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub namespace: &'a str,
    pub service_labels: &'a StringMap,
    pub namespace_labels: &'a Labels,
}

impl<'a> Scope<'a> {
    /// A service in `namespace` with no labels (tests, benchmarks).
    pub fn plain(namespace: &'a str) -> Scope<'a> {
        Scope {
            namespace,
            service_labels: &NO_SERVICE_LABELS,
            namespace_labels: &NO_LABELS,
        }
    }
}

/// May a service in `scope` hold addresses of `pool` at all? A pool without
/// `serviceAllocation` is open to all. With it: when `namespaces` or
/// `namespaceSelectors` are given the namespace must be listed or selected, and when
/// `serviceSelectors` are given one must match the service's labels.
pub fn pool_allows(pool: &Pool, scope: &Scope<'_>) -> bool {
    let Some(allocation) = &pool.service_allocation else {
        return true;
    };
    let namespace_ok = (allocation.namespaces.is_empty()
        && allocation.namespace_selectors.is_empty())
        || allocation.namespaces.contains(scope.namespace)
        || (!allocation.namespace_selectors.is_empty()
            && any_matches(&allocation.namespace_selectors, scope.namespace_labels));
    namespace_ok && any_matches(&allocation.service_selectors, scope.service_labels)
}

/// Pools pinned to this service (`serviceAllocation` matching it, `autoAssign` on), in
/// MetalLB's order: lower priority number first, 0 (unset) last; ties by name so every
/// host picks the same pool.
pub fn pinned_pools<'p>(pools: &'p BTreeMap<String, Pool>, scope: &Scope<'_>) -> Vec<&'p str> {
    let mut pinned: Vec<(u32, &str)> = pools
        .iter()
        .filter(|(_, p)| p.auto_assign && p.service_allocation.is_some() && pool_allows(p, scope))
        .map(|(name, p)| {
            let priority = p.service_allocation.as_ref().map_or(0, |a| a.priority);
            // 0 sorts after every explicit priority.
            let rank = if priority == 0 {
                u32::MAX
            } else {
                priority - 1
            };
            (rank, name.as_str())
        })
        .collect();
    pinned.sort();
    pinned.into_iter().map(|(_, name)| name).collect()
}

/// Pools any service may be given without asking: `autoAssign` and no
/// `serviceAllocation` (a pinned pool serves only what it is pinned to), by name.
pub fn auto_pools(pools: &BTreeMap<String, Pool>) -> Vec<String> {
    pools
        .iter()
        .filter(|(_, p)| p.auto_assign && p.service_allocation.is_none())
        .map(|(name, _)| name.clone())
        .collect()
}
