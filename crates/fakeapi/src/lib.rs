//! A small in-memory Kubernetes API server for tests: list / watch (streamed, with
//! resume from a resourceVersion and label / field selectors) / get / create / replace /
//! merge-patch / server-side apply (as a merge) / delete, every request recorded, and
//! failures that tests script (409, 503, watch 410).
//!
//! Two transports onto the same state: [`FakeApi::client`], a kube `Client` over an
//! in-process tower-test pair, and [`FakeApi::serve`], real HTTP/1.1 on a TCP listener,
//! so unmodified binaries can use it through a kubeconfig ([`kubeconfig`]).
//!
//! Faithful where oxlb depends on it: resourceVersion on every object and list,
//! optimistic concurrency (409 Conflict), errors as `Status` objects with Kubernetes'
//! reasons and messages, status subresource semantics (the main resource ignores
//! `status`, `/status` ignores everything else), selectors on lists and watches
//! (an object that stops matching is a DELETED event to that watch, as upstream).
//! Lists are paginated for `limit` / `continue` as by the API server.
//! Not modelled: admission, validation, defaulting, managed fields.

mod fixtures;
mod route;
mod select;
mod serve;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures::channel::mpsc;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};

pub use fixtures::{ingress, l2, namespace, pool, service, wait_for, with_status};
pub use route::collection_of;
use route::{Route, kind_of};
pub use select::Filter;
pub use serve::kubeconfig;

/// A response body: one chunk, or a watch stream that stays open.
pub type Body = StreamBody<mpsc::UnboundedReceiver<Result<Frame<Bytes>, Infallible>>>;

fn body(bytes: Vec<u8>) -> Body {
    let (tx, rx) = mpsc::unbounded();
    let _ = tx.unbounded_send(Ok(Frame::data(Bytes::from(bytes))));
    StreamBody::new(rx)
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
    /// The HTTP status answered (for a watch: 200 when it opened).
    pub status: u16,
}

impl Recorded {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// A failure to inject: the next `count` requests with this method whose path ends
/// with `path_suffix` get `code`.
struct Failure {
    method: String,
    path_suffix: String,
    code: u16,
    count: usize,
}

struct Watch {
    collection: String,
    namespace: Option<String>,
    filter: Filter,
    tx: mpsc::UnboundedSender<Result<Frame<Bytes>, Infallible>>,
}

/// One change, kept so that a watch can resume from any resourceVersion.
struct Change {
    version: u64,
    collection: String,
    event: &'static str,
    /// The object before a MODIFIED (to tell a watch with a selector that it left).
    old: Option<Value>,
    object: Value,
}

#[derive(Default)]
struct State {
    /// collection ("/api/v1/services") -> (namespace, name) -> object
    objects: BTreeMap<String, BTreeMap<(String, String), Value>>,
    history: Vec<Change>,
    version: u64,
    watches: Vec<Watch>,
    log: Vec<Recorded>,
    failures: Vec<Failure>,
    unavailable: bool,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(body(serde_json::to_vec(value).unwrap_or_default()));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn ok(value: &Value) -> Response<Body> {
    json_response(StatusCode::OK, value)
}

/// A `Status` object as the API server sends with every error.
fn status_response(code: u16, reason: &str, message: &str, details: Value) -> Response<Body> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason,
        "details": details, "code": code,
    });
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &status,
    )
}

fn not_found(route: &Route, name: &str) -> Response<Body> {
    let resource = route.resource();
    status_response(
        404,
        "NotFound",
        &format!("{resource} \"{name}\" not found"),
        details(route, name),
    )
}

