//! The fake over real HTTP/1.1, for processes that find it through a kubeconfig.
//! Watches are streamed as the API server streams them: one JSON event per line on a
//! response that stays open (chunked) until the client goes away.

use axum::extract::{Request, State};
use axum::response::Response;

use crate::FakeApi;

impl FakeApi {
    /// Serves this fake on `listener` until the returned future is dropped (or the
    /// listener fails). Plain HTTP: put `server: http://ADDRESS:PORT` in a kubeconfig.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(self.clone());
        axum::serve(listener, app).await
    }
}

async fn answer(State(api): State<FakeApi>, request: Request) -> Response {
    api.handle(request).await.map(axum::body::Body::new)
}

/// A kubeconfig for a client of [`FakeApi::serve`] at `server` (`http://10.0.0.5:6443`):
/// no credentials, namespace `default`.
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster:
      server: {server}
users:
  - name: fake
    user: {{}}
contexts:
  - name: fake
    context:
      cluster: fake
      user: fake
      namespace: default
current-context: fake
"
    )
}
