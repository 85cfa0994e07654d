//! What the controller reads from a Service, parsed once: annotations under both
//! prefixes, requested addresses, families, ports and sharing keys.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use oxlb_allocator::{Family, Port, Protocol, QuotedList, ShareKey, Usage, Want};
use oxlb_config::StringMap;

pub const PREFIX: &str = "metallb.io/";
pub const DEPRECATED_PREFIX: &str = "metallb.universe.tf/";
/// Written by MetalLB <= 0.12; the controller always removes it (superseded by
/// `metallb.io/ip-allocated-from-pool`).
pub const DEPRECATED_POOL_ANNOTATION: &str = "metallb.universe.tf/ip-allocated-from-pool";
pub const POOL_ANNOTATION: &str = "metallb.io/ip-allocated-from-pool";
const LOAD_BALANCER_IPS: &str = "loadBalancerIPs";
const ADDRESS_POOL: &str = "address-pool";
const ALLOW_SHARED_IP: &str = "allow-shared-ip";

/// `spec.ipFamilyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyPolicy {
    SingleStack,
    PreferDualStack,
    RequireDualStack,
}

/// A bad address request; `Display` is MetalLB's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    Both,
    InvalidAnnotation(String),
    InvalidSpec(String),
    SameFamily(Vec<String>),
    TooMany(Vec<String>),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Both => write!(
                f,
                "service can not have both {PREFIX}{LOAD_BALANCER_IPS} and svc.Spec.LoadBalancerIP"
            ),
            RequestError::InvalidAnnotation(value) => {
                write!(f, "invalid {PREFIX}{LOAD_BALANCER_IPS}: \"{value}\"")
            }
            RequestError::InvalidSpec(value) => {
                write!(f, "invalid spec.loadBalancerIP \"{value}\"")
            }
            RequestError::SameFamily(ips) => write!(
                f,
                "IPFamilyForAddresses: same address family {}",
                QuotedList(ips)
            ),
            RequestError::TooMany(ips) => write!(
                f,
                "IPFamilyForAddresses: invalid ips length {} {}",
                ips.len(),
                QuotedList(ips)
            ),
        }
    }
}

/// The families a service is in: one, or both with a primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceFamily {
    Single(Family),
    Dual { primary: Family },
}

/// A Service as the controller sees it.
///
/// Kept compact: one per Service lives as long as the Service (issue 22: at 100,000
/// Services the view was 310 bytes plus six small allocations each). Text is boxed
/// (no spare capacity), the namespace is a prefix of the key, the pool annotation is
/// read from the annotations, and the families are two bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// `namespace/name`, the key in events and in the allocator.
    pub key: Arc<str>,
    /// The length of the namespace at the start of `key`.
    namespace_len: u32,
    pub labels: StringMap,
    /// Only MetalLB's (both prefixes).
    pub annotations: StringMap,
    pub is_load_balancer: bool,
    pub class: Option<Box<str>>,
    pub policy: FamilyPolicy,
    /// Families from `ipFamilies`, else the cluster IPs, else the requested addresses,
    /// else both for a dual-stack policy, else IPv4 (services in files may lack them).
    family: ServiceFamily,
    /// For the "not enough clusterips" message.
    pub cluster_ips: Box<[Box<str>]>,
    /// Boxed: a failed request is rare, and its text would widen every view.
    pub requested: Result<Box<[IpAddr]>, Box<RequestError>>,
    /// The `address-pool` annotation, if set and non-empty.
    pub pool: Option<Box<str>>,
    pub usage: Usage,
    /// `status.loadBalancer.ingress[].ip` as currently written.
    pub status_ips: Box<[IpAddr]>,
}

/// `metallb.io/X` if present, else `metallb.universe.tf/X` (MetalLB's precedence).
fn annotation<'a>(annotations: &'a StringMap, name: &str) -> Option<&'a str> {
    annotations
        .get(&format!("{PREFIX}{name}"))
        .or_else(|| annotations.get(&format!("{DEPRECATED_PREFIX}{name}")))
}

fn parse_family(text: &str) -> Option<Family> {
    match text {
        "IPv4" => Some(Family::V4),
        "IPv6" => Some(Family::V6),
        _ => None,
    }
}

fn parse_requested(
    annotation_value: Option<&str>,
    spec_ip: Option<&str>,
) -> Result<Box<[IpAddr]>, Box<RequestError>> {
    parse_requested_ips(annotation_value, spec_ip)
        .map(Vec::into_boxed_slice)
        .map_err(Box::new)
}

