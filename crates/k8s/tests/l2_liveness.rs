//! Layer 2 liveness of `oxlb speaker`: three speakers in one process against one mock
//! API server, each with its membership on 127.0.0.N. They agree on one owner; when the
//! owner's speaker dies abruptly (its pod stays Ready in the API: pod readiness would
//! not notice) the two others agree on a new owner; a clean stop hands over too.
//! Without the `memberlist` Secret, pod readiness decides.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxlb_announce::Announcements;
use oxlb_k8s::liveness::SpeakerMembership;
use oxlb_k8s::{MembershipOptions, SpeakerOptions, rbac, run_speaker};
use serde_json::{Value, json};
use support::*;

const NS: &str = "metallb-system";
const IP: &str = "192.168.10.1";
const NODES: [&str; 3] = ["n1", "n2", "n3"];

fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
}

fn speaker_pod(node: &str, ip: Ipv4Addr, ready: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": format!("oxlb-speaker-{node}"), "namespace": NS,
                        "labels": {"app.kubernetes.io/name": "oxlb",
                                   "app.kubernetes.io/component": "speaker"}},
           "spec": {"nodeName": node, "containers": [{"name": "speaker"}]},
           "status": {"podIP": ip.to_string(),
                      "conditions": [{"type": "Ready",
                                      "status": if ready { "True" } else { "False" }}]}})
}

fn memberlist_secret() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "memberlist", "namespace": NS},
           // base64 of "secret-key-for-tests"
           "data": {"secretkey": "c2VjcmV0LWtleS1mb3ItdGVzdHM="}})
}

fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + i as u8)
}

/// A UDP port free on 127.0.0.2, .3 and .4 at once (bound and released: a small race
/// accepted in tests).
fn free_port() -> u16 {
    loop {
        let first = std::net::UdpSocket::bind((address(0), 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let others: Vec<_> = (1..3)
            .map(|i| std::net::UdpSocket::bind((address(i), port)))
            .collect();
        if others.iter().all(Result::is_ok) {
            return port;
        }
    }
}

/// A cluster of three nodes, each with a Ready speaker pod at 127.0.0.N, one Service
/// with an address from a Layer 2 pool and a serving endpoint.
fn cluster(with_secret: bool) -> FakeApi {
    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(l2("l2"));
    for (i, name) in NODES.iter().enumerate() {
        api.put(node(name));
        api.put(speaker_pod(name, address(i), true));
    }
    if with_secret {
        api.put(memberlist_secret());
    }
    api.put(with_status(service("default", "web"), IP, "pool1"));
    api.put(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "web-abc", "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "web"}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": ["10.244.0.5"], "nodeName": "n1",
                          "conditions": {"ready": true, "serving": true}}]}),
    );
    api
}

/// One speaker: its task, its clean-stop trigger and what it last announced.
struct Speaker {
    task: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    last: Arc<Mutex<Option<Announcements>>>,
}

impl Speaker {
    fn start(api: &FakeApi, i: usize, port: u16) -> Speaker {
        let last: Arc<Mutex<Option<Announcements>>> = Arc::default();
        let sink = Arc::clone(&last);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = SpeakerOptions {
            membership: MembershipOptions {
                bind_addr: Some(IpAddr::V4(address(i))),
                bind_port: port,
                ..MembershipOptions::default()
            },
            ..SpeakerOptions::new(NS, NODES[i])
        };
        let client = api.client();
        let task = tokio::spawn(async move {
            run_speaker(
                client,
                options,
                move |_config, announcements: &Announcements| {
                    *sink.lock().unwrap() = Some(announcements.clone())
                },
                async {
                    let _ = stopped.await;
                },
            )
            .await;
        });
        Speaker {
            task,
            stop: Some(stop),
            last,
        }
    }

    fn owns(&self) -> bool {
        let ip: IpAddr = IP.parse().unwrap();
        self.last
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|a| a.l2.contains_key(&ip))
    }

    fn has_decided(&self) -> bool {
        self.last.lock().unwrap().is_some()
    }
}

/// The nodes (among the running speakers) announcing the IP, once every running
/// speaker has computed its announcements.
fn owners(speakers: &[Option<Speaker>]) -> Option<Vec<&'static str>> {
    let running: Vec<(usize, &Speaker)> = speakers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .collect();
    if !running.iter().all(|(_, s)| s.has_decided()) {
        return None;
    }
    Some(
        running
            .iter()
            .filter(|(_, s)| s.owns())
            .map(|(i, _)| NODES[*i])
            .collect(),
    )
}

