//! Health-check news between speakers (`oxlb.io/health-check`, Layer 2): each speaker
//! tells the others which checked Services pass on it, so that every speaker leaves a
//! failing node out of the election for that Service and all agree on one healthy
//! owner. A small datagram of its own beside SWIM's, authenticated like the gossip
//! (the same pattern as [`crate::views`]); sent at once on a change and repeated every
//! second, so a speaker that joins later, or lost one, learns it. Pure: encoding,
//! decoding, and the table of the latest news per speaker.
//!
//! The same news carries the speaker's state flags ([`Flag`]): `oxlb drain` reaches the
//! other speakers this way, so they elect another Layer 2 owner. A flag is a line
//! starting with `!`; a speaker that predates flags reads it as one more passing
//! Service name, which never matches (a Service is named `namespace/name`, and `!` is
//! in no Kubernetes name), so old and new speakers mix. A flag this speaker does not
//! know is ignored (a newer speaker's).
//!
//! Every speaker of this version always sends [`Flag::LinkBandwidth`]; news that
//! arrives without it comes from an older speaker, which announces weighted ECMP
//! prefixes without the link-bandwidth community (`oxlb_announce::mixed_paths`).
//! That is why [`Table::flags`] lists every speaker heard from, also with no flag.
//!
//! Acknowledgements: a speaker that needs to know the others have read its news (an
//! undrained one, before it claims Layer 2 IPs again: `oxlb_announce::undrain`) says
//! so with [`Flag::AwaitingAcks`]; while its news carries it, every other speaker
//! echoes the number of the latest news it holds from it (a line `@name seq`), at once
//! when the flag appears and then with every news. Only speakers asking are echoed, so
//! news stays small in any cluster. [`Flag::AcknowledgesFlags`] tells that a speaker
//! echoes; an older one reads an echo line as one more passing name, which never
//! matches (no `/`).

use std::collections::{BTreeMap, BTreeSet};

/// Marks a health datagram's body (never the start of a SWIM body, see `views`).
const MAGIC: &[u8] = b"\xff\xff\xffoxlb-health\n";

/// Starts a flag line.
const FLAG_MARK: char = '!';

/// Starts an acknowledgement line: `@name seq`.
const ACK_MARK: char = '@';

/// A speaker's state, as it tells the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// `oxlb drain`: the speaker withdrew its routes and stands in no Layer 2 election
    /// while another live speaker can answer.
    Drained,
    /// This speaker attaches the link-bandwidth extended community to weighted ECMP
    /// announcements (`oxlb.io/weighted-ecmp`). Always sent by this version: its
    /// absence is what tells an older speaker.
    LinkBandwidth,
    /// This speaker echoes the news of speakers that ask for it (lines `@name seq`).
    /// Always sent by this version.
    AcknowledgesFlags,
    /// This speaker waits until every other one has read its news (after `oxlb
    /// undrain`): echo it.
    AwaitingAcks,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Drained => "drained",
            Flag::LinkBandwidth => "link-bandwidth",
            Flag::AcknowledgesFlags => "acknowledges-flags",
            Flag::AwaitingAcks => "awaiting-acks",
        }
    }

    fn parse(text: &str) -> Option<Flag> {
        match text {
            "drained" => Some(Flag::Drained),
            "link-bandwidth" => Some(Flag::LinkBandwidth),
            "acknowledges-flags" => Some(Flag::AcknowledgesFlags),
            "awaiting-acks" => Some(Flag::AwaitingAcks),
            _ => None,
        }
    }
}

/// The flags a speaker of this version tells: [`Flag::LinkBandwidth`] and
/// [`Flag::AcknowledgesFlags`] always, [`Flag::Drained`] while drained. Both shells
/// send these.
pub fn own_flags(drained: bool) -> BTreeSet<Flag> {
    let mut flags = BTreeSet::from([Flag::LinkBandwidth, Flag::AcknowledgesFlags]);
    if drained {
        flags.insert(Flag::Drained);
    }
    flags
}

/// One speaker's news: the checked Services that pass on it now, and its flags. `seq`
/// grows with every message (it starts at the speaker's start time in milliseconds, so
/// a restart is newer too), so reordered or repeated datagrams never roll the table
/// back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct News {
    pub from: String,
    pub seq: u64,
    pub passing: BTreeSet<String>,
    pub flags: BTreeSet<Flag>,
    /// Speaker → the sequence number of its latest news this speaker holds, for the
    /// speakers awaiting acknowledgements.
    pub acks: BTreeMap<String, u64>,
}

