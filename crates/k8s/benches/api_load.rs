//! API load of the speakers at 1,000 nodes and 10,000 Services (issue 22): the
//! requests per second the speakers send to the API server at steady state, after one
//! Service change, after a node failure and during a rolling restart of every speaker.
//!
//! 1,000 real speakers do not fit on one machine (each caches every Service and
//! EndpointSlice), so the simulation runs, for each of the 1,000 nodes, the speaker's
//! own decisions on one shared copy of the cluster: `cluster_input` and the announce
//! decision, `per_service`, the wanted status objects, the status planner
//! (`status_plan`) against a model of the API's objects, and the write budget
//! (`write_budget`) in simulated time. The watches (what every speaker opens, lists
//! and renews) are measured on one real `run_speaker` against the in-memory API server
//! in the same run, not modelled; the same real speaker holds the model to account
//! (its status writes and events must equal what the model plans for its node).
//!
//! Printed against a MetalLB-model comparator computed in the same run from the same
//! plans: status objects owned by the speaker Pod (a restart has the garbage collector
//! delete the node's objects and the new speaker write them all again, with a
//! `nodeAssigned` event each), writes paced only by controller-runtime's default client
//! limit (20 requests/s, burst 30, per speaker).
//!
//! Two scenarios: "mixed" (half the Services Layer 2, half BGP, all with
//! `externalTrafficPolicy: Local`, 5 endpoints each: only the nodes with endpoints
//! announce and write) and "bgp-everywhere" (every Service BGP with
//! `externalTrafficPolicy: Cluster`: every node announces every Service, nodes x
//! Services objects, MetalLB's model). Layer 2 with `Cluster` (every live node a
//! candidate for every IP) is not simulated on 1,000 nodes: one speaker's pass is
//! timed instead, against a pass of "mixed", because that pass is what grows.
//! Run: `cargo bench -p oxlb-k8s --bench api_load` (1,000 nodes, 10,000 Services, a few
//! minutes); under `cargo test` it runs with 20 nodes and 200 Services.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use oxlb_announce::ServiceKey;
use oxlb_announce::health::Health;
use oxlb_config::Config;
use oxlb_k8s::speaker::status_plan::{Presence, StatusPlanner, StatusView, StatusWrite};
use oxlb_k8s::speaker::write_budget::WriteBudget;
use oxlb_k8s::speaker::{
    SpeakerService, cluster_input, desired_bgp_statuses, desired_l2_statuses, per_service,
    status_name,
};
use oxlb_node::views::{SliceView, slice_view};
use serde_json::{Value, json};

const NS: &str = "metallb-system";
/// Seconds between two speakers of a rolling restart (a DaemonSet replaces one Pod
/// at a time; the next when the new one is Ready).
const ROLLING_STEP: u64 = 10;
/// controller-runtime's default client limit (MetalLB's speaker keeps it).
const CLIENT_QPS: f64 = 20.0;
const CLIENT_BURST: f64 = 30.0;

struct Sizes {
    nodes: usize,
    services: usize,
    endpoints: usize,
}

fn sizes() -> Sizes {
    if std::env::args().any(|a| a == "--bench") {
        Sizes {
            nodes: 1_000,
            services: 10_000,
            endpoints: 5,
        }
    } else {
        Sizes {
            nodes: 20,
            services: 200,
            endpoints: 5,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// Half Layer 2, half BGP, all `externalTrafficPolicy: Local`.
    Mixed,
    /// All BGP, `Cluster`: every node announces every Service.
    BgpEverywhere,
    /// All Layer 2, `Cluster`: every live node is a candidate for every IP (only one
    /// pass is timed: the election costs Services x nodes hashes a pass).
    L2Cluster,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Mixed => "mixed (L2 + BGP, Local)",
            Scenario::BgpEverywhere => "bgp-everywhere (Cluster)",
            Scenario::L2Cluster => "l2-cluster",
        }
    }
}

