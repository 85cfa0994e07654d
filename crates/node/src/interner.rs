//! One shared copy of each of a few names that many objects repeat: the node names of
//! EndpointSlice endpoints (issue 22: 50,000 endpoints on 5 nodes were 50,000 strings,
//! 1.6 MB of 32-byte allocations in the speaker's cache, and as many again in every
//! pass's copy of the views).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// A set of shared names. A name nobody holds any more is dropped once the set has
/// doubled since the last such sweep, so names that come and go (nodes replaced by an
/// autoscaler) do not pile up.
#[derive(Debug, Default)]
pub struct Interner {
    names: HashSet<Arc<str>>,
    /// The size after the last sweep.
    swept_at: usize,
}

impl Interner {
    /// The shared copy of `name`.
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return shared.clone();
        }
        if self.names.len() >= 2 * self.swept_at.max(16) {
            self.names.retain(|n| Arc::strong_count(n) > 1);
            self.swept_at = self.names.len();
        }
        let shared: Arc<str> = Arc::from(name);
        self.names.insert(shared.clone());
        shared
    }

    /// How many names it holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The process's node names ([`Interner::get`] on one shared set).
pub fn node_name(name: &str) -> Arc<str> {
    static NODE_NAMES: Mutex<Option<Interner>> = Mutex::new(None);
    NODE_NAMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(Interner::default)
        .get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_name() {
        let mut names = Interner::default();
        let a = names.get("node1");
        let b = names.get("node1");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "node1");
        assert!(!Arc::ptr_eq(&a, &names.get("node2")));
        assert_eq!(names.len(), 2);
        assert!(Arc::ptr_eq(&node_name("n"), &node_name("n")));
    }

    /// Names nobody holds are swept once the set has doubled; held ones stay shared.
    #[test]
    fn names_nobody_holds_are_swept() {
        let mut names = Interner::default();
        let kept = names.get("kept");
        for i in 0..1000 {
            names.get(&format!("gone{i}"));
        }
        assert!(names.len() <= 32, "{}", names.len());
        assert!(Arc::ptr_eq(&kept, &names.get("kept")));
    }
}
