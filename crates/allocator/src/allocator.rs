//! The allocator: which service holds which addresses, and how new ones are chosen.
//!
//! Free space lives per pool and family in a [`FamilySpace`] (intervals), so finding the
//! lowest free address is O(log n). Addresses in use are a `BTreeMap` from address to its
//! users; addresses that allow sharing are also indexed by sharing key, so a service
//! joining a shared address finds it without scanning the pool.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use oxlb_config::{Family, Pool};

use crate::error::{AllocError, FamilyLabel};
use crate::scope::{Scope, auto_pools, pinned_pools, pool_allows};
use crate::space::FamilySpace;
use crate::{ShareKey, Usage, Want};

#[derive(Debug, Clone)]
struct PoolState {
    /// Shared with every `Held` of this pool (a refcount, not a copy, per service).
    name: Arc<str>,
    pool: Pool,
    v4: Option<FamilySpace>,
    v6: Option<FamilySpace>,
    /// Addresses in use whose holders allow sharing, by (family, key), as indices.
    shared: BTreeMap<(Family, ShareKey), BTreeSet<u128>>,
}

impl PoolState {
    fn space(&self, family: Family) -> Option<&FamilySpace> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    fn space_mut(&mut self, family: Family) -> Option<&mut FamilySpace> {
        match family {
            Family::V4 => self.v4.as_mut(),
            Family::V6 => self.v6.as_mut(),
        }
    }

    fn index_of(&self, ip: &IpAddr) -> Option<u128> {
        self.space(Family::of(ip))?.index_of(ip)
    }
}

/// One address in use: the key every holder shares and who holds it (sorted; almost
/// always one, a handful when shared). The (protocol, port)s in use on it are the
/// holders' own (`Held::usage`), not copied here (issue 22: a list of them per
/// address with a holder each was 13 MB at 100,000 Services).
#[derive(Debug, Clone)]
struct IpUse {
    key: ShareKey,
    users: Vec<Arc<str>>,
}

/// The addresses a service holds: one or two (one per family), inline, so holding
/// them costs no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeldIps {
    ips: [IpAddr; 2],
    len: u8,
}

impl HeldIps {
    /// The first two of `ips` (a service never holds more: `assign` refuses them).
    fn new(ips: &[IpAddr]) -> HeldIps {
        let unspecified = IpAddr::from([0, 0, 0, 0]);
        let first = ips.first().copied().unwrap_or(unspecified);
        let second = ips.get(1).copied().unwrap_or(unspecified);
        HeldIps {
            ips: [first, second],
            len: u8::try_from(ips.len().min(2)).unwrap_or(2),
        }
    }
}

impl std::ops::Deref for HeldIps {
    type Target = [IpAddr];

    fn deref(&self) -> &[IpAddr] {
        &self.ips[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for HeldIps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What a service holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub pool: Arc<str>,
    /// IPv4 first when both families are held (MetalLB's order), else as requested.
    pub ips: HeldIps,
    pub usage: Usage,
}

/// Status counters of one pool (`IPAddressPool.status`) and the allocator metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounters {
    pub assigned_ipv4: u128,
    pub assigned_ipv6: u128,
    pub available_ipv4: u128,
    pub available_ipv6: u128,
}

impl PoolCounters {
    pub fn total_ipv4(&self) -> u128 {
        self.assigned_ipv4.saturating_add(self.available_ipv4)
    }

    pub fn total_ipv6(&self) -> u128 {
        self.assigned_ipv6.saturating_add(self.available_ipv6)
    }

    /// `metallb_allocator_addresses_total`.
    pub fn addresses_total(&self) -> u128 {
        self.total_ipv4().saturating_add(self.total_ipv6())
    }

    /// `metallb_allocator_addresses_in_use_total`.
    pub fn in_use_total(&self) -> u128 {
        self.assigned_ipv4.saturating_add(self.assigned_ipv6)
    }
}

/// The allocation state over one set of pools. Deterministic: the same calls in the same
/// order give the same addresses.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    pools: BTreeMap<String, PoolState>,
    config_pools: BTreeMap<String, Pool>,
    auto: Vec<Arc<str>>,
    /// Keys are shared with `IpUse::users` / `ports` (one allocation per service). A
    /// hash map: lookups by name are the hot path and nothing depends on its order.
    services: HashMap<Arc<str>, Held>,
    ips: BTreeMap<IpAddr, IpUse>,
}

