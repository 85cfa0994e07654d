//! Which writes make this node's status objects of one kind match what it announces:
//! the decision of the status reconciler, without I/O (the shell in
//! [`super::status_objects`] sends them under the [`super::write_budget`]; the API-load
//! simulation counts them).
//!
//! Per object at most one request when it exists (its status), two when it does not
//! (the object, then its status: the status subresource ignores a status sent with the
//! object), one to delete; nothing when the cache already holds what is wanted or the
//! same write was already sent and the cache has not caught up.

use std::collections::{BTreeMap, BTreeSet};

use oxlb_announce::ServiceKey;

use crate::stable_name::status_name;

/// What the cache holds of one object, against the status wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Absent,
    Same,
    Differs,
}

/// A view of this node's cached objects of one kind.
pub trait StatusView<S> {
    /// Whether the object `name` (of the Service `key`) exists and holds `status`.
    fn presence(&self, name: &str, key: &ServiceKey, status: &S) -> Presence;
    /// The names of every cached object of this node.
    fn names(&self) -> Vec<String>;
}

/// One write to the API.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusWrite<S> {
    /// Create the object (labels, owner), then set its status.
    Create {
        name: String,
        key: ServiceKey,
        status: S,
    },
    /// Set the status of an existing object.
    SetStatus {
        name: String,
        status: S,
    },
    Delete {
        name: String,
    },
}

impl<S> StatusWrite<S> {
    pub fn name(&self) -> &str {
        match self {
            StatusWrite::Create { name, .. }
            | StatusWrite::SetStatus { name, .. }
            | StatusWrite::Delete { name } => name,
        }
    }

    /// The requests it costs.
    pub fn requests(&self) -> u32 {
        match self {
            StatusWrite::Create { .. } => 2,
            StatusWrite::SetStatus { .. } | StatusWrite::Delete { .. } => 1,
        }
    }
}

/// What this speaker last sent per object name: the cache may not have caught up yet,
/// and sending again would only repeat the same write.
#[derive(Debug, Clone, PartialEq)]
enum Sent<S> {
    Status(S),
    Deletion,
}

/// The planner of one status kind, kept across passes (it remembers what was sent).
#[derive(Debug, Clone)]
pub struct StatusPlanner<S> {
    prefix: &'static str,
    sent: BTreeMap<String, Sent<S>>,
}

impl<S: Clone + PartialEq> StatusPlanner<S> {
    /// `prefix` names the kind's objects ([`status_name`]: `"l2"`, `"bgp"`).
    pub fn new(prefix: &'static str) -> StatusPlanner<S> {
        StatusPlanner {
            prefix,
            sent: BTreeMap::new(),
        }
    }

    /// The writes that make `view` hold `want` (per Service, its status on `node`),
    /// creations and status changes in Service order, then deletions; at most `limit`
    /// of them (what the budget pays for now: a backlog of 10,000 is not planned in
    /// full every second).
    pub fn plan<'k>(
        &mut self,
        node: &str,
        want: impl IntoIterator<Item = (&'k ServiceKey, S)>,
        view: &impl StatusView<S>,
        limit: usize,
    ) -> Vec<StatusWrite<S>> {
        let mut writes = Vec::new();
        let mut wanted = BTreeSet::new();
        for (key, status) in want {
            let name = status_name(self.prefix, node, key);
            let presence = view.presence(&name, key, &status);
            if presence == Presence::Same {
                // The cache holds it: no second copy here (at 10,000 Services a copy of
                // every status sent stayed here for good).
                self.sent.remove(&name);
                wanted.insert(name);
                continue;
            }
            let already = matches!(self.sent.get(&name), Some(Sent::Status(s)) if *s == status);
            if !already && writes.len() < limit {
                writes.push(match presence {
                    Presence::Absent => StatusWrite::Create {
                        name: name.clone(),
                        key: key.clone(),
                        status,
                    },
                    Presence::Same | Presence::Differs => StatusWrite::SetStatus {
                        name: name.clone(),
                        status,
                    },
                });
            }
            wanted.insert(name);
        }
        let cached: BTreeSet<String> = view.names().into_iter().collect();
        for name in &cached {
            if writes.len() >= limit {
                break;
            }
            if !wanted.contains(name) && self.sent.get(name) != Some(&Sent::Deletion) {
                writes.push(StatusWrite::Delete { name: name.clone() });
            }
        }
        // Forget names that are neither wanted nor cached any more.
        self.sent
            .retain(|name, _| wanted.contains(name) || cached.contains(name));
        writes
    }

    /// `write` was sent.
    pub fn sent(&mut self, write: &StatusWrite<S>) {
        let sent = match write {
            StatusWrite::Create { status, .. } | StatusWrite::SetStatus { status, .. } => {
                Sent::Status(status.clone())
            }
            StatusWrite::Delete { .. } => Sent::Deletion,
        };
        self.sent.insert(write.name().to_string(), sent);
    }