fn parse_requested_ips(
    annotation_value: Option<&str>,
    spec_ip: Option<&str>,
) -> Result<Vec<IpAddr>, RequestError> {
    let annotation_value = annotation_value.filter(|v| !v.is_empty());
    let spec_ip = spec_ip.filter(|v| !v.is_empty());
    match (annotation_value, spec_ip) {
        (None, None) => Ok(Vec::new()),
        (Some(_), Some(_)) => Err(RequestError::Both),
        (Some(value), None) => {
            let ips = value
                .split(',')
                .map(|part| part.trim().parse::<IpAddr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| RequestError::InvalidAnnotation(value.to_string()))?;
            let texts = || ips.iter().map(ToString::to_string).collect();
            match ips.as_slice() {
                [_] => Ok(ips),
                [a, b] if Family::of(a) != Family::of(b) => Ok(ips),
                [_, _] => Err(RequestError::SameFamily(texts())),
                _ => Err(RequestError::TooMany(texts())),
            }
        }
        (None, Some(value)) => value
            .parse::<IpAddr>()
            .map(|ip| vec![ip])
            .map_err(|_| RequestError::InvalidSpec(value.to_string())),
    }
}

impl ServiceView {
    pub fn from_service(service: &Service) -> ServiceView {
        let meta = &service.metadata;
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        let name = meta.name.as_deref().unwrap_or_default();
        // Only MetalLB's annotations are read: others (kubectl's last-applied
        // configuration, often the size of the whole object) are not kept per Service,
        // and changing them is no new input.
        let annotations: StringMap = meta
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(PREFIX) || k.starts_with(DEPRECATED_PREFIX))
            .collect();
        // Read in place: cloning the spec (ports, selector, cluster IPs) cost a copy of
        // most of every Service per reconcile.
        let no_spec = ServiceSpec::default();
        let spec = service.spec.as_ref().unwrap_or(&no_spec);
        let requested = parse_requested(
            annotation(&annotations, LOAD_BALANCER_IPS),
            spec.load_balancer_ip.as_deref(),
        );
        let explicit_policy = match spec.ip_family_policy.as_deref() {
            Some("PreferDualStack") => Some(FamilyPolicy::PreferDualStack),
            Some("RequireDualStack") => Some(FamilyPolicy::RequireDualStack),
            Some(_) => Some(FamilyPolicy::SingleStack),
            None => None,
        };
        let mut cluster_ips: Vec<Box<str>> = spec
            .cluster_ips
            .iter()
            .flatten()
            .map(|ip| Box::from(ip.as_str()))
            .collect();
        if cluster_ips.is_empty()
            && let Some(ip) = &spec.cluster_ip
        {
            cluster_ips.push(Box::from(ip.as_str()));
        }
        let mut families: Vec<Family> = spec
            .ip_families
            .iter()
            .flatten()
            .filter_map(|f| parse_family(f))
            .collect();
        if families.is_empty() {
            families = cluster_ips
                .iter()
                .filter_map(|ip| ip.parse::<IpAddr>().ok())
                .map(|ip| Family::of(&ip))
                .collect();
        }
        if families.is_empty()
            && let Ok(ips) = &requested
        {
            families = ips.iter().map(Family::of).collect();
        }
        if families.is_empty() {
            families = match explicit_policy {
                Some(FamilyPolicy::PreferDualStack | FamilyPolicy::RequireDualStack) => {
                    vec![Family::V4, Family::V6]
                }
                _ => vec![Family::V4],
            };
        }
        families.dedup();
        families.truncate(2);
        // No policy written (a file): two families mean both are required.
        let policy = explicit_policy.unwrap_or(if families.len() == 2 {
            FamilyPolicy::RequireDualStack
        } else {
            FamilyPolicy::SingleStack
        });
        if policy == FamilyPolicy::SingleStack {
            families.truncate(1);
        }
        let family = match families.as_slice() {
            [first, _, ..] => ServiceFamily::Dual { primary: *first },
            [only] => ServiceFamily::Single(*only),
            [] => ServiceFamily::Single(Family::V4),
        };
        let ports = spec
            .ports
            .iter()
            .flatten()
            .map(|p| Port {
                protocol: Protocol::from(p.protocol.as_deref().unwrap_or("TCP")),
                port: p.port,
            })
            .collect();
        // Local services share only with an identical selector (MetalLB's backend key:
        // the selector as `k=v,k2=v2`, sorted).
        let backend = if spec.external_traffic_policy.as_deref() == Some("Local") {
            spec.selector
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            String::new()
        };
        let sharing = annotation(&annotations, ALLOW_SHARED_IP)
            .unwrap_or_default()
            .to_string();
        let status_ips = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|ingress| ingress.ip.as_deref()?.parse::<IpAddr>().ok())
            .collect();
        // A namespace longer than 4 GB cannot come from the API server; saturating
        // keeps the view well-formed anyway (the namespace is then the whole key).
        let namespace_len = u32::try_from(namespace.len()).unwrap_or(u32::MAX);
        ServiceView {
            key: Arc::from(format!("{namespace}/{name}")),
            namespace_len,
            labels: meta.labels.iter().flatten().collect(),
            is_load_balancer: spec.type_.as_deref() == Some("LoadBalancer"),
            class: spec.load_balancer_class.as_deref().map(Box::from),
            policy,
            family,
            cluster_ips: cluster_ips.into_boxed_slice(),
            requested,
            pool: annotation(&annotations, ADDRESS_POOL)
                .filter(|p| !p.is_empty())
                .map(Box::from),
            usage: Usage {
                ports,
                key: ShareKey::new(&sharing, &backend),
            },
            status_ips,
            annotations,
        }
    }

    /// The namespace: the key up to its first `/`.
    pub fn namespace(&self) -> &str {
        let len = usize::try_from(self.namespace_len).unwrap_or(usize::MAX);
        self.key.get(..len).unwrap_or(&self.key)
    }

    /// `metallb.io/ip-allocated-from-pool` as currently written.
    pub fn status_pool(&self) -> Option<&str> {
        self.annotations.get(POOL_ANNOTATION)
    }

    pub fn family(&self) -> ServiceFamily {
        self.family
    }

    /// What to ask the allocator for.
    pub fn want(&self) -> Want {
        match (self.family(), self.policy) {
            (ServiceFamily::Single(family), _) => Want::Single(family),
            (ServiceFamily::Dual { primary }, FamilyPolicy::PreferDualStack) => {
                Want::PreferDual { primary }
            }
            (ServiceFamily::Dual { .. }, _) => Want::RequireDual,
        }
    }

    /// The same Service with `status_ips` and the pool annotation as a status written
    /// back would make them: exactly the view of the object with that status
    /// ([`ServiceView::from_service`] reads nothing else from either). `oxlb run` keeps
    /// one view per Service from the files and gives it the IPs it holds this way, not
    /// by keeping and re-parsing the object.
    pub fn with_status(&self, status_ips: &[IpAddr], pool: Option<&str>) -> ServiceView {
        let mut view = self.clone();
        view.status_ips = status_ips.into();
        if view.status_pool() != pool {
            let others = view
                .annotations
                .iter()
                .filter(|(k, _)| *k != POOL_ANNOTATION);
            view.annotations = match pool {
                Some(pool) => others.chain([(POOL_ANNOTATION, pool)]).collect(),
                None => others.collect(),
            };
        }
        view
    }

    /// Equal apart from what the controller itself writes (status, pool annotation).
    pub fn same_input(&self, other: &ServiceView) -> bool {
        let strip = |v: &ServiceView| {
            let mut v = v.clone();
            v.status_ips = Box::default();
            v.annotations = v
                .annotations
                .without(&[POOL_ANNOTATION, DEPRECATED_POOL_ANNOTATION]);
            v
        };
        strip(self) == strip(other)
    }

    /// Annotations under the deprecated prefix, in key order.
    pub fn deprecated_annotations(&self) -> impl Iterator<Item = &str> {
        self.annotations
            .keys()
            .filter(|k| k.starts_with(DEPRECATED_PREFIX))
    }
}