impl Allocator {
    /// An allocator over `pools` with nothing assigned.
    pub fn new(pools: &BTreeMap<String, Pool>) -> Allocator {
        let states = pools
            .iter()
            .map(|(name, pool)| {
                let state = PoolState {
                    name: Arc::from(name.as_str()),
                    pool: pool.clone(),
                    v4: FamilySpace::new(Family::V4, &pool.ranges, pool.avoid_buggy_ips),
                    v6: FamilySpace::new(Family::V6, &pool.ranges, pool.avoid_buggy_ips),
                    shared: BTreeMap::new(),
                };
                (name.clone(), state)
            })
            .collect();
        Allocator {
            pools: states,
            config_pools: pools.clone(),
            auto: auto_pools(pools).into_iter().map(Arc::from).collect(),
            services: HashMap::new(),
            ips: BTreeMap::new(),
        }
    }

    pub fn pools(&self) -> &BTreeMap<String, Pool> {
        &self.config_pools
    }

    pub fn held(&self, service: &str) -> Option<&Held> {
        self.services.get(service)
    }

    /// Every service holding addresses, in no particular order.
    pub fn services(&self) -> impl Iterator<Item = (&str, &Held)> {
        self.services.iter().map(|(k, v)| (&**k, v))
    }

    /// Services holding `ip`, by key.
    pub fn users_of(&self, ip: &IpAddr) -> impl Iterator<Item = &str> {
        self.ips
            .get(ip)
            .into_iter()
            .flat_map(|u| u.users.iter().map(|s| &**s))
    }

    /// Status counters of `pool`; `None` for an unknown pool.
    pub fn counters(&self, pool: &str) -> Option<PoolCounters> {
        let state = self.pools.get(pool)?;
        let used = |s: &Option<FamilySpace>| s.as_ref().map_or(0, FamilySpace::used_count);
        let free = |s: &Option<FamilySpace>| s.as_ref().map_or(0, FamilySpace::free_count);
        Some(PoolCounters {
            assigned_ipv4: used(&state.v4),
            assigned_ipv6: used(&state.v6),
            available_ipv4: free(&state.v4),
            available_ipv6: free(&state.v6),
        })
    }

    /// Free intervals across all pools: the memory cost of the free space.
    pub fn free_intervals(&self) -> usize {
        self.pools
            .values()
            .flat_map(|p| [p.v4.as_ref(), p.v6.as_ref()])
            .flatten()
            .map(FamilySpace::intervals)
            .sum()
    }

    /// The pool whose usable addresses include `ip` (`avoidBuggyIPs` excludes .0/.255).
    pub fn pool_of(&self, ip: &IpAddr) -> Option<&str> {
        self.pools
            .iter()
            .find(|(_, state)| state.index_of(ip).is_some())
            .map(|(name, _)| name.as_str())
    }

    /// Gives `ips` to `service` (replacing what it held) if the configuration and the
    /// other holders allow it. Checks in MetalLB's order: pool, pool restrictions,
    /// dual-stack shape, sharing.
    pub fn assign(
        &mut self,
        service: &str,
        ips: &[IpAddr],
        usage: &Usage,
        scope: &Scope<'_>,
    ) -> Result<Arc<str>, AllocError> {
        let pool = self.single_pool_of(ips)?;
        if let Some(state) = self.pools.get(&*pool)
            && !pool_allows(&state.pool, scope)
        {
            return Err(AllocError::PoolNotCompatible(pool.to_string()));
        }
        match ips {
            [_, _, _, ..] => return Err(AllocError::MoreThanTwo(ips.to_vec())),
            [a, b] if Family::of(a) == Family::of(b) => {
                return Err(AllocError::SameFamily(*a, *b));
            }
            _ => {}
        }
        for ip in ips {
            self.check_sharing(service, ip, usage)?;
        }
        self.unassign(service);
        self.insert(service, &pool, ips, usage);
        Ok(pool)
    }

    /// Releases what `service` holds; returns it.
    pub fn unassign(&mut self, service: &str) -> Option<Held> {
        let held = self.services.remove(service)?;
        for ip in held.ips.iter() {
            let Some(entry) = self.ips.get_mut(ip) else {
                continue;
            };
            entry.users.retain(|u| &**u != service);
            if entry.users.is_empty() {
                let key = entry.key.clone();
                self.ips.remove(ip);
                if let Some(state) = self.pools.get_mut(&*held.pool)
                    && let Some(index) = state.index_of(ip)
                {
                    if let Some(set) = state.shared.get_mut(&(Family::of(ip), key.clone())) {
                        set.remove(&index);
                        if set.is_empty() {
                            state.shared.remove(&(Family::of(ip), key));
                        }
                    }
                    if let Some(space) = state.space_mut(Family::of(ip)) {
                        space.release(index);
                    }
                }
            }
        }
        Some(held)
    }

