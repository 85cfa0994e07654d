//! When to give freed memory back to the system between reloads. A reload trims at
//! once ([`crate::memory::release_freed`]), but the BGP sessions build and send their
//! UPDATEs after it, and the pages those freed stay resident in glibc's heap until
//! the next trim (issue 22). The engine asks once a second with the live heap; a trim
//! is due once the heap fell well below its highest figure since the last one.

/// A fall smaller than this is not worth a trim (one `malloc_trim` walks the heap).
pub const WORTH_A_TRIM: u64 = 1024 * 1024;

/// The highest live heap seen since the last trim.
#[derive(Debug, Default)]
pub struct TrimAfterFall {
    highest: u64,
}

impl TrimAfterFall {
    /// Whether to trim now, given the live heap; after `true` the count starts again.
    pub fn due(&mut self, in_use: u64) -> bool {
        self.highest = self.highest.max(in_use);
        if self.highest - in_use >= WORTH_A_TRIM {
            self.highest = in_use;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn trims_once_after_a_fall_and_not_while_growing_or_steady() {
        let mut trim = TrimAfterFall::default();
        assert!(!trim.due(10 * MIB));
        assert!(!trim.due(40 * MIB));
        assert!(!trim.due(40 * MIB));
        assert!(!trim.due(39 * MIB + 1));
        assert!(trim.due(38 * MIB));
        // The count starts again from the heap after the trim.
        assert!(!trim.due(38 * MIB));
        assert!(!trim.due(37 * MIB + 1));
        assert!(trim.due(37 * MIB));
    }
}
