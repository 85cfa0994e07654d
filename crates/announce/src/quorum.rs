//! Layer 2 quorum: whether this speaker may answer for any IP at all, decided alone
//! from its own view of the membership, so that a partial partition (gossip cut, LAN
//! up) never leaves two nodes answering for one IP.
//!
//! The rule. `known` is every speaker expected to run (this one included), minus the
//! ones an outside witness confirms are gone; `counted` is the known speakers this one
//! hears from now (itself included; a member merely *suspected* of being down is not
//! counted). A speaker may claim IPs only while
//!
//! - it counts a strict majority of `known` ([`Standing::Majority`]), or
//! - it counts exactly half and that half holds the tie-breaker, the lowest of `known`
//!   ([`Standing::TieWon`]): with an even number of speakers only one of two equal
//!   halves can hold it, so a two-node cluster split in two keeps exactly one answerer.
//!
//! Why this is safe: two disjoint groups that each claim would each need more than half
//! (or exactly half plus the one tie-breaker) of the same set, and a set has only one
//! such group. It stays safe when the speakers' `known` sets differ by speakers that are
//! really gone (a witness removed them for some and not yet for others): every `known`
//! still contains all the running speakers, so two running groups can never both have
//! more than half of theirs (proved by the property test in `tests/quorum.rs`).
//!
//! What it costs: a minority answers nothing. Three speakers, two dead: no answer
//! until a witness confirms the two are gone (Kubernetes: their Node is not Ready or
//! their speaker Pod is gone; `oxlb run`: they are removed from `--members` / the
//! files). Two speakers: the tie-breaker keeps serving alone when the other dies; when
//! the tie-breaker dies, the other takes over only once a witness confirms it.
//!
//! Within a group that may claim, MetalLB's election ([`crate::l2_owner`]) over the
//! live members picks the one owner of each IP, as before.

use std::collections::BTreeSet;

/// Where a speaker stands with respect to the quorum. A log field and metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    /// It counts more than half of the known speakers.
    Majority,
    /// It counts exactly half, including the tie-breaker.
    TieWon,
    /// It counts exactly half, without the tie-breaker.
    TieLost,
    /// It counts less than half.
    Minority,
}

impl Standing {
    /// Whether a speaker standing so may answer for IPs.
    pub fn may_claim(self) -> bool {
        matches!(self, Standing::Majority | Standing::TieWon)
    }

    /// The metric label / log field.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Majority => "majority",
            Standing::TieWon => "tie_won",
            Standing::TieLost => "tie_lost",
            Standing::Minority => "minority",
        }
    }
}

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The standing of a speaker that counts `counted` among `known` (see the module
/// comment). Members of `counted` that are not in `known` are ignored: a speaker nobody
/// expects does not make a majority. An empty `known` is a speaker that knows nobody,
/// not even itself: it stands alone and may claim (one node deciding alone).
pub fn standing<K: Ord>(known: &BTreeSet<K>, counted: &BTreeSet<K>) -> Standing {
    let Some(tie_breaker) = known.first() else {
        return Standing::Majority;
    };
    let heard = known.intersection(counted).count();
    match (heard * 2).cmp(&known.len()) {
        std::cmp::Ordering::Greater => Standing::Majority,
        std::cmp::Ordering::Less => Standing::Minority,
        std::cmp::Ordering::Equal if counted.contains(tie_breaker) => Standing::TieWon,
        std::cmp::Ordering::Equal => Standing::TieLost,
    }
}

/// What the [`Gate`] lets a speaker do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Answer for the IPs it wins.
    Allowed,
    /// It may claim, but only since less than the settle time: the others may not
    /// have heard of it yet. Ask again at `until`.
    Settling { until: std::time::Instant },
    /// No quorum.
    Denied(Standing),
}

/// "No claim before hearing the membership": a speaker claims only once its standing
/// has allowed claiming without a break for `settle` -- after a (re)start, and after
/// a partition heals on its side. That is the time the other members need to hear of
/// it (its announce, their gossip), so the node that owned an IP meanwhile has let it
/// go before this one answers: one answerer, at worst a gap of `settle`, never two.
/// A speaker that keeps its quorum (the survivors of a dead owner) takes over at once.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    since: Option<std::time::Instant>,
}

impl Gate {
    pub fn update(
        &mut self,
        standing: Standing,
        now: std::time::Instant,
        settle: std::time::Duration,
    ) -> Claim {
        if !standing.may_claim() {
            self.since = None;
            return Claim::Denied(standing);
        }
        let since = *self.since.get_or_insert(now);
        let until = since + settle;
        if now >= until {
            Claim::Allowed
        } else {
            Claim::Settling { until }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn set(names: &[&'static str]) -> BTreeSet<&'static str> {
        names.iter().copied().collect()
    }

    #[test]
    fn majority_minority_and_ties() {
        let three = set(&["a", "b", "c"]);
        assert_eq!(standing(&three, &set(&["a", "b"])), Standing::Majority);
        assert_eq!(standing(&three, &set(&["c"])), Standing::Minority);
        let two = set(&["a", "b"]);
        assert_eq!(standing(&two, &set(&["a"])), Standing::TieWon);
        assert_eq!(standing(&two, &set(&["b"])), Standing::TieLost);
        assert_eq!(standing(&two, &set(&["a", "b"])), Standing::Majority);
        // Strangers do not count; knowing nobody is deciding alone.
        assert_eq!(standing(&two, &set(&["b", "x", "y"])), Standing::TieLost);
        assert_eq!(standing(&set(&[]), &set(&["x"])), Standing::Majority);
        assert_eq!(standing(&set(&["x"]), &set(&["x"])), Standing::Majority);
    }

    #[test]
    fn the_gate_waits_for_the_settle_time_without_a_break() {
        let settle = Duration::from_millis(500);
        let t0 = Instant::now();
        let mut gate = Gate::default();
        assert_eq!(
            gate.update(Standing::Majority, t0, settle),
            Claim::Settling { until: t0 + settle }
        );
        assert_eq!(
            gate.update(Standing::Majority, t0 + settle, settle),
            Claim::Allowed
        );
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            gate.update(Standing::Minority, t1, settle),
            Claim::Denied(Standing::Minority)
        );
        // A break starts the wait again.
        assert_eq!(
            gate.update(Standing::TieWon, t1, settle),
            Claim::Settling { until: t1 + settle }
        );
    }
}
