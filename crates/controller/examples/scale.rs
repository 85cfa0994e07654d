//! Reconcile cost at scale: `cargo run --release -p oxlb-controller --example scale -- N`
//! syncs N LoadBalancer Services into a /16, then restarts (fresh controller fed the
//! Services with their statuses) and checks nothing moved.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Service, ServiceSpec, ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use oxlb_config::{AddressRange, Config, Pool};
use oxlb_controller::{Controller, Desired};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(20_000, |a| a.parse().unwrap());
    let net: ipnet::IpNet = "10.0.0.0/16".parse().unwrap();
    let pool = Pool {
        name: "p".to_string(),
        ranges: vec![AddressRange::from_cidr(net)],
        addresses_as_written: vec![net.to_string()],
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
        labels: BTreeMap::new(),
    };
    let config = Config {
        pools: [("p".to_string(), pool)].into(),
        ..Config::default()
    };
    let mut services: Vec<Service> = (0..n)
        .map(|i| Service {
            metadata: ObjectMeta {
                namespace: Some(format!("ns{}", i % 50)),
                name: Some(format!("svc-{i}")),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".to_string()),
                ..Default::default()
            }),
            status: None,
        })
        .collect();
    let mut controller = Controller::new(config.clone(), None);
    let start = Instant::now();
    let outcome = controller.sync(&services, &[]);
    let first = start.elapsed();
    // Write the statuses back, as the shell would, then restart.
    for service in &mut services {
        let key = format!(
            "{}/{}",
            service.metadata.namespace.as_deref().unwrap(),
            service.metadata.name.as_deref().unwrap()
        );
        let Some(Desired::Status { ingress, .. }) = controller.desired(&key) else {
            panic!("no status for {key}");
        };
        service.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(
                    ingress
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
    }
    services.reverse();
    let mut fresh = Controller::new(config, None);
    let start = Instant::now();
    fresh.sync(&services, &[]);
    let restart = start.elapsed();
    assert_eq!(
        fresh.all_desired(),
        controller.all_desired(),
        "restart moved an IP"
    );
    println!(
        "{n} services: first sync {:.1} ms ({} outcomes), restart sync {:.1} ms, nothing moved",
        first.as_secs_f64() * 1e3,
        outcome.services.len(),
        restart.as_secs_f64() * 1e3
    );
}