/// The body: magic, the sender's name, the sequence number, then one `namespace/name`
/// per line (names hold no newline), then one `!flag` per line, then one `@name seq`
/// per acknowledgement.
pub fn encode(news: &News) -> Vec<u8> {
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(news.from.as_bytes());
    body.push(b'\n');
    body.extend_from_slice(news.seq.to_string().as_bytes());
    for service in &news.passing {
        body.push(b'\n');
        body.extend_from_slice(service.as_bytes());
    }
    for flag in &news.flags {
        body.push(b'\n');
        body.extend_from_slice(FLAG_MARK.to_string().as_bytes());
        body.extend_from_slice(flag.as_str().as_bytes());
    }
    for (speaker, seq) in &news.acks {
        body.push(b'\n');
        body.extend_from_slice(format!("{ACK_MARK}{speaker} {seq}").as_bytes());
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
    let mut passing = BTreeSet::new();
    let mut flags = BTreeSet::new();
    let mut acks = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some(flag) = line.strip_prefix(FLAG_MARK) {
            flags.extend(Flag::parse(flag));
        } else if let Some(ack) = line.strip_prefix(ACK_MARK) {
            // A malformed echo is ignored, not the news: it only delays a claim.
            if let Some((speaker, seq)) = ack.split_once(' ')
                && let Ok(seq) = seq.parse::<u64>()
                && !speaker.is_empty()
            {
                acks.insert(speaker.to_string(), seq);
            }
        } else {
            passing.insert(line.to_string());
        }
    }
    Some(Some(News {
        from: from.to_string(),
        seq,
        passing,
        flags,
        acks,
    }))
}

/// The latest news per speaker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    latest: BTreeMap<String, Latest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Latest {
    seq: u64,
    passing: BTreeSet<String>,
    /// `None`: forgotten since the speaker left ([`Table::forget_flags_of_absent`]):
    /// nothing is known of it until its next news.
    flags: Option<BTreeSet<Flag>>,
    acks: BTreeMap<String, u64>,
}

/// What a newer piece of news changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    pub passing: bool,
    pub flags: bool,
}

impl Table {
    /// Takes `news` if it is newer than what is known of its sender; returns what
    /// changed.
    pub fn observe(&mut self, news: News) -> Changed {
        let changed = match self.latest.get(&news.from) {
            Some(latest) if latest.seq >= news.seq => return Changed::default(),
            Some(latest) => Changed {
                passing: latest.passing != news.passing,
                flags: latest.flags.as_ref() != Some(&news.flags),
            },
            // A speaker heard from for the first time is news in itself, flags or not
            // (none at all: an older speaker).
            None => Changed {
                passing: true,
                flags: true,
            },
        };
        self.latest.insert(
            news.from,
            Latest {
                seq: news.seq,
                passing: news.passing,
                flags: Some(news.flags),
                acks: news.acks,
            },
        );
        changed
    }

    /// Speaker → the checked Services that pass on it.
    pub fn passing(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.latest
            .iter()
            .map(|(node, latest)| (node.clone(), latest.passing.clone()))
            .collect()
    }

    /// Forgets the flags of the speakers not in `live` (gone, or restarting: a speaker
    /// restarted after a drain is not drained, and its first news may come after it
    /// rejoins). Its sequence number stays, so a late datagram from before cannot bring
    /// the flags back; its next news does if they still hold. Returns whether any flag
    /// was forgotten.
    pub fn forget_flags_of_absent(&mut self, live: &BTreeSet<String>) -> bool {
        let mut changed = false;
        for (node, latest) in &mut self.latest {
            if !live.contains(node) && latest.flags.is_some() {
                latest.flags = None;
                changed = true;
            }
        }
        changed
    }

    /// Speaker → its flags, for every speaker heard from and not forgotten since (an
    /// empty set: its news carries no flag, an older speaker's).
    pub fn flags(&self) -> BTreeMap<String, BTreeSet<Flag>> {
        self.latest
            .iter()
            .filter_map(|(node, latest)| Some((node.clone(), latest.flags.clone()?)))
            .collect()
    }

    /// The sequence number of the latest news held from `speaker`.
    pub fn seq_of(&self, speaker: &str) -> Option<u64> {
        self.latest.get(speaker).map(|l| l.seq)
    }

    /// The speakers whose latest news echoes `speaker`'s news numbered `since` or
    /// later: they have read it.
    pub fn acknowledging(&self, speaker: &str, since: u64) -> BTreeSet<String> {
        self.latest
            .iter()
            .filter(|(_, latest)| latest.acks.get(speaker).is_some_and(|s| *s >= since))
            .map(|(node, _)| node.clone())
            .collect()
    }

