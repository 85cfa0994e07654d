//! The HTTP endpoint of `oxlb run` (default 127.0.0.1:7472, MetalLB's metrics port):
//! `/metrics`, `/healthz`, `/readyz` and `/api/v1/status`, all read from the latest
//! status report.

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

pub fn router(report: watch::Receiver<StatusReport>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(status))
        .with_state(Shared { report })
}

/// Binds `address`; an error says which address could not be used.
pub async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))
}

/// Serves on `listener` until `shutdown` resolves.
pub fn serve(
    listener: tokio::net::TcpListener,
    report: watch::Receiver<StatusReport>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, router(report))
            .with_graceful_shutdown(shutdown)
            .await
    })
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let text = crate::metrics::render(&shared.report.borrow());
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

async fn status(State(shared): State<Shared>) -> Json<StatusReport> {
    Json(shared.report.borrow().clone())
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
}
