//! Layer 2 for `oxlb run`: the ARP/NDP responder and the membership that tells which
//! speakers are alive (the election's candidates). Started when the configuration first
//! has an L2Advertisement.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use oxlb_config::snapshot::Snapshot;
use tokio::sync::watch;
use tracing::{error, info};

use crate::bgp_glue::local_address_toward;

/// The Secret (and key) whose bytes authenticate every membership packet, as MetalLB's
/// memberlist uses it.
pub const MEMBERLIST_SECRET: &str = "memberlist";
pub const MEMBERLIST_KEY: &str = "secretkey";

pub struct Layer2 {
    pub responder: oxlb_l2::Responder,
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

impl Layer2 {
    pub async fn start(
        node: &str,
        options: &Layer2Options,
        snapshot: &Snapshot,
    ) -> std::io::Result<Layer2> {
        let mut settings = oxlb_l2::responder::Settings::default();
        if let Some(exclude) = &options.exclude {
            settings.exclude = exclude.clone();
        }
        let responder = oxlb_l2::Responder::start(settings)?;
        let seeds = seeds(options, snapshot, node);
        let membership = match memberlist_secret(snapshot) {
            None if seeds.is_empty() => {
                info!(
                    "layer2: no other speaker known (no --members, no other Node); this node decides alone"
                );
                None
            }
            None => {
                error!(
                    "layer2: the speakers cannot check each other's liveness: no Secret \
                     {MEMBERLIST_SECRET:?} with key {MEMBERLIST_KEY:?} in the files. Create one, \
                     e.g. `kubectl create secret generic {MEMBERLIST_SECRET} -n metallb-system \
                     --from-literal={MEMBERLIST_KEY}=\"$(openssl rand -base64 128)\" --dry-run=client -o yaml`, \
                     and give the same file to every node. Until then every known node counts \
                     as alive and a dead owner is not replaced."
                );
                None
            }
            Some(secret) => {
                let own = own_address(snapshot, node);
                match membership_address(options.bind, own, &seeds, local_address_toward) {
                    None if seeds.is_empty() => {
                        info!(
                            "layer2: no other speaker known and no address of this node's own \
                             (no Node object); this node decides alone"
                        );
                        None
                    }
                    None => {
                        error!(
                            bind = %options.bind,
                            "layer2: membership not started: the other speakers could not reach \
                             this one at an unspecified address, and this node has no Node \
                             InternalIP nor a route to a seed; give --memberlist-bind ADDRESS:PORT"
                        );
                        None
                    }
                    Some(bind) => match oxlb_l2::membership::Membership::start(
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
                    },
                }
            }
        };
        Ok(Layer2 {
            responder,
            membership,
            node: node.to_string(),
            options: options.clone(),
        })
    }

    /// After a reload: the other speakers as the files now name them (a Node added
    /// later is announced to, a removed one no longer). `--members` stays as given.
    pub fn update_seeds(&self, snapshot: &Snapshot) {
        if let Some(membership) = &self.membership {
            membership.set_seeds(seeds(&self.options, snapshot, &self.node));
        }
    }

    /// The live speakers, or `None` when there is no membership (all known count).
    pub fn live(&self) -> Option<BTreeSet<String>> {
        self.membership.as_ref().map(|m| m.live_members())
    }

    pub fn watch_live(&self) -> Option<watch::Receiver<BTreeSet<String>>> {
        self.membership.as_ref().map(|m| m.watch())
    }

    /// A clean stop tells the other speakers at once, so they take over without waiting
    /// for failure detection.
    pub async fn stop(self) {
        if let Some(membership) = self.membership {
            membership.leave().await;
        }
        drop(self.responder);
    }
}

/// The memberlist Secret's key from the files (`data` is already decoded; `stringData`
/// is accepted too, as `kubectl apply` would merge it).
fn memberlist_secret(snapshot: &Snapshot) -> Option<Vec<u8>> {
    let secret = snapshot.secrets.iter().find(|s| {
        s.object.metadata.name.as_deref() == Some(MEMBERLIST_SECRET)
            && s.object
                .metadata
                .namespace
                .as_deref()
                .unwrap_or(&snapshot.namespace)
                == snapshot.namespace
    })?;
    secret
        .object
        .data
        .as_ref()
        .and_then(|d| d.get(MEMBERLIST_KEY))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .object
                .string_data
                .as_ref()
                .and_then(|d| d.get(MEMBERLIST_KEY))
                .map(|s| s.as_bytes().to_vec())
        })
        .filter(|bytes| !bytes.is_empty())
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

fn first_internal_ip(node: &k8s_openapi::api::core::v1::Node) -> Option<IpAddr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<IpAddr>().ok())
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
