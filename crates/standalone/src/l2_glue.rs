//! Layer 2 for `oxlb run`: the ARP/NDP responder and the membership that tells which
//! speakers are alive (the election's candidates). Started when the configuration first
//! has an L2Advertisement.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use oxlb_config::snapshot::Snapshot;
use tokio::sync::watch;
use tracing::{error, info};

/// The Secret (and key) whose bytes authenticate every membership packet, as MetalLB's
/// memberlist uses it.
pub const MEMBERLIST_SECRET: &str = "memberlist";
pub const MEMBERLIST_KEY: &str = "secretkey";

pub struct Layer2 {
    pub responder: oxlb_l2::Responder,
    pub membership: Option<oxlb_l2::membership::Membership>,
}

#[derive(Debug, Clone)]
pub struct Layer2Options {
    /// Where this speaker's membership listens (default 0.0.0.0:7946).
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
        let seeds = if options.members.is_empty() {
            peer_addresses(snapshot, node, options.bind.port())
        } else {
            options.members.clone()
        };
        let membership = if seeds.is_empty() {
            info!(
                "layer2: no other speaker known (no --members, no other Node); this node decides alone"
            );
            None
        } else {
            match memberlist_secret(snapshot) {
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
                    match oxlb_l2::membership::Membership::start(
                        node,
                        options.bind,
                        seeds.clone(),
                        Some(&secret),
                        oxlb_l2::membership::Tuning::default(),
                    )
                    .await
                    {
                        Ok(membership) => {
                            info!(bind = %options.bind, seeds = ?seeds, "layer2: membership started");
                            Some(membership)
                        }
                        Err(e) => {
                            error!("layer2: membership did not start: {e}");
                            None
                        }
                    }
                }
            }
        };
        Ok(Layer2 {
            responder,
            membership,
        })
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

/// Other nodes' InternalIP addresses from their Node objects, at the membership port.
fn peer_addresses(snapshot: &Snapshot, node: &str, port: u16) -> Vec<SocketAddr> {
    snapshot
        .nodes
        .iter()
        .filter(|n| n.object.metadata.name.as_deref() != Some(node))
        .filter_map(|n| {
            n.object
                .status
                .as_ref()?
                .addresses
                .as_ref()?
                .iter()
                .filter(|a| a.type_ == "InternalIP")
                .find_map(|a| a.address.parse::<IpAddr>().ok())
        })
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}
