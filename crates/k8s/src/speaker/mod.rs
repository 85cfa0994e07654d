//! `oxlb speaker` (one per node): caches of what decides announcements, this node's
//! announcements computed by the pure core (`oxlb_announce`), handed to the protocols
//! through a callback, and what the cluster should see of them: one
//! ServiceL2Status / ServiceBGPStatus per announced Service and node, and a
//! `nodeAssigned` event when (and only when) a Service starts being announced here.
//!
//! The protocol I/O (BGP sessions, the ARP/NDP responder, BFD) is the caller's: it
//! receives the valid Config and the Announcements on every change and hands them to
//! the node driver (`oxlb_node::driver`, through [`crate::protocols`]).
//!
//! One file per job: [`inputs`] (API objects to the announce input), [`announced`]
//! (what is announced per Service, `nodeAssigned`), [`l2_status`] and [`bgp_status`]
//! (one reconciler per status kind, on [`status_objects`]), [`config_state`] (this
//! speaker's ConfigurationState), [`host`] (the Layer 2 host check); this file runs
//! the watches and the loop.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use oxlb_announce::{Announcements, Protocol, ServiceKey};
use oxlb_api::{ServiceBGPStatus, ServiceL2Status};
use oxlb_config::{Config, LastValid, build_config_with};
use oxlb_node::status::{ConfigStatus, StatusReport};
use tokio::sync::{Notify, watch};

mod announced;
mod bgp_status;
mod cached;
mod config_state;
mod host;
mod inputs;
mod l2_status;
mod status_objects;
pub mod status_plan;
pub mod write_budget;

pub use announced::{Announced, node_assigned_events, per_service};
pub use bgp_status::desired as desired_bgp_statuses;
pub use cached::SpeakerService;
pub use inputs::{cluster_input, live_speakers};
pub use l2_status::desired as desired_l2_statuses;
use status_objects::WantedStatuses;

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
    /// This speaker's Pod (downward API `metadata.name` / `metadata.uid`): the owner of
    /// the ServiceL2Status / ServiceBGPStatus objects it writes while its Node is not
    /// known (normally the Node owns them: [`owner_references`]). `None`: written
    /// without an owner then.
    pub pod: Option<PodIdentity>,
    /// The membership deciding which speakers are alive for the Layer 2 election
    /// (MetalLB's memberlist): bind address and port, key file.
    pub membership: MembershipOptions,
    /// A cordoned node (`spec.unschedulable`) withdraws its routes and hands over its
    /// Layer 2 IPs (graceful drain, the default); `false` keeps MetalLB's behaviour,
    /// where only the exclude-from-external-load-balancers label does.
    pub cordon_withdraws: bool,
    /// Status-object writes per second for the whole cluster, shared by the live
    /// speakers ([`write_budget`]): one speaker of 3 writes 33 per second, one of
    /// 1,000 writes [`write_budget::MIN_SPEAKER_WRITES_PER_SECOND`].
    pub status_writes_per_second: f64,
    /// Per BGP-announced Service, this node's ServiceBGPStatus and `nodeAssigned`
    /// event (MetalLB's, the default). `false`: neither (and this node's existing
    /// ServiceBGPStatus objects are deleted): with `Cluster` policy every node announces
    /// every Service, nodes x Services objects (10 million at 1,000 nodes and 10,000
    /// Services). Layer 2 status is unaffected (one node per Service).
    pub bgp_node_status: bool,
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
            cordon_withdraws: true,
            status_writes_per_second: write_budget::DEFAULT_CLUSTER_WRITES_PER_SECOND,
            bgp_node_status: true,
        }
    }
}

/// A Pod as an owner reference names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    pub name: String,
    pub uid: String,
}

