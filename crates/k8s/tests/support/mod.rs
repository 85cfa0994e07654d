//! A small in-memory Kubernetes API server behind a tower-test mock pair: enough of
//! list / watch / get / create / replace / merge-patch / apply for the controller,
//! with every request recorded and failures that tests script (409, 503, watch 410).
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

pub mod helm;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};

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
    tx: mpsc::UnboundedSender<Result<Frame<Bytes>, Infallible>>,
}

#[derive(Default)]
struct State {
    /// collection ("/api/v1/services") -> (namespace, name) -> object
    objects: BTreeMap<String, BTreeMap<(String, String), Value>>,
    /// Every change, for watches resuming from a resourceVersion.
    history: Vec<(u64, String, String, Value)>,
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

/// Splits `/api/v1/namespaces/ns/services/name/status` into
/// (collection `/api/v1/services`, namespace, name, subresource).
fn split(path: &str) -> (String, Option<String>, Option<String>, Option<String>) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let prefix_len = if parts.first() == Some(&"api") { 2 } else { 3 };
    let prefix = parts[..prefix_len].join("/");
    let rest = &parts[prefix_len..];
    let (namespace, rest) = if rest.len() >= 2 && rest[0] == "namespaces" && rest.len() > 2 {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let collection = format!("/{prefix}/{}", rest[0]);
    (
        collection,
        namespace,
        rest.get(1).map(|s| s.to_string()),
        rest.get(2).map(|s| s.to_string()),
    )
}

fn kind_of(collection: &str) -> (&'static str, &'static str) {
    match collection.rsplit('/').next().unwrap_or("") {
        "services" => ("v1", "Service"),
        "namespaces" => ("v1", "Namespace"),
        "secrets" => ("v1", "Secret"),
        "configmaps" => ("v1", "ConfigMap"),
        "ipaddresspools" => ("metallb.io/v1beta1", "IPAddressPool"),
        "l2advertisements" => ("metallb.io/v1beta1", "L2Advertisement"),
        "bgpadvertisements" => ("metallb.io/v1beta1", "BGPAdvertisement"),
        "bgppeers" => ("metallb.io/v1beta2", "BGPPeer"),
        "bfdprofiles" => ("metallb.io/v1beta1", "BFDProfile"),
        "communities" => ("metallb.io/v1beta1", "Community"),
        "configurationstates" => ("metallb.io/v1beta1", "ConfigurationState"),
        "leases" => ("coordination.k8s.io/v1", "Lease"),
        "nodes" => ("v1", "Node"),
        "pods" => ("v1", "Pod"),
        "endpointslices" => ("discovery.k8s.io/v1", "EndpointSlice"),
        "servicel2statuses" => ("metallb.io/v1beta1", "ServiceL2Status"),
        "servicebgpstatuses" => ("metallb.io/v1beta1", "ServiceBGPStatus"),
        "events" => ("events.k8s.io/v1", "Event"),
        _ => ("v1", "Unknown"),
    }
}

/// The collection path of an object given as JSON.
pub fn collection_of(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let kind = object["kind"].as_str().unwrap_or("");
    let plural = match kind {
        "Service" => "services",
        "Namespace" => "namespaces",
        "Secret" => "secrets",
        "ConfigMap" => "configmaps",
        "IPAddressPool" => "ipaddresspools",
        "L2Advertisement" => "l2advertisements",
        "BGPAdvertisement" => "bgpadvertisements",
        "BGPPeer" => "bgppeers",
        "BFDProfile" => "bfdprofiles",
        "Community" => "communities",
        "Lease" => "leases",
        "Node" => "nodes",
        "Pod" => "pods",
        "EndpointSlice" => "endpointslices",
        other => panic!("unknown kind {other}"),
    };
    if api_version.contains('/') {
        format!("/apis/{api_version}/{plural}")
    } else {
        format!("/api/{api_version}/{plural}")
    }
}

fn status_response(code: u16, reason: &str, message: &str) -> Response<Body> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(body(serde_json::to_vec(&status).unwrap()))
        .unwrap()
}

