//! Layer 2 for `oxlb run`: the membership that tells which speakers are alive (the
//! election's candidates), from the files, and carries the speakers' news (health,
//! drain, the link-bandwidth flag). The ARP/NDP responder is the node driver's
//! (`oxlb_node::driver`); the membership starts once it runs, or when weighted ECMP
//! needs the news of other speakers ([`wanted_for_weighted_ecmp`]).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use oxlb_config::snapshot::Snapshot;
use oxlb_node::bgp::local_address_toward;
use oxlb_node::node_info::first_internal_ip;
use tokio::sync::watch;
use tracing::{error, info};

/// The Secret (and key) whose bytes authenticate every membership packet, as MetalLB's
/// memberlist uses it.
pub use oxlb_config::memberlist::{SECRET_KEY as MEMBERLIST_KEY, SECRET_NAME as MEMBERLIST_SECRET};

/// Speaker → its flags, as the other speakers told.
pub type PeerFlags = std::collections::BTreeMap<String, BTreeSet<oxlb_l2::membership::Flag>>;

pub struct Layer2 {
    pub membership: Option<oxlb_l2::membership::Membership>,
    node: String,
    options: Layer2Options,
}

#[derive(Debug, Clone)]
pub struct Layer2Options {
    /// Where this speaker's membership listens (default 0.0.0.0:7946). An unspecified
    /// address is replaced by this node's own address (see [`membership_address`]).
    pub bind: SocketAddr,
    /// Other speakers' membership addresses; empty: Node InternalIPs from the files.
    pub members: Vec<SocketAddr>,
    /// Interface name patterns never answered on (None: the responder's defaults).
    pub exclude: Option<Vec<String>>,
}

impl Layer2Options {
    /// The node driver's responder settings: `oxlb run` runs on the host and sets the
    /// ARP sysctls the responder needs (the default policy).
    pub fn responder_settings(&self) -> oxlb_l2::responder::Settings {
        let mut settings = oxlb_l2::responder::Settings::default();
        if let Some(exclude) = &self.exclude {
            settings.exclude = exclude.clone();
        }
        settings
    }
}

impl Layer2 {
    pub async fn start(node: &str, options: &Layer2Options, snapshot: &Snapshot) -> Layer2 {
        Layer2 {
            membership: start_membership(node, options, snapshot).await,
            node: node.to_string(),
            options: options.clone(),
        }
    }

    /// After a reload: the other speakers as the files now name them (a Node added
    /// later is announced to, a removed one no longer). `--members` stays as given.
    pub fn update_seeds(&self, snapshot: &Snapshot) {
        if let Some(membership) = &self.membership {
            update_seeds(membership, &self.options, snapshot, &self.node);
        }
    }

    /// The election's candidates: the live speakers, without this one while it has no
    /// quorum or has not settled yet (`oxlb_announce::quorum`); `None` when there is no
    /// membership (all known count).
    pub fn live(&self) -> Option<BTreeSet<String>> {
        self.membership.as_ref().map(|m| m.electorate())
    }

    pub fn watch_live(&self) -> Option<watch::Receiver<BTreeSet<String>>> {
        self.membership.as_ref().map(|m| m.watch_electorate())
    }

    /// Health checks: tells the others which checked Services pass here.
    pub fn set_passing(&self, services: BTreeSet<String>) {
        if let Some(membership) = &self.membership {
            membership.set_passing(services);
        }
    }

    /// Tells the others this speaker's flags: whether it is drained (`oxlb drain`: they
    /// then elect Layer 2 owners without it while another speaker can answer), whether
    /// it awaits their acknowledgement (an undrain), and that it attaches the
    /// link-bandwidth community and echoes (always, this version).
    pub fn set_flags(&self, drained: bool, awaiting_acks: bool) {
        if let Some(membership) = &self.membership {
            let mut flags = oxlb_l2::health_news::own_flags(drained);
            if awaiting_acks {
                flags.insert(oxlb_l2::membership::Flag::AwaitingAcks);
            }
            membership.set_flags(flags);
        }
    }

    /// The other speakers' flags (drained, link bandwidth), as they told, for every
    /// speaker heard from; `None` without membership.
    pub fn watch_peer_flags(&self) -> Option<watch::Receiver<PeerFlags>> {
        self.membership.as_ref().map(|m| m.watch_peer_flags())
    }

    /// Who has read this speaker's latest flag change (the undrain hold waits on it);
    /// `None` without membership.
    pub fn watch_flag_acks(&self) -> Option<watch::Receiver<oxlb_l2::membership::FlagAcks>> {
        self.membership.as_ref().map(|m| m.watch_flag_acks())
    }

    /// Health checks: what the other speakers told; `None` without membership.
    pub fn watch_peer_health(
        &self,
    ) -> Option<watch::Receiver<std::collections::BTreeMap<String, BTreeSet<String>>>> {
        self.membership.as_ref().map(|m| m.watch_peer_health())
    }

    /// A clean stop tells the other speakers at once, so they take over without waiting
    /// for failure detection.
    pub async fn stop(self) {
        if let Some(membership) = self.membership {
            membership.leave().await;
        }
    }
}