/// The `metadata.ownerReferences` of a status object this node writes: its Node, so the
/// objects are garbage-collected with the Node and outlive a restart of the speaker
/// (issue 22: owned by the speaker Pod, as MetalLB's, a rolling restart of 1,000
/// speakers deleted and rewrote every object of every node). Without the Node's uid,
/// the speaker's `pod` (MetalLB's `controllerutil.SetOwnerReference(speakerPod, ...)`);
/// empty without either.
pub fn owner_references(
    node: Option<(&str, &str)>,
    pod: Option<&PodIdentity>,
) -> Vec<OwnerReference> {
    let owner = match (node, pod) {
        (Some((name, uid)), _) => Some(("Node", name, uid)),
        (None, Some(pod)) => Some(("Pod", pod.name.as_str(), pod.uid.as_str())),
        (None, None) => None,
    };
    owner
        .map(|(kind, name, uid)| OwnerReference {
            api_version: "v1".to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            ..OwnerReference::default()
        })
        .into_iter()
        .collect()
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
    spawn_slimmed(api, config, notify, crate::stores::slim::<K>)
}

/// [`spawn`] with `slim` applied to every object before the cache keeps it.
fn spawn_slimmed<K>(
    api: Api<K>,
    config: watcher::Config,
    notify: &Arc<Notify>,
    slim: fn(&mut K),
) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let notify = notify.clone();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff().modify(slim));
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
        move |config, announcements: &Arc<Announcements>, _| apply(config, announcements),
        shutdown,
    )
    .await;
}

