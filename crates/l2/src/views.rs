//! Member lists that disagree between speakers, made visible: every few seconds each
//! speaker sends the others its list of live members (a small datagram of its own,
//! authenticated like the gossip), and a receiver whose own list differs from the
//! sender's twice in a row logs both lists. SWIM converges within a second; a
//! disagreement that lasts is a one-way partition, a firewall, or speakers on
//! different keys or seed lists -- exactly what an operator chasing "two nodes
//! answer" or "nobody answers" needs to see. Pure: encoding, decoding, comparison.

use std::collections::{BTreeMap, BTreeSet};

/// Marks a view datagram's body. SWIM's bodies start with the sender's name, a
/// postcard string whose length varint never begins with these bytes for a real name.
const MAGIC: &[u8] = b"\xff\xff\xffoxlb-view\n";

/// A speaker's list of live members as it announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub from: String,
    pub live: BTreeSet<String>,
}

/// The body of a view datagram: the magic, then the sender's name and its live
/// members, one per line (node names hold no newline).
pub fn encode(from: &str, live: &BTreeSet<String>) -> Vec<u8> {
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(from.as_bytes());
    for name in live {
        body.push(b'\n');
        body.extend_from_slice(name.as_bytes());
    }
    body
}

/// `None`: not a view datagram (a SWIM one). `Some(None)`: a view datagram that does
/// not decode.
pub fn decode(body: &[u8]) -> Option<Option<View>> {
    let rest = body.strip_prefix(MAGIC)?;
    let Ok(text) = std::str::from_utf8(rest) else {
        return Some(None);
    };
    let mut lines = text.split('\n');
    let from = lines.next().filter(|f| !f.is_empty())?.to_string();
    let live = lines
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    Some(Some(View { from, live }))
}

/// What to log about a disagreement: the members only the other speaker sees, and
/// those only this one sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub only_theirs: Vec<String>,
    pub only_ours: Vec<String>,
}

/// Remembers, per sender, the last view that differed from ours, to report a
/// disagreement only when it is seen twice in a row (not while gossip converges) and
/// only once for the same pair of views.
#[derive(Debug, Default)]
pub struct Tracker {
    pending: BTreeMap<String, BTreeSet<String>>,
    reported: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
}

impl Tracker {
    /// Compares a received view with ours; `Some` when it is to be logged now.
    pub fn observe(&mut self, theirs: &View, ours: &BTreeSet<String>) -> Option<Disagreement> {
        if theirs.live == *ours {
            self.pending.remove(&theirs.from);
            self.reported.remove(&theirs.from);
            return None;
        }
        let again = self.pending.get(&theirs.from) == Some(&theirs.live);
        self.pending
            .insert(theirs.from.clone(), theirs.live.clone());
        let pair = (theirs.live.clone(), ours.clone());
        if !again || self.reported.get(&theirs.from) == Some(&pair) {
            return None;
        }
        self.reported.insert(theirs.from.clone(), pair);
        Some(Disagreement {
            only_theirs: theirs.live.difference(ours).cloned().collect(),
            only_ours: ours.difference(&theirs.live).cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn round_trip_and_garbage() {
        let live = set(&["a", "b"]);
        let body = encode("a", &live);
        assert_eq!(
            decode(&body),
            Some(Some(View {
                from: "a".into(),
                live
            }))
        );
        assert_eq!(decode(b"\x01a swim packet"), None);
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(decode(&bad), Some(None));
        assert_eq!(decode(MAGIC), None, "no sender name");
    }

    #[test]
    fn a_lasting_disagreement_is_reported_once_with_both_sides() {
        let ours = set(&["a", "b", "c"]);
        let theirs = View {
            from: "b".into(),
            live: set(&["b", "c", "d"]),
        };
        let mut tracker = Tracker::default();
        assert_eq!(
            tracker.observe(&theirs, &ours),
            None,
            "first sight: converging"
        );
        assert_eq!(
            tracker.observe(&theirs, &ours),
            Some(Disagreement {
                only_theirs: vec!["d".into()],
                only_ours: vec!["a".into()],
            })
        );
        assert_eq!(tracker.observe(&theirs, &ours), None, "already reported");
        // Agreement clears it; a new disagreement is reported again.
        let agreeing = View {
            from: "b".into(),
            live: ours.clone(),
        };
        assert_eq!(tracker.observe(&agreeing, &ours), None);
        assert_eq!(tracker.observe(&theirs, &ours), None);
        assert!(tracker.observe(&theirs, &ours).is_some());
    }
}
