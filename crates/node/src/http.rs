//! The HTTP endpoint of `oxlb run` (default 127.0.0.1:7472, MetalLB's metrics port),
//! also behind the speaker's and controller's listeners:
//! `/metrics`, `/healthz`, `/readyz` and `/api/v1/status`, all read from the latest
//! status report. The Kubernetes speaker and controller serve the first three where
//! Prometheus and the kubelet reach them ([`Endpoints::Health`]) and the status API,
//! which names every Service, IP and BGP peer with their last errors, on loopback only.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::watch;

use crate::status::StatusReport;

#[derive(Clone)]
struct Shared {
    report: watch::Receiver<StatusReport>,
}

/// What one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoints {
    /// `/metrics`, `/healthz`, `/readyz`: what Prometheus and the kubelet need.
    Health,
    /// `/api/v1/status` only (the full state, for `oxlb status` and people).
    Status,
    /// Everything (`oxlb run`, on loopback by default).
    All,
}

pub fn router(report: watch::Receiver<StatusReport>) -> Router {
    router_for(report, Endpoints::All)
}

pub fn router_for(report: watch::Receiver<StatusReport>, endpoints: Endpoints) -> Router {
    let mut router = Router::new();
    if endpoints != Endpoints::Status {
        router = router
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz));
    }
    if endpoints != Endpoints::Health {
        router = router.route("/api/v1/status", get(status));
    }
    router.with_state(Shared { report })
}

/// Binds `address`; an error says which address could not be used.
pub async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))
}

/// Serves every endpoint on `listener` until `shutdown` resolves.
pub fn serve(
    listener: tokio::net::TcpListener,
    report: watch::Receiver<StatusReport>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    serve_endpoints(listener, report, Endpoints::All, shutdown)
}

/// Serves every endpoint plus `extra` routes (drain control) until `shutdown` resolves.
pub fn serve_with(
    listener: tokio::net::TcpListener,
    report: watch::Receiver<StatusReport>,
    extra: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, router(report).merge(extra))
            .with_graceful_shutdown(shutdown)
            .await
    })
}

/// Serves `endpoints` on `listener` until `shutdown` resolves.
pub fn serve_endpoints(
    listener: tokio::net::TcpListener,
    report: watch::Receiver<StatusReport>,
    endpoints: Endpoints,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, router_for(report, endpoints))
            .with_graceful_shutdown(shutdown)
            .await
    })
}

/// The status API names every Service, IP and BGP peer with their last errors, and has
/// no authentication: it may only listen on a loopback address.
pub fn check_status_address(address: SocketAddr) -> Result<SocketAddr, String> {
    if address.ip().is_loopback() {
        Ok(address)
    } else {
        Err(format!(
            "the status API ({address}) is unauthenticated and names every Service, IP and \
             BGP peer: it listens on loopback only (127.0.0.1 or ::1; reach it with \
             `kubectl port-forward`)"
        ))
    }
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let report = shared.report.borrow().clone();
    let text = crate::metrics::render(&report.materialized());
    // The derived rows are freed by now: give them back (see `status`).
    crate::memory::release_freed();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    errors: Vec<String>,
}

/// Alive: always 200 while the process serves. The body says `stale` (with the errors)
/// when the last configuration change was rejected and the previous one is in force.
async fn healthz(State(shared): State<Shared>) -> Json<Health> {
    let report = shared.report.borrow();
    Json(Health {
        status: if report.config.stale { "stale" } else { "ok" },
        errors: report.config.errors.clone(),
    })
}