/// `oxlb speaker`: the Kubernetes side driving the protocols (BGP, Layer 2, BFD) of
/// [`Protocols`], with their session state in `/metrics`. After `shutdown` it leaves
/// the membership first (the other speakers take this node's Layer 2 IPs over at
/// once), then stops the protocols by the stop plan ([`oxlb_node::stop`]): a cordoned
/// Node is going down (`kubectl drain` cordons first), anything else is a restart.
pub async fn run_speaker_with_protocols(
    client: Client,
    options: SpeakerOptions,
    protocols: ProtocolOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let protocols = Protocols::start(protocols).await?;
    let status = protocols.status();
    let going_down = run_speaker_inner(
        client,
        options,
        Some(status),
        |config, announcements: &Arc<Announcements>, node| {
            protocols.apply_shared(config, announcements.clone(), node)
        },
        shutdown,
    )
    .await;
    protocols.shutdown_as(going_down).await;
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
    mut apply: impl FnMut(&Config, &Arc<Announcements>, &NodeInfo) + Send,
    shutdown: impl Future<Output = ()> + Send,
) -> bool {
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
    let (stores, mut reflectors) = Stores::start(&client, &options.namespace, &notify);
    let service_store = crate::stores::speaker_services(&client, &notify, &mut reflectors);
    let slices = crate::stores::endpoint_slices(&client, &notify, &mut reflectors);
    let all = watcher::Config::default;
    let (nodes, t1) = spawn::<Node>(Api::all(client.clone()), all(), &notify);
    let mine = format!("{NODE_LABEL}={}", options.node_name);
    // The status caches wake their writers, not this loop: what they hold decides
    // nothing here but the first pass's `nodeAssigned` events.
    let l2_wake = Arc::new(Notify::new());
    let bgp_wake = Arc::new(Notify::new());
    let l2_statuses = status_objects::cache::<ServiceL2Status>(
        &client,
        &options.namespace,
        &mine,
        &l2_wake,
        reflectors.tasks(),
    );
    let bgp_statuses = status_objects::cache::<ServiceBGPStatus>(
        &client,
        &options.namespace,
        &mine,
        &bgp_wake,
        reflectors.tasks(),
    );
    let (pods, t5) = spawn::<Pod>(
        Api::namespaced(client.clone(), &options.namespace),
        all().labels(SPEAKER_POD_SELECTOR),
        &notify,
    );
    let tasks = [t1, t5];
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        _ = async {
            stores.wait_ready().await;
            let _ = futures::join!(service_store.wait_until_ready(), nodes.wait_until_ready(), slices.wait_until_ready(), pods.wait_until_ready(),
                l2_statuses.wait_until_ready(), bgp_statuses.wait_until_ready());
        } => {}
        _ = &mut shutdown => {
            for t in &tasks { t.abort(); }
            let _ = stop_tx.send(true);
            return false;
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
    // Shared with the protocols' copy: one copy of 10,000 routes, not two.
    let mut last: Option<Arc<Announcements>> = None;
    // Freed memory goes back to the system once a burst of passes is over: trimming
    // on every pass of a rollout of thousands of Services would cost more than it saves.
    let mut trim = oxlb_node::memory::TrimWhenQuiet::default();
    // Shared with the status writers, which derive their statuses from it.
    let mut announced: Arc<BTreeMap<ServiceKey, Announced>> = Arc::default();
    // Until the first announcements: a Service whose status object of this node
    // already exists was announced before this process started (the objects outlive
    // a restart), so no `nodeAssigned` again for it.
    let mut restarted = true;
    // One budget for the status objects of both kinds and the nodeAssigned events.
    let budget = write_budget::SharedBudget::new(options.status_writes_per_second);
    let (assigned_events, assigned_queue) = tokio::sync::mpsc::unbounded_channel();
    reflectors.tasks().push(announced::spawn_assigned_events(
        crate::writer::speaker_recorder(&client, &options.node_name),
        options.node_name.clone(),
        service_store.clone(),
        budget.clone(),
        assigned_queue,
    ));
    // Started at the first pass: an empty wish before it would delete every object.
    let mut l2_writer: Option<watch::Sender<WantedStatuses>> = None;
    let mut bgp_writer: Option<watch::Sender<WantedStatuses>> = None;
    let mut last_applied_config: Option<Config> = None;
    let mut last_node_info: Option<NodeInfo> = None;
    let mut config_status = ConfigStatus::default();
    let mut host_check = oxlb_node::host_check::HostCheck::default();
    // The Layer 2 IPs of every Service and the ones this node owns, for the host check.
    let mut host_inputs: Option<(BTreeSet<std::net::IpAddr>, BTreeSet<std::net::IpAddr>)> = None;
    // This speaker's own ConfigurationState (`speaker-<node>`), as MetalLB's speakers
    // write theirs: an invalid config is visible per node, not only as a metric.
    let state_target = crate::writer::StateObject::speaker(&options.node_name, options.pod.clone());
    let mut written_state: Option<crate::writer::ConfigState> = None;
    // `oxlb.io/health-check`: the checks this node runs; a state change recomputes.
    let mut health = oxlb_node::health::HealthChecks::default();
    let mut health_changes = health.subscribe();
    // Weighted ECMP with mixed paths (older speakers): logged once per change.
    let mut mixed_paths_log = oxlb_node::mixed_paths::MixedPathsLog::default();
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
        trim.pass();
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
        config_state::write_own_state(
            &client,
            &options.namespace,
            &state_target,
            &config_status,
            &mut written_state,
        )
        .await;
        if let Some(config) = &config {
            let live = membership.candidates(&pods.state(), &nodes.state());
            // Before anything is spent: a first bucket sized for one speaker would let
            // 1,000 speakers starting together send 100 requests each at once.
            budget.share(options.status_writes_per_second, live.len());
            let mut input = cluster_input(
                &options.node_name,
                &service_store.state(),
                &slices.state(),
                &nodes.state(),
                &live,
                options.lb_class.as_deref(),
            );
            if !options.cordon_withdraws {
                inputs::ignore_cordon(&mut input);
            }
            let service_objects = service_store.state();
            for (key, message) in health.sync_annotated(
                service_objects
                    .iter()
                    .filter_map(|s| s.health_annotations()),
            ) {
                if let Some(service) = service_store.get(&format!("{}/{}", key.namespace, key.name))
                {
                    crate::health_events::publish_invalid(
                        &recorder,
                        &service.object_ref(),
                        &message,
                    )
                    .await;
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
            let announcements = input.announce_checked(config, &health_view);
            let mixed = oxlb_node::mixed_paths::status(&input.mixed_paths(
                config,
                &health_view,
                &membership.told(),
            ));
            mixed_paths_log.observe(&mixed);
            report_tx.send_if_modified(|r| {
                let changed = r.weighted_ecmp_mixed != mixed;
                r.weighted_ecmp_mixed = mixed;
                changed
            });
            for change in health.changes() {
                if let Some(service) = service_store.get(&format!(
                    "{}/{}",
                    change.service.namespace, change.service.name
                )) {
                    crate::health_events::publish(&recorder, &service.object_ref(), &change).await;
                }
            }
            let health_checks = health.status();
            report_tx.send_modify(|r| r.health_checks = health_checks);
            let services = input.services;
            let inputs = (
                oxlb_node::host_check::layer2_ips(
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
            let announcements_changed = last.as_deref() != Some(&announcements);
            let announcements = match &last {
                Some(same) if !announcements_changed => same.clone(),
                _ => Arc::new(announcements),
            };
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
                let restarted = std::mem::take(&mut restarted);
                let shown = |key: &ServiceKey, protocol: Protocol| match protocol {
                    Protocol::Layer2 => status_objects::holds(&l2_statuses, &options, "l2", key),
                    Protocol::Bgp => status_objects::holds(&bgp_statuses, &options, "bgp", key),
                };
                for (service, protocol, _) in
                    node_assigned_events(&options.node_name, &announced, &now)
                        .into_iter()
                        .filter(|(_, p, _)| options.bgp_node_status || *p != Protocol::Bgp)
                        .filter(|(key, p, _)| !(restarted && shown(key, *p)))
                {
                    // The receiver lives as long as this loop.
                    let _ = assigned_events.send(announced::AssignedEvent { service, protocol });
                }
                announced = Arc::new(now);
                report_tx.send_modify(|r| {
                    r.services = announced::report_services(&announcements, &services)
                });
                last = Some(announcements);
            }
            let node_uid = nodes
                .get(&reflector::ObjectRef::new(&options.node_name))
                .and_then(|n| n.metadata.uid.clone());
            let owners = owner_references(
                node_uid
                    .as_deref()
                    .map(|uid| (options.node_name.as_str(), uid)),
                options.pod.as_ref(),
            );
            status_objects::want(
                &mut l2_writer,
                &announced,
                &owners,
                live.len(),
                |wanted| {
                    status_objects::spawn_writer::<ServiceL2Status>(
                        &client,
                        &options,
                        l2_statuses.clone(),
                        l2_wake.clone(),
                        wanted,
                        budget.clone(),
                        l2_status::status,
                    )
                },
                reflectors.tasks(),
            );
            status_objects::want(
                &mut bgp_writer,
                &announced,
                &owners,
                live.len(),
                |wanted| {
                    status_objects::spawn_writer::<ServiceBGPStatus>(
                        &client,
                        &options,
                        bgp_statuses.clone(),
                        bgp_wake.clone(),
                        wanted,
                        budget.clone(),
                        if options.bgp_node_status {
                            bgp_status::status
                        } else {
                            // None wanted: this node's objects are deleted.
                            |_, _, _| None
                        },
                    )
                },
                reflectors.tasks(),
            );
        }
        report_tx.send_modify(|r| r.config = config_status.clone());
        host::check_host(
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
                    if trim.tick() {
                        oxlb_node::memory::release_freed();
                    }
                    if membership.recheck() {
                        break;
                    }
                    let health_checks = health.status();
                    report_tx.send_if_modified(|r| {
                        let changed = r.health_checks != health_checks;
                        r.health_checks = health_checks;
                        changed
                    });
                    host::check_host(
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
                            r.second_chance = status.second_chance;
                        });
                    }
                }
            }
        }
    }
    // Going down or restarting (the stop plan): the Node as last seen. `kubectl drain`
    // cordons first, an upgrade leaves the Node schedulable.
    let going_down = nodes
        .get(&reflector::ObjectRef::new(&options.node_name))
        .is_some_and(|n| oxlb_node::views::node_view(&n).cordoned);
    tracing::info!(going_down, "stopping");
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
    going_down
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_owns_the_status_objects_and_the_pod_only_until_the_node_is_known() {
        let pod = PodIdentity {
            name: "speaker-x".into(),
            uid: "pod-uid".into(),
        };
        let owners = owner_references(Some(("n1", "node-uid")), Some(&pod));
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (
                owners[0].kind.as_str(),
                owners[0].name.as_str(),
                owners[0].uid.as_str()
            ),
            ("Node", "n1", "node-uid")
        );
        // Not a blocking owner: setting one would need the right to delete Nodes.
        assert_eq!(owners[0].block_owner_deletion, None);
        let owners = owner_references(None, Some(&pod));
        assert_eq!(
            (owners[0].kind.as_str(), owners[0].name.as_str()),
            ("Pod", "speaker-x")
        );
        assert!(owner_references(None, None).is_empty());
    }
}