fn config_yaml() -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: l2pool\n  namespace: {NS}\n\
         spec:\n  addresses: [10.10.0.0/16]\n---\n\
         apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: bgppool\n  namespace: {NS}\n\
         spec:\n  addresses: [10.20.0.0/16]\n---\n\
         apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\n  namespace: {NS}\n\
         spec:\n  ipAddressPools: [l2pool]\n---\n\
         apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: bgp\n  namespace: {NS}\n\
         spec:\n  ipAddressPools: [bgppool]\n---\n\
         apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: router\n  namespace: {NS}\n\
         spec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 10.0.0.1\n"
    )
}

fn node_name(n: usize) -> String {
    format!("node-{n:04}")
}

fn node_object(n: usize, ready: bool) -> Node {
    serde_json::from_value(json!({"metadata": {"name": node_name(n), "uid": format!("uid-{n}")},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
    .unwrap()
}

/// Service `i`: its object and its EndpointSlice, endpoints on `endpoints` nodes
/// spread over the cluster; `down` nodes' endpoints are not ready.
fn service_objects(
    scenario: Scenario,
    i: usize,
    sizes: &Sizes,
    down: &BTreeSet<usize>,
) -> (Service, EndpointSlice) {
    let layer2 = match scenario {
        Scenario::Mixed => i.is_multiple_of(2),
        Scenario::BgpEverywhere => false,
        Scenario::L2Cluster => true,
    };
    let (pool, net) = if layer2 {
        ("l2pool", 10)
    } else {
        ("bgppool", 20)
    };
    let policy = if scenario == Scenario::Mixed {
        "Local"
    } else {
        "Cluster"
    };
    let name = format!("svc-{i:05}");
    let ip = format!("10.{net}.{}.{}", i / 250, i % 250 + 1);
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "apps", "uid": format!("svc-uid-{i}"),
                     "annotations": {"metallb.io/ip-allocated-from-pool": pool}},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy,
                 "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    });
    let stride = (sizes.nodes / sizes.endpoints.max(1)).max(1);
    let endpoints: Vec<Value> = (0..sizes.endpoints)
        .map(|j| {
            let node = (i * 7 + j * stride) % sizes.nodes;
            let ready = !down.contains(&node);
            json!({"addresses": [format!("10.244.{}.{}", j, i % 250 + 1)],
                   "nodeName": node_name(node),
                   "conditions": {"ready": ready, "serving": ready}})
        })
        .collect();
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-abc"), "namespace": "apps",
                     "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4", "endpoints": endpoints,
    });
    (
        serde_json::from_value(service).unwrap(),
        serde_json::from_value(slice).unwrap(),
    )
}

/// The cluster as every speaker's caches hold it.
struct Cluster {
    scenario: Scenario,
    config: Config,
    nodes: Vec<Arc<Node>>,
    services: Vec<Arc<SpeakerService>>,
    slices: Vec<Arc<SliceView>>,
    /// Every Service key ever seen, by index (the model's objects name them by index).
    keys: Vec<ServiceKey>,
    index: HashMap<ServiceKey, u32>,
}

impl Cluster {
    fn new(scenario: Scenario, sizes: &Sizes) -> Cluster {
        let snapshot = oxlb_config::load_str(&config_yaml(), None, NS).unwrap();
        let built = oxlb_config::build_config(&snapshot);
        assert!(built.errors.is_empty(), "{:?}", built.errors);
        let mut cluster = Cluster {
            scenario,
            config: built.applied,
            nodes: (0..sizes.nodes)
                .map(|n| Arc::new(node_object(n, true)))
                .collect(),
            services: Vec::new(),
            slices: Vec::new(),
            keys: Vec::new(),
            index: HashMap::new(),
        };
        for i in 0..sizes.services {
            cluster.add_service(i, sizes, &BTreeSet::new());
        }
        cluster
    }

    fn add_service(&mut self, i: usize, sizes: &Sizes, down: &BTreeSet<usize>) {
        let (service, slice) = service_objects(self.scenario, i, sizes, down);
        let cached = SpeakerService::from_service(&service);
        let key = cached.key.clone();
        self.services.push(Arc::new(cached));
        self.slices.push(Arc::new(slice_view(&slice)));
        if !self.index.contains_key(&key) {
            self.index.insert(key.clone(), self.keys.len() as u32);
            self.keys.push(key);
        }
    }

