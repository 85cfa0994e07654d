//! A rehearsal cluster for `oxlb controller` and `oxlb speaker` as real processes: the
//! network of tests/common (workstation — FRR router — LAN bridge — node namespaces)
//! plus an `api` namespace on the LAN where the in-memory API server (oxlb-fakeapi) is
//! served over HTTP, from a thread of this test that entered that namespace. The test
//! keeps the `FakeApi` handle: it seeds what a cluster holds and reads what the
//! binaries wrote (state and request log).
//!
//! Stand-ins, each for what a real cluster would provide: the Node, Pod and
//! EndpointSlice objects (seeded, not kept by a kubelet or controller-manager); a local
//! route for the service pool on every node (what kube-proxy in IPVS mode does with its
//! kube-ipvs0 dummy interface); `oxlb lab-backend` as the workload, listening on the
//! node's addresses (a hostNetwork pod: pod IP = node IP).
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use oxlb_fakeapi::{FakeApi, kubeconfig};
use oxlb_netlab::{Guarded, Netns};
use serde_json::{Value, json};

use crate::common::{OXLB, Topo, attach, node_ip};

pub mod helm;

pub const API_IP: &str = "10.77.0.5";
pub const API_PORT: u16 = 6443;
pub const NS: &str = "metallb-system";
pub const SPEAKER_METRICS: &str = "127.0.0.1:7472";
pub const CONTROLLER_METRICS: &str = "127.0.0.1:7473";
pub const SPEAKER_LABELS: [(&str, &str); 2] = [
    ("app.kubernetes.io/name", "oxlb"),
    ("app.kubernetes.io/component", "speaker"),
];

