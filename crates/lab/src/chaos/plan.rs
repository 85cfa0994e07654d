//! The fault plan: a sequence drawn from a seed, so a run can be replayed exactly
//! (`--seed`). Faults run one after another (each injected, held, healed, then the lab
//! is given time to recover) so every outage is attributed to one fault kind.

use serde::{Deserialize, Serialize};

use super::kinds::FaultKind;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and the same sequence on every
/// platform, which is all a replayable plan needs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high` (`low` when the range is empty).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low + 1)
    }

    /// Uniform in `0..len` (0 for an empty range).
    pub fn index(&mut self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % len as u64).unwrap_or(0)
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFault {
    pub kind: FaultKind,
    /// The node hit, for node faults.
    pub node: Option<String>,
    /// Quiet time before the fault is injected.
    pub quiet_ms: u64,
    /// How long the fault lasts before it is healed.
    pub hold_ms: u64,
    /// Lossy only: percentage of frames dropped each way, and the added one-way delay.
    pub loss_percent: u8,
    pub delay_ms: u64,
}

/// Bounds of the random draws.
pub const QUIET_MS: (u64, u64) = (2_000, 5_000);
pub const HOLD_MS: (u64, u64) = (3_000, 10_000);
pub const LOSS_PERCENT: (u64, u64) = (5, 30);
pub const DELAY_MS: (u64, u64) = (5, 60);

/// The plan for `seed`: every kind in `kinds` once first (in an order drawn from the
/// seed, so a short run still covers them all), then kinds drawn at random, `count`
/// faults in all. Node faults pick among `nodes`.
pub fn plan(seed: u64, kinds: &[FaultKind], nodes: &[String], count: usize) -> Vec<PlannedFault> {
    let mut rng = Rng::new(seed);
    let mut order: Vec<FaultKind> = kinds.to_vec();
    // Fisher-Yates.
    for i in (1..order.len()).rev() {
        let j = rng.index(i + 1);
        order.swap(i, j);
    }
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let kind = match order.get(n) {
            Some(kind) => *kind,
            None => match kinds.get(rng.index(kinds.len())) {
                Some(kind) => *kind,
                None => break,
            },
        };
        let node = if kind.targets_node() && !nodes.is_empty() {
            nodes.get(rng.index(nodes.len())).cloned()
        } else {
            None
        };
        let quiet_ms = rng.between(QUIET_MS.0, QUIET_MS.1);
        let hold_ms = rng.between(HOLD_MS.0, HOLD_MS.1);
        let (loss_percent, delay_ms) = if kind == FaultKind::Lossy {
            (
                u8::try_from(rng.between(LOSS_PERCENT.0, LOSS_PERCENT.1)).unwrap_or(30),
                rng.between(DELAY_MS.0, DELAY_MS.1),
            )
        } else {
            (0, 0)
        };
        out.push(PlannedFault {
            kind,
            node,
            quiet_ms,
            hold_ms,
            loss_percent,
            delay_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        vec!["node1".into(), "node2".into(), "node3".into()]
    }

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let a = plan(42, &FaultKind::ALL, &nodes(), 30);
        let b = plan(42, &FaultKind::ALL, &nodes(), 30);
        let c = plan(43, &FaultKind::ALL, &nodes(), 30);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 30);
    }

    #[test]
    fn every_kind_comes_first_once_then_only_chosen_kinds() {
        let p = plan(7, &FaultKind::ALL, &nodes(), 20);
        let mut first: Vec<FaultKind> = p[..FaultKind::ALL.len()].iter().map(|f| f.kind).collect();
        first.sort();
        assert_eq!(first, FaultKind::ALL);
        let only = plan(7, &[FaultKind::Kill, FaultKind::Lossy], &nodes(), 12);
        assert!(
            only.iter()
                .all(|f| matches!(f.kind, FaultKind::Kill | FaultKind::Lossy))
        );
    }

    #[test]
    fn draws_stay_in_bounds_and_node_faults_name_a_node() {
        for fault in plan(1, &FaultKind::ALL, &nodes(), 200) {
            assert!((QUIET_MS.0..=QUIET_MS.1).contains(&fault.quiet_ms));
            assert!((HOLD_MS.0..=HOLD_MS.1).contains(&fault.hold_ms));
            assert_eq!(fault.node.is_some(), fault.kind.targets_node(), "{fault:?}");
            if let Some(node) = &fault.node {
                assert!(nodes().contains(node));
            }
            if fault.kind == FaultKind::Lossy {
                assert!((5..=30).contains(&fault.loss_percent));
                assert!((DELAY_MS.0..=DELAY_MS.1).contains(&fault.delay_ms));
            } else {
                assert_eq!((fault.loss_percent, fault.delay_ms), (0, 0));
            }
        }
    }

    #[test]
    fn splitmix_matches_its_reference_values() {
        // Reference output of SplitMix64 seeded with 0 (as in the paper's C code).
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