    /// Any suitable addresses: first the pools pinned to the service (by priority), then
    /// the `autoAssign` pools (by name); within a pool the lowest usable address.
    pub fn allocate(
        &mut self,
        service: &str,
        want: Want,
        usage: &Usage,
        scope: &Scope<'_>,
    ) -> Result<Vec<IpAddr>, AllocError> {
        if let Some(held) = self.services.get(service) {
            let ips = held.ips.to_vec();
            self.assign(service, &ips, usage, scope)?;
            return Ok(ips);
        }
        let pinned: Vec<Arc<str>> = pinned_pools(&self.config_pools, scope)
            .into_iter()
            .filter_map(|name| Some(self.pools.get(name)?.name.clone()))
            .collect();
        let found = self
            .best_pool(&pinned, service, want, usage)
            .or_else(|| self.best_pool(&self.auto, service, want, usage));
        let Some((pool, ips)) = found else {
            return Err(AllocError::NoAvailable);
        };
        self.insert(service, &pool, &ips, usage);
        Ok(ips)
    }

    /// Addresses from the named pool only (the `address-pool` annotation), which may be
    /// a pool with `autoAssign: false`.
    pub fn allocate_from_pool(
        &mut self,
        service: &str,
        pool: &str,
        want: Want,
        usage: &Usage,
        scope: &Scope<'_>,
    ) -> Result<Vec<IpAddr>, AllocError> {
        let Some(state) = self.pools.get(pool) else {
            return Err(AllocError::UnknownPool(pool.to_string()));
        };
        let choice = self.choose_in_pool(&state.name, service, want, usage);
        let Some(ips) = choice.and_then(|c| c.select(want)) else {
            return Err(AllocError::NoAvailableInPool {
                pool: pool.to_string(),
                family: want.label(),
            });
        };
        self.assign(service, &ips, usage, scope)?;
        Ok(ips)
    }

    /// PreferDualStack with one address: adds the missing family from the same pool,
    /// keeping the address already held.
    pub fn add_missing_family(
        &mut self,
        service: &str,
        usage: &Usage,
        scope: &Scope<'_>,
    ) -> Result<IpAddr, AllocError> {
        let Some(held) = self.services.get(service) else {
            return Err(AllocError::NoAvailable);
        };
        let [existing] = *held.ips else {
            return Err(AllocError::NoAvailable);
        };
        let pool = held.pool.clone();
        let missing = match Family::of(&existing) {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        };
        let Some(new_ip) = self.candidate(&pool, missing, service, usage) else {
            return Err(AllocError::NoAvailableInPool {
                pool: pool.to_string(),
                family: missing.into(),
            });
        };
        let ips = match missing {
            Family::V6 => [existing, new_ip],
            Family::V4 => [new_ip, existing],
        };
        self.assign(service, &ips, usage, scope)?;
        Ok(new_ip)
    }

    /// The one pool holding every address of `ips`.
    fn single_pool_of(&self, ips: &[IpAddr]) -> Result<Arc<str>, AllocError> {
        if let Some(outside) = ips.iter().find(|ip| self.pool_of(ip).is_none()) {
            return Err(AllocError::NotAllowed(vec![*outside]));
        }
        self.pools
            .values()
            .find(|state| ips.iter().all(|ip| state.index_of(ip).is_some()))
            .map(|state| state.name.clone())
            .ok_or_else(|| AllocError::NotAllowed(ips.to_vec()))
    }

    /// MetalLB's sharing rule for `service` on `ip`: every holder has the same non-empty
    /// sharing key and backend key (unless `service` is the only holder, which may
    /// change its key), and no (protocol, port) is used by another holder.
    fn check_sharing(&self, service: &str, ip: &IpAddr, usage: &Usage) -> Result<(), AllocError> {
        let Some(entry) = self.ips.get(ip) else {
            return Ok(());
        };
        if !entry.key.compatible(&usage.key) {
            let others: Vec<String> = entry
                .users
                .iter()
                .filter(|u| &***u != service)
                .map(|u| u.to_string())
                .collect();
            if !others.is_empty() {
                return Err(AllocError::SharingKeyInUse {
                    service: service.to_string(),
                    others,
                });
            }
        }
        for port in usage.ports.iter() {
            let in_use = entry
                .users
                .iter()
                .filter(|holder| &***holder != service)
                .filter_map(|holder| self.services.get(holder))
                .any(|held| held.usage.ports.contains(port));
            if in_use {
                return Err(AllocError::PortInUse {
                    port: port.clone(),
                    ip: *ip,
                });
            }
        }
        Ok(())
    }