    /// Whether `speaker`'s latest news carries `flag`.
    pub fn has_flag(&self, speaker: &str, flag: Flag) -> bool {
        self.latest
            .get(speaker)
            .and_then(|l| l.flags.as_ref())
            .is_some_and(|f| f.contains(&flag))
    }

    /// The echo lines this speaker's news carries: every speaker awaiting
    /// acknowledgements, with the number of its latest news held here.
    pub fn echoes(&self) -> BTreeMap<String, u64> {
        self.latest
            .iter()
            .filter(|(_, l)| {
                l.flags
                    .as_ref()
                    .is_some_and(|f| f.contains(&Flag::AwaitingAcks))
            })
            .map(|(node, l)| (node.clone(), l.seq))
            .collect()
    }

    /// The speakers whose latest news carries `flag`.
    pub fn with_flag(&self, flag: Flag) -> BTreeSet<String> {
        self.latest
            .iter()
            .filter(|(_, latest)| latest.flags.as_ref().is_some_and(|f| f.contains(&flag)))
            .map(|(node, _)| node.clone())
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
            flags: BTreeSet::new(),
            acks: BTreeMap::new(),
        }
    }

    fn drained(mut news: News) -> News {
        news.flags.insert(Flag::Drained);
        news
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        for n in [
            news("node1", 7, &[]),
            news("node-2", u64::MAX, &["a/b", "kube-system/api"]),
            drained(news("node3", 9, &["a/b"])),
            News {
                flags: own_flags(true),
                ..news("node4", 1, &["a/b"])
            },
            News {
                flags: own_flags(false),
                acks: BTreeMap::from([("node1".into(), 7), ("node-2".into(), u64::MAX)]),
                ..news("node5", 2, &["a/b"])
            },
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
        assert!(table.observe(news("n1", 5, &["a/b"])).passing);
        assert!(!table.observe(news("n1", 4, &[])).passing, "reordered");
        assert!(!table.observe(news("n1", 5, &[])).passing, "repeated seq");
        assert_eq!(
            table.observe(news("n1", 6, &["a/b"])),
            Changed::default(),
            "same set, newer seq"
        );
        assert!(table.observe(news("n1", 7, &[])).passing);
        assert_eq!(table.passing()["n1"], BTreeSet::new());
        // A drain, then a stale datagram from before it, then the undrain.
        let change = table.observe(drained(news("n1", 8, &[])));
        assert_eq!(
            change,
            Changed {
                passing: false,
                flags: true
            }
        );
        assert_eq!(
            table.with_flag(Flag::Drained),
            BTreeSet::from(["n1".into()])
        );
        assert_eq!(table.observe(news("n1", 7, &[])), Changed::default());
        assert_eq!(table.with_flag(Flag::Drained).len(), 1);
        assert!(table.observe(news("n1", 9, &[])).flags);
        assert!(table.with_flag(Flag::Drained).is_empty());
        // A drained speaker that leaves is forgotten as drained; its next news counts.
        table.observe(drained(news("n1", 10, &[])));
        assert!(!table.forget_flags_of_absent(&BTreeSet::from(["n1".into()])));
        assert!(table.forget_flags_of_absent(&BTreeSet::new()));
        assert!(table.flags().is_empty());
        assert_eq!(
            table.observe(drained(news("n1", 10, &[]))),
            Changed::default()
        );
        assert!(table.observe(drained(news("n1", 11, &[]))).flags);
    }

    /// What a speaker from before flags makes of news with a flag: one more passing
    /// name, which no Service key (`namespace/name`) ever equals. And a flag from a
    /// newer speaker that this one does not know is ignored.
    #[test]
    fn flags_are_harmless_to_old_readers_and_unknown_flags_are_ignored() {
        let body = encode(&drained(news("n1", 3, &["a/b"])));
        let text = String::from_utf8_lossy(&body[MAGIC.len()..]).to_string();
        let old_reading: BTreeSet<&str> = text.split('\n').skip(2).collect();
        assert_eq!(old_reading, BTreeSet::from(["a/b", "!drained"]));
        assert!(
            old_reading
                .iter()
                .filter(|l| !l.contains('/'))
                .all(|l| l.starts_with('!'))
        );
        let mut future = MAGIC.to_vec();
        future.extend_from_slice(b"n2\n4\na/b\n!some-future-flag\n!drained");
        let read = decode(&future).unwrap().unwrap();
        assert_eq!(read.passing, BTreeSet::from(["a/b".to_string()]));
        assert_eq!(read.flags, BTreeSet::from([Flag::Drained]));
    }

    /// The link-bandwidth flag on the wire, and what an older speaker's news (no such
    /// flag, or no flag at all) reads as: heard from, without the flag.
    #[test]
    fn a_speaker_without_the_link_bandwidth_flag_is_told_apart() {
        let body = encode(&News {
            flags: own_flags(false),
            ..news("new", 5, &[])
        });
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("\n!link-bandwidth"), "{text}");
        assert!(text.contains("\n!acknowledges-flags"), "{text}");
        // An older speaker's body: passing names and maybe `!drained`, nothing else.
        let mut old = MAGIC.to_vec();
        old.extend_from_slice(b"old\n7\na/b\n!drained");
        let old = decode(&old).unwrap().unwrap();
        assert_eq!(old.flags, BTreeSet::from([Flag::Drained]));
        let mut older = MAGIC.to_vec();
        older.extend_from_slice(b"older\n7");
        let older = decode(&older).unwrap().unwrap();
        assert!(older.flags.is_empty() && older.passing.is_empty());

        let mut table = Table::default();
        assert!(
            table.observe(older).flags,
            "a first news counts, flags or not"
        );
        table.observe(old);
        table.observe(decode(&body).unwrap().unwrap());
        let flags = table.flags();
        assert_eq!(flags["older"], BTreeSet::new());
        assert_eq!(flags["old"], BTreeSet::from([Flag::Drained]));
        assert_eq!(flags["new"], own_flags(false));
        assert_eq!(
            table.with_flag(Flag::LinkBandwidth),
            BTreeSet::from(["new".to_string()])
        );
        // Gone: not known any more (neither old nor new) until it speaks again.
        assert!(table.forget_flags_of_absent(&BTreeSet::from(["new".into()])));
        assert_eq!(
            table.flags().keys().collect::<Vec<_>>(),
            vec![&"new".to_string()]
        );
        assert!(table.observe(news("older", 8, &[])).flags);
        assert_eq!(table.flags()["older"], BTreeSet::new());
    }

    /// An echo says who read which news; a malformed echo line is dropped alone; an
    /// older speaker reads echo lines as passing names no Service key equals.
    #[test]
    fn echoes_tell_who_read_a_speakers_news() {
        let mut table = Table::default();
        let echo = |from: &str, seq: u64, of: &[(&str, u64)]| News {
            flags: own_flags(false),
            acks: of.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
            ..news(from, seq, &[])
        };
        table.observe(echo("n2", 10, &[("n1", 41)]));
        table.observe(echo("n3", 10, &[("n1", 40)]));
        table.observe(news("old", 10, &[]));
        assert_eq!(table.acknowledging("n1", 41), BTreeSet::from(["n2".into()]));
        assert_eq!(table.acknowledging("n1", 40).len(), 2);
        assert!(table.acknowledging("n9", 0).is_empty());
        assert_eq!(
            table.with_flag(Flag::AcknowledgesFlags),
            BTreeSet::from(["n2".into(), "n3".into()])
        );
        // Only speakers asking for it are echoed, with their latest number.
        assert!(table.echoes().is_empty());
        table.observe(News {
            flags: BTreeSet::from([Flag::AwaitingAcks]),
            ..news("n1", 41, &[])
        });
        assert_eq!(table.echoes(), BTreeMap::from([("n1".to_string(), 41)]));
        assert!(table.has_flag("n1", Flag::AwaitingAcks));
        table.observe(news("n1", 42, &[]));
        assert!(table.echoes().is_empty());
        // The echo is only as new as the speaker's latest news.
        table.observe(echo("n2", 11, &[]));
        assert!(table.acknowledging("n1", 41).is_empty());
        assert_eq!(table.seq_of("n2"), Some(11));

        let mut body = MAGIC.to_vec();
        body.extend_from_slice(b"n4\n3\n!acknowledges-flags\n@n1 12\n@n2 x\n@ 5\n@n3");
        let read = decode(&body).unwrap().unwrap();
        assert_eq!(read.acks, BTreeMap::from([("n1".to_string(), 12)]));
        assert!(read.passing.is_empty());
        let body = encode(&echo("n5", 1, &[("n1", 12)]));
        let text = String::from_utf8_lossy(&body[MAGIC.len()..]).to_string();
        assert!(
            text.split('\n')
                .skip(2)
                .filter(|l| !l.starts_with('!'))
                .all(|l| l.starts_with('@') && !l.contains('/')),
            "{text}"
        );
    }
}