    /// A node failure: its Node NotReady, its endpoints not ready (the node lifecycle
    /// controller and the EndpointSlice controller's doing), its speaker gone.
    fn fail_node(&mut self, down: usize, sizes: &Sizes) {
        self.nodes[down] = Arc::new(node_object(down, false));
        let gone = BTreeSet::from([down]);
        for i in 0..self.slices.len() {
            let (_, slice) = service_objects(self.scenario, i, sizes, &gone);
            self.slices[i] = Arc::new(slice_view(&slice));
        }
    }
}

/// A stable hash of a status (the model keeps hashes, not objects: 10 million objects
/// in bgp-everywhere).
fn status_hash<S: std::fmt::Debug>(status: &S) -> u64 {
    struct HashWriter(std::collections::hash_map::DefaultHasher);
    impl std::fmt::Write for HashWriter {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            s.hash(&mut self.0);
            Ok(())
        }
    }
    let mut writer = HashWriter(std::collections::hash_map::DefaultHasher::new());
    write!(writer, "{status:?}").unwrap();
    writer.0.finish()
}

/// The API server's objects of one kind, per node: Service index -> status hash.
type NodeObjects = HashMap<u32, u64>;

/// One node's objects of one kind as its speaker's cache sees them.
struct ModelView<'a> {
    prefix: &'static str,
    node: &'a str,
    held: &'a NodeObjects,
    cluster: &'a Cluster,
}

impl<S: std::fmt::Debug> StatusView<S> for ModelView<'_> {
    fn presence(&self, _name: &str, key: &ServiceKey, status: &S) -> Presence {
        let held = self.cluster.index.get(key).and_then(|i| self.held.get(i));
        match held {
            None => Presence::Absent,
            Some(hash) if *hash == status_hash(status) => Presence::Same,
            Some(_) => Presence::Differs,
        }
    }

    fn names(&self) -> Vec<String> {
        self.held
            .keys()
            .map(|i| status_name(self.prefix, self.node, &self.cluster.keys[*i as usize]))
            .collect()
    }
}

/// What one node's speaker sends in one pass.
#[derive(Default, Clone, Copy)]
struct NodeWrites {
    requests: u64,
    creates: u64,
    events: u64,
}

/// The API's status objects: per node, per kind.
struct ApiModel {
    l2: Vec<NodeObjects>,
    bgp: Vec<NodeObjects>,
}

impl ApiModel {
    fn new(nodes: usize) -> ApiModel {
        ApiModel {
            l2: vec![NodeObjects::new(); nodes],
            bgp: vec![NodeObjects::new(); nodes],
        }
    }

    fn objects(&self) -> usize {
        self.l2.iter().chain(&self.bgp).map(HashMap::len).sum()
    }
}

/// Plans one kind's writes for `node` and applies them to the model as the API server
/// would.
fn write_kind<S: Clone + PartialEq + std::fmt::Debug>(
    prefix: &'static str,
    node: &str,
    want: &BTreeMap<ServiceKey, S>,
    held: &mut NodeObjects,
    cluster: &Cluster,
    out: &mut NodeWrites,
) {
    let view = ModelView {
        prefix,
        node,
        held,
        cluster,
    };
    let writes = StatusPlanner::new(prefix).plan(
        node,
        want.iter().map(|(key, status)| (key, status.clone())),
        &view,
        usize::MAX,
    );
    // Names back to Service indexes, for the writes that carry only a name.
    let mut names: HashMap<String, u32> = HashMap::new();
    if writes
        .iter()
        .any(|w| !matches!(w, StatusWrite::Create { .. }))
    {
        for i in held.keys() {
            names.insert(status_name(prefix, node, &cluster.keys[*i as usize]), *i);
        }
        for key in want.keys() {
            names.insert(status_name(prefix, node, key), cluster.index[key]);
        }
    }
    for write in &writes {
        out.requests += u64::from(write.requests());
        match write {
            StatusWrite::Create { key, status, .. } => {
                out.creates += 1;
                // The nodeAssigned event of a Service starting to be announced here.
                out.events += 1;
                held.insert(cluster.index[key], status_hash(status));
            }
            StatusWrite::SetStatus { name, status } => {
                held.insert(names[name], status_hash(status));
            }
            StatusWrite::Delete { name } => {
                held.remove(&names[name]);
            }
        }
    }
}

