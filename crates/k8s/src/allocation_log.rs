//! What the controller says in its log about addresses, at info level as MetalLB does:
//! which Service got which IPs from which pool, which lost them and why, which could
//! not get one. The same facts as the Service's events, for log pipelines.

use std::net::IpAddr;

use oxlb_controller::{EventReason, ServiceOutcome};

/// One line of the allocation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// The Service holds these IPs from this pool (newly or additionally).
    Assigned {
        service: String,
        ips: Vec<IpAddr>,
        pool: String,
    },
    /// Its IPs were taken back: the config no longer allows them.
    Cleared { service: String, reason: String },
    /// No IP could be given (requested IP in no pool, pools exhausted, ...).
    Failed { service: String, reason: String },
}

/// The allocation log lines of one Service's reconcile outcome.
pub fn records(service: &str, outcome: &ServiceOutcome) -> Vec<Allocation> {
    let mut out = Vec::new();
    for event in &outcome.events {
        let record = match event.reason {
            EventReason::IpAllocated => Allocation::Assigned {
                service: service.to_string(),
                ips: outcome.desired.ingress().to_vec(),
                pool: outcome.desired.pool().unwrap_or_default().to_string(),
            },
            EventReason::ClearAssignment => Allocation::Cleared {
                service: service.to_string(),
                reason: event.message.clone(),
            },
            EventReason::AllocationFailed
            | EventReason::LoadBalancerFailed
            | EventReason::AdditionalAssignFailed
            | EventReason::NotEnoughClusterIps
            | EventReason::ServiceLimitExceeded => Allocation::Failed {
                service: service.to_string(),
                reason: event.message.clone(),
            },
            EventReason::DeprecatedAnnotation => continue,
        };
        if !out.contains(&record) {
            out.push(record);
        }
    }
    out
}

impl Allocation {
    /// Writes the line: info for assignments and clears, warn for failures.
    pub fn emit(&self) {
        match self {
            Allocation::Assigned { service, ips, pool } => {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                tracing::info!(%service, ips = %ips.join(","), %pool, "IP address assigned");
            }
            Allocation::Cleared { service, reason } => {
                tracing::info!(%service, %reason, "IP address cleared");
            }
            Allocation::Failed { service, reason } => {
                tracing::warn!(%service, %reason, "IP address not assigned");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxlb_controller::{Desired, Event};

    fn outcome(ingress: &[&str], pool: Option<&str>, events: Vec<Event>) -> ServiceOutcome {
        ServiceOutcome {
            desired: Desired::Status {
                ingress: ingress.iter().filter_map(|i| i.parse().ok()).collect(),
                pool: pool.map(str::to_string),
            },
            needs_update: true,
            events,
        }
    }

    #[test]
    fn assignment_names_service_ips_and_pool() {
        let ip: IpAddr = "192.168.10.0".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let o = outcome(
            &["192.168.10.0"],
            Some("pool1"),
            vec![Event::ip_allocated(&[ip])],
        );
        assert_eq!(
            records("default/web", &o),
            [Allocation::Assigned {
                service: "default/web".into(),
                ips: vec![ip],
                pool: "pool1".into()
            }]
        );
    }

    #[test]
    fn failures_and_clears_carry_the_reason_and_nothing_else_is_logged() {
        let o = outcome(
            &[],
            None,
            vec![
                Event::clear_assignment("default/web", &"pool gone"),
                Event::allocation_failed("default/web", &"no available IPs"),
                Event::deprecated_annotation("metallb.universe.tf/address-pool"),
            ],
        );
        let records = records("default/web", &o);
        assert_eq!(records.len(), 2, "{records:?}");
        assert!(
            matches!(&records[0], Allocation::Cleared { reason, .. } if reason.contains("pool gone"))
        );
        assert!(
            matches!(&records[1], Allocation::Failed { reason, .. } if reason.contains("no available IPs"))
        );
        assert!(
            super::records("default/web", &outcome(&["10.0.0.1"], Some("p"), vec![])).is_empty()
        );
    }
}
