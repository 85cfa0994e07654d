//! `POST /api/v1/drain` and `POST /api/v1/undrain` of `oxlb run` (what `oxlb drain` and
//! `oxlb undrain` call): set the wish, the engine acts on it; the answer is the drain
//! status at that moment (`oxlb drain` then polls `/api/v1/status` for convergence).
//! Both are idempotent. Loopback only, like the status API they sit beside.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use tokio::sync::watch;

use oxlb_node::status::{DrainStatus, StatusReport};

#[derive(Clone)]
struct Control {
    wish: watch::Sender<bool>,
    report: watch::Receiver<StatusReport>,
}

pub fn router(wish: watch::Sender<bool>, report: watch::Receiver<StatusReport>) -> Router {
    Router::new()
        .route("/api/v1/drain", post(drain))
        .route("/api/v1/undrain", post(undrain))
        .with_state(Control { wish, report })
}

async fn drain(State(control): State<Control>) -> Json<DrainStatus> {
    control
        .wish
        .send_if_modified(|w| !std::mem::replace(w, true));
    Json(control.report.borrow().drain.clone())
}

async fn undrain(State(control): State<Control>) -> Json<DrainStatus> {
    control
        .wish
        .send_if_modified(|w| std::mem::replace(w, false));
    Json(control.report.borrow().drain.clone())
}
