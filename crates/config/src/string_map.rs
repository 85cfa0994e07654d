//! A small read-only map of strings (labels, annotations) for state kept per Service:
//! one sorted allocation instead of a `BTreeMap`, whose first node alone is 544 bytes
//! for `String` pairs however few entries it holds (issue 22: at 100,000 Services the
//! labels and annotations maps of the controller's views were 110 MB).

use std::collections::BTreeMap;
use std::fmt;

/// Key → value, sorted by key, each key once (the last one given wins).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StringMap(Box<[(Box<str>, Box<str>)]>);

impl StringMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| &**k)
    }

    /// The same map without `keys`.
    pub fn without(&self, keys: &[&str]) -> StringMap {
        self.iter().filter(|(k, _)| !keys.contains(k)).collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> StringMap {
        // Through a BTreeMap: sorted, one entry per key, the last value given wins.
        let sorted: BTreeMap<Box<str>, Box<str>> = pairs
            .into_iter()
            .map(|(k, v)| (Box::from(k.as_ref()), Box::from(v.as_ref())))
            .collect();
        StringMap(sorted.into_iter().collect())
    }
}

impl From<&BTreeMap<String, String>> for StringMap {
    fn from(map: &BTreeMap<String, String>) -> StringMap {
        map.iter().collect()
    }
}

impl fmt::Debug for StringMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_the_btreemap_it_replaces() {
        let map: StringMap = [("b", "2"), ("a", "1"), ("c", "3"), ("a", "9")]
            .into_iter()
            .collect();
        assert_eq!(map.len(), 3);
        assert_eq!(map.get("a"), Some("9"), "the last value given wins");
        assert_eq!(map.get("b"), Some("2"));
        assert_eq!(map.get("zz"), None);
        assert!(map.contains_key("c"));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(map.without(&["b"]).keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(format!("{map:?}"), r#"{"a": "9", "b": "2", "c": "3"}"#);
        let from: BTreeMap<String, String> = [("x".into(), "y".into())].into();
        assert_eq!(StringMap::from(&from).get("x"), Some("y"));
        assert!(StringMap::default().is_empty());
    }
}
