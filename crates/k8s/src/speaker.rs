//! `oxlb speaker` (one per node): caches of what decides announcements, this node's
//! announcements computed by the pure core (`oxlb_announce`), handed to the protocol
//! shells through a callback, and what the cluster should see of them: one
//! ServiceL2Status / ServiceBGPStatus per announced Service and node, and a
//! `nodeAssigned` event when (and only when) a Service starts being announced here.
//!
//! The protocol I/O (BGP sessions, the ARP/NDP responder) is the caller's: it receives
//! the valid Config and the Announcements on every change and drives
//! `oxlb_bgp::Speaker` and the Layer 2 responder.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use oxlb_announce::{Announcements, Endpoints, Input, NodeView, Protocol, ServiceKey, ServiceView};
use oxlb_api::{ServiceBGPStatus, ServiceL2Status};
use oxlb_config::{Config, LastValid, build_config_with};
use oxlb_standalone::status::{AnnouncedIp, ConfigStatus, ServiceStatus, StatusReport};
use oxlb_standalone::views;
use serde_json::json;
use tokio::sync::Notify;

use crate::liveness::{MembershipOptions, SpeakerMembership};
use crate::protocols::{NodeInfo, ProtocolOptions, ProtocolStatus, Protocols};
use crate::stores::Stores;

/// Label of the per-node status objects (MetalLB's).
pub const NODE_LABEL: &str = "metallb.io/node";
pub const SERVICE_NAME_LABEL: &str = "metallb.io/service-name";
pub const SERVICE_NAMESPACE_LABEL: &str = "metallb.io/service-namespace";
/// The speaker's name as a field manager and as the reporter of its events (MetalLB's
/// speaker reports as `metallb-speaker`, its controller as `metallb-controller`; oxlb's
/// two are `oxlb-speaker` and `oxlb-controller`, so `kubectl describe` tells which of
/// the two said what).
pub const FIELD_MANAGER: &str = "oxlb-speaker";

#[derive(Debug, Clone)]
pub struct SpeakerOptions {
    pub namespace: String,
    /// This node (downward API `spec.nodeName`).
    pub node_name: String,
    pub lb_class: Option<String>,
    /// `/metrics` (`metallb_speaker_announced`, config loaded / stale), `/healthz`,
    /// `/readyz`; MetalLB's port 7472 at the node's address. `None`: not served.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// `/api/v1/status` (every announced Service and IP, BGP sessions and their last
    /// errors): loopback only ([`crate::endpoints`]). `None`: not served.
    pub status_address: Option<std::net::SocketAddr>,
    /// This speaker's Pod (downward API `metadata.name` / `metadata.uid`): it owns the
    /// ServiceL2Status / ServiceBGPStatus objects it writes, as in MetalLB, so they are
    /// garbage-collected with it. `None`: written without an owner.
    pub pod: Option<PodIdentity>,
    /// The membership deciding which speakers are alive for the Layer 2 election
    /// (MetalLB's memberlist): bind address and port, key file.
    pub membership: MembershipOptions,
}

impl SpeakerOptions {
    /// Options with the defaults: no load balancer class, no metrics endpoint, the
    /// membership on port 7946 at this node's speaker pod IP, keyed by the `memberlist`
    /// Secret.
    pub fn new(namespace: &str, node_name: &str) -> SpeakerOptions {
        SpeakerOptions {
            namespace: namespace.to_string(),
            node_name: node_name.to_string(),
            lb_class: None,
            metrics_address: None,
            status_address: None,
            pod: None,
            membership: MembershipOptions::default(),
        }
    }
}

/// A Pod as an owner reference names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    pub name: String,
    pub uid: String,
}

