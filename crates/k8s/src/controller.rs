//! `oxlb controller`: caches, leader election, the reconcile loop and the metrics /
//! health endpoint, wired together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use oxlb_node::status::StatusReport;
use tokio::sync::{Notify, watch};

use crate::lease::{self, LeaseConfig};
use crate::memberlist;
use crate::reconciler::Reconciler;
use crate::stores::Stores;

/// Command-line options of `oxlb controller`.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// oxlb's namespace: where the metallb.io objects, Secrets and the Lease live.
    pub namespace: String,
    /// Handle only Services of this `loadBalancerClass` (`None`: only those without).
    pub lb_class: Option<String>,
    /// At most this many LoadBalancer Services are handled; more are refused with a
    /// `ServiceLimitExceeded` event (`None`: no limit).
    pub max_services: Option<usize>,
    /// `/metrics`, `/healthz`, `/readyz` (MetalLB's port 7472); `None`: not served.
    pub metrics_address: Option<SocketAddr>,
    /// `/api/v1/status` (every Service, IP and pool): loopback only; `None`: not served.
    pub status_address: Option<SocketAddr>,
    /// This replica's name (the pod name, from the downward API).
    pub identity: String,
    /// Elect a leader on a Lease; off only for a single replica outside a Deployment.
    pub leader_election: bool,
    /// This controller's Pod (from `oxlb controller --pod-name/--pod-uid`): the owner of
    /// its ConfigurationState. `None` outside a pod: no owner reference.
    pub pod: Option<crate::speaker::PodIdentity>,
}

impl Default for ControllerOptions {
    fn default() -> ControllerOptions {
        ControllerOptions {
            namespace: oxlb_config::DEFAULT_NAMESPACE.to_string(),
            lb_class: None,
            max_services: None,
            metrics_address: Some(SocketAddr::from(([0, 0, 0, 0], 7472))),
            status_address: Some(crate::endpoints::DEFAULT_CONTROLLER_STATUS_ADDRESS),
            // A Pod's hostname is its name; `oxlb controller` passes --pod-name.
            identity: std::env::var("HOSTNAME").unwrap_or_else(|_| "oxlb-controller".to_string()),
            leader_election: true,
            pod: None,
        }
    }
}

/// Errors that stop the controller.
#[derive(Debug)]
pub enum ControllerError {
    /// No kubeconfig / in-cluster config, or the client could not be built.
    Client(kube::Error),
    Listen(std::io::Error),
}

impl std::fmt::Display for ControllerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControllerError::Client(e) => write!(f, "cannot build the Kubernetes client: {e}"),
            ControllerError::Listen(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ControllerError {}

/// Retry delay for failed Service writes: doubles up to this.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Runs the controller with the in-cluster (or kubeconfig) client until `shutdown`.
pub async fn run_controller(
    options: ControllerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ControllerError> {
    let client = Client::try_default()
        .await
        .map_err(ControllerError::Client)?;
    run_controller_with_client(client, options, shutdown).await
}

/// The same with a given client (tests pass one talking to a mock API server).
pub async fn run_controller_with_client(
    client: Client,
    options: ControllerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ControllerError> {
    let (report_tx, report_rx) = watch::channel(StatusReport::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = crate::endpoints::Listeners::start(
        options.metrics_address,
        options.status_address,
        &report_rx,
        &stop_rx,
    )
    .await
    .map_err(ControllerError::Listen)?;
    let notify = Arc::new(Notify::new());
    let (stores, mut reflectors) = Stores::start(&client, &options.namespace, &notify);
    let services = crate::stores::cached_services(&client, &notify, &mut reflectors);
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        _ = async { futures::join!(stores.wait_ready(), services.wait_until_ready()) } => {
            tracing::info!("every cache synced")
        }
        _ = &mut shutdown => {
            let _ = stop_tx.send(true);
            return Ok(());
        }
    }

    let (leader_tx, mut leader_rx) = watch::channel(!options.leader_election);
    let election = options.leader_election.then(|| {
        tokio::spawn(lease::run(
            client.clone(),
            LeaseConfig::new(&options.namespace, &options.identity),
            leader_tx,
            stop_rx.clone(),
        ))
    });

    if let Err(e) = memberlist::ensure_secret(&client, &options.namespace, &stores).await {
        tracing::warn!(error = %e, "cannot create the memberlist Secret; speakers run without encryption");
    }
    let mut reconciler = Reconciler::new(
        client,
        &options.namespace,
        options.lb_class.clone(),
        &options.identity,
        options.pod.clone(),
    );
    reconciler.set_service_limit(options.max_services);
    reconciler.watch_own_state(&notify);
    let mut retry_delay = Duration::from_secs(1);
    loop {
        let leader = *leader_rx.borrow_and_update();
        reconciler.reconcile(&stores, &services, leader).await;
        report_tx.send_replace(reconciler.report());
        if reconciler.retry.is_empty() {
            retry_delay = Duration::from_secs(1);
        }
        let retrying = !reconciler.retry.is_empty();
        tokio::select! {
            _ = &mut shutdown => break,
            _ = notify.notified() => {}
            _ = leader_rx.changed() => {}
            _ = tokio::time::sleep(retry_delay), if retrying => {
                retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
    tracing::info!("shutting down");
    // Stop writing first, then hand the Lease over at once.
    let _ = stop_tx.send(true);
    if let Some(election) = election {
        let _ = election.await;
    }
    drop(reflectors);
    server.join().await;
    Ok(())
}

/// Resolves on SIGTERM (what the kubelet sends) or Ctrl-C: give it to
/// [`run_controller`] as `shutdown`.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