/// The fake API server, served from a thread inside the `api` namespace.
pub struct ApiServer {
    pub api: FakeApi,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    pub fn start(ns: &Netns, address: SocketAddr) -> ApiServer {
        let api = FakeApi::new();
        let server = api.clone();
        let netns_path = PathBuf::from("/run/netns").join(ns.name());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            // setns(2) moves only this thread; every socket it opens from now on lives
            // in the `api` namespace. A current-thread runtime keeps all the serving here.
            let entered = std::fs::File::open(&netns_path).and_then(|f| {
                rustix::thread::move_into_link_name_space(
                    f.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(std::io::Error::from)
            });
            let runtime = entered.and_then(|()| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            });
            let runtime = match runtime {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(address).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("bind {address}: {e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::select! {
                    _ = server.serve(listener) => {}
                    _ = stop_rx => {}
                }
            });
        });
        ready_rx
            .recv()
            .expect("the API server thread")
            .expect("the API server listens");
        ApiServer {
            api,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Fields drop in order: controllers, the API server, the network (speakers,
/// backends, FRR, namespaces), then the `api` namespace.
pub struct Cluster {
    /// `oxlb controller` replicas by identity, in the node namespaces they run in.
    pub controllers: Vec<(String, usize, Option<Guarded>)>,
    pub server: ApiServer,
    pub topo: Topo,
    pub api_ns: Netns,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// The network, FRR with `frr_conf`, the API server (empty) and a backend per node.
    pub fn build(nodes: usize, frr_conf: &str, daemons: &[&str]) -> Cluster {
        let mut topo = Topo::build_with_frr(nodes, frr_conf, daemons);
        let api_ns = Netns::new("e2eapi").unwrap();
        attach(&topo.lan, &api_ns, "api", API_IP);
        let server = ApiServer::start(&api_ns, format!("{API_IP}:{API_PORT}").parse().unwrap());
        let kubeconfig_path = topo.dir.0.join("kubeconfig");
        std::fs::write(
            &kubeconfig_path,
            kubeconfig(&format!("http://{API_IP}:{API_PORT}")),
        )
        .unwrap();
        for i in 0..nodes {
            let ns = &topo.nodes[i].ns;
            // kube-proxy's part: the node accepts traffic for every service IP.
            // (10.77.0.192/27 holds the Layer 2 pool, on the LAN.)
            for pool in ["10.79.0.0/24", "10.77.0.192/27"] {
                ns.exec(&[
                    "ip", "route", "add", "local", pool, "dev", "lo", "table", "local",
                ])
                .unwrap();
            }
            topo.start_backend(i);
        }
        Cluster {
            controllers: Vec::new(),
            server,
            topo,
            api_ns,
            kubeconfig: kubeconfig_path,
        }
    }

    pub fn api(&self) -> &FakeApi {
        &self.server.api
    }

    /// Nodes, their speaker pods, namespaces: what the cluster has before oxlb starts.
    pub fn seed_cluster(&self) {
        let api = self.api();
        api.put(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NS, "labels": {"kubernetes.io/metadata.name": NS}}}));
        api.put(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}}));
        for node in &self.topo.nodes {
            api.put(node_object(&node.name, &node.ip));
            api.put(speaker_pod(&node.name, &node.ip, true));
        }
    }

    /// Every document of a multi-document YAML text, as JSON objects, into the fake.
    pub fn apply_yaml(&self, text: &str) {
        for doc in text.split("\n---\n").filter(|d| !d.trim().is_empty()) {
            let value: Value = serde_saphyr::from_str(doc)
                .unwrap_or_else(|e| panic!("bad YAML document {doc}: {e}"));
            self.api().put(value);
        }
    }

    /// A log file in the scratch directory.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.topo.dir.0.join(format!("{name}.log"))
    }

    /// `oxlb ARGS` in node `node`'s namespace with the cluster's kubeconfig, logged to
    /// `<log>.log` in the scratch directory.
    pub fn spawn(&self, node: usize, args: &[&str], env: &[(&str, &str)], log: &str) -> Guarded {
        let file = std::fs::File::create(self.log_path(log)).unwrap();
        let mut command = self.topo.nodes[node].ns.command(OXLB);
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_BACKTRACE", "1")
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in env {
            command.env(k, v);
        }
        Guarded::new(command.spawn().unwrap())
    }

    /// `oxlb speaker` on node `i` (0-based), as the DaemonSet would run it.
    pub fn start_speaker(&mut self, i: usize) {
        self.start_speaker_with(i, &[]);
    }

    /// [`Cluster::start_speaker`] with more arguments (logged to `<node>-speaker`, a
    /// restart starts the log afresh).
    pub fn start_speaker_with(&mut self, i: usize, extra: &[&str]) {
        let name = self.topo.nodes[i].name.clone();
        let mut args = vec![
            "speaker",
            "--node-name",
            &name,
            "--metrics-address",
            SPEAKER_METRICS,
            "--log-level",
            "info",
        ];
        args.extend_from_slice(extra);
        let speaker = self.spawn(i, &args, &[], &format!("{name}-speaker"));
        self.topo.nodes[i].run = Some(speaker);
    }

    /// An `oxlb controller` replica named `identity` (its pod name) in node `i`; the
    /// same identity again is that replica restarted (logged to `<identity>-restarted`).
    pub fn start_controller(&mut self, identity: &str, i: usize) {
        let known = self.controllers.iter().any(|(id, _, _)| id == identity);
        let log = if known {
            format!("{identity}-restarted")
        } else {
            identity.to_string()
        };
        let controller = self.spawn(
            i,
            &[
                "controller",
                "--metrics-address",
                CONTROLLER_METRICS,
                "--log-level",
                "info",
            ],
            &[("POD_NAME", identity)],
            &log,
        );
        match self
            .controllers
            .iter_mut()
            .find(|(id, _, _)| id == identity)
        {
            Some(entry) => *entry = (identity.to_string(), i, Some(controller)),
            None => self
                .controllers
                .push((identity.to_string(), i, Some(controller))),
        }
    }

    pub fn controller(&mut self, identity: &str) -> &mut Option<Guarded> {
        &mut self
            .controllers
            .iter_mut()
            .find(|(id, _, _)| id == identity)
            .expect("a controller by that name")
            .2
    }

    /// The holder of the controller's Lease, as stored.
    pub fn lease_holder(&self) -> Option<String> {
        self.api()
            .list("/apis/coordination.k8s.io/v1/leases")
            .into_iter()
            .find(|l| l["metadata"]["namespace"] == NS)
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    }

    /// The first ingress IP of every stored Service, by "ns/name".
    pub fn service_ips(&self) -> std::collections::BTreeMap<String, String> {
        self.api()
            .list("/api/v1/services")
            .into_iter()
            .filter_map(|s| {
                let ip = s["status"]["loadBalancer"]["ingress"][0]["ip"].as_str()?;
                Some((
                    format!(
                        "{}/{}",
                        s["metadata"]["namespace"].as_str()?,
                        s["metadata"]["name"].as_str()?
                    ),
                    ip.to_string(),
                ))
            })
            .collect()
    }

    /// The tails of every speaker and controller log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<String> = self
            .topo
            .nodes
            .iter()
            .map(|n| format!("{}-speaker", n.name))
            .collect();
        names.extend(self.controllers.iter().map(|(id, _, _)| id.clone()));
        for name in names {
            let text = std::fs::read_to_string(self.log_path(&name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            out.push_str(&format!("--- {name} ---\n{}\n", tail.join("\n")));
        }
        out
    }
}