fn ok(value: &Value) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(map) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in map {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

impl FakeApi {
    pub fn new() -> FakeApi {
        FakeApi::default()
    }

    /// A kube Client talking to this server.
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

    fn notify(state: &mut State, collection: &str, event: &str, object: &Value) {
        let version = state.version;
        state.history.push((
            version,
            collection.to_string(),
            event.to_string(),
            object.clone(),
        ));
        let ns = object["metadata"]["namespace"].as_str().map(str::to_string);
        let line = serde_json::to_vec(&json!({"type": event, "object": object})).unwrap();
        state.watches.retain(|w| {
            if w.collection != collection || (w.namespace.is_some() && w.namespace != ns) {
                return !w.tx.is_closed();
            }
            let mut bytes = line.clone();
            bytes.push(b'\n');
            w.tx.unbounded_send(Ok(Frame::data(Bytes::from(bytes))))
                .is_ok()
        });
    }

    /// Stores (creates or replaces) an object as a client outside oxlb would.
    pub fn put(&self, mut object: Value) {
        let collection = collection_of(&object);
        let mut state = self.state.lock().unwrap();
        let version = Self::bump(&mut state);
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        if object["metadata"]["uid"].is_null() {
            object["metadata"]["uid"] = json!(format!("uid-{version}"));
        }
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let existed = state
            .objects
            .entry(collection.clone())
            .or_default()
            .insert((ns, name), object.clone())
            .is_some();
        Self::notify(
            &mut state,
            &collection,
            if existed { "MODIFIED" } else { "ADDED" },
            &object,
        );
    }

    pub fn delete(&self, collection: &str, namespace: &str, name: &str) {
        let mut state = self.state.lock().unwrap();
        let removed = state
            .objects
            .entry(collection.to_string())
            .or_default()
            .remove(&(namespace.to_string(), name.to_string()));
        if let Some(mut object) = removed {
            let version = Self::bump(&mut state);
            object["metadata"]["resourceVersion"] = json!(version.to_string());
            Self::notify(&mut state, collection, "DELETED", &object);
        }
    }

    pub fn get(&self, collection: &str, namespace: &str, name: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .get(collection)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn log(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn writes(&self) -> Vec<Recorded> {
        self.log().into_iter().filter(Recorded::is_write).collect()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    pub fn fail(&self, method: &str, path_suffix: &str, code: u16, count: usize) {
        self.state.lock().unwrap().failures.push(Failure {
            method: method.to_string(),
            path_suffix: path_suffix.to_string(),
            code,
            count,
        });
    }

    /// Every request fails with 503 (and open watches end) until set back.
    pub fn set_unavailable(&self, unavailable: bool) {
        let mut state = self.state.lock().unwrap();
        state.unavailable = unavailable;
        if unavailable {
            state.watches.clear();
        }
    }

    /// Ends every open watch with a 410 Gone error event, as an API server does when the
    /// watched resourceVersion was compacted away; history is dropped so resuming fails.
    pub fn expire_watches(&self) {
        let mut state = self.state.lock().unwrap();
        let line = serde_json::to_vec(&json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410}}))
        .unwrap();
        for w in state.watches.drain(..) {
            let mut bytes = line.clone();
            bytes.push(b'\n');
            let _ = w.tx.unbounded_send(Ok(Frame::data(Bytes::from(bytes))));
        }
        state.history.clear();
    }

    pub fn open_watches(&self) -> usize {
        let mut state = self.state.lock().unwrap();
        state.watches.retain(|w| !w.tx.is_closed());
        state.watches.len()
    }

    async fn handle(&self, request: Request<kube::client::Body>) -> Response<Body> {
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("").to_string();
        let content_type = request
            .headers()
            .get("content-type")
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
        let mut state = self.state.lock().unwrap();
        state.log.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            content_type: content_type.clone(),
            body: body_json.clone(),
        });
        if state.unavailable {
            return status_response(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
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
            return status_response(code, reason, "injected failure");
        }
        let (collection, namespace, name, sub) = split(&path);
        let (api_version, kind) = kind_of(&collection);
        let key = |name: &str| (namespace.clone().unwrap_or_default(), name.to_string());
        match (method.as_str(), name) {
            ("GET", None) if query_param(&query, "watch").is_some() => {
                let (tx, rx) = mpsc::unbounded();
                let since: u64 = query_param(&query, "resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                for (version, c, event, object) in &state.history {
                    let matches_ns = namespace.is_none()
                        || object["metadata"]["namespace"].as_str() == namespace.as_deref();
                    if *version > since && *c == collection && matches_ns {
                        let mut line =
                            serde_json::to_vec(&json!({"type": event, "object": object})).unwrap();
                        line.push(b'\n');
                        let _ = tx.unbounded_send(Ok(Frame::data(Bytes::from(line))));
                    }
                }
                state.watches.push(Watch {
                    collection,
                    namespace,
                    tx,
                });
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(StreamBody::new(rx))
                    .unwrap()
            }
            ("GET", None) => {
                let field = query_param(&query, "fieldSelector")
                    .map(|f| f.replace("%3D", "=").replace("%3d", "="));
                let items: Vec<Value> = state
                    .objects
                    .get(&collection)
                    .map(|m| {
                        m.iter()
                            .filter(|((ns, n), _)| {
                                namespace.as_deref().is_none_or(|want| want == ns)
                                    && field
                                        .as_deref()
                                        .and_then(|f| f.strip_prefix("metadata.name="))
                                        .is_none_or(|want| want == n)
                            })
                            .map(|(_, v)| v.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                ok(&json!({
                    "apiVersion": api_version, "kind": format!("{kind}List"),
                    "metadata": {"resourceVersion": state.version.to_string()},
                    "items": items,
                }))
            }
            ("GET", Some(name)) => match state
                .objects
                .get(&collection)
                .and_then(|m| m.get(&key(&name)))
            {
                Some(object) => ok(object),
                None => status_response(404, "NotFound", "not found"),
            },
            ("POST", None) => {
                let name = body_json["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if state
                    .objects
                    .get(&collection)
                    .is_some_and(|m| m.contains_key(&key(&name)))
                {
                    return status_response(409, "AlreadyExists", "already exists");
                }
                let mut object = body_json;
                let version = Self::bump(&mut state);
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                object["metadata"]["namespace"] = json!(namespace.clone().unwrap_or_default());
                state
                    .objects
                    .entry(collection.clone())
                    .or_default()
                    .insert(key(&name), object.clone());
                Self::notify(&mut state, &collection, "ADDED", &object);
                ok(&object)
            }
            ("PUT" | "PATCH", Some(name)) => {
                let existing = state
                    .objects
                    .get(&collection)
                    .and_then(|m| m.get(&key(&name)))
                    .cloned();
                let is_apply = content_type.contains("apply-patch");
                let mut object = match (existing, is_apply) {
                    (Some(o), _) => o,
                    (None, true) => json!({"apiVersion": api_version, "kind": kind,
                        "metadata": {"name": name, "namespace": namespace.clone().unwrap_or_default()}}),
                    (None, false) => return status_response(404, "NotFound", "not found"),
                };
                if let Some(sent) = body_json["metadata"]["resourceVersion"].as_str()
                    && object["metadata"]["resourceVersion"].as_str() != Some(sent)
                {
                    return status_response(409, "Conflict", "the object has been modified");
                }
                let created = object["metadata"]["resourceVersion"].is_null();
                if method == "PUT" {
                    object = body_json;
                } else {
                    let mut patch = body_json;
                    if sub.as_deref() == Some("status") {
                        // The status subresource ignores everything but status.
                        patch = json!({"status": patch["status"].clone()});
                    } else if let Some(map) = patch.as_object_mut() {
                        map.remove("status");
                    }
                    if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                    }
                    merge(&mut object, &patch);
                }
                let version = Self::bump(&mut state);
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                object["metadata"]["namespace"] = json!(namespace.clone().unwrap_or_default());
                state
                    .objects
                    .entry(collection.clone())
                    .or_default()
                    .insert(key(&name), object.clone());
                Self::notify(
                    &mut state,
                    &collection,
                    if created { "ADDED" } else { "MODIFIED" },
                    &object,
                );
                ok(&object)
            }
            ("DELETE", Some(name)) => {
                let removed = state
                    .objects
                    .get_mut(&collection)
                    .and_then(|m| m.remove(&key(&name)));
                match removed {
                    Some(mut object) => {
                        let version = Self::bump(&mut state);
                        object["metadata"]["resourceVersion"] = json!(version.to_string());
                        Self::notify(&mut state, &collection, "DELETED", &object);
                        ok(&object)
                    }
                    None => status_response(404, "NotFound", "not found"),
                }
            }
            _ => status_response(405, "MethodNotAllowed", "not supported by the fake"),
        }
    }
}

/// Polls `condition` every 20 ms until it holds (generous limit, not a timed assertion).
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn service(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}],
                 "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack"},
    })
}

pub fn with_status(mut service: Value, ip: &str, pool: &str) -> Value {
    service["metadata"]["annotations"] = json!({"metallb.io/ip-allocated-from-pool": pool});
    service["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
    service
}

pub fn pool(name: &str, addresses: &[&str]) -> Value {
    json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": "metallb-system"},
        "spec": {"addresses": addresses},
    })
}

pub fn l2(name: &str) -> Value {
    json!({"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
           "metadata": {"name": name, "namespace": "metallb-system"}, "spec": {}})
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// The ingress IPs of a stored Service.
pub fn ingress(api: &FakeApi, namespace: &str, name: &str) -> Vec<String> {
    api.get("/api/v1/services", namespace, name)
        .and_then(|s| s["status"]["loadBalancer"]["ingress"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i["ip"].as_str().map(str::to_string))
        .collect()
}
