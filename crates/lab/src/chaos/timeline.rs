//! What a chaos run records: the faults as they happened, every request the
//! workstation sent, and the samples of who announces and answers what. Times are
//! milliseconds since the run started. Written out as the timeline JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::kinds::FaultKind;

/// A fault as it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub kind: FaultKind,
    pub node: Option<String>,
    /// Injected at.
    pub start_ms: u64,
    /// Healed at (the fault's cause removed).
    pub healed_ms: u64,
    /// The lab looked whole again (every BGP session Established, every Service IP
    /// answering) at this time, or the recovery deadline passed.
    pub end_ms: u64,
    /// Whether every BGP session came back before the recovery deadline.
    pub sessions_back: bool,
    /// Nodes whose session to the router was not Established at the deadline.
    pub sessions_missing: Vec<String>,
    /// What was done, in words (loss and delay, the ping through the relay, ...).
    pub detail: String,
}

/// One HTTP request from the workstation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub t_ms: u64,
    pub ip: IpAddr,
    pub ok: bool,
}

/// One look at the lab.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub t_ms: u64,
    /// Service -> its IPs, as each node's `oxlb status` says (nodes that did not
    /// answer are missing).
    pub services: BTreeMap<String, BTreeMap<String, BTreeSet<IpAddr>>>,
    /// Layer 2 IP -> the nodes that answered ARP for it from the router (any of the
    /// look's requests).
    pub answerers: BTreeMap<IpAddr, BTreeSet<String>>,
    /// Layer 2 IP -> the nodes that answered one and the same request together (empty
    /// IPs left out): two owners at once, not a hand-over between requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answered_together: BTreeMap<IpAddr, BTreeSet<String>>,
    /// BGP Service IP -> the router's next hops for it.
    pub router_paths: BTreeMap<IpAddr, usize>,
    /// Node -> whether its session to the router is Established (by the node's status).
    pub sessions: BTreeMap<String, bool>,
}