/// One pass of the speaker of node `n` over the cluster: its announce decision, its
/// wanted status objects and the writes to get them.
fn speaker_pass(
    cluster: &Cluster,
    model: &mut ApiModel,
    n: usize,
    live: &BTreeSet<String>,
) -> NodeWrites {
    let node = node_name(n);
    let input = cluster_input(
        &node,
        &cluster.services,
        &cluster.slices,
        &cluster.nodes,
        live,
        None,
    );
    let announcements = input.announce_checked(&cluster.config, &Health::default());
    let announced = per_service(&announcements, &input.services);
    let mut out = NodeWrites::default();
    write_kind(
        "l2",
        &node,
        &desired_l2_statuses(&node, &announced),
        &mut model.l2[n],
        cluster,
        &mut out,
    );
    write_kind(
        "bgp",
        &node,
        &desired_bgp_statuses(&node, &announced),
        &mut model.bgp[n],
        cluster,
        &mut out,
    );
    out
}

/// A token bucket in simulated seconds for the comparator (client-go's limiter).
struct ClientBucket {
    tokens: f64,
}

/// One speaker's writes in a phase: from second `start`, `requests` paced by its
/// budget.
struct Stream {
    start: u64,
    requests: u64,
}

/// Requests per second over the phase: oxlb's streams paced by `WriteBudget` (the
/// cluster budget shared by `speakers`), the comparator's by the client limit.
/// Returns (total, peak per second, seconds until the last request).
fn timeline(streams: &[Stream], oxlb: bool, speakers: usize) -> (u64, u64, u64) {
    let base = Instant::now();
    let mut per_second: Vec<u64> = Vec::new();
    let mut budgets: Vec<WriteBudget> = Vec::new();
    let mut buckets: Vec<ClientBucket> = Vec::new();
    let mut pending: Vec<u64> = streams.iter().map(|s| s.requests).collect();
    for _ in streams {
        budgets.push(WriteBudget::new(
            oxlb_k8s::DEFAULT_CLUSTER_WRITES_PER_SECOND,
            speakers,
            base,
        ));
        buckets.push(ClientBucket {
            tokens: CLIENT_BURST,
        });
    }
    let mut t = 0u64;
    let mut active: Vec<usize> = (0..streams.len()).filter(|i| pending[*i] > 0).collect();
    while !active.is_empty() {
        let now = base + Duration::from_secs(t);
        let mut sent = 0u64;
        active.retain(|&i| {
            if streams[i].start > t {
                return true;
            }
            if oxlb {
                while pending[i] > 0 && budgets[i].take(1, now).is_ok() {
                    pending[i] -= 1;
                    sent += 1;
                }
            } else {
                let bucket = &mut buckets[i];
                if streams[i].start < t {
                    bucket.tokens = (bucket.tokens + CLIENT_QPS).min(CLIENT_BURST);
                }
                let n = pending[i].min(bucket.tokens as u64);
                bucket.tokens -= n as f64;
                pending[i] -= n;
                sent += n;
            }
            pending[i] > 0
        });
        per_second.push(sent);
        t += 1;
    }
    let total = per_second.iter().sum();
    let peak = per_second.iter().copied().max().unwrap_or(0);
    let last = per_second
        .iter()
        .rposition(|n| *n > 0)
        .map_or(0, |i| i as u64 + 1);
    (total, peak, last)
}

