//! Kubernetes label selectors (`matchLabels` + `matchExpressions`), evaluated without
//! any Kubernetes client types so the pure cores can use them.

use std::collections::BTreeMap;

use crate::string_map::StringMap;

/// What a selector reads: a label's value by key.
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for StringMap {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

/// A parsed, valid label selector. The empty selector matches everything, as in
/// Kubernetes.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    pub key: String,
    pub operator: SelectorOperator,
    /// Non-empty for `In`/`NotIn`, empty for `Exists`/`DoesNotExist` (checked when parsed).
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    /// Every `matchLabels` pair and every expression must hold (logical AND).
    pub fn matches(&self, labels: &(impl Labels + ?Sized)) -> bool {
        self.match_labels
            .iter()
            .all(|(key, value)| labels.label(key) == Some(value.as_str()))
            && self
                .match_expressions
                .iter()
                .all(|requirement| requirement.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

impl Requirement {
    pub fn matches(&self, labels: &(impl Labels + ?Sized)) -> bool {
        let value = labels.label(&self.key);
        let listed = |v: &str| self.values.iter().any(|listed| listed == v);
        match self.operator {
            SelectorOperator::In => value.is_some_and(listed),
            // Kubernetes: NotIn also matches objects that lack the key.
            SelectorOperator::NotIn => value.is_none_or(|v| !listed(v)),
            SelectorOperator::Exists => value.is_some(),
            SelectorOperator::DoesNotExist => value.is_none(),
        }
    }
}

/// A list of selectors as MetalLB uses them (`nodeSelectors`, `namespaceSelectors`, ...):
/// an empty list matches everything; otherwise any one selector matching is enough.
pub fn any_matches(selectors: &[LabelSelector], labels: &(impl Labels + ?Sized)) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(any_matches(&[], &labels(&[("a", "b")])));
    }

    #[test]
    fn expressions_follow_kubernetes_semantics() {
        let not_in = Requirement {
            key: "zone".into(),
            operator: SelectorOperator::NotIn,
            values: vec!["a".into()],
        };
        assert!(not_in.matches(&labels(&[])));
        assert!(!not_in.matches(&labels(&[("zone", "a")])));
        let selector = LabelSelector {
            match_labels: labels(&[("role", "edge")]),
            match_expressions: vec![not_in],
        };
        assert!(selector.matches(&labels(&[("role", "edge"), ("zone", "b")])));
        assert!(!selector.matches(&labels(&[("role", "core"), ("zone", "b")])));
    }
}