/// Ready once a valid configuration is in force (a stale one still is).
async fn readyz(State(shared): State<Shared>) -> Response {
    let report = shared.report.borrow();
    if report.config.loaded {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let mut body = String::from("no valid configuration loaded yet\n");
        for error in &report.config.errors {
            body.push_str(error);
            body.push('\n');
        }
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn status(State(shared): State<Shared>) -> Response {
    // Cloned first, so the rows are derived without holding the report's lock.
    let report = shared.report.borrow().clone();
    // Encoded here (not after the handler returns), so the rows are freed by the end.
    let response = Json(report.materialized()).into_response();
    // The derived rows (megabytes at 10,000 Services) are freed: give them back.
    crate::memory::release_freed();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(address: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    /// Rows a report does not hold (issue 22), counted as they are derived.
    #[derive(Debug, Default)]
    struct CountedRows(std::sync::atomic::AtomicUsize);

    impl crate::status::RowSource for CountedRows {
        fn services(&self) -> Vec<crate::status::ServiceStatus> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            vec![crate::status::ServiceStatus {
                service: "default/web".into(),
                ips: vec!["192.0.2.10".parse().unwrap()],
                announced: vec![crate::status::AnnouncedIp {
                    ip: "192.0.2.10".parse().unwrap(),
                    protocol: crate::status::Protocol::Bgp,
                    via: vec!["router".into()],
                }],
                ..Default::default()
            }]
        }

        fn bgp_routes(&self) -> Vec<crate::status::BgpRouteStatus> {
            vec![crate::status::BgpRouteStatus {
                peer: "router".into(),
                prefix: "192.0.2.10/32".parse().unwrap(),
                local_pref: None,
                communities: vec![],
                weight: Some(7),
            }]
        }
    }

    /// A report whose rows are derived when read serves them in the status API and
    /// the metrics as if it held them, and derives them on each read only.
    #[tokio::test]
    async fn derived_rows_are_served_as_held_rows() {
        let rows = std::sync::Arc::new(CountedRows::default());
        let report = StatusReport {
            node: "node1".into(),
            derived_rows: crate::status::DerivedRows::from_source(rows.clone()),
            ..Default::default()
        };
        let (_tx, rx) = watch::channel(report);
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = serve(listener, rx, async {
            let _ = stop_rx.await;
        });
        assert_eq!(rows.0.load(std::sync::atomic::Ordering::Relaxed), 0);
        let status = get(address, "/api/v1/status").await;
        assert!(status.contains(r#""service":"default/web""#), "{status}");
        assert!(status.contains(r#""via":["router"]"#), "{status}");
        assert!(
            status.contains(r#""peer":"router","prefix":"192.0.2.10/32""#),
            "{status}"
        );
        assert!(!status.contains("derived_rows"), "{status}");
        let metrics = get(address, "/metrics").await;
        assert!(
            metrics.contains(r#"metallb_speaker_announced{ip="192.0.2.10",node="node1",protocol="bgp",service="default/web"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(
                r#"oxlb_bgp_announced_prefix_weight{peer="router",prefix="192.0.2.10/32"} 7"#
            ),
            "{metrics}"
        );
        assert_eq!(rows.0.load(std::sync::atomic::Ordering::Relaxed), 2);
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn serves_health_readiness_metrics_and_status() {
        let (tx, rx) = watch::channel(StatusReport::default());
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = serve(listener, rx, async {
            let _ = stop_rx.await;
        });
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 503"));
        tx.send_modify(|r| {
            r.node = "node1".into();
            r.config.loaded = true;
            r.config.stale = true;
            r.config.errors = vec!["bad pool".into()];
        });
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 200"));
        let health = get(address, "/healthz").await;
        assert!(
            health.contains(r#"{"status":"stale","errors":["bad pool"]}"#),
            "{health}"
        );
        assert!(
            get(address, "/metrics")
                .await
                .contains("metallb_k8s_client_config_stale_bool 1")
        );
        assert!(
            get(address, "/api/v1/status")
                .await
                .contains(r#""node":"node1""#)
        );
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn health_listener_hides_the_status_api_and_status_listener_the_metrics() {
        let (_tx, rx) = watch::channel(StatusReport::default());
        let health = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let status = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (health_address, status_address) =
            (health.local_addr().unwrap(), status.local_addr().unwrap());
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let a = serve_endpoints(
            health,
            rx.clone(),
            Endpoints::Health,
            stopped(stop_rx.clone()),
        );
        let b = serve_endpoints(status, rx, Endpoints::Status, stopped(stop_rx));
        assert!(
            get(health_address, "/api/v1/status")
                .await
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            get(health_address, "/metrics")
                .await
                .starts_with("HTTP/1.1 200")
        );
        assert!(
            get(health_address, "/healthz")
                .await
                .starts_with("HTTP/1.1 200")
        );
        assert!(
            get(status_address, "/api/v1/status")
                .await
                .starts_with("HTTP/1.1 200")
        );
        assert!(
            get(status_address, "/metrics")
                .await
                .starts_with("HTTP/1.1 404")
        );
        stop_tx.send(true).unwrap();
        a.await.unwrap().unwrap();
        b.await.unwrap().unwrap();
    }

    #[test]
    fn the_status_api_listens_on_loopback_only() {
        assert!(check_status_address("127.0.0.1:7474".parse().unwrap()).is_ok());
        assert!(check_status_address("[::1]:7474".parse().unwrap()).is_ok());
        assert!(check_status_address("0.0.0.0:7474".parse().unwrap()).is_err());
        assert!(check_status_address("10.0.0.1:7474".parse().unwrap()).is_err());
    }
}
