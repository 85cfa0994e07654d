//! Weighted ECMP with mixed paths on a node (both shells): what the other speakers told
//! ([`oxlb_l2::membership::Flag::LinkBandwidth`]) into the pure check of
//! [`oxlb_announce::mixed_paths`], its status rows, and one warning per change.

use std::collections::{BTreeMap, BTreeSet};

use oxlb_announce::MixedPaths;
use oxlb_announce::mixed_paths::LinkBandwidth;
use oxlb_l2::membership::Flag;
use tracing::{info, warn};

use crate::status::MixedPathsStatus;

/// Speaker → its flags as it told them (every speaker heard from; see
/// [`oxlb_l2::membership::Membership::watch_peer_flags`]).
pub type PeerFlags = BTreeMap<String, BTreeSet<Flag>>;

/// What each speaker heard from attaches: news without [`Flag::LinkBandwidth`] is an
/// older speaker's. A speaker not heard from is not in the map (unknown).
pub fn told(flags: &PeerFlags) -> BTreeMap<String, LinkBandwidth> {
    flags
        .iter()
        .map(|(node, flags)| {
            let told = if flags.contains(&Flag::LinkBandwidth) {
                LinkBandwidth::Attaches
            } else {
                LinkBandwidth::Lacks
            };
            (node.clone(), told)
        })
        .collect()
}

/// The status rows, one per Service.
pub fn status(found: &[MixedPaths]) -> Vec<MixedPathsStatus> {
    found
        .iter()
        .map(|m| MixedPathsStatus {
            service: m.service.to_string(),
            prefixes: m.prefixes.iter().copied().collect(),
            without_community: m.without_community.iter().cloned().collect(),
            with_community: m.with_community.iter().cloned().collect(),
        })
        .collect()
}

/// Logs the mixed paths once per change: a warning naming the Service and the nodes
/// when a Service's mix appears or changes, a note when it ends.
#[derive(Debug, Default)]
pub struct MixedPathsLog {
    last: BTreeMap<String, MixedPathsStatus>,
}

impl MixedPathsLog {
    pub fn observe(&mut self, now: &[MixedPathsStatus]) {
        let now: BTreeMap<String, MixedPathsStatus> =
            now.iter().map(|m| (m.service.clone(), m.clone())).collect();
        for (service, mixed) in &now {
            if self.last.get(service) != Some(mixed) {
                warn!(
                    service = %service,
                    without_community = ?mixed.without_community,
                    with_community = ?mixed.with_community,
                    "weighted ECMP: {mixed}"
                );
            }
        }
        for service in self.last.keys().filter(|s| !now.contains_key(*s)) {
            info!(
                service = %service,
                "weighted ECMP: every node announcing the service attaches the link-bandwidth \
                 community again (or no older speaker announces it)"
            );
        }
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn news_without_the_flag_is_an_older_speaker() {
        let flags = PeerFlags::from([
            ("new".to_string(), BTreeSet::from([Flag::LinkBandwidth])),
            (
                "new-drained".to_string(),
                BTreeSet::from([Flag::LinkBandwidth, Flag::Drained]),
            ),
            ("old".to_string(), BTreeSet::new()),
            ("old-drained".to_string(), BTreeSet::from([Flag::Drained])),
        ]);
        let told = told(&flags);
        assert_eq!(told["new"], LinkBandwidth::Attaches);
        assert_eq!(told["new-drained"], LinkBandwidth::Attaches);
        assert_eq!(told["old"], LinkBandwidth::Lacks);
        assert_eq!(told["old-drained"], LinkBandwidth::Lacks);
        assert!(!told.contains_key("unheard"));
    }

    #[test]
    fn the_warning_names_the_nodes_the_prefix_and_the_fix() {
        let row = MixedPathsStatus {
            service: "default/web".into(),
            prefixes: vec!["10.0.0.5/32".parse().unwrap()],
            without_community: vec!["node2".into()],
            with_community: vec!["node1".into()],
        };
        let text = row.to_string();
        assert!(
            text.starts_with(
                "node2 announces 10.0.0.5/32 (default/web) without the link-bandwidth community"
            ),
            "{text}"
        );
        assert!(text.contains("default-weight-for-missing"), "{text}");
    }
}
