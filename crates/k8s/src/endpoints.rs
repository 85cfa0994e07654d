//! The HTTP listeners of the controller and the speaker. The speaker runs on the host
//! network, so what it serves there is reachable by anyone who reaches the node:
//! only `/metrics`, `/healthz` and `/readyz` (for Prometheus and the kubelet), bound to
//! the node's address as MetalLB's `--host` (`METALLB_HOST` = `status.hostIP`). The
//! status API, which names every Service, IP and BGP peer with their last errors and
//! has no authentication, listens on loopback only (`kubectl port-forward` reaches it).

use std::net::SocketAddr;

use oxlb_node::http::{self, Endpoints};
use oxlb_node::status::StatusReport;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The controller's: one further, so a controller on the host network (as the lab
/// or a bootstrap cluster runs it) does not collide with the speaker.
pub const DEFAULT_CONTROLLER_STATUS_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7475);

/// The status API's default address: loopback, one above MetalLB's metrics port 7472
/// and its FRR metrics port 7473, so that neither is taken on a node where MetalLB
/// still runs during a migration.
pub const DEFAULT_STATUS_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7474);

/// The running listeners; they stop when `stop` turns true.
#[derive(Default)]
pub struct Listeners {
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Listeners {
    /// Binds the health listener at `health` and the status API at `status` (refused
    /// unless on loopback); `None`: that one is not served.
    pub async fn start(
        health: Option<SocketAddr>,
        status: Option<SocketAddr>,
        report: &watch::Receiver<StatusReport>,
        stop: &watch::Receiver<bool>,
    ) -> std::io::Result<Listeners> {
        let mut plan = Vec::new();
        if let Some(address) = status {
            let address = http::check_status_address(address)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            plan.push((address, Endpoints::Status));
        }
        if let Some(address) = health {
            plan.push((address, Endpoints::Health));
        }
        let mut listeners = Listeners::default();
        for (address, endpoints) in plan {
            let listener = http::bind(address).await?;
            let mut stop = stop.clone();
            listeners.tasks.push(http::serve_endpoints(
                listener,
                report.clone(),
                endpoints,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            ));
        }
        Ok(listeners)
    }

    /// Waits until every listener has stopped.
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