/// MetalLB's `ipfamily.ForAddresses` on a set of addresses: one family, both, or none
/// (`None` for zero, more than two, or two of one family).
pub fn family_of_addresses(ips: &[IpAddr]) -> Option<ServiceFamily> {
    match ips {
        [one] => Some(ServiceFamily::Single(Family::of(one))),
        [a, b] if Family::of(a) != Family::of(b) => Some(ServiceFamily::Dual {
            primary: Family::of(a),
        }),
        _ => None,
    }
}

/// Same family set, ignoring which one is primary.
pub fn same_families(a: ServiceFamily, b: ServiceFamily) -> bool {
    match (a, b) {
        (ServiceFamily::Single(x), ServiceFamily::Single(y)) => x == y,
        (ServiceFamily::Dual { .. }, ServiceFamily::Dual { .. }) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};

    fn service(annotations: &[(&str, &str)], status: &[&str]) -> Service {
        let mut service = Service::default();
        service.metadata.namespace = Some("default".into());
        service.metadata.name = Some("web".into());
        service.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        service.spec = Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ..Default::default()
        });
        service.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(
                    status
                        .iter()
                        .map(|ip| LoadBalancerIngress {
                            ip: Some(ip.to_string()),
                            ..Default::default()
                        })
                        .collect(),
                ),
            }),
            ..Default::default()
        });
        service
    }

    /// The view given a status equals the view of the object written with it, whether
    /// it adds, replaces or removes the status and the pool annotation.
    #[test]
    fn with_status_is_the_view_of_the_object_with_that_status() {
        let request = ("metallb.io/loadBalancerIPs", "10.0.0.5");
        let pool = |p| (POOL_ANNOTATION, p);
        let check =
            |before: &[(&str, &str)], status: &[&str], after: &[(&str, &str)], ips: &[&str]| {
                let written = ServiceView::from_service(&service(before, status));
                let expected = ServiceView::from_service(&service(after, ips));
                let ips: Vec<IpAddr> = ips.iter().map(|ip| ip.parse().unwrap()).collect();
                let pool = after
                    .iter()
                    .find(|(k, _)| *k == POOL_ANNOTATION)
                    .map(|(_, v)| *v);
                assert_eq!(written.with_status(&ips, pool), expected);
            };
        check(&[request], &[], &[request, pool("a")], &["10.0.0.5"]);
        check(
            &[request, pool("a")],
            &["10.0.0.5"],
            &[request, pool("b")],
            &["10.0.0.6"],
        );
        check(&[request, pool("a")], &["10.0.0.5"], &[request], &[]);
    }
}