/// One row of the table: a phase, oxlb against the comparator.
struct Row {
    phase: &'static str,
    oxlb: (u64, u64, u64),
    metallb: (u64, u64, u64),
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        if a == 0 { "=".into() } else { "-".into() }
    } else {
        format!("{:.3}", a as f64 / b as f64)
    }
}

/// What one real speaker sent, measured against the in-memory API server.
struct RealSpeaker {
    lists: usize,
    watches: usize,
    /// The watches' `timeoutSeconds` (the API server ends them then; kube renews).
    timeout: u64,
    /// Its status-object writes and events, to hold the model to.
    status_requests: u64,
    /// Requests in a quiet period after it settled.
    quiet: usize,
}

/// The small cluster the real speaker runs in (node-0000 of 3).
fn small() -> Sizes {
    Sizes {
        nodes: 3,
        services: 6,
        endpoints: 2,
    }
}

/// One real speaker (`run_speaker`, node-0000) in `small()`'s mixed cluster.
fn real_speaker() -> RealSpeaker {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let api = oxlb_fakeapi::FakeApi::new();
        api.put(oxlb_fakeapi::namespace("apps"));
        for doc in config_yaml().split("---\n") {
            let value: Value = serde_saphyr::from_str(doc).unwrap();
            api.put(value);
        }
        let sizes = small();
        for n in 0..sizes.nodes {
            api.put(serde_json::to_value(node_object(n, true)).unwrap());
        }
        for i in 0..sizes.services {
            let (service, slice) = service_objects(Scenario::Mixed, i, &sizes, &BTreeSet::new());
            let mut service = serde_json::to_value(service).unwrap();
            service["apiVersion"] = json!("v1");
            service["kind"] = json!("Service");
            let mut slice = serde_json::to_value(slice).unwrap();
            slice["apiVersion"] = json!("discovery.k8s.io/v1");
            slice["kind"] = json!("EndpointSlice");
            api.put(service);
            api.put(slice);
        }
        let client = api.client();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = oxlb_k8s::SpeakerOptions::new(NS, &node_name(0));
        let announced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::clone(&announced);
        let task = tokio::spawn(oxlb_k8s::run_speaker(
            client,
            options,
            move |_config, a: &oxlb_announce::Announcements| {
                if !a.bgp.is_empty() || !a.l2.is_empty() {
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            },
            async {
                let _ = stopped.await;
            },
        ));
        while !announced.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Its status objects and events written: then quiet.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let log = api.log();
        let gets: Vec<_> = log.iter().filter(|r| r.method == "GET").collect();
        let watches: Vec<_> = gets
            .iter()
            .filter(|r| r.query.contains("watch=true"))
            .collect();
        let lists = gets.len() - watches.len();
        let timeout = watches
            .iter()
            .filter_map(|r| {
                r.query
                    .split('&')
                    .find_map(|p| p.strip_prefix("timeoutSeconds="))
                    .and_then(|t| t.parse::<u64>().ok())
            })
            .min()
            .unwrap_or(0);
        let status_requests = log
            .iter()
            .filter(|r| r.is_write())
            .filter(|r| {
                r.path.contains("servicel2statuses")
                    || r.path.contains("servicebgpstatuses")
                    || r.path.contains("/events")
            })
            .count() as u64;
        let before = api.log().len();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let quiet = api.log().len() - before;
        let _ = stop.send(());
        task.await.unwrap();
        RealSpeaker {
            lists,
            watches: watches.len(),
            timeout,
            status_requests,
            quiet,
        }
    })
}