    /// Records an assignment already checked.
    fn insert(&mut self, service: &str, pool: &Arc<str>, ips: &[IpAddr], usage: &Usage) {
        let key: Arc<str> = match self.services.get_key_value(service) {
            Some((existing, _)) => existing.clone(),
            None => Arc::from(service),
        };
        for ip in ips {
            let entry = self.ips.entry(*ip).or_insert_with(|| IpUse {
                key: usage.key.clone(),
                users: Vec::new(),
            });
            if entry.users.is_empty()
                && let Some(state) = self.pools.get_mut(&**pool)
                && let Some(index) = state.index_of(ip)
            {
                if let Some(space) = state.space_mut(Family::of(ip)) {
                    space.take(index);
                }
                if usage.key.allows_sharing() {
                    state
                        .shared
                        .entry((Family::of(ip), usage.key.clone()))
                        .or_default()
                        .insert(index);
                }
            }
            if let Err(at) = entry.users.binary_search(&key) {
                entry.users.reserve_exact(1);
                entry.users.insert(at, key.clone());
            }
        }
        self.services.insert(
            key,
            Held {
                pool: pool.clone(),
                ips: HeldIps::new(ips),
                usage: usage.clone(),
            },
        );
    }

    /// The lowest address of `family` in `pool` that `service` may take: the lowest free
    /// one, or a lower address already shared under the same key without a port clash.
    fn candidate(
        &self,
        pool: &str,
        family: Family,
        service: &str,
        usage: &Usage,
    ) -> Option<IpAddr> {
        let state = self.pools.get(pool)?;
        let space = state.space(family)?;
        let lowest_free = space.lowest_free();
        if usage.key.allows_sharing()
            && let Some(shared) = state.shared.get(&(family, usage.key.clone()))
        {
            for &index in shared {
                if lowest_free.is_some_and(|free| index > free) {
                    break;
                }
                let Some(ip) = space.ip_at(index) else {
                    continue;
                };
                if self.check_sharing(service, &ip, usage).is_ok() {
                    return Some(ip);
                }
            }
        }
        space.ip_at(lowest_free?)
    }

    fn choose_in_pool(
        &self,
        pool: &Arc<str>,
        service: &str,
        want: Want,
        usage: &Usage,
    ) -> Option<Choice> {
        let needs = |family: Family| match want {
            Want::Single(f) => f == family,
            Want::RequireDual | Want::PreferDual { .. } => true,
        };
        let pick = |family: Family| {
            needs(family)
                .then(|| self.candidate(pool, family, service, usage))
                .flatten()
        };
        Some(Choice {
            pool: pool.clone(),
            v4: pick(Family::V4),
            v6: pick(Family::V6),
        })
    }

    /// MetalLB's `findBestPoolForService`: the first pool that can serve every family
    /// wanted; for PreferDualStack, failing that, the first with the primary family, then
    /// the first with the other one.
    fn best_pool(
        &self,
        pools: &[Arc<str>],
        service: &str,
        want: Want,
        usage: &Usage,
    ) -> Option<(Arc<str>, Vec<IpAddr>)> {
        let mut primary_only: Option<(Arc<str>, Vec<IpAddr>)> = None;
        let mut secondary_only: Option<(Arc<str>, Vec<IpAddr>)> = None;
        for pool in pools {
            let Some(choice) = self.choose_in_pool(pool, service, want, usage) else {
                continue;
            };
            match want {
                Want::Single(family) => {
                    if let Some(ip) = choice.get(family) {
                        return Some((choice.pool, vec![ip]));
                    }
                }
                Want::RequireDual | Want::PreferDual { .. } => {
                    if let (Some(v4), Some(v6)) = (choice.v4, choice.v6) {
                        return Some((choice.pool, vec![v4, v6]));
                    }
                    if let Want::PreferDual { primary } = want {
                        let secondary = other(primary);
                        if primary_only.is_none()
                            && let Some(ip) = choice.get(primary)
                        {
                            primary_only = Some((choice.pool.clone(), vec![ip]));
                        }
                        if secondary_only.is_none()
                            && let Some(ip) = choice.get(secondary)
                        {
                            secondary_only = Some((choice.pool.clone(), vec![ip]));
                        }
                    }
                }
            }
        }
        primary_only.or(secondary_only)
    }
}

fn other(family: Family) -> Family {
    match family {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    }
}

/// The lowest usable address of each family in one pool.
struct Choice {
    pool: Arc<str>,
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
}

impl Choice {
    fn get(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }

    /// MetalLB's `selectIPsForFamilyAndPolicy`.
    fn select(&self, want: Want) -> Option<Vec<IpAddr>> {
        match want {
            Want::Single(family) => self.get(family).map(|ip| vec![ip]),
            Want::RequireDual => Some(vec![self.v4?, self.v6?]),
            Want::PreferDual { .. } => match (self.v4, self.v6) {
                (Some(a), Some(b)) => Some(vec![a, b]),
                (Some(a), None) | (None, Some(a)) => Some(vec![a]),
                (None, None) => None,
            },
        }
    }
}

impl Want {
    fn label(self) -> FamilyLabel {
        match self {
            Want::Single(family) => family.into(),
            Want::RequireDual | Want::PreferDual { .. } => FamilyLabel::Dual,
        }
    }
}
