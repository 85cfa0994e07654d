//! Which speakers are alive, for the Layer 2 election of `oxlb speaker`: the SWIM
//! membership (`oxlb_l2::membership`, UDP 7946, every packet authenticated with the
//! `memberlist` Secret's key), as MetalLB's memberlist, so a dead node's IPs move in
//! about a second instead of after its pod turns NotReady (kubelet probes, tens of
//! seconds). Without a key the pod-readiness rule stays, and one error says how to
//! create the Secret.
//!
//! The pure parts (key choice, seeds from the speaker pods, the candidate rule) are
//! functions; [`SpeakerMembership`] is the shell the speaker loop drives.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use oxlb_l2::membership::{DEFAULT_PORT, Membership, MembershipError, Tuning};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::memberlist::SECRET_KEY;

/// How the speaker finds and joins the other speakers.
#[derive(Debug, Clone)]
pub struct MembershipOptions {
    /// The address this speaker binds and the others reach it at (MetalLB's
    /// `--ml-bindaddr`, the pod IP from the downward API). `None`: this node's speaker
    /// pod's `status.podIP` from the API.
    pub bind_addr: Option<IpAddr>,
    /// UDP port of every speaker's membership (MetalLB's `--ml-bindport`, 7946).
    pub bind_port: u16,
    /// The key as a file, or a directory holding a file `secretkey` (MetalLB's
    /// `--ml-secret-key-path`, where the Secret is mounted). `None`, or nothing
    /// readable there: the `memberlist` Secret from the API.
    pub secret_key_path: Option<PathBuf>,
    /// Failure-detection timing (the defaults detect a dead speaker in under a second).
    pub tuning: Tuning,
    /// After (re)starting, how long pod readiness still tells who the others are
    /// unless another member answers first. This speaker claims nothing meanwhile: it
    /// claims only once the membership gives it the quorum (`oxlb_announce::quorum`).
    pub warm_up: Duration,
    /// `false`: never start the membership; pod readiness decides.
    pub enabled: bool,
}

impl Default for MembershipOptions {
    fn default() -> MembershipOptions {
        MembershipOptions {
            bind_addr: None,
            bind_port: DEFAULT_PORT,
            secret_key_path: None,
            tuning: Tuning::default(),
            warm_up: Duration::from_secs(3),
            enabled: true,
        }
    }
}

/// Where the membership key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    /// The `memberlist` Secret in the speaker's namespace, from the API.
    Secret,
}

/// The key in force, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    Key {
        source: KeySource,
        key: Vec<u8>,
    },
    /// Neither a readable, non-empty file nor a Secret with a non-empty `secretkey`.
    Missing,
}

/// The key: the file when a path is given and holds one (MetalLB reads its mounted
/// Secret), else the Secret's `secretkey`. The bytes are used as they are (no
/// trimming), so a speaker reading the file and one reading the Secret agree.
pub fn choose_key(
    file: Option<(&Path, &std::io::Result<Vec<u8>>)>,
    secret: Option<&Secret>,
) -> KeyChoice {
    if let Some((path, Ok(key))) = file
        && !key.is_empty()
    {
        return KeyChoice::Key {
            source: KeySource::File(path.to_path_buf()),
            key: key.clone(),
        };
    }
    match secret.and_then(oxlb_config::memberlist::key_of) {
        Some(key) => KeyChoice::Key {
            source: KeySource::Secret,
            key,
        },
        None => KeyChoice::Missing,
    }
}

/// Reads the key file; a directory means the Secret mounted there (its `secretkey`).
/// Reads at most 64 KiB: a key is a few hundred bytes.
pub fn read_key_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = if path.is_dir() {
        path.join(SECRET_KEY)
    } else {
        path.to_path_buf()
    };
    let mut key = Vec::new();
    std::fs::File::open(file)?
        .take(64 * 1024)
        .read_to_end(&mut key)?;
    Ok(key)
}

fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn pod_ip(pod: &Pod) -> Option<IpAddr> {
    pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

fn pod_node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

/// The other speakers' membership addresses: every speaker pod not on this node and
/// not terminating, at its `status.podIP` (with hostNetwork, the node's address) and
/// the membership port. Readiness does not matter: the membership itself tells.
pub fn seeds_from_pods(pods: &[Arc<Pod>], me: &str, port: u16) -> Vec<SocketAddr> {
    let mut seeds: Vec<SocketAddr> = pods
        .iter()
        .filter(|p| !is_terminating(p) && pod_node(p).is_some_and(|n| n != me))
        .filter_map(|p| pod_ip(p))
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    seeds.sort();
    seeds.dedup();
    seeds
}

/// This node's speaker pod's IP: the bind address when none is given.
pub fn own_pod_ip(pods: &[Arc<Pod>], me: &str) -> Option<IpAddr> {
    pods.iter()
        .filter(|p| !is_terminating(p) && pod_node(p) == Some(me))
        .find_map(|p| pod_ip(p))
}

/// What decides liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness<'a> {
    /// The membership's electorate: its live members, this node only while it has the
    /// quorum (`oxlb_l2::membership::Membership::electorate`).
    Members(&'a BTreeSet<String>),
    /// The membership runs but is warming up: the nodes with a Ready speaker pod tell
    /// who the others are, and this node claims nothing until the membership says so.
    WarmingUp,
    /// No membership (no key, no address): Ready speaker pods, this node included.
    PodReadiness,
}

/// The election's candidates: the membership's electorate, or the nodes with a Ready
/// speaker pod (without this node while the membership warms up; with it when there
/// is no membership: it runs, or it would not be deciding).
pub fn election_candidates(
    liveness: Liveness<'_>,
    pods: &[Arc<Pod>],
    nodes: &[Arc<Node>],
    me: &str,
) -> BTreeSet<String> {
    match liveness {
        Liveness::Members(electorate) => electorate.clone(),
        Liveness::WarmingUp => {
            let mut others = crate::speaker::live_speakers(pods, nodes, me);
            others.remove(me);
            others
        }
        Liveness::PodReadiness => crate::speaker::live_speakers(pods, nodes, me),
    }
}

struct Running {
    membership: Membership,
    live: watch::Receiver<BTreeSet<String>>,
    /// Health checks: which checked Services pass on the other speakers.
    peer_health: watch::Receiver<std::collections::BTreeMap<String, BTreeSet<String>>>,
    /// Weighted ECMP: the other speakers' flags (an older one lacks the link-bandwidth
    /// flag).
    peer_flags: watch::Receiver<oxlb_node::mixed_paths::PeerFlags>,
    key: Vec<u8>,
    bind: SocketAddr,
    started: Instant,
}

/// The speaker's membership: started when a key and an address are known, restarted
/// (leave, then start) when either changes, reseeded when speaker pods come and go.
pub struct SpeakerMembership {
    node: String,
    options: MembershipOptions,
    running: Option<Running>,
    /// Whether the membership decided at the last [`SpeakerMembership::candidates`]:
    /// the end of the warm-up must trigger a recompute.
    decided: bool,
    /// The last problem logged, so each is logged once and not at every pass.
    problem: Option<String>,
    file_unreadable: bool,
    /// The last start failed (not for want of a key or an address): retried at every
    /// [`SpeakerMembership::recheck`].
    start_failed: bool,
}

impl SpeakerMembership {
    pub fn new(node: &str, options: MembershipOptions) -> SpeakerMembership {
        SpeakerMembership {
            node: node.to_string(),
            options,
            running: None,
            decided: false,
            problem: None,
            file_unreadable: false,
            start_failed: false,
        }
    }

    fn key(&mut self, secret: Option<&Secret>) -> KeyChoice {
        let read = self
            .options
            .secret_key_path
            .as_deref()
            .map(|p| (p, read_key_file(p)));
        match &read {
            Some((path, Err(e))) => {
                if !self.file_unreadable {
                    // Normal for a while after install: the kubelet mounts a Secret
                    // created after the pod started only at its next sync.
                    warn!(path = %path.display(), error = %e,
                        "memberlist key file not readable; using the Secret from the API");
                }
                self.file_unreadable = true;
            }
            _ => self.file_unreadable = false,
        }
        choose_key(read.as_ref().map(|(p, r)| (*p, r)), secret)
    }

    fn report(&mut self, problem: String) {
        if self.problem.as_ref() != Some(&problem) {
            error!("{problem}");
            self.problem = Some(problem);
        }
    }

    /// Brings the membership in line with the key and the speaker pods; called at every
    /// pass of the speaker loop.
    pub async fn reconcile(&mut self, secret: Option<&Secret>, pods: &[Arc<Pod>]) {
        if !self.options.enabled {
            return;
        }
        let key = match self.key(secret) {
            KeyChoice::Key { key, .. } => key,
            KeyChoice::Missing => {
                self.stop().await;
                self.start_failed = false;
                self.report(format!(
                    "layer2 liveness: {}. Until then a node counts as alive while its speaker \
                     pod is Ready, so a dead node's IPs move only after the kubelet reports it \
                     (tens of seconds)",
                    MembershipError::NoSecret
                ));
                return;
            }
        };
        let Some(ip) = self
            .options
            .bind_addr
            .or_else(|| own_pod_ip(pods, &self.node))
        else {
            self.stop().await;
            self.start_failed = false;
            self.report(
                "layer2 liveness: no membership address: give --ml-bindaddr (the pod IP) or \
                 run as the DaemonSet (this node's speaker pod IP); until then pod readiness decides"
                    .to_string(),
            );
            return;
        };
        let bind = SocketAddr::new(ip, self.options.bind_port);
        let seeds = seeds_from_pods(pods, &self.node, self.options.bind_port);
        if let Some(running) = &self.running {
            if running.key == key && running.bind == bind {
                running.membership.set_seeds(seeds);
                return;
            }
            info!(%bind, "layer2 liveness: memberlist key or address changed; rejoining");
            self.stop().await;
        }
        match Membership::start(
            &self.node,
            bind,
            seeds.clone(),
            Some(&key),
            self.options.tuning.clone(),
        )
        .await
        {
            Ok(membership) => {
                info!(%bind, seeds = ?seeds, "layer2 liveness: membership started");
                self.problem = None;
                self.start_failed = false;
                // This version attaches the link-bandwidth community; the speaker drains by
                // cordon, which every speaker reads from the Node, so no drained flag.
                membership.set_flags(oxlb_l2::health_news::own_flags(false));
                self.running = Some(Running {
                    live: membership.watch_electorate(),
                    peer_health: membership.watch_peer_health(),
                    peer_flags: membership.watch_peer_flags(),
                    membership,
                    key,
                    bind,
                    started: Instant::now(),
                });
            }
            Err(e) => {
                self.start_failed = true;
                self.report(format!(
                    "layer2 liveness: membership on {bind} did not start ({e}); pod readiness \
                     decides until it does (retried every second)"
                ));
            }
        }
    }

    /// Whether the membership decides now (else pod readiness): running, and either
    /// another member answered or the warm-up is over.
    fn membership_decides(&self, now: Instant) -> bool {
        self.running.as_ref().is_some_and(|r| {
            r.membership.live_members().len() > 1
                || now.duration_since(r.started) >= self.options.warm_up
        })
    }

    /// The Layer 2 election's candidates.
    pub fn candidates(&mut self, pods: &[Arc<Pod>], nodes: &[Arc<Node>]) -> BTreeSet<String> {
        self.decided = self.membership_decides(Instant::now());
        // Marked as seen whether or not it decides, so `changed` waits for the next one.
        let live = self
            .running
            .as_mut()
            .map(|r| r.live.borrow_and_update().clone());
        match (&live, self.decided) {
            (Some(live), true) => {
                election_candidates(Liveness::Members(live), pods, nodes, &self.node)
            }
            (Some(_), false) => election_candidates(Liveness::WarmingUp, pods, nodes, &self.node),
            (None, _) => election_candidates(Liveness::PodReadiness, pods, nodes, &self.node),
        }
    }

    /// Resolves when the live set, or what the other speakers told, changed (never
    /// without a membership).
    pub async fn changed(&mut self) {
        match &mut self.running {
            Some(running) => {
                let changed = tokio::select! {
                    r = running.live.changed() => r,
                    r = running.peer_health.changed() => r,
                    r = running.peer_flags.changed() => r,
                };
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }

    /// Health checks: tells the other speakers which checked Services pass here.
    pub fn set_passing(&self, services: BTreeSet<String>) {
        if let Some(running) = &self.running {
            running.membership.set_passing(services);
        }
    }

    /// Health checks: which checked Services pass on the other speakers, as they told;
    /// `None` without a running membership.
    pub fn peer_health(&self) -> Option<std::collections::BTreeMap<String, BTreeSet<String>>> {
        self.running
            .as_ref()
            .map(|r| r.peer_health.borrow().clone())
    }

    /// Weighted ECMP: what each speaker heard from told about the link-bandwidth
    /// community ([`oxlb_node::mixed_paths::told`]); empty without a membership.
    pub fn told(
        &self,
    ) -> std::collections::BTreeMap<String, oxlb_announce::mixed_paths::LinkBandwidth> {
        self.running
            .as_ref()
            .map(|r| oxlb_node::mixed_paths::told(&r.peer_flags.borrow()))
            .unwrap_or_default()
    }

    /// For a periodic check: whether something no event signals changed: the warm-up
    /// ended, the key file now holds another key (a rotated, mounted Secret) or a key
    /// at all, or a start failed (e.g. the port was still taken) and is worth retrying.
    pub fn recheck(&mut self) -> bool {
        let decides = self.membership_decides(Instant::now());
        if decides != self.decided {
            self.decided = decides;
            return true;
        }
        if !self.options.enabled {
            return false;
        }
        let file_key = || {
            self.options
                .secret_key_path
                .as_deref()
                .and_then(|path| read_key_file(path).ok())
                .filter(|key| !key.is_empty())
        };
        match &self.running {
            Some(running) => file_key().is_some_and(|key| key != running.key),
            None => self.start_failed || file_key().is_some(),
        }
    }

    /// The live members (this node included), if the membership runs.
    pub fn live_members(&self) -> Option<BTreeSet<String>> {
        self.running.as_ref().map(|r| r.membership.live_members())
    }

    /// Clean stop: the others drop this node at once and take its IPs over.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.membership.leave().await;
            info!("layer2 liveness: left the membership");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(node: &str, ip: Option<&str>, ready: bool, terminating: bool) -> Arc<Pod> {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("speaker-{node}")},
            "spec": {"nodeName": node, "containers": []},
            "status": {"podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
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

    fn secret(data: Option<&[u8]>, string_data: Option<&str>) -> Secret {
        let mut s = Secret::default();
        if let Some(d) = data {
            s.data = Some([(SECRET_KEY.to_string(), k8s_openapi::ByteString(d.to_vec()))].into());
        }
        if let Some(d) = string_data {
            s.string_data = Some([(SECRET_KEY.to_string(), d.to_string())].into());
        }
        s
    }

    #[test]
    fn seeds_are_the_other_speaker_pods_at_the_port() {
        let pods = [
            pod("a", Some("10.0.0.1"), true, false),
            pod("b", Some("10.0.0.2"), false, false),
            pod("c", Some("10.0.0.3"), true, true),
            pod("d", None, true, false),
            pod("e", Some("fd00::5"), true, false),
            pod("f", Some("not an ip"), true, false),
        ];
        let seeds = seeds_from_pods(&pods, "a", 7946);
        let want: Vec<SocketAddr> = vec![
            "10.0.0.2:7946".parse().unwrap(),
            "[fd00::5]:7946".parse().unwrap(),
        ];
        assert_eq!(seeds, want);
        assert_eq!(own_pod_ip(&pods, "a"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(own_pod_ip(&pods, "c"), None, "terminating");
        assert_eq!(own_pod_ip(&pods, "zz"), None);
    }

    #[test]
    fn candidates_are_live_members_and_me_or_ready_pods() {
        let pods = [pod("a", None, true, false), pod("b", None, false, false)];
        let members: BTreeSet<String> = ["b".to_string(), "c".to_string()].into();
        // The membership says b and c live: b's NotReady pod does not matter, and a
        // Ready pod (a) whose speaker is not a member is not a candidate. "me" is not
        // in the electorate (no quorum yet): it is no candidate either.
        let live = election_candidates(Liveness::Members(&members), &pods, &[], "me");
        assert_eq!(live.into_iter().collect::<Vec<_>>(), ["b", "c"]);
        let live = election_candidates(Liveness::PodReadiness, &pods, &[], "me");
        assert_eq!(live.into_iter().collect::<Vec<_>>(), ["a", "me"]);
        // Warming up: the Ready pods tell who the others are; "me" claims nothing yet.
        let live = election_candidates(Liveness::WarmingUp, &pods, &[], "me");
        assert_eq!(live.into_iter().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn the_key_file_wins_then_the_secret() {
        let path = Path::new("/etc/oxlb/memberlist/secretkey");
        let file: std::io::Result<Vec<u8>> = Ok(b"from-file".to_vec());
        let empty: std::io::Result<Vec<u8>> = Ok(Vec::new());
        let missing: std::io::Result<Vec<u8>> =
            Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        let s = secret(Some(b"from-secret"), None);
        assert_eq!(
            choose_key(Some((path, &file)), Some(&s)),
            KeyChoice::Key {
                source: KeySource::File(path.to_path_buf()),
                key: b"from-file".to_vec()
            }
        );
        for file in [&empty, &missing] {
            assert_eq!(
                choose_key(Some((path, file)), Some(&s)),
                KeyChoice::Key {
                    source: KeySource::Secret,
                    key: b"from-secret".to_vec()
                }
            );
        }
        assert_eq!(
            choose_key(None, Some(&secret(None, Some("typed")))),
            KeyChoice::Key {
                source: KeySource::Secret,
                key: b"typed".to_vec()
            }
        );
        assert_eq!(
            choose_key(None, Some(&secret(Some(b""), None))),
            KeyChoice::Missing
        );
        assert_eq!(choose_key(Some((path, &missing)), None), KeyChoice::Missing);
        assert_eq!(choose_key(None, None), KeyChoice::Missing);
    }

    #[test]
    fn a_key_path_may_be_the_mounted_directory() {
        let dir = std::env::temp_dir().join(format!("oxlb-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        std::fs::write(dir.join(SECRET_KEY), b"k\n").unwrap_or_default();
        assert_eq!(read_key_file(&dir).ok(), Some(b"k\n".to_vec()));
        assert_eq!(
            read_key_file(&dir.join(SECRET_KEY)).ok(),
            Some(b"k\n".to_vec())
        );
        assert!(read_key_file(&dir.join("nope")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
