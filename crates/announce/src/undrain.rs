//! When a node that was drained (`oxlb undrain`) may stand in the Layer 2 election
//! again. Until the other speakers know it is back, the current owner of its IPs keeps
//! answering; if this node claimed at once, two would answer. So it waits until every
//! live speaker has acknowledged the undrain: while its health news asks for it, every
//! speaker's news echoes the sequence number of the latest news it heard from it, the
//! first echo at once, so on a LAN this takes a few milliseconds. News can be lost: the echo repeats with every news (every second), so
//! a lost one delays the claim, never doubles the answer.
//!
//! Speakers from before acknowledgements cannot echo; for them the rule of before
//! holds: the undrain news went out at once (twice), and the node waits
//! [`OLDER_SPEAKER_HOLD`] for them to read it.
//!
//! The node never stops waiting for a live speaker that can acknowledge and has not:
//! standing out of the election is safe (another node answers; with every node out,
//! all stand), answering twice is not. It says so after [`SLOW_ACK`].
//!
//! Pure: the shell passes the live speakers and the news table's view of them.

use std::collections::BTreeSet;
use std::time::Duration;

/// How long an undrained node waits for speakers that cannot acknowledge (older
/// versions): the time their reading of the undrain news takes on a LAN, with margin.
pub const OLDER_SPEAKER_HOLD: Duration = Duration::from_millis(200);

/// After this long without every acknowledgement the shell logs the speakers it waits
/// for (news repeats every second: this is three rounds lost).
pub const SLOW_ACK: Duration = Duration::from_secs(3);

/// The other speakers as the undrained node sees them now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Speakers {
    /// Live in the membership, this node left out.
    pub live: BTreeSet<String>,
    /// Those whose news says they acknowledge flag changes.
    pub can_acknowledge: BTreeSet<String>,
    /// Those whose latest news echoes this node's undrain news (or later).
    pub acknowledged: BTreeSet<String>,
}

/// Whether the hold after an undrain is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndrainHold {
    /// Stay out of the election.
    Waiting {
        /// Live speakers that can acknowledge and have not yet.
        unacknowledged: BTreeSet<String>,
        /// Live older speakers, waited for by time ([`OLDER_SPEAKER_HOLD`]).
        older: BTreeSet<String>,
    },
    /// Stand again.
    Over(HoldEnd),
}

/// Why the hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEnd {
    /// Every live speaker acknowledged the undrain.
    Acknowledged,
    /// Every live speaker that can acknowledge did, and the older ones had
    /// [`OLDER_SPEAKER_HOLD`] to read the news.
    OlderSpeakersHadTime,
}

impl HoldEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldEnd::Acknowledged => "acknowledged",
            HoldEnd::OlderSpeakersHadTime => "older_speakers_had_time",
        }
    }
}

/// The hold `elapsed` after the undrain.
pub fn undrain_hold(elapsed: Duration, speakers: &Speakers) -> UndrainHold {
    let unacknowledged: BTreeSet<String> = speakers
        .live
        .iter()
        .filter(|s| speakers.can_acknowledge.contains(*s) && !speakers.acknowledged.contains(*s))
        .cloned()
        .collect();
    let older: BTreeSet<String> = speakers
        .live
        .iter()
        .filter(|s| !speakers.can_acknowledge.contains(*s))
        .cloned()
        .collect();
    let older_waiting = !older.is_empty() && elapsed < OLDER_SPEAKER_HOLD;
    if !unacknowledged.is_empty() || older_waiting {
        return UndrainHold::Waiting {
            unacknowledged,
            older: if older_waiting {
                older
            } else {
                BTreeSet::new()
            },
        };
    }
    UndrainHold::Over(if older.is_empty() {
        HoldEnd::Acknowledged
    } else {
        HoldEnd::OlderSpeakersHadTime
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    const AT_ONCE: Duration = Duration::ZERO;
    const LATER: Duration = Duration::from_secs(3600);

    #[test]
    fn waits_for_every_live_speaker_that_can_acknowledge() {
        let mut speakers = Speakers {
            live: set(&["n2", "n3"]),
            can_acknowledge: set(&["n2", "n3"]),
            acknowledged: set(&["n2"]),
        };
        assert_eq!(
            undrain_hold(LATER, &speakers),
            UndrainHold::Waiting {
                unacknowledged: set(&["n3"]),
                older: set(&[])
            },
            "an hour later still: never claims over a speaker that may still answer"
        );
        speakers.acknowledged.insert("n3".into());
        assert_eq!(
            undrain_hold(AT_ONCE, &speakers),
            UndrainHold::Over(HoldEnd::Acknowledged),
            "at once when all acknowledged: no fixed wait"
        );
    }

    #[test]
    fn a_speaker_that_left_is_not_waited_for() {
        let speakers = Speakers {
            live: set(&["n2"]),
            can_acknowledge: set(&["n2", "n3"]),
            acknowledged: set(&["n2"]),
        };
        assert_eq!(
            undrain_hold(AT_ONCE, &speakers),
            UndrainHold::Over(HoldEnd::Acknowledged)
        );
        let alone = Speakers::default();
        assert_eq!(
            undrain_hold(AT_ONCE, &alone),
            UndrainHold::Over(HoldEnd::Acknowledged)
        );
    }

    #[test]
    fn older_speakers_get_the_time_of_before() {
        let speakers = Speakers {
            live: set(&["n2", "old"]),
            can_acknowledge: set(&["n2"]),
            acknowledged: set(&["n2"]),
        };
        assert_eq!(
            undrain_hold(OLDER_SPEAKER_HOLD / 2, &speakers),
            UndrainHold::Waiting {
                unacknowledged: set(&[]),
                older: set(&["old"])
            }
        );
        assert_eq!(
            undrain_hold(OLDER_SPEAKER_HOLD, &speakers),
            UndrainHold::Over(HoldEnd::OlderSpeakersHadTime)
        );
        // An acknowledgement an older speaker could not send is not required.
        let mut unacked = speakers.clone();
        unacked.acknowledged.clear();
        assert!(matches!(
            undrain_hold(LATER, &unacked),
            UndrainHold::Waiting { .. }
        ));
    }

    proptest! {
        /// Over only when every live speaker able to acknowledge did; Waiting names
        /// exactly those that did not.
        #[test]
        fn over_means_every_capable_live_speaker_acknowledged(
            live in proptest::collection::btree_set("n[0-5]", 0..6),
            capable in proptest::collection::btree_set("n[0-5]", 0..6),
            acked in proptest::collection::btree_set("n[0-5]", 0..6),
            ms in 0u64..1000,
        ) {
            let speakers = Speakers { live: live.clone(), can_acknowledge: capable.clone(), acknowledged: acked.clone() };
            let missing: BTreeSet<String> = live.iter().filter(|s| capable.contains(*s) && !acked.contains(*s)).cloned().collect();
            match undrain_hold(Duration::from_millis(ms), &speakers) {
                UndrainHold::Over(_) => prop_assert!(missing.is_empty()),
                UndrainHold::Waiting { unacknowledged, .. } => prop_assert_eq!(unacknowledged, missing),
            }
        }
    }
}