fn details(route: &Route, name: &str) -> Value {
    let resource = route.resource();
    let (kind, group) = resource.split_once('.').unwrap_or((&resource, ""));
    json!({"name": name, "group": group, "kind": kind})
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(map) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in map {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// What a watch with `filter` sees of one change, as the API server's watch cache
/// does: an object entering the selection is ADDED, one leaving it DELETED.
fn seen_as(filter: &Filter, change: &Change) -> Option<&'static str> {
    let now = filter.matches(&change.object);
    match change.event {
        "MODIFIED" => {
            let before = change.old.as_ref().is_some_and(|o| filter.matches(o));
            match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        }
        event => now.then_some(event),
    }
}

fn event_line(event: &str, object: &Value) -> Result<Frame<Bytes>, Infallible> {
    let mut line =
        serde_json::to_vec(&json!({"type": event, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Ok(Frame::data(Bytes::from(line)))
}

fn watch_sees(
    collection: &str,
    namespace: Option<&str>,
    filter: &Filter,
    change: &Change,
) -> Option<&'static str> {
    let ns = change.object["metadata"]["namespace"].as_str();
    if change.collection != collection || namespace.is_some_and(|want| Some(want) != ns) {
        return None;
    }
    seen_as(filter, change)
}

impl FakeApi {
    pub fn new() -> FakeApi {
        FakeApi::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A kube Client talking to this server in process (needs a tokio runtime).
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) =
            tower_test::mock::pair::<Request<kube::client::Body>, Response<Body>>();
        let me = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = me.handle(request).await;
                send.send_response(response);
            }
        });
        kube::Client::new(service, "default")
    }

    fn bump(state: &mut State) -> u64 {
        state.version += 1;
        state.version
    }

    fn notify(
        state: &mut State,
        collection: &str,
        event: &'static str,
        old: Option<Value>,
        object: &Value,
    ) {
        let change = Change {
            version: state.version,
            collection: collection.to_string(),
            event,
            old,
            object: object.clone(),
        };
        state.watches.retain(|w| {
            match watch_sees(&w.collection, w.namespace.as_deref(), &w.filter, &change) {
                Some(event) => w.tx.unbounded_send(event_line(event, object)).is_ok(),
                None => !w.tx.is_closed(),
            }
        });
        state.history.push(change);
    }

    /// Stores (creates or replaces) an object as a client outside oxlb would.
    pub fn put(&self, mut object: Value) {
        let collection = collection_of(&object);
        let mut state = self.lock();
        let version = Self::bump(&mut state);
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        if object["metadata"]["uid"].is_null() {
            object["metadata"]["uid"] = json!(format!("uid-{version}"));
        }
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let old = state
            .objects
            .entry(collection.clone())
            .or_default()
            .insert((ns, name), object.clone());
        let event = if old.is_some() { "MODIFIED" } else { "ADDED" };
        Self::notify(&mut state, &collection, event, old, &object);
    }

    pub fn delete(&self, collection: &str, namespace: &str, name: &str) {
        let mut state = self.lock();
        let removed = state
            .objects
            .entry(collection.to_string())
            .or_default()
            .remove(&(namespace.to_string(), name.to_string()));
        if let Some(mut object) = removed {
            let version = Self::bump(&mut state);
            object["metadata"]["resourceVersion"] = json!(version.to_string());
            Self::notify(&mut state, collection, "DELETED", None, &object);
        }
    }

    pub fn get(&self, collection: &str, namespace: &str, name: &str) -> Option<Value> {
        let state = self.lock();
        state
            .objects
            .get(collection)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Every object of a collection (all namespaces).
    pub fn list(&self, collection: &str) -> Vec<Value> {
        let state = self.lock();
        state
            .objects
            .get(collection)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn log(&self) -> Vec<Recorded> {
        self.lock().log.clone()
    }

    pub fn writes(&self) -> Vec<Recorded> {
        self.log().into_iter().filter(Recorded::is_write).collect()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    pub fn fail(&self, method: &str, path_suffix: &str, code: u16, count: usize) {
        self.lock().failures.push(Failure {
            method: method.to_string(),
            path_suffix: path_suffix.to_string(),
            code,
            count,
        });
    }

    /// Every request fails with 503 (and open watches end) until set back.
    pub fn set_unavailable(&self, unavailable: bool) {
        let mut state = self.lock();
        state.unavailable = unavailable;
        if unavailable {
            state.watches.clear();
        }
    }

    /// Ends every open watch with a 410 Gone error event, as an API server does when the
    /// watched resourceVersion was compacted away; history is dropped so resuming fails.
    pub fn expire_watches(&self) {
        let mut state = self.lock();
        let gone = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410});
        for w in state.watches.drain(..) {
            let _ = w.tx.unbounded_send(event_line("ERROR", &gone));
        }
        state.history.clear();
    }

    pub fn open_watches(&self) -> usize {
        let mut state = self.lock();
        state.watches.retain(|w| !w.tx.is_closed());
        state.watches.len()
    }

    /// Answers one request (either transport).
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body + Send,
        B::Data: Send,
    {
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("").to_string();
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body_json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let mut state = self.lock();
        state.log.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            content_type: content_type.clone(),
            body: body_json.clone(),
            status: 0,
        });
        let entry = state.log.len() - 1;
        let response = Self::answer(&mut state, &method, &path, &query, &content_type, body_json);
        if let Some(recorded) = state.log.get_mut(entry) {
            recorded.status = response.status().as_u16();
        }
        response
    }

    fn answer(
        state: &mut State,
        method: &str,
        path: &str,
        query: &str,
        content_type: &str,
        body_json: Value,
    ) -> Response<Body> {
        if state.unavailable {
            return status_response(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
                json!({}),
            );
        }
        if let Some(f) = state
            .failures
            .iter_mut()
            .find(|f| f.count > 0 && f.method == method && path.ends_with(&f.path_suffix))
        {
            f.count -= 1;
            let code = f.code;
            let reason = if code == 409 {
                "Conflict"
            } else {
                "ServiceUnavailable"
            };
            return status_response(code, reason, "injected failure", json!({}));
        }
        let Some(route) = Route::parse(path) else {
            return non_resource(method, path);
        };
        Self::resource_request(state, method, &route, query, content_type, body_json)
    }

    fn resource_request(
        state: &mut State,
        method: &str,
        route: &Route,
        query: &str,
        content_type: &str,
        body_json: Value,
    ) -> Response<Body> {
        let (api_version, kind) = kind_of(&route.collection);
        let collection = route.collection.clone();
        let is_status = route.sub.as_deref() == Some("status");
        match (method, route.name.clone()) {
            ("GET", None) if select::query_param(query, "watch").is_some_and(|w| w != "false") => {
                let (tx, rx) = mpsc::unbounded();
                let since: u64 = select::query_param(query, "resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let filter = Filter::from_query(query);
                let namespace = route.namespace.clone();
                for change in state.history.iter().filter(|c| c.version > since) {
                    if let Some(event) =
                        watch_sees(&collection, namespace.as_deref(), &filter, change)
                    {
                        let _ = tx.unbounded_send(event_line(event, &change.object));
                    }
                }
                state.watches.push(Watch {
                    collection,
                    namespace,
                    filter,
                    tx,
                });
                let mut response = Response::new(StreamBody::new(rx));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            ("GET", None) => {
                let filter = Filter::from_query(query);
                // Pagination as the API server does it for `limit` (kube's watcher and
                // client-go list in pages of 500): at most `limit` items and a
                // `continue` token; every page carries the first page's
                // resourceVersion, so a watch from it delivers what changed meanwhile.
                // Later pages read the objects as they are then (the real server reads
                // one snapshot), after the last key returned.
                let limit: Option<usize> = select::query_param(query, "limit")
                    .and_then(|l| l.parse().ok())
                    .filter(|l| *l > 0);
                let token = select::query_param(query, "continue").filter(|t| !t.is_empty());
                let (version, after) = match token.as_deref().and_then(|t| t.split_once(':')) {
                    Some((version, key)) => (
                        version.to_string(),
                        key.split_once('/')
                            .map(|(ns, name)| (ns.to_string(), name.to_string())),
                    ),
                    None => (state.version.to_string(), None),
                };
                let mut matching = state
                    .objects
                    .get(&collection)
                    .into_iter()
                    .flatten()
                    .filter(|(key, _)| after.as_ref().is_none_or(|after| *key > after))
                    .filter(|((ns, _), v)| {
                        route.namespace.as_deref().is_none_or(|want| want == ns)
                            && filter.matches(v)
                    });
                let mut items = Vec::new();
                let mut last = None;
                while limit.is_none_or(|l| items.len() < l) {
                    let Some((key, object)) = matching.next() else {
                        break;
                    };
                    items.push(object.clone());
                    last = Some(key.clone());
                }
                let more = matching.next().is_some();
                let mut metadata = json!({"resourceVersion": version});
                if more && let Some((ns, name)) = last {
                    metadata["continue"] = json!(format!("{version}:{ns}/{name}"));
                }
                ok(&json!({
                    "apiVersion": api_version, "kind": format!("{kind}List"),
                    "metadata": metadata,
                    "items": items,
                }))
            }
            ("GET", Some(name)) => match state
                .objects
                .get(&collection)
                .and_then(|m| m.get(&route.key(&name)))
            {
                Some(object) => ok(object),
                None => not_found(route, &name),
            },
            ("POST", None) => Self::create(state, route, body_json),
            ("PUT" | "PATCH", Some(name)) => {
                let existing = state
                    .objects
                    .get(&collection)
                    .and_then(|m| m.get(&route.key(&name)))
                    .cloned();
                // Server-side apply creates a missing object (not through /status).
                let is_apply = content_type.contains("apply-patch");
                let mut object = match (existing.clone(), is_apply && !is_status) {
                    (Some(o), _) => o,
                    (None, true) => {
                        let mut fresh = json!({"apiVersion": api_version, "kind": kind,
                            "metadata": {"name": name}});
                        if let Some(ns) = &route.namespace {
                            fresh["metadata"]["namespace"] = json!(ns);
                        }
                        fresh
                    }
                    (None, false) => return not_found(route, &name),
                };
                if let Some(sent) = body_json["metadata"]["resourceVersion"].as_str()
                    && object["metadata"]["resourceVersion"].as_str() != Some(sent)
                {
                    let message = format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been \
                         modified; please apply your changes to the latest version and try again",
                        route.resource()
                    );
                    return status_response(409, "Conflict", &message, details(route, &name));
                }
                let kept_status = object.get("status").cloned();
                let identity = object["metadata"]["uid"].clone();
                if method == "PUT" {
                    if is_status {
                        object["status"] = body_json["status"].clone();
                        // As for PATCH below: a Service's status write keeps metadata.
                        if collection == "/api/v1/services" {
                            for field in ["labels", "annotations"] {
                                object["metadata"][field] = body_json["metadata"][field].clone();
                            }
                        }
                    } else {
                        object = body_json;
                        // The status subresource is written only through /status.
                        match &kept_status {
                            Some(status) => object["status"] = status.clone(),
                            None => {
                                if let Some(map) = object.as_object_mut() {
                                    map.remove("status");
                                }
                            }
                        }
                    }
                } else {
                    let mut patch = body_json;
                    if is_status {
                        // Only what the patch names: a patch without `status` (an
                        // annotation alone) leaves the status as it is.
                        let mut kept = json!({});
                        if let Some(status) = patch.get("status") {
                            kept["status"] = status.clone();
                        }
                        // A Service's status write keeps metadata: kube-apiserver's
                        // serviceStatusStrategy resets only `spec` (pkg/registry/core/
                        // service/strategy.go); MetalLB and oxlb write the pool
                        // annotation this way.
                        if collection == "/api/v1/services" {
                            for field in ["labels", "annotations"] {
                                if let Some(value) = patch["metadata"].get(field) {
                                    kept["metadata"][field] = value.clone();
                                }
                            }
                        }
                        patch = kept;
                    } else if let Some(map) = patch.as_object_mut() {
                        map.remove("status");
                    }
                    if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                    }
                    merge(&mut object, &patch);
                }
                let version = Self::bump(state);
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                object["metadata"]["uid"] = if identity.is_null() {
                    json!(format!("uid-{version}"))
                } else {
                    identity
                };
                object["metadata"]["name"] = json!(name);
                if let Some(ns) = &route.namespace {
                    object["metadata"]["namespace"] = json!(ns);
                }
                state
                    .objects
                    .entry(collection.clone())
                    .or_default()
                    .insert(route.key(&name), object.clone());
                let event = if existing.is_some() {
                    "MODIFIED"
                } else {
                    "ADDED"
                };
                Self::notify(state, &collection, event, existing, &object);
                ok(&object)
            }
            ("DELETE", Some(name)) => {
                let removed = state
                    .objects
                    .get_mut(&collection)
                    .and_then(|m| m.remove(&route.key(&name)));
                match removed {
                    Some(mut object) => {
                        let version = Self::bump(state);
                        object["metadata"]["resourceVersion"] = json!(version.to_string());
                        Self::notify(state, &collection, "DELETED", None, &object);
                        ok(&object)
                    }
                    None => not_found(route, &name),
                }
            }
            _ => status_response(
                405,
                "MethodNotAllowed",
                &format!(
                    "the server does not allow this method on the requested resource ({method} in the fake)"
                ),
                json!({}),
            ),
        }
    }

    fn create(state: &mut State, route: &Route, body_json: Value) -> Response<Body> {
        let mut object = body_json;
        let mut name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if name.is_empty()
            && let Some(prefix) = object["metadata"]["generateName"].as_str()
        {
            // Five characters, as the API server's generator appends.
            name = format!("{prefix}{:05x}", (state.version + 1) & 0xf_ffff);
        }
        if name.is_empty() {
            return status_response(
                422,
                "Invalid",
                "metadata.name: Required value: name or generateName is required",
                json!({}),
            );
        }
        if state
            .objects
            .get(&route.collection)
            .is_some_and(|m| m.contains_key(&route.key(&name)))
        {
            return status_response(
                409,
                "AlreadyExists",
                &format!("{} \"{name}\" already exists", route.resource()),
                details(route, &name),
            );
        }
        let version = Self::bump(state);
        object["metadata"]["name"] = json!(name);
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        object["metadata"]["uid"] = json!(format!("uid-{version}"));
        if let Some(ns) = &route.namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        state
            .objects
            .entry(route.collection.clone())
            .or_default()
            .insert(route.key(&name), object.clone());
        Self::notify(state, &route.collection, "ADDED", None, &object);
        json_response(StatusCode::CREATED, &object)
    }
}

/// `/version` and discovery roots; anything else is a 404 `Status`, as upstream.
fn non_resource(method: &str, path: &str) -> Response<Body> {
    match (method, path.trim_end_matches('/')) {
        ("GET", "/version") => ok(&json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-oxlb-fakeapi",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": "", "compiler": "", "platform": "linux/amd64",
        })),
        ("GET", "/api") => ok(&json!({
            "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [],
        })),
        _ => status_response(
            404,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        ),
    }
}