pub fn node_object(name: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True"},
                           {"type": "NetworkUnavailable", "status": "False"}],
        },
    })
}

/// The speaker DaemonSet's pod on `node` (hostNetwork: pod IP = node IP).
pub fn speaker_pod(node: &str, ip: &str, ready: bool) -> Value {
    let labels: serde_json::Map<String, Value> = SPEAKER_LABELS
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let status = if ready { "True" } else { "False" };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("oxlb-speaker-{node}"), "namespace": NS, "labels": labels},
        "spec": {"nodeName": node, "hostNetwork": true, "containers": [{"name": "speaker", "image": "oxlb"}]},
        "status": {"phase": "Running", "podIP": ip, "hostIP": ip,
            "conditions": [{"type": "Ready", "status": status}, {"type": "ContainersReady", "status": status}]},
    })
}

/// A LoadBalancer Service; `metallb`: the IP and pool MetalLB's controller wrote.
pub fn service(name: &str, metallb: Option<(&str, &str)>) -> Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "LoadBalancer", "selector": {"app": name},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}],
                 "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Cluster",
                 "internalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": true},
        "status": {"loadBalancer": {}},
    });
    if let Some((ip, pool)) = metallb {
        s["metadata"]["annotations"] = json!({"metallb.io/ip-allocated-from-pool": pool});
        // ipMode: what the API server (1.30+) defaults next to an ingress IP.
        s["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}});
    }
    s
}

/// The Service's EndpointSlice: one ready endpoint on every node (hostNetwork backends).
pub fn endpoint_slice(service: &str, nodes: usize) -> Value {
    let endpoints: Vec<Value> = (1..=nodes)
        .map(|i| {
            json!({"addresses": [node_ip(i)], "nodeName": format!("node{i}"),
                "conditions": {"ready": true, "serving": true, "terminating": false}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-x7k2p"), "namespace": "default",
            "labels": {"kubernetes.io/service-name": service,
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": endpoints,
    })
}

/// Waits up to `limit` (generous, not an assertion) for `f` to give a value.
pub fn wait<T>(limit: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    oxlb_netlab::wait_until(limit, Duration::from_millis(50), f)
}

/// Every distinct request the binaries made ("METHOD path [watch] -> status"), counted.
pub fn request_summary(api: &FakeApi) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for r in api.log() {
        let watch = if r.query.contains("watch=true") {
            " (watch)"
        } else {
            ""
        };
        *out.entry(format!("{} {}{watch} -> {}", r.method, r.path, r.status))
            .or_insert(0) += 1;
    }
    out
}

/// Requests answered with an error other than the expected ones: 404 to a GET (an
/// optional read of something absent, e.g. the Lease before it exists), 409 (optimistic
/// concurrency doing its job: two replicas racing for the Lease, a write based on an
/// outdated read) and 503 (the outage the test scripts).
pub fn unexpected_errors(api: &FakeApi) -> Vec<String> {
    api.log()
        .into_iter()
        .filter(|r| r.status >= 300)
        .filter(|r| !(r.status == 404 && r.method == "GET"))
        .filter(|r| r.status != 409 && r.status != 503)
        .map(|r| {
            format!(
                "{} {}?{} -> {} {}",
                r.method, r.path, r.query, r.status, r.body
            )
        })
        .collect()
}

/// The MAC address of `interface` in `ns`.
pub fn mac_of(ns: &Netns, interface: &str) -> String {
    let text = ns
        .exec_stdout(&["ip", "-j", "link", "show", interface])
        .unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json[0]["address"].as_str().unwrap().to_lowercase()
}

/// The distinct MACs answering ARP for `ip` on `ns`'s `interface` (arping, two tries).
pub fn arping(ns: &Netns, interface: &str, ip: &str) -> Vec<String> {
    let output = ns
        .command("arping")
        .args(["-r", "-c", "2", "-w", "1", "-i", interface, ip])
        .output()
        .unwrap();
    let mut macs: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect();
    macs.sort();
    macs.dedup();
    macs
}