/// Weighted ECMP needs the membership without Layer 2 too: the other speakers' news
/// tells which of them are older and announce weighted prefixes without the
/// link-bandwidth community (`oxlb_announce::mixed_paths`). Only when an advertisement
/// is weighted and another speaker is known (`--members`, or other Nodes in the files):
/// alone, nothing can mix. And only with the memberlist Secret in the files: without
/// it a BGP-only host has no membership to start, and the Layer 2 error about the
/// missing Secret would be noise there.
pub fn wanted_for_weighted_ecmp(
    config: &oxlb_config::Config,
    options: &Layer2Options,
    snapshot: &Snapshot,
    node: &str,
) -> bool {
    config.bgp_advertisements.values().any(|a| a.weighted_ecmp)
        && !seeds(options, snapshot, node).is_empty()
        && oxlb_config::memberlist::key_in(snapshot).is_some()
}

/// Starts the membership when the files hold its Secret. Also with no other speaker
/// known yet: Nodes added to the files later are announced to ([`update_seeds`]).
pub async fn start_membership(
    node: &str,
    options: &Layer2Options,
    snapshot: &Snapshot,
) -> Option<oxlb_l2::membership::Membership> {
    let seeds = seeds(options, snapshot, node);
    let Some(secret) = oxlb_config::memberlist::key_in(snapshot) else {
        if seeds.is_empty() {
            info!(
                "layer2: no other speaker known (no --members, no other Node); this node decides alone"
            );
        } else {
            error!(
                "layer2: the speakers cannot check each other's liveness: no Secret \
                 {MEMBERLIST_SECRET:?} with key {MEMBERLIST_KEY:?} in the files. Create one, \
                 e.g. `kubectl create secret generic {MEMBERLIST_SECRET} -n metallb-system \
                 --from-literal={MEMBERLIST_KEY}=\"$(openssl rand -base64 128)\" --dry-run=client -o yaml`, \
                 and give the same file to every node. Until then every known node counts \
                 as alive and a dead owner is not replaced, and weighted ECMP cannot tell \
                 older speakers (mixed paths)."
            );
        }
        return None;
    };
    let own = own_address(snapshot, node);
    let Some(bind) = membership_address(options.bind, own, &seeds, local_address_toward) else {
        if seeds.is_empty() {
            info!(
                "layer2: no other speaker known and no address of this node's own (no Node \
                 object); this node decides alone"
            );
        } else {
            error!(
                bind = %options.bind,
                "layer2: membership not started: the other speakers could not reach this one \
                 at an unspecified address, and this node has no Node InternalIP nor a route \
                 to a seed; give --memberlist-bind ADDRESS:PORT"
            );
        }
        return None;
    };
    match oxlb_l2::membership::Membership::start(
        node,
        bind,
        seeds.clone(),
        Some(&secret),
        oxlb_l2::membership::Tuning::default(),
    )
    .await
    {
        Ok(membership) => {
            info!(%bind, seeds = ?seeds, "layer2: membership started");
            Some(membership)
        }
        Err(e) => {
            error!(%bind, "layer2: membership did not start: {e}");
            None
        }
    }
}

/// Gives the running membership the seeds the files name now.
pub fn update_seeds(
    membership: &oxlb_l2::membership::Membership,
    options: &Layer2Options,
    snapshot: &Snapshot,
    node: &str,
) {
    membership.set_seeds(seeds(options, snapshot, node));
}

/// The membership's seeds: `--members` if given, else the other Nodes in the files.
fn seeds(options: &Layer2Options, snapshot: &Snapshot, node: &str) -> Vec<SocketAddr> {
    if options.members.is_empty() {
        peer_addresses(snapshot, node, options.bind.port())
    } else {
        options.members.clone()
    }
}

/// The address the membership binds and is known by. The membership names every
/// member by its address, and the others send their probes there: an unspecified bind
/// (`0.0.0.0`, the default) would tell them to send to themselves. So an unspecified
/// bind becomes this node's own InternalIP (the address the other speakers use as their
/// seed for it), else the address this host sends from toward the first seed. `None`:
/// no usable address.
pub fn membership_address(
    bind: SocketAddr,
    own: Option<IpAddr>,
    seeds: &[SocketAddr],
    toward: impl Fn(&IpAddr) -> Option<IpAddr>,
) -> Option<SocketAddr> {
    if !bind.ip().is_unspecified() {
        return Some(bind);
    }
    own.or_else(|| seeds.first().and_then(|seed| toward(&seed.ip())))
        .map(|ip| SocketAddr::new(ip, bind.port()))
}

/// This node's first InternalIP from its Node object, as the others see it.
fn own_address(snapshot: &Snapshot, node: &str) -> Option<IpAddr> {
    snapshot
        .nodes
        .iter()
        .filter(|n| n.object.metadata.name.as_deref() == Some(node))
        .find_map(|n| first_internal_ip(&n.object))
}

