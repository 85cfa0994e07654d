//! What a reconcile produces, as data for the shells to write.

use std::collections::BTreeMap;
use std::net::IpAddr;

use oxlb_allocator::PoolCounters;

use crate::events::Event;

/// What the Service's managed fields should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    /// Another load balancer implementation's Service (other `loadBalancerClass`):
    /// leave its status and annotations alone.
    Unmanaged,
    /// `status.loadBalancer.ingress[].ip` (empty = clear the status) and the value of
    /// `metallb.io/ip-allocated-from-pool` (`None` = remove it). The shell also always
    /// removes `metallb.universe.tf/ip-allocated-from-pool`.
    Status {
        ingress: Vec<IpAddr>,
        pool: Option<String>,
    },
}

impl Desired {
    pub fn ingress(&self) -> &[IpAddr] {
        match self {
            Desired::Unmanaged => &[],
            Desired::Status { ingress, .. } => ingress,
        }
    }

    pub fn pool(&self) -> Option<&str> {
        match self {
            Desired::Unmanaged => None,
            Desired::Status { pool, .. } => pool.as_deref(),
        }
    }
}

/// One Service after a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOutcome {
    pub desired: Desired,
    /// The desired fields differ from what the Service currently carries: write them.
    pub needs_update: bool,
    /// Events to record, in order.
    pub events: Vec<Event>,
}

/// Everything a reconcile decided. `services` holds the Services that were looked at or
/// whose addresses changed (keyed `namespace/name`); `pools` every pool's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub services: BTreeMap<String, ServiceOutcome>,
    pub pools: BTreeMap<String, PoolCounters>,
}

/// `IPAddressPool.status` values, clamped to the CRD's int64 fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub assigned_ipv4: i64,
    pub assigned_ipv6: i64,
    pub available_ipv4: i64,
    pub available_ipv6: i64,
}

impl From<PoolCounters> for PoolStatus {
    fn from(c: PoolCounters) -> PoolStatus {
        let clamp = |v: u128| i64::try_from(v).unwrap_or(i64::MAX);
        PoolStatus {
            assigned_ipv4: clamp(c.assigned_ipv4),
            assigned_ipv6: clamp(c.assigned_ipv6),
            available_ipv4: clamp(c.available_ipv4),
            available_ipv6: clamp(c.available_ipv6),
        }
    }
}

/// Values of the allocator metrics for one pool (Prometheus gauges are f64; a /64 is
/// 1.8e19, fine as a float).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolMetrics {
    /// `metallb_allocator_addresses_total`
    pub addresses_total: f64,
    /// `metallb_allocator_addresses_in_use_total`
    pub addresses_in_use_total: f64,
    /// `metallb_allocator_ipv4_addresses_total`
    pub ipv4_addresses_total: f64,
    /// `metallb_allocator_ipv4_addresses_in_use_total`
    pub ipv4_addresses_in_use_total: f64,
    /// `metallb_allocator_ipv6_addresses_total`
    pub ipv6_addresses_total: f64,
    /// `metallb_allocator_ipv6_addresses_in_use_total`
    pub ipv6_addresses_in_use_total: f64,
}

impl From<PoolCounters> for PoolMetrics {
    #[allow(clippy::cast_precision_loss)]
    fn from(c: PoolCounters) -> PoolMetrics {
        PoolMetrics {
            addresses_total: c.addresses_total() as f64,
            addresses_in_use_total: c.in_use_total() as f64,
            ipv4_addresses_total: c.total_ipv4() as f64,
            ipv4_addresses_in_use_total: c.assigned_ipv4 as f64,
            ipv6_addresses_total: c.total_ipv6() as f64,
            ipv6_addresses_in_use_total: c.assigned_ipv6 as f64,
        }
    }
}
