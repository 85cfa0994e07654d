//! Health-check news between speakers (`oxlb.io/health-check`, Layer 2): each speaker
//! tells the others which checked Services pass on it, so that every speaker leaves a
//! failing node out of the election for that Service and all agree on one healthy
//! owner. A small datagram of its own beside SWIM's, authenticated like the gossip
//! (the same pattern as [`crate::views`]); sent at once on a change and repeated every
//! second, so a speaker that joins later, or lost one, learns it. Pure: encoding,
//! decoding, and the table of the latest news per speaker.

use std::collections::{BTreeMap, BTreeSet};

/// Marks a health datagram's body (never the start of a SWIM body, see `views`).
const MAGIC: &[u8] = b"\xff\xff\xffoxlb-health\n";

/// One speaker's news: the checked Services that pass on it now. `seq` grows with
/// every message (it starts at the speaker's start time in milliseconds, so a restart
/// is newer too), so reordered or repeated datagrams never roll the table back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct News {
    pub from: String,
    pub seq: u64,
    pub passing: BTreeSet<String>,
}

/// The body: magic, the sender's name, the sequence number, then one `namespace/name`
/// per line (names hold no newline).
pub fn encode(news: &News) -> Vec<u8> {
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(news.from.as_bytes());
    body.push(b'\n');
    body.extend_from_slice(news.seq.to_string().as_bytes());
    for service in &news.passing {
        body.push(b'\n');
        body.extend_from_slice(service.as_bytes());
    }
    body
}

/// `None`: not a health datagram. `Some(None)`: one that does not decode.
pub fn decode(body: &[u8]) -> Option<Option<News>> {
    let rest = body.strip_prefix(MAGIC)?;
    let Ok(text) = std::str::from_utf8(rest) else {
        return Some(None);
    };
    let mut lines = text.split('\n');
    let Some(from) = lines.next().filter(|f| !f.is_empty()) else {
        return Some(None);
    };
    let Some(seq) = lines.next().and_then(|s| s.parse::<u64>().ok()) else {
        return Some(None);
    };
    let passing = lines
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    Some(Some(News {
        from: from.to_string(),
        seq,
        passing,
    }))
}

/// The latest news per speaker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    latest: BTreeMap<String, (u64, BTreeSet<String>)>,
}

impl Table {
    /// Takes `news` if it is newer than what is known of its sender; returns whether
    /// the passing sets changed.
    pub fn observe(&mut self, news: News) -> bool {
        match self.latest.get(&news.from) {
            Some((seq, _)) if *seq >= news.seq => false,
            Some((_, passing)) if *passing == news.passing => {
                self.latest.insert(news.from, (news.seq, news.passing));
                false
            }
            _ => {
                self.latest.insert(news.from, (news.seq, news.passing));
                true
            }
        }
    }

    /// Speaker → the checked Services that pass on it.
    pub fn passing(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.latest
            .iter()
            .map(|(node, (_, passing))| (node.clone(), passing.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn news(from: &str, seq: u64, passing: &[&str]) -> News {
        News {
            from: from.into(),
            seq,
            passing: passing.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        for n in [
            news("node1", 7, &[]),
            news("node-2", u64::MAX, &["a/b", "kube-system/api"]),
        ] {
            assert_eq!(decode(&encode(&n)), Some(Some(n)));
        }
        assert_eq!(decode(b"not ours"), None);
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(b"node1\nnot-a-number");
        assert_eq!(decode(&bad), Some(None));
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(decode(&bad), Some(None));
    }

    #[test]
    fn older_news_never_rolls_the_table_back() {
        let mut table = Table::default();
        assert!(table.observe(news("n1", 5, &["a/b"])));
        assert!(!table.observe(news("n1", 4, &[])), "reordered");
        assert!(!table.observe(news("n1", 5, &[])), "repeated seq");
        assert!(
            !table.observe(news("n1", 6, &["a/b"])),
            "same set, newer seq"
        );
        assert!(table.observe(news("n1", 7, &[])));
        assert_eq!(table.passing()["n1"], BTreeSet::new());
    }
}