/// Other nodes' InternalIP addresses from their Node objects, at the membership port.
fn peer_addresses(snapshot: &Snapshot, node: &str, port: u16) -> Vec<SocketAddr> {
    snapshot
        .nodes
        .iter()
        .filter(|n| n.object.metadata.name.as_deref() != Some(node))
        .filter_map(|n| first_internal_ip(&n.object))
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_given_bind_address_is_kept() {
        let bind = addr("10.0.0.5:7946");
        let own = Some("10.0.0.9".parse().unwrap());
        assert_eq!(membership_address(bind, own, &[], |_| None), Some(bind));
    }

    #[test]
    fn an_unspecified_bind_becomes_the_nodes_own_address() {
        let own = Some("fd00::9".parse().unwrap());
        let seeds = [addr("10.0.0.2:7000")];
        assert_eq!(
            membership_address(addr("0.0.0.0:7000"), own, &seeds, |_| None),
            Some(addr("[fd00::9]:7000"))
        );
        // No Node object of its own: the address toward the first seed.
        let toward = |_: &IpAddr| Some("10.0.0.7".parse().unwrap());
        assert_eq!(
            membership_address(addr("[::]:7000"), None, &seeds, toward),
            Some(addr("10.0.0.7:7000"))
        );
        // Nothing to go by: no membership rather than one nobody can reach.
        assert_eq!(
            membership_address(addr("0.0.0.0:7000"), None, &[], toward),
            None
        );
    }

    fn snapshot(nodes: &[(&str, &str)]) -> Snapshot {
        let mut text = String::from(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: memberlist\n  namespace: metallb-system\n\
             stringData:\n  secretkey: test-key\n",
        );
        for (name, ip) in nodes {
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\nstatus:\n  addresses:\n\
                 \x20   - type: InternalIP\n      address: {ip}\n"
            ));
        }
        oxlb_config::load_str(&text, None, "metallb-system").unwrap()
    }

    /// Weighted ECMP starts the membership (without Layer 2) only when another speaker
    /// is known: alone, no router can get mixed paths.
    #[test]
    fn weighted_ecmp_wants_the_membership_when_other_speakers_are_known() {
        let weighted = |annotation: &str| {
            let text = format!(
                "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\n  \
                 namespace: metallb-system\nspec:\n  addresses: [10.0.0.0/24]\n---\n\
                 apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: a\n  \
                 namespace: metallb-system\n  annotations:\n    oxlb.io/weighted-ecmp: \"{annotation}\"\n"
            );
            let snapshot = oxlb_config::load_str(&text, None, "metallb-system").unwrap();
            oxlb_config::build_config(&snapshot).applied
        };
        let options = |members: &[&str]| Layer2Options {
            bind: addr("0.0.0.0:7946"),
            members: members.iter().map(|m| addr(m)).collect(),
            exclude: None,
        };
        let alone = snapshot(&[("a", "10.0.0.1")]);
        let two = snapshot(&[("a", "10.0.0.1"), ("b", "10.0.0.2")]);
        let (on, off) = (weighted("true"), weighted("false"));
        assert!(wanted_for_weighted_ecmp(&on, &options(&[]), &two, "a"));
        assert!(wanted_for_weighted_ecmp(
            &on,
            &options(&["10.0.0.2:7946"]),
            &alone,
            "a"
        ));
        assert!(!wanted_for_weighted_ecmp(&on, &options(&[]), &alone, "a"));
        assert!(!wanted_for_weighted_ecmp(&off, &options(&[]), &two, "a"));
        let no_secret = oxlb_config::load_str(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: b\nstatus:\n  addresses:\n\
             \x20   - type: InternalIP\n      address: 10.0.0.2\n",
            None,
            "metallb-system",
        )
        .unwrap();
        assert!(!wanted_for_weighted_ecmp(
            &on,
            &options(&[]),
            &no_secret,
            "a"
        ));
    }

    /// Two speakers that each started knowing only themselves meet once a reload names
    /// the other: the running membership announces to Nodes added later. Loopback only
    /// (127.0.0.1 and 127.0.0.2, one port).
    #[tokio::test]
    async fn a_node_added_later_is_announced_to() {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = Layer2Options {
            bind: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port),
            members: vec![],
            exclude: None,
        };
        let a = start_membership("a", &options, &snapshot(&[("a", "127.0.0.1")]))
            .await
            .expect("a starts alone, with its own address");
        let b = start_membership("b", &options, &snapshot(&[("b", "127.0.0.2")]))
            .await
            .expect("b starts alone, with its own address");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(a.live_members(), BTreeSet::from(["a".to_string()]));

        let both = snapshot(&[("a", "127.0.0.1"), ("b", "127.0.0.2")]);
        update_seeds(&a, &options, &both, "a");
        let want = BTreeSet::from(["a".to_string(), "b".to_string()]);
        let met = tokio::time::timeout(Duration::from_secs(30), async {
            let mut watch_a = a.watch();
            let mut watch_b = b.watch();
            while *watch_a.borrow() != want || *watch_b.borrow() != want {
                tokio::select! {
                    _ = watch_a.changed() => {}
                    _ = watch_b.changed() => {}
                }
            }
        })
        .await;
        assert!(
            met.is_ok(),
            "a sees {:?}, b sees {:?}",
            a.live_members(),
            b.live_members()
        );
        a.leave().await;
        b.leave().await;
    }
}
