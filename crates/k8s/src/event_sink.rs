//! Where oxlb's events go: kube's [`Recorder`], with a bound on what it remembers.
//!
//! The Recorder keeps every event it published for 6 minutes, to fold a repeat of the
//! same (reason, action, object) into one series, in a map without a bound: a speaker
//! that announced 10,000 Services at once kept 26 MB there (issue 22, bench
//! speaker_footprint, heaptrack), and kept it until its next event. client-go's
//! recorder, which MetalLB uses, bounds the same cache at 4,096 events (an LRU). Here
//! a fresh Recorder takes over after every [`REMEMBERED_EVENTS`] events, so at most
//! twice that many are remembered; a repeat within a window is still folded, a repeat
//! across two windows starts a new series (as after an eviction in client-go).

use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, Recorder, Reporter};

/// client-go's `maxLruCacheEntries`.
pub const REMEMBERED_EVENTS: usize = 4096;

/// Publishes events as one reporting component (see [`crate::writer`] for the names).
pub struct EventSink {
    client: Client,
    reporter: Reporter,
    /// The Recorder in use and how many events it published.
    current: Mutex<(Recorder, usize)>,
}

impl EventSink {
    pub fn new(client: Client, reporter: Reporter) -> EventSink {
        let recorder = Recorder::new(client.clone(), reporter.clone());
        EventSink {
            client,
            reporter,
            current: Mutex::new((recorder, 0)),
        }
    }

    /// Records `event` on the object `reference` names (see [`Recorder::publish`]).
    pub async fn publish(
        &self,
        event: &Event,
        reference: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let recorder = {
            let mut current = self
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if current.1 >= REMEMBERED_EVENTS {
                *current = (Recorder::new(self.client.clone(), self.reporter.clone()), 0);
            }
            current.1 += 1;
            current.0.clone()
        };
        recorder.publish(event, reference).await
    }
}