    /// The write to `name` failed: the next plan sends it again.
    pub fn failed(&mut self, name: &str) {
        self.sent.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache as a map of name to status.
    impl StatusView<u32> for BTreeMap<String, u32> {
        fn presence(&self, name: &str, _: &ServiceKey, status: &u32) -> Presence {
            match self.get(name) {
                None => Presence::Absent,
                Some(s) if s == status => Presence::Same,
                Some(_) => Presence::Differs,
            }
        }

        fn names(&self) -> Vec<String> {
            self.keys().cloned().collect()
        }
    }

    fn key(name: &str) -> ServiceKey {
        ServiceKey {
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    /// Applies a write as the API server would.
    fn apply(cache: &mut BTreeMap<String, u32>, write: &StatusWrite<u32>) {
        match write {
            StatusWrite::Create { name, status, .. } | StatusWrite::SetStatus { name, status } => {
                cache.insert(name.clone(), *status);
            }
            StatusWrite::Delete { name } => {
                cache.remove(name);
            }
        }
    }

    #[test]
    fn creates_updates_and_deletes_only_what_differs() {
        let mut planner = StatusPlanner::new("bgp");
        let a = status_name("bgp", "n1", &key("a"));
        let b = status_name("bgp", "n1", &key("b"));
        let stale = status_name("bgp", "n1", &key("gone"));
        let mut cache = BTreeMap::from([(b.clone(), 1), (stale.clone(), 1)]);
        let want = BTreeMap::from([(key("a"), 1), (key("b"), 2)]);
        let writes = planner.plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX);
        assert_eq!(
            writes,
            vec![
                StatusWrite::Create {
                    name: a.clone(),
                    key: key("a"),
                    status: 1
                },
                StatusWrite::SetStatus {
                    name: b.clone(),
                    status: 2
                },
                StatusWrite::Delete {
                    name: stale.clone()
                },
            ]
        );
        assert_eq!(writes.iter().map(StatusWrite::requests).sum::<u32>(), 4);
        for write in &writes {
            planner.sent(write);
        }
        // The cache has not caught up: nothing is sent twice.
        assert!(
            planner
                .plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX)
                .is_empty()
        );
        for write in &writes {
            apply(&mut cache, write);
        }
        assert!(
            planner
                .plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX)
                .is_empty()
        );
        assert!(planner.sent.is_empty(), "{:?}", planner.sent);
        // A restarted speaker (a new planner) over the same objects writes nothing.
        assert!(
            StatusPlanner::new("bgp")
                .plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX)
                .is_empty()
        );
    }

    #[test]
    fn a_failed_or_unsent_write_is_planned_again() {
        let mut planner = StatusPlanner::new("l2");
        let cache = BTreeMap::new();
        let want = BTreeMap::from([(key("a"), 1), (key("b"), 1)]);
        let writes = planner.plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX);
        assert_eq!(writes.len(), 2);
        // Only the first was sent (the budget ran out), and it failed.
        planner.sent(&writes[0]);
        planner.failed(writes[0].name());
        assert_eq!(
            planner.plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX),
            writes
        );
    }

    #[test]
    fn an_object_deleted_by_someone_is_written_again_and_a_changed_want_replaces_a_sent_one() {
        let mut planner = StatusPlanner::new("l2");
        let mut cache = BTreeMap::new();
        let want = BTreeMap::from([(key("a"), 1)]);
        for write in planner.plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX) {
            planner.sent(&write);
            apply(&mut cache, &write);
        }
        assert!(
            planner
                .plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX)
                .is_empty()
        );
        cache.clear();
        assert_eq!(
            planner
                .plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX)
                .len(),
            1
        );
        let mut planner = StatusPlanner::new("l2");
        let sent = planner.plan("n1", want.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX);
        planner.sent(&sent[0]);
        let newer = BTreeMap::from([(key("a"), 2)]);
        assert_eq!(
            planner.plan("n1", newer.iter().map(|(k, s)| (k, *s)), &cache, usize::MAX),
            vec![StatusWrite::Create {
                name: status_name("l2", "n1", &key("a")),
                key: key("a"),
                status: 2
            }]
        );
    }

    #[test]
    fn a_plan_stops_at_its_limit_and_the_rest_comes_in_the_next() {
        let mut planner = StatusPlanner::new("l2");
        let stale = status_name("l2", "n1", &key("gone"));
        let mut cache = BTreeMap::from([(stale.clone(), 1)]);
        let want = BTreeMap::from([(key("a"), 1), (key("b"), 1), (key("c"), 1)]);
        let all = |cache: &BTreeMap<String, u32>, planner: &mut StatusPlanner<u32>, limit| {
            planner.plan("n1", want.iter().map(|(k, s)| (k, *s)), cache, limit)
        };
        let first = all(&cache, &mut planner, 2);
        assert_eq!(first.len(), 2);
        for write in &first {
            planner.sent(write);
            apply(&mut cache, write);
        }
        let rest = all(&cache, &mut planner, 2);
        assert_eq!(
            rest.iter().map(StatusWrite::name).collect::<Vec<_>>(),
            [status_name("l2", "n1", &key("c")).as_str(), stale.as_str()]
        );
        assert!(all(&cache, &mut planner, 0).is_empty());
    }
}
