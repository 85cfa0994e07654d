//! From the pure per-node decision (`oxlb_announce::announce`) to what the responder
//! answers for.

use oxlb_announce::{Announcements, Interfaces};

use crate::decide::{OwnedIp, OwnedSet};

/// The IPs this node owns by Layer 2 with the interfaces to answer on.
pub fn owned_from(announcements: &Announcements) -> OwnedSet {
    announcements
        .l2
        .iter()
        .map(|(ip, l2)| {
            let interfaces = match &l2.interfaces {
                Interfaces::All => Vec::new(),
                Interfaces::Only(names) => names.iter().cloned().collect(),
            };
            (*ip, OwnedIp { interfaces })
        })
        .collect()
}