/// The `metadata.ownerReferences` of a status object written by the speaker in `pod`
/// (MetalLB: `controllerutil.SetOwnerReference(speakerPod, ...)`, an owner that is not
/// the controller of the object). Empty without a pod.
pub fn owner_references(pod: Option<&PodIdentity>) -> serde_json::Value {
    match pod {
        Some(pod) => json!([{"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid}]),
        None => json!([]),
    }
}

/// What this node announces per Service: the protocols and, for the status objects,
/// the interfaces (Layer 2) or peers (BGP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announced {
    pub l2_interfaces: Option<Vec<String>>,
    pub bgp_peers: Option<Vec<String>>,
}

/// Per Service, what this node announces, from the core's Announcements.
pub fn per_service(
    announcements: &Announcements,
    services: &[ServiceView],
) -> BTreeMap<ServiceKey, Announced> {
    let mut out: BTreeMap<ServiceKey, Announced> = BTreeMap::new();
    for l2 in announcements.l2.values() {
        let interfaces = match &l2.interfaces {
            oxlb_announce::Interfaces::All => Vec::new(),
            oxlb_announce::Interfaces::Only(set) => set.iter().cloned().collect(),
        };
        for key in &l2.services {
            let entry = out.entry(key.clone()).or_default();
            let list = entry.l2_interfaces.get_or_insert_with(Vec::new);
            list.extend(interfaces.iter().cloned());
            list.sort();
            list.dedup();
        }
    }
    for (peer, routes) in &announcements.bgp {
        for service in services {
            let covered = service
                .ips
                .iter()
                .any(|ip| routes.keys().any(|prefix| prefix.contains(ip)));
            if covered {
                let entry = out.entry(service.key.clone()).or_default();
                let peers = entry.bgp_peers.get_or_insert_with(Vec::new);
                if !peers.contains(peer) {
                    peers.push(peer.clone());
                    peers.sort();
                }
            }
        }
    }
    out
}

/// MetalLB's `nodeAssigned` event text.
fn assigned_message(node: &str, protocol: Protocol) -> String {
    format!("announcing from node \"{node}\" with protocol \"{protocol}\"")
}

/// The `nodeAssigned` events for what started being announced here (MetalLB's text).
pub fn node_assigned_events(
    node: &str,
    before: &BTreeMap<ServiceKey, Announced>,
    now: &BTreeMap<ServiceKey, Announced>,
) -> Vec<(ServiceKey, Protocol, String)> {
    let mut events = Vec::new();
    for (key, announced) in now {
        let old = before.get(key);
        if announced.l2_interfaces.is_some() && old.is_none_or(|o| o.l2_interfaces.is_none()) {
            events.push((
                key.clone(),
                Protocol::Layer2,
                assigned_message(node, Protocol::Layer2),
            ));
        }
        if announced.bgp_peers.is_some() && old.is_none_or(|o| o.bgp_peers.is_none()) {
            events.push((
                key.clone(),
                Protocol::Bgp,
                assigned_message(node, Protocol::Bgp),
            ));
        }
    }
    events
}

pub use crate::stable_name::status_name;

fn spawn<K>(
    api: Api<K>,
    config: watcher::Config,
    notify: &Arc<Notify>,
) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let notify = notify.clone();
    let stream = reflector::reflector(
        writer,
        watcher(api, config)
            .default_backoff()
            .modify(crate::stores::slim::<K>),
    );
    let task = tokio::spawn(async move {
        stream
            .for_each(|e| {
                if let Err(e) = e {
                    tracing::warn!(error = %e, "watch failed; retrying");
                } else {
                    notify.notify_one();
                }
                futures::future::ready(())
            })
            .await;
    });
    (reader, task)
}

/// The speaker pods (the DaemonSet's labels).
pub const SPEAKER_POD_SELECTOR: &str =
    "app.kubernetes.io/name=oxlb,app.kubernetes.io/component=speaker";

/// The nodes whose speaker is alive by pod readiness, as every speaker sees them from
/// the API (so they all agree on the Layer 2 owners): nodes with a Ready, not
/// terminating speaker pod, and always this node. With no speaker pods visible at all
/// (not run as the DaemonSet), every Ready node counts. Only the fallback: the
/// membership decides when it runs ([`crate::liveness`]).
pub fn live_speakers(pods: &[Arc<Pod>], nodes: &[Arc<Node>], me: &str) -> BTreeSet<String> {
    let mut live: BTreeSet<String> = if pods.is_empty() {
        nodes
            .iter()
            .filter(|n| is_ready(n))
            .filter_map(|n| n.metadata.name.clone())
            .collect()
    } else {
        pods.iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect()
    };
    live.insert(me.to_string());
    live
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The Services holding addresses that this speaker handles, as the core sees them.
pub fn service_views(
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    lb_class: Option<&str>,
) -> Vec<ServiceView> {
    let mut by_service: BTreeMap<(String, String), Vec<EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if let Some(name) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
        {
            let ns = slice.metadata.namespace.clone().unwrap_or_default();
            by_service
                .entry((ns, name.clone()))
                .or_default()
                .push((**slice).clone());
        }
    }
    services
        .iter()
        .filter(|s| {
            let spec = s.spec.as_ref();
            spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
                && spec.and_then(|s| s.load_balancer_class.as_deref()) == lb_class
        })
        .filter_map(|s| {
            let ips: Vec<std::net::IpAddr> = s
                .status
                .as_ref()
                .and_then(|st| st.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.as_deref()?.parse().ok())
                .collect();
            if ips.is_empty() {
                return None;
            }
            let key = views::service_key(s);
            let slices = by_service.get(&(key.namespace.clone(), key.name.clone()));
            // In a cluster a Service without any EndpointSlice has no endpoints.
            let endpoints = match slices {
                Some(slices) => views::endpoints_of(&key, slices),
                None => Endpoints::Known(Vec::new()),
            };
            Some(ServiceView {
                pool: s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(oxlb_controller::POOL_ANNOTATION))
                    .cloned()
                    .unwrap_or_default(),
                traffic_policy: views::traffic_policy(s),
                endpoints,
                ips,
                key,
                labels: s.metadata.labels.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// Runs the speaker's Kubernetes side until `shutdown`. `apply` gets the config in force
/// and this node's announcements whenever they change.
pub async fn run_speaker(
    client: Client,
    options: SpeakerOptions,
    mut apply: impl FnMut(&Config, &Announcements) + Send,
    shutdown: impl Future<Output = ()> + Send,
) {
    run_speaker_inner(
        client,
        options,
        None,
        move |config, announcements, _| apply(config, announcements),
        shutdown,
    )
    .await;
}

/// `oxlb speaker`: the Kubernetes side driving the protocols (BGP, Layer 2, BFD) of
/// [`Protocols`], with their session state in `/metrics`. After `shutdown` it leaves
/// the membership first (the other speakers take this node's Layer 2 IPs over at
/// once), then stops the protocols cleanly (Cease, or graceful restart where
/// configured).
pub async fn run_speaker_with_protocols(
    client: Client,
    options: SpeakerOptions,
    protocols: ProtocolOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let protocols = Protocols::start(protocols).await?;
    let status = protocols.status();
    run_speaker_inner(
        client,
        options,
        Some(status),
        |config, announcements, node| protocols.apply(config, announcements, node),
        shutdown,
    )
    .await;
    protocols.shutdown().await;
    Ok(())
}

/// [`run_speaker_with_protocols`] with the in-cluster (or kubeconfig) client.
pub async fn run_speaker_in_cluster(
    options: SpeakerOptions,
    protocols: ProtocolOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("no Kubernetes client (in-cluster or kubeconfig): {e}"))?;
    run_speaker_with_protocols(client, options, protocols, shutdown)
        .await
        .map_err(|e| format!("cannot start the BGP speaker: {e}"))
}

async fn run_speaker_inner(
    client: Client,
    options: SpeakerOptions,
    mut protocol_status: Option<tokio::sync::watch::Receiver<ProtocolStatus>>,
    mut apply: impl FnMut(&Config, &Announcements, &NodeInfo) + Send,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (report_tx, report_rx) = tokio::sync::watch::channel(StatusReport {
        node: options.node_name.clone(),
        ..StatusReport::default()
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = match crate::endpoints::Listeners::start(
        options.metrics_address,
        options.status_address,
        &report_rx,
        &stop_rx,
    )
    .await
    {
        Ok(listeners) => Some(listeners),
        Err(e) => {
            tracing::error!(error = %e, "metrics endpoint not served");
            None
        }
    };
    let notify = Arc::new(Notify::new());
    let (stores, _reflectors) = Stores::start(&client, &options.namespace, &notify);
    let all = watcher::Config::default;
    let (nodes, t1) = spawn::<Node>(Api::all(client.clone()), all(), &notify);
    let (slices, t2) = spawn::<EndpointSlice>(Api::all(client.clone()), all(), &notify);
    let mine = format!("{NODE_LABEL}={}", options.node_name);
    let (l2_statuses, t3) = spawn::<ServiceL2Status>(
        Api::namespaced(client.clone(), &options.namespace),
        all().labels(&mine),
        &notify,
    );
    let (bgp_statuses, t4) = spawn::<ServiceBGPStatus>(
        Api::namespaced(client.clone(), &options.namespace),
        all().labels(&mine),
        &notify,
    );
    let (pods, t5) = spawn::<Pod>(
        Api::namespaced(client.clone(), &options.namespace),
        all().labels(SPEAKER_POD_SELECTOR),
        &notify,
    );
    let tasks = [t1, t2, t3, t4, t5];
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        _ = async {
            stores.wait_ready().await;
            let _ = futures::join!(nodes.wait_until_ready(), slices.wait_until_ready(), pods.wait_until_ready(),
                l2_statuses.wait_until_ready(), bgp_statuses.wait_until_ready());
        } => {}
        _ = &mut shutdown => {
            for t in &tasks { t.abort(); }
            let _ = stop_tx.send(true);
            return;
        }
    }
    let recorder = crate::writer::speaker_recorder(&client, &options.node_name);
    let mut membership = SpeakerMembership::new(&options.node_name, options.membership.clone());
    // Catches what no event signals: the end of the membership's warm-up, a rotated key
    // in the mounted file.
    let mut recheck = tokio::time::interval(std::time::Duration::from_secs(1));
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut config: Option<Config> = None;
    let mut last_valid = LastValid::default();
    let mut last: Option<Announcements> = None;
    let mut announced: BTreeMap<ServiceKey, Announced> = BTreeMap::new();
    let mut written: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut last_applied_config: Option<Config> = None;
    let mut last_node_info: Option<NodeInfo> = None;
    let mut config_status = ConfigStatus::default();
    let mut host_check = oxlb_standalone::host_check::HostCheck::default();
    // The Layer 2 IPs of every Service and the ones this node owns, for the host check.
    let mut host_inputs: Option<(BTreeSet<std::net::IpAddr>, BTreeSet<std::net::IpAddr>)> = None;
    // This speaker's own ConfigurationState (`speaker-<node>`), as MetalLB's speakers
    // write theirs: an invalid config is visible per node, not only as a metric.
    let state_target = crate::writer::StateObject::speaker(&options.node_name, options.pod.clone());
    let mut written_state: Option<crate::writer::ConfigState> = None;
    // `oxlb.io/health-check`: the checks this node runs; a state change recomputes.
    let mut health = oxlb_standalone::health_glue::HealthChecks::default();
    let mut health_changes = health.subscribe();
    // Someone deleting `speaker-<node>` gets it back at once, as with MetalLB.
    let own_state = crate::own_state::OwnStateWatch::start(
        &client,
        &options.namespace,
        &state_target.name,
        &notify,
    );
    'outer: loop {
        // Each pass processes the object updates that woke it (MetalLB's speaker counts
        // each reconcile in metallb_k8s_client_updates_total).
        config_status.updates += 1;
        let secret = stores.secrets.get(
            &reflector::ObjectRef::new(crate::memberlist::SECRET_NAME).within(&options.namespace),
        );
        membership.reconcile(secret.as_deref(), &pods.state()).await;
        // The controller's quarantine, computed here from the same objects (and their
        // last-valid annotations): the speaker announces what the controller allocates.
        match stores.config_snapshot(&options.namespace) {
            Ok(snapshot) => {
                let built = build_config_with(&snapshot, &last_valid);
                config_status.loaded = true;
                config_status.stale = !built.errors.is_empty();
                // A new rejection counts once, not on every pass that still sees it
                // (as on the controller).
                config_status.record_errors(built.errors.iter().map(ToString::to_string).collect());
                last_valid = built.in_force;
                config = Some(built.applied);
            }
            Err(errors) => {
                config_status.record_errors(errors.iter().map(ToString::to_string).collect());
                config_status.stale = config_status.loaded;
            }
        }
        if own_state.take_gone() {
            written_state = None;
        }
        write_own_state(
            &client,
            &options.namespace,
            &state_target,
            &config_status,
            &mut written_state,
        )
        .await;
        if let Some(config) = &config {
            let node_views: BTreeMap<String, NodeView> = nodes
                .state()
                .iter()
                .map(|n| {
                    (
                        n.metadata.name.clone().unwrap_or_default(),
                        views::node_view(n),
                    )
                })
                .collect();
            let live = membership.candidates(&pods.state(), &nodes.state());
            let services = service_views(
                &stores.services.state(),
                &slices.state(),
                options.lb_class.as_deref(),
            );
            let node = node_views
                .get(&options.node_name)
                .cloned()
                .unwrap_or_else(|| views::bare_node(&options.node_name));
            let service_objects = stores.services.state();
            for (key, message) in health.sync(service_objects.iter().map(|s| s.as_ref())) {
                if let Some(service) = stores
                    .services
                    .get(&reflector::ObjectRef::new(&key.name).within(&key.namespace))
                {
                    crate::health_events::publish_invalid(&recorder, &service, &message).await;
                }
            }
            let health_view = health.health_view(
                &options.node_name,
                membership.peer_health().as_ref(),
                Some(&live),
            );
            membership.set_passing(health.passing());
            health.note_everywhere(
                &options.node_name,
                membership.peer_health().as_ref(),
                Some(&live),
            );
            let announcements = oxlb_announce::announce_checked(
                Input {
                    config,
                    node: &node,
                    nodes: &node_views,
                    live_speakers: &live,
                    services: &services,
                },
                &health_view,
            );
            for change in health.changes() {
                if let Some(service) = stores.services.get(
                    &reflector::ObjectRef::new(&change.service.name)
                        .within(&change.service.namespace),
                ) {
                    crate::health_events::publish(&recorder, &service, &change).await;
                }
            }
            let health_checks = health.status();
            report_tx.send_modify(|r| r.health_checks = health_checks);
            let inputs = (
                oxlb_standalone::host_check::layer2_ips(
                    config,
                    services.iter().map(|s| (s.pool.as_str(), s.ips.as_slice())),
                ),
                announcements.l2.keys().copied().collect(),
            );
            if host_inputs.as_ref() != Some(&inputs) {
                host_inputs = Some(inputs);
                // New IPs or owners: look at the host again now.
                host_check.expire();
            }
            // A changed config alone (a rotated peer password, new timers) matters to
            // the BGP sessions even when the routes stay the same.
            let config_changed = last_applied_config.as_ref() != Some(config);
            let announcements_changed = last.as_ref() != Some(&announcements);
            // Node labels pick the BGPPeers; its InternalIP is the default router ID.
            let node_info = nodes
                .get(&reflector::ObjectRef::new(&options.node_name))
                .map(|n| NodeInfo::from_node(&n))
                .unwrap_or_default();
            let node_changed = last_node_info.as_ref() != Some(&node_info);
            if config_changed || announcements_changed || node_changed {
                apply(config, &announcements, &node_info);
                last_applied_config = Some(config.clone());
                last_node_info = Some(node_info);
            }
            if announcements_changed {
                let now = per_service(&announcements, &services);
                for (key, protocol, message) in
                    node_assigned_events(&options.node_name, &announced, &now)
                {
                    if let Some(service) = stores
                        .services
                        .get(&reflector::ObjectRef::new(&key.name).within(&key.namespace))
                    {
                        publish_node_assigned(&recorder, &service, protocol, message).await;
                    }
                }
                announced = now;
                report_tx.send_modify(|r| r.services = report_services(&announcements, &services));
                last = Some(announcements);
            }
            write_statuses(
                &client,
                &options,
                &announced,
                &l2_statuses,
                &bgp_statuses,
                &mut written,
            )
            .await;
        }
        report_tx.send_modify(|r| r.config = config_status.clone());
        check_host(
            &mut host_check,
            protocol_status.as_ref(),
            host_inputs.as_ref(),
            &recorder,
            nodes.get(&reflector::ObjectRef::new(&options.node_name)),
            &report_tx,
        )
        .await;
        loop {
            tokio::select! {
                _ = &mut shutdown => break 'outer,
                _ = notify.notified() => break,
                _ = membership.changed() => break,
                Ok(()) = health_changes.changed() => break,
                _ = recheck.tick() => {
                    if membership.recheck() {
                        break;
                    }
                    let health_checks = health.status();
                    report_tx.send_if_modified(|r| {
                        let changed = r.health_checks != health_checks;
                        r.health_checks = health_checks;
                        changed
                    });
                    check_host(
                        &mut host_check,
                        protocol_status.as_ref(),
                        host_inputs.as_ref(),
                        &recorder,
                        nodes.get(&reflector::ObjectRef::new(&options.node_name)),
                        &report_tx,
                    )
                    .await;
                }
                Some(()) = protocol_changed(&mut protocol_status) => {
                    if let Some(status) = &protocol_status {
                        let status = status.borrow().clone();
                        report_tx.send_modify(|r| {
                            r.bgp_sessions = status.bgp_sessions;
                            r.bfd_sessions = status.bfd_sessions;
                            r.l2 = status.l2;
                        });
                    }
                }
            }
        }
    }
    // Leave first: the others take the Layer 2 IPs over at once, before this node's
    // protocols stop answering.
    membership.stop().await;
    for t in &tasks {
        t.abort();
    }
    let _ = stop_tx.send(true);
    if let Some(server) = server {
        server.join().await;
    }
}

/// The Layer 2 host check, when due: would this node's kernel answer ARP/NDP for
/// Layer 2 IPs it does not own? A log line on every change, a Warning event on the
/// Node when it starts to, the gauge and `oxlb explain` from the report.
async fn check_host(
    check: &mut oxlb_standalone::host_check::HostCheck,
    protocols: Option<&tokio::sync::watch::Receiver<ProtocolStatus>>,
    inputs: Option<&(BTreeSet<std::net::IpAddr>, BTreeSet<std::net::IpAddr>)>,
    recorder: &kube::runtime::events::Recorder,
    node: Option<Arc<Node>>,
    report: &tokio::sync::watch::Sender<StatusReport>,
) {
    let (Some(protocols), Some((layer2, owned))) = (protocols, inputs) else {
        return;
    };
    let Some(kernel_arp) = protocols.borrow().kernel_arp.clone() else {
        return;
    };
    let now = std::time::Instant::now();
    if !check.due(now) {
        return;
    }
    let (arp, layer2, owned) = (kernel_arp.clone(), layer2.clone(), owned.clone());
    let checked = tokio::task::spawn_blocking(move || {
        oxlb_standalone::host_check::check_now(&arp, &layer2, &owned)
    })
    .await;
    let (ghosts, host) = match checked {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "layer2: cannot read this host's addresses");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "layer2: host check failed");
            return;
        }
    };
    if let oxlb_standalone::host_check::Verdict::Ghosts(note) = check.record(ghosts, &host, now)
        && let Some(node) = node
    {
        crate::host_warning::publish(recorder, &node, &note).await;
    }
    let status = check.status(&kernel_arp);
    report.send_if_modified(|r| {
        let changed = r.host != status;
        r.host = status;
        changed
    });
}

/// Writes `speaker-<node>` when its result or errors changed (and only once there is
/// something to say); a failed write is retried on the next pass.
async fn write_own_state(
    client: &Client,
    namespace: &str,
    target: &crate::writer::StateObject,
    status: &ConfigStatus,
    written: &mut Option<crate::writer::ConfigState>,
) {
    if !status.loaded && status.errors.is_empty() {
        return;
    }
    let state = crate::writer::ConfigState {
        valid: status.errors.is_empty(),
        errors: status.errors.clone(),
    };
    if written.as_ref() == Some(&state) {
        return;
    }
    match crate::writer::write_configuration_state(client, namespace, target, &state, true).await {
        Ok(()) => *written = Some(state),
        Err(e) => tracing::warn!(error = %e, "writing this speaker's ConfigurationState failed"),
    }
}

/// Resolves when the protocols' status changed; never without protocols (or once
/// they are gone).
async fn protocol_changed(
    receiver: &mut Option<tokio::sync::watch::Receiver<ProtocolStatus>>,
) -> Option<()> {
    match receiver {
        Some(r) => match r.changed().await {
            Ok(()) => Some(()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Per Service, what this node announces, for `metallb_speaker_announced`.
fn report_services(announcements: &Announcements, services: &[ServiceView]) -> Vec<ServiceStatus> {
    services
        .iter()
        .filter_map(|service| {
            let mut announced = Vec::new();
            for ip in &service.ips {
                if announcements
                    .l2
                    .get(ip)
                    .is_some_and(|l2| l2.services.contains(&service.key))
                {
                    announced.push(AnnouncedIp {
                        ip: *ip,
                        protocol: Protocol::Layer2,
                        via: Vec::new(),
                    });
                }
                let peers: Vec<String> = announcements
                    .bgp
                    .iter()
                    .filter(|(_, routes)| routes.keys().any(|p| p.contains(ip)))
                    .map(|(peer, _)| peer.clone())
                    .collect();
                if !peers.is_empty() {
                    announced.push(AnnouncedIp {
                        ip: *ip,
                        protocol: Protocol::Bgp,
                        via: peers,
                    });
                }
            }
            (!announced.is_empty()).then(|| ServiceStatus {
                service: service.key.to_string(),
                ips: service.ips.clone(),
                pool: Some(service.pool.clone()),
                announced,
                ..ServiceStatus::default()
            })
        })
        .collect()
}

async fn publish_node_assigned(
    recorder: &kube::runtime::events::Recorder,
    service: &Service,
    protocol: Protocol,
    message: String,
) {
    let event = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Normal,
        reason: "nodeAssigned".to_string(),
        note: Some(message.clone()),
        action: format!("nodeAssigned-{protocol}"),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &service.object_ref(&())).await {
        tracing::warn!(error = %e, "recording nodeAssigned failed");
    }
}

/// Makes this node's ServiceL2Status / ServiceBGPStatus objects match what it announces.
async fn write_statuses(
    client: &Client,
    options: &SpeakerOptions,
    announced: &BTreeMap<ServiceKey, Announced>,
    l2_store: &Store<ServiceL2Status>,
    bgp_store: &Store<ServiceBGPStatus>,
    written: &mut BTreeMap<String, serde_json::Value>,
) {
    let node = &options.node_name;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let l2_api: Api<ServiceL2Status> = Api::namespaced(client.clone(), &options.namespace);
    let bgp_api: Api<ServiceBGPStatus> = Api::namespaced(client.clone(), &options.namespace);
    let mut want_l2 = BTreeSet::new();
    let mut want_bgp = BTreeSet::new();
    let owners = owner_references(options.pod.as_ref());
    for (key, a) in announced {
        let labels = json!({NODE_LABEL: node, SERVICE_NAME_LABEL: key.name, SERVICE_NAMESPACE_LABEL: key.namespace});
        if let Some(interfaces) = &a.l2_interfaces {
            let name = status_name("l2", node, key);
            let status = json!({"node": node, "serviceName": key.name, "serviceNamespace": key.namespace,
                "interfaces": interfaces.iter().map(|i| json!({"name": i})).collect::<Vec<_>>()});
            let current = l2_store
                .get(&reflector::ObjectRef::new(&name).within(&options.namespace))
                .and_then(|o| serde_json::to_value(&o.status).ok());
            // What we wrote last counts too: the cache may not have caught up yet.
            if current.as_ref() != Some(&status) && written.get(&name) != Some(&status) {
                written.insert(name.clone(), status.clone());
                let head = json!({"apiVersion": "metallb.io/v1beta1", "kind": "ServiceL2Status",
                    "metadata": {"name": name, "namespace": options.namespace, "labels": labels,
                        "ownerReferences": owners}});
                let mut object = head.clone();
                object["spec"] = json!({});
                let mut with_status = head;
                with_status["status"] = status;
                if let Err(e) = async {
                    l2_api.patch(&name, &params, &Patch::Apply(&object)).await?;
                    l2_api
                        .patch_status(&name, &params, &Patch::Apply(&with_status))
                        .await
                }
                .await
                {
                    written.remove(&name);
                    tracing::warn!(error = %e, service = %key, "writing ServiceL2Status failed");
                }
            }
            want_l2.insert(name);
        }
        if let Some(peers) = &a.bgp_peers {
            let name = status_name("bgp", node, key);
            let status = json!({"node": node, "serviceName": key.name, "serviceNamespace": key.namespace, "peers": peers});
            let current = bgp_store
                .get(&reflector::ObjectRef::new(&name).within(&options.namespace))
                .and_then(|o| serde_json::to_value(&o.status).ok());
            // What we wrote last counts too: the cache may not have caught up yet.
            if current.as_ref() != Some(&status) && written.get(&name) != Some(&status) {
                written.insert(name.clone(), status.clone());
                let head = json!({"apiVersion": "metallb.io/v1beta1", "kind": "ServiceBGPStatus",
                    "metadata": {"name": name, "namespace": options.namespace, "labels": labels,
                        "ownerReferences": owners}});
                let mut object = head.clone();
                object["spec"] = json!({});
                let mut with_status = head;
                with_status["status"] = status;
                if let Err(e) = async {
                    bgp_api
                        .patch(&name, &params, &Patch::Apply(&object))
                        .await?;
                    bgp_api
                        .patch_status(&name, &params, &Patch::Apply(&with_status))
                        .await
                }
                .await
                {
                    written.remove(&name);
                    tracing::warn!(error = %e, service = %key, "writing ServiceBGPStatus failed");
                }
            }
            want_bgp.insert(name);
        }
    }
    // Null in `written`: deletion already asked for (the cache has not caught up).
    let gone = serde_json::Value::Null;
    for stale in l2_store.state() {
        let name = stale.metadata.name.clone().unwrap_or_default();
        if want_l2.contains(&name) || written.get(&name) == Some(&gone) {
            continue;
        }
        written.insert(name.clone(), gone.clone());
        if let Err(e) = l2_api.delete(&name, &DeleteParams::default()).await {
            written.remove(&name);
            tracing::warn!(error = %e, status = %name, "deleting ServiceL2Status failed");
        }
    }
    for stale in bgp_store.state() {
        let name = stale.metadata.name.clone().unwrap_or_default();
        if want_bgp.contains(&name) || written.get(&name) == Some(&gone) {
            continue;
        }
        written.insert(name.clone(), gone.clone());
        if let Err(e) = bgp_api.delete(&name, &DeleteParams::default()).await {
            written.remove(&name);
            tracing::warn!(error = %e, status = %name, "deleting ServiceBGPStatus failed");
        }
    }
    // Forget names that are neither wanted nor cached any more.
    let cached: BTreeSet<String> = l2_store
        .state()
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .chain(
            bgp_store
                .state()
                .iter()
                .filter_map(|o| o.metadata.name.clone()),
        )
        .collect();
    written.retain(|name, _| {
        want_l2.contains(name) || want_bgp.contains(name) || cached.contains(name)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: &str, ready: bool, terminating: bool) -> Arc<Pod> {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("speaker-{node}")},
            "spec": {"nodeName": node, "containers": []},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap_or_default();
        if terminating {
            p.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ));
        }
        Arc::new(p)
    }

    fn node(name: &str, ready: bool) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
            .unwrap_or_default(),
        )
    }

    #[test]
    fn live_speakers_are_ready_speaker_pods_and_me() {
        let nodes = [node("a", true), node("b", true), node("c", false)];
        let pods = [
            pod("a", true, false),
            pod("b", false, false),
            pod("d", true, true),
        ];
        let live = live_speakers(&pods, &nodes, "me");
        assert_eq!(live.into_iter().collect::<Vec<_>>(), ["a", "me"]);
        let live = live_speakers(&[], &nodes, "a");
        assert_eq!(live.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn node_assigned_only_when_a_protocol_starts() {
        let key = ServiceKey {
            namespace: "ns".into(),
            name: "s".into(),
        };
        let l2 = Announced {
            l2_interfaces: Some(vec![]),
            bgp_peers: None,
        };
        let both = Announced {
            l2_interfaces: Some(vec!["eth0".into()]),
            bgp_peers: Some(vec!["r".into()]),
        };
        let none = BTreeMap::new();
        let with_l2 = BTreeMap::from([(key.clone(), l2)]);
        let with_both = BTreeMap::from([(key.clone(), both)]);
        assert_eq!(node_assigned_events("n", &none, &with_l2).len(), 1);
        assert!(node_assigned_events("n", &with_l2, &with_l2).is_empty());
        let events = node_assigned_events("n", &with_l2, &with_both);
        assert_eq!(
            events,
            [(
                key,
                Protocol::Bgp,
                "announcing from node \"n\" with protocol \"bgp\"".to_string()
            )]
        );
    }
}