async fn wait_for_single_owner(what: &str, speakers: &[Option<Speaker>]) -> &'static str {
    let mut found = None;
    wait_for(what, || match owners(speakers) {
        Some(o) if o.len() == 1 => {
            found = Some(o[0]);
            true
        }
        _ => false,
    })
    .await;
    found.unwrap()
}

/// Waits until exactly one running speaker announces and it is not `old`.
async fn wait_for_new_owner(what: &str, speakers: &[Option<Speaker>], old: &str) -> &'static str {
    let mut found = None;
    wait_for(what, || match owners(speakers) {
        Some(o) if o.len() == 1 && o[0] != old => {
            found = Some(o[0]);
            true
        }
        _ => false,
    })
    .await;
    found.unwrap()
}

fn index(node: &str) -> usize {
    NODES.iter().position(|n| *n == node).unwrap()
}

/// Starts three speakers, waits until they agree and their memberships decide, kills
/// the owner abruptly, and returns the time until the two others agree on another.
async fn one_abrupt_takeover(api: &FakeApi) -> (Duration, Vec<Option<Speaker>>, &'static str) {
    let port = free_port();
    let speakers: Vec<Option<Speaker>> =
        (0..3).map(|i| Some(Speaker::start(api, i, port))).collect();
    let owner = wait_for_single_owner("one owner among three", &speakers).await;
    // Past the membership's warm-up (3 s by default, during which pod readiness still
    // decides): from here on only the membership tells who is alive. Not an assertion.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        owners(&speakers).unwrap(),
        [owner],
        "still one owner once the membership decides"
    );
    let mut speakers = speakers;
    // Abrupt death: the task is dropped mid-flight, no leave is sent, and the pod
    // stays Ready in the API.
    let killed = speakers[index(owner)].take().unwrap();
    let killed_at = Instant::now();
    killed.task.abort();
    let new_owner = wait_for_new_owner("a new owner after the kill", &speakers, owner).await;
    (killed_at.elapsed(), speakers, new_owner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_moves_the_ip_when_the_owner_dies_or_leaves() {
    let api = cluster(true);
    let (took, mut speakers, new_owner) = one_abrupt_takeover(&api).await;
    println!("abrupt kill: takeover after {took:?}");

    // A clean stop of the new owner: it leaves the membership first, the last speaker
    // takes over without waiting for failure detection. Two of three speakers gone is
    // no quorum for the last one (oxlb_announce::quorum) until the API confirms both
    // are gone: the killed one's pod removed (its Node deleted), the stopping one's
    // pod deleted (what a clean stop is in Kubernetes).
    let killed = NODES
        .iter()
        .find(|n| **n != new_owner && speakers[index(n)].is_none())
        .unwrap();
    api.delete("/api/v1/pods", NS, &format!("oxlb-speaker-{killed}"));
    api.delete("/api/v1/pods", NS, &format!("oxlb-speaker-{new_owner}"));
    let stopping = speakers[index(new_owner)].take().unwrap();
    let stopped_at = Instant::now();
    let _ = stopping.stop.unwrap().send(());
    stopping.task.await.unwrap();
    let last = wait_for_new_owner("the last speaker takes over", &speakers, new_owner).await;
    println!(
        "clean stop: takeover by {last} after {:?}",
        stopped_at.elapsed()
    );
    for speaker in speakers.iter_mut().flatten() {
        let _ = speaker.stop.take().unwrap().send(());
    }
    for speaker in speakers.into_iter().flatten() {
        speaker.task.await.unwrap();
    }
    for r in api.log() {
        assert!(
            rbac::allows(rbac::SPEAKER, NS, &r.method, &r.path, &r.query),
            "speaker request not covered by RBAC: {} {}?{}",
            r.method,
            r.path,
            r.query
        );
    }

    // The figure: the median over a few more abrupt kills (OXLB_TAKEOVER_RUNS, default 3
    // in all with the one above).
    let runs: usize = std::env::var("OXLB_TAKEOVER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut times = vec![took];
    while times.len() < runs {
        let api = cluster(true);
        let (took, speakers, _) = one_abrupt_takeover(&api).await;
        times.push(took);
        for speaker in speakers.into_iter().flatten() {
            speaker.task.abort();
        }
    }
    times.sort();
    println!(
        "abrupt kill: median takeover {:?} over {} runs ({times:?})",
        times[times.len() / 2],
        times.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_secret_pod_readiness_decides() {
    let api = cluster(false);
    let port = free_port();
    let mut speakers: Vec<Option<Speaker>> = (0..3)
        .map(|i| Some(Speaker::start(&api, i, port)))
        .collect();
    let owner = wait_for_single_owner("one owner among three", &speakers).await;
    // The owner's pod turns NotReady while its speaker runs on: the two others no
    // longer count its node (it still counts itself, as a speaker always does).
    let i = index(owner);
    api.put(speaker_pod(owner, address(i), false));
    let others: Vec<Option<Speaker>> = speakers
        .iter_mut()
        .enumerate()
        .map(|(j, s)| if j == i { None } else { s.take() })
        .collect();
    let new_owner = wait_for_new_owner("the others pick another owner", &others, owner).await;
    assert_ne!(new_owner, owner);
    assert!(speakers[i].as_ref().unwrap().owns());
    // Ready again: it is a candidate again and wins again.
    api.put(speaker_pod(owner, address(i), true));
    wait_for("the others give the IP back", || {
        owners(&others).is_some_and(|o| o.is_empty())
    })
    .await;
    for mut speaker in speakers.into_iter().chain(others).flatten() {
        let _ = speaker.stop.take().unwrap().send(());
        speaker.task.await.unwrap();
    }
}

fn typed_pod(node: &str, ip: Ipv4Addr) -> Arc<k8s_openapi::api::core::v1::Pod> {
    Arc::new(serde_json::from_value(speaker_pod(node, ip, true)).unwrap())
}

fn typed_secret(key: &str) -> k8s_openapi::api::core::v1::Secret {
    let mut secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(memberlist_secret()).unwrap();
    secret.data = Some([("secretkey".to_string(), k8s_openapi::ByteString(key.into()))].into());
    secret
}

async fn wait_for_members(m: &SpeakerMembership, want: &[&str]) {
    let want: std::collections::BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    wait_for("membership", || m.live_members().as_ref() == Some(&want)).await;
}

/// A rotated Secret restarts the membership with the new key: a speaker still on the
/// old key can no longer be heard (nor declare anyone dead), and both meet again once
/// both have the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_rejoins_with_the_new_key() {
    let port = free_port();
    let pods = [typed_pod("n1", address(0)), typed_pod("n2", address(1))];
    let options = MembershipOptions {
        bind_port: port,
        ..MembershipOptions::default()
    };
    let mut m1 = SpeakerMembership::new("n1", options.clone());
    let mut m2 = SpeakerMembership::new("n2", options);
    // No key: nothing runs.
    m1.reconcile(None, &pods).await;
    assert_eq!(m1.live_members(), None);
    let old = typed_secret("old key");
    m1.reconcile(Some(&old), &pods).await;
    m2.reconcile(Some(&old), &pods).await;
    wait_for_members(&m1, &["n1", "n2"]).await;
    wait_for_members(&m2, &["n1", "n2"]).await;

    let new = typed_secret("new key");
    m1.reconcile(Some(&new), &pods).await;
    wait_for_members(&m2, &["n2"]).await;
    wait_for_members(&m1, &["n1"]).await;
    m2.reconcile(Some(&new), &pods).await;
    wait_for_members(&m1, &["n1", "n2"]).await;
    wait_for_members(&m2, &["n1", "n2"]).await;
    m1.stop().await;
    wait_for_members(&m2, &["n2"]).await;
    m2.stop().await;
}

/// A speaker alone after a start: pod readiness names the others during the warm-up
/// and it claims nothing (not before the others answered), the membership after it
/// (two speakers known, n1 the tie-breaker: it may serve alone), and the
/// periodic recheck is what notices the end of the warm-up.
#[tokio::test]
async fn pod_readiness_decides_during_the_warm_up_only() {
    let port = free_port();
    let pods = [typed_pod("n1", address(0)), typed_pod("n2", address(1))];
    // The default warm-up (3 s): ample for the two calls below to fall within it.
    let mut m1 = SpeakerMembership::new(
        "n1",
        MembershipOptions {
            bind_port: port,
            ..MembershipOptions::default()
        },
    );
    m1.reconcile(Some(&typed_secret("key")), &pods).await;
    let names = |s: std::collections::BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
    // n2's pod is Ready but its speaker never answers. n1 claims nothing while
    // warming up (it has not heard the membership).
    assert_eq!(names(m1.candidates(&pods, &[])), ["n2"]);
    let mut ended = false;
    wait_for("the end of the warm-up", || {
        ended = ended || m1.recheck();
        ended
    })
    .await;
    assert_eq!(names(m1.candidates(&pods, &[])), ["n1"]);
    assert!(!m1.recheck());
    m1.stop().await;
}