fn run(scenario: Scenario, sizes: &Sizes, out: &mut String) {
    let started = Instant::now();
    let mut cluster = Cluster::new(scenario, sizes);
    let mut model = ApiModel::new(sizes.nodes);
    let all_live: BTreeSet<String> = (0..sizes.nodes).map(node_name).collect();
    let n = sizes.nodes;
    let mut rows = Vec::new();
    // Both models send the same writes except on a restart, paced differently; the
    // nodeAssigned events count with the writes (oxlb: the same budget; MetalLB: the
    // same client limiter).
    let streams_at = |writes: &[NodeWrites], start: u64| -> Vec<Stream> {
        writes
            .iter()
            .map(|w| Stream {
                start,
                requests: w.requests + w.events,
            })
            .collect()
    };

    // Start: every speaker writes what it announces.
    let first: Vec<NodeWrites> = (0..n)
        .map(|i| speaker_pass(&cluster, &mut model, i, &all_live))
        .collect();
    let objects = model.objects();
    rows.push(Row {
        phase: "first start (all objects)",
        oxlb: timeline(&streams_at(&first, 0), true, n),
        metallb: timeline(&streams_at(&first, 0), false, n),
    });

    // Steady state: a pass over an unchanged cluster.
    let steady: Vec<NodeWrites> = (0..n)
        .map(|i| speaker_pass(&cluster, &mut model, i, &all_live))
        .collect();
    let steady_requests: u64 = steady.iter().map(|w| w.requests + w.events).sum();
    assert_eq!(
        steady_requests, 0,
        "a pass over an unchanged cluster writes"
    );
    rows.push(Row {
        phase: "steady state (status writes)",
        oxlb: (0, 0, 0),
        metallb: (0, 0, 0),
    });

    // One new Service.
    cluster.add_service(sizes.services, sizes, &BTreeSet::new());
    let change: Vec<NodeWrites> = (0..n)
        .map(|i| speaker_pass(&cluster, &mut model, i, &all_live))
        .collect();
    let writers = change.iter().filter(|w| w.requests > 0).count();
    rows.push(Row {
        phase: "one new Service",
        oxlb: timeline(&streams_at(&change, 0), true, n),
        metallb: timeline(&streams_at(&change, 0), false, n),
    });

    // A rolling restart of every speaker, one every ROLLING_STEP seconds: oxlb's new
    // speaker finds its node's objects (owned by the Node) and writes nothing; the
    // comparator's are collected with the old Pod and written again.
    let mut restart_oxlb = Vec::new();
    let mut restart_metallb = Vec::new();
    for i in 0..n {
        let w = speaker_pass(&cluster, &mut model, i, &all_live);
        restart_oxlb.push(Stream {
            start: i as u64 * ROLLING_STEP,
            requests: w.requests,
        });
        let held = (model.l2[i].len() + model.bgp[i].len()) as u64;
        // The garbage collector's deletes, then the new speaker's creates (object and
        // status) and a nodeAssigned event each.
        restart_metallb.push(Stream {
            start: i as u64 * ROLLING_STEP,
            requests: held + 2 * held + held,
        });
    }
    let oxlb_restart_writes: u64 = restart_oxlb.iter().map(|s| s.requests).sum();
    assert_eq!(
        oxlb_restart_writes, 0,
        "a restarted speaker rewrote objects"
    );
    rows.push(Row {
        phase: "rolling restart, all speakers",
        oxlb: timeline(&restart_oxlb, true, n),
        metallb: timeline(&restart_metallb, false, n),
    });

    // A node failure: its speaker is gone, its endpoints not ready; the others react.
    let down = n / 2;
    cluster.fail_node(down, sizes);
    let live: BTreeSet<String> = all_live
        .iter()
        .filter(|name| **name != node_name(down))
        .cloned()
        .collect();
    let failure: Vec<NodeWrites> = (0..n)
        .filter(|i| *i != down)
        .map(|i| speaker_pass(&cluster, &mut model, i, &live))
        .collect();
    let failure_writers = failure.iter().filter(|w| w.requests > 0).count();
    rows.push(Row {
        phase: "node failure",
        oxlb: timeline(&streams_at(&failure, 0), true, n - 1),
        metallb: timeline(&streams_at(&failure, 0), false, n - 1),
    });

    writeln!(
        out,
        "\n{}: {} nodes, {} Services, {} endpoints each; {} status objects; \
         one new Service: {writers} writing nodes; node failure: {failure_writers} writing nodes; \
         simulated in {:.1} s",
        scenario.name(),
        sizes.nodes,
        sizes.services,
        sizes.endpoints,
        objects,
        started.elapsed().as_secs_f64()
    )
    .unwrap();
    writeln!(
        out,
        "| phase | oxlb requests | oxlb peak/s | oxlb seconds | MetalLB-model requests | MetalLB-model peak/s | MetalLB-model seconds | requests oxlb/MetalLB | peak oxlb/MetalLB |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|---|---|").unwrap();
    for row in &rows {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.phase,
            row.oxlb.0,
            row.oxlb.1,
            row.oxlb.2,
            row.metallb.0,
            row.metallb.1,
            row.metallb.2,
            ratio(row.oxlb.0, row.metallb.0),
            ratio(row.oxlb.1, row.metallb.1),
        )
        .unwrap();
    }
}

