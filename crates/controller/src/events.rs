//! Events for a Service, worded exactly as MetalLB words them.

use std::fmt;
use std::net::IpAddr;

use oxlb_allocator::QuotedList;

/// Kubernetes event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Event reasons (the `reason` field), MetalLB's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventReason {
    IpAllocated,
    AllocationFailed,
    ClearAssignment,
    LoadBalancerFailed,
    AdditionalAssignFailed,
    NotEnoughClusterIps,
    DeprecatedAnnotation,
    /// oxlb's own: more LoadBalancer Services than the configured limit.
    ServiceLimitExceeded,
}

impl EventReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EventReason::IpAllocated => "IPAllocated",
            EventReason::AllocationFailed => "AllocationFailed",
            EventReason::ClearAssignment => "ClearAssignment",
            EventReason::LoadBalancerFailed => "LoadBalancerFailed",
            EventReason::AdditionalAssignFailed => "AdditionalAssignFailed",
            EventReason::NotEnoughClusterIps => "not enough clusterips",
            EventReason::DeprecatedAnnotation => "deprecatedAnnotation",
            EventReason::ServiceLimitExceeded => "ServiceLimitExceeded",
        }
    }

    pub fn event_type(self) -> EventType {
        match self {
            EventReason::IpAllocated
            | EventReason::ClearAssignment
            | EventReason::AdditionalAssignFailed => EventType::Normal,
            EventReason::AllocationFailed
            | EventReason::LoadBalancerFailed
            | EventReason::NotEnoughClusterIps
            | EventReason::DeprecatedAnnotation
            | EventReason::ServiceLimitExceeded => EventType::Warning,
        }
    }
}

/// One event to record on a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub reason: EventReason,
    pub event_type: EventType,
    pub message: String,
}

impl Event {
    fn new(reason: EventReason, message: String) -> Event {
        Event {
            reason,
            event_type: reason.event_type(),
            message,
        }
    }

    /// A Service refused because `limit` LoadBalancer Services are already handled.
    pub fn service_limit_exceeded(limit: usize) -> Event {
        Event::new(
            EventReason::ServiceLimitExceeded,
            format!(
                "not handled: oxlb handles at most {limit} LoadBalancer Services \
                 (--max-services) and that many are handled already; delete Services or \
                 raise the limit"
            ),
        )
    }

    pub fn ip_allocated(ips: &[IpAddr]) -> Event {
        Event::new(
            EventReason::IpAllocated,
            format!("Assigned IP {}", QuotedList(ips)),
        )
    }

    pub fn additional_ip_allocated(ip: IpAddr) -> Event {
        Event::new(
            EventReason::IpAllocated,
            format!("Assigned additional IP \"{ip}\""),
        )
    }

    pub fn allocation_failed(service: &str, reason: &dyn fmt::Display) -> Event {
        Event::new(
            EventReason::AllocationFailed,
            format!("Failed to allocate IP for \"{service}\": {reason}"),
        )
    }

    pub fn clear_assignment(service: &str, reason: &dyn fmt::Display) -> Event {
        Event::new(
            EventReason::ClearAssignment,
            format!(
                "current IP for \"{service}\" not allowed by config, will attempt for new IP assignment: {reason}"
            ),
        )
    }

    pub fn load_balancer_failed(reason: &dyn fmt::Display) -> Event {
        Event::new(
            EventReason::LoadBalancerFailed,
            format!("invalid requested loadbalancer IPs: {reason}"),
        )
    }

    pub fn additional_assign_failed(reason: &dyn fmt::Display) -> Event {
        Event::new(
            EventReason::AdditionalAssignFailed,
            format!("cannot assign additional IP in PreferDualStack: {reason}"),
        )
    }

    pub fn not_enough_cluster_ips(cluster_ips: &[Box<str>]) -> Event {
        Event::new(
            EventReason::NotEnoughClusterIps,
            format!(
                "Service requires dual stack but not enough clusterips [{}]",
                cluster_ips.join(" ")
            ),
        )
    }

    pub fn deprecated_annotation(key: &str) -> Event {
        Event::new(
            EventReason::DeprecatedAnnotation,
            format!("Service uses deprecated annotation {key}"),
        )
    }
}
