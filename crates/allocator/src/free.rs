//! The free part of an index space as disjoint, non-adjacent inclusive intervals.
//!
//! A pool of 2^64 addresses with nothing allocated is one entry; each allocation splits
//! at most one interval and each release merges at most two, so memory grows with the
//! number of holes, never with the number of addresses, and every operation is
//! O(log n) in the number of intervals.

use std::collections::BTreeMap;

/// Free indices, `start -> end` (inclusive), intervals never touch or overlap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeSet {
    intervals: BTreeMap<u128, u128>,
    /// Number of free indices. Saturates only for a full 2^128 space, which cannot be
    /// represented anyway (see `FamilySpace`).
    count: u128,
}

impl FreeSet {
    /// Every index in `0..=last` free.
    pub fn full(last: u128) -> FreeSet {
        let mut intervals = BTreeMap::new();
        intervals.insert(0, last);
        FreeSet {
            intervals,
            count: last.saturating_add(1),
        }
    }

    pub fn count(&self) -> u128 {
        self.count
    }

    /// Number of intervals (holes + 1, roughly): what the memory cost is proportional to.
    pub fn intervals(&self) -> usize {
        self.intervals.len()
    }

    /// The lowest free index.
    pub fn first(&self) -> Option<u128> {
        self.intervals.keys().next().copied()
    }

    pub fn contains(&self, index: u128) -> bool {
        self.intervals
            .range(..=index)
            .next_back()
            .is_some_and(|(_, end)| index <= *end)
    }

    /// Marks `index` used. False when it was not free.
    pub fn take(&mut self, index: u128) -> bool {
        let Some((&start, &end)) = self.intervals.range(..=index).next_back() else {
            return false;
        };
        if index > end {
            return false;
        }
        self.intervals.remove(&start);
        if start < index {
            self.intervals.insert(start, index - 1);
        }
        if index < end {
            self.intervals.insert(index + 1, end);
        }
        self.count = self.count.saturating_sub(1);
        true
    }

    /// Marks `index` free again, merging with its neighbours. False when it was free.
    pub fn release(&mut self, index: u128) -> bool {
        if self.contains(index) {
            return false;
        }
        let mut start = index;
        let mut end = index;
        // The interval ending right before `index` (if any) absorbs it.
        if let Some(before) = index.checked_sub(1)
            && let Some((&s, &e)) = self.intervals.range(..=before).next_back()
            && e == before
        {
            self.intervals.remove(&s);
            start = s;
        }
        if let Some(after) = index.checked_add(1)
            && let Some(e) = self.intervals.remove(&after)
        {
            end = e;
        }
        self.intervals.insert(start, end);
        self.count = self.count.saturating_add(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_splits_and_release_merges() {
        let mut free = FreeSet::full(9);
        assert_eq!(free.count(), 10);
        assert!(free.take(0));
        assert_eq!(free.first(), Some(1));
        assert!(free.take(5));
        assert!(!free.take(5));
        assert_eq!(free.intervals(), 2);
        assert_eq!(free.count(), 8);
        assert!(free.release(5));
        assert!(!free.release(5));
        assert_eq!(free.intervals(), 1);
        assert!(free.release(0));
        assert_eq!(free, FreeSet::full(9));
    }

    #[test]
    fn edges_of_the_u128_space() {
        let mut free = FreeSet::full(u128::MAX);
        assert_eq!(free.count(), u128::MAX);
        assert!(free.take(u128::MAX));
        assert!(free.take(0));
        assert_eq!(free.first(), Some(1));
        assert!(free.release(u128::MAX));
        assert!(free.release(0));
        assert_eq!(free.intervals(), 1);
    }

    #[test]
    fn exhausting_leaves_no_intervals() {
        let mut free = FreeSet::full(2);
        while let Some(i) = free.first() {
            assert!(free.take(i));
        }
        assert_eq!(free.count(), 0);
        assert_eq!(free.intervals(), 0);
        assert!(free.release(1));
        assert_eq!(free.first(), Some(1));
    }
}