/// One speaker's pass over the whole cluster (its decision and its status plans), on
/// a cluster where every node already holds its objects: the CPU one event costs a
/// speaker. Median of 3.
fn pass_time(scenario: Scenario, sizes: &Sizes) -> Duration {
    let cluster = Cluster::new(scenario, sizes);
    let mut model = ApiModel::new(sizes.nodes);
    let live: BTreeSet<String> = (0..sizes.nodes).map(node_name).collect();
    speaker_pass(&cluster, &mut model, 0, &live);
    let mut times: Vec<Duration> = (0..3)
        .map(|_| {
            let start = Instant::now();
            speaker_pass(&cluster, &mut model, 0, &live);
            start.elapsed()
        })
        .collect();
    times.sort();
    times[1]
}

fn main() {
    let sizes = sizes();
    let real = real_speaker();
    let (lists, watches, timeout, quiet) = (real.lists, real.watches, real.timeout, real.quiet);
    // The model held to the real speaker: node-0000's first pass in the same cluster
    // plans exactly the requests the real one sent.
    let small = small();
    let cluster = Cluster::new(Scenario::Mixed, &small);
    let mut model = ApiModel::new(small.nodes);
    let live: BTreeSet<String> = (0..small.nodes).map(node_name).collect();
    let planned = speaker_pass(&cluster, &mut model, 0, &live);
    assert!(real.status_requests > 0, "the real speaker wrote no status");
    assert_eq!(
        planned.requests + planned.events,
        real.status_requests,
        "the model plans what the real speaker sends"
    );
    let mut out = String::new();
    writeln!(
        out,
        "model check: the real speaker sent {} status requests and events in a {}-node \
         cluster, the model plans {}",
        real.status_requests,
        small.nodes,
        planned.requests + planned.events
    )
    .unwrap();
    writeln!(
        out,
        "one real speaker against the in-memory API server: {lists} lists and {watches} watches \
         to start (timeoutSeconds={timeout}), {quiet} requests in 3 quiet seconds after"
    )
    .unwrap();
    assert!(watches > 0 && timeout > 0, "no watch measured");
    let renewals = sizes.nodes as f64 * watches as f64 / timeout as f64;
    writeln!(
        out,
        "steady state, {} speakers: {renewals:.1} watch renewals per second \
         ({watches} watches each, renewed every {timeout} s), no writes; \
         a rolling restart adds {} lists and {} watches ({} per speaker)",
        sizes.nodes,
        sizes.nodes * lists,
        sizes.nodes * watches,
        lists + watches
    )
    .unwrap();
    let mixed = pass_time(Scenario::Mixed, &sizes);
    let l2_cluster = pass_time(Scenario::L2Cluster, &sizes);
    writeln!(
        out,
        "one speaker's pass over {} Services on {} nodes: mixed {:.1} ms, \
         all Layer 2 with Cluster policy {:.1} ms (ratio {:.1})",
        sizes.services,
        sizes.nodes,
        mixed.as_secs_f64() * 1e3,
        l2_cluster.as_secs_f64() * 1e3,
        l2_cluster.as_secs_f64() / mixed.as_secs_f64()
    )
    .unwrap();
    for scenario in [Scenario::Mixed, Scenario::BgpEverywhere] {
        run(scenario, &sizes, &mut out);
    }
    println!("{out}");
}
