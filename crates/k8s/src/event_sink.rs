//! Where oxlb's events go: `events.k8s.io/v1` Events, a repeat of the same event folded
//! into one series, with a bound on what is remembered to fold.
//!
//! kube's `Recorder` remembers every event it published for 6 minutes as the whole
//! Event object, in a map without a bound: a speaker that announced 10,000 Services at
//! once kept 26 MB there (issue 22, bench speaker_footprint, heaptrack); even bounded
//! at 4,096 events (client-go's LRU, which MetalLB uses) it kept 6 MB. Folding a repeat
//! needs only the Event's name and its count, so the sink publishes as kube's Recorder
//! does (the same object on the first sighting; on a repeat a merge patch of the
//! series and the fields that make it the same event, the note and time of the first
//! sighting left as they are, where kube sends its remembered copy whole) and
//! remembers per event a hash of its key, the name, the count and when it was last
//! seen: about 100 bytes instead of 1.5 KB ([`EventMemory`]).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};

/// client-go's `maxLruCacheEntries`: at most this many events are remembered.
pub const REMEMBERED_EVENTS: usize = 4096;

/// How long a repeat still continues a series (kube's and client-go's 6 minutes).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_secs(6 * 60);

/// Publishes events as one reporting component (see [`crate::writer`] for the names).
pub struct EventSink {
    client: Client,
    reporter: Reporter,
    memory: Mutex<EventMemory>,
}

impl EventSink {
    pub fn new(client: Client, reporter: Reporter) -> EventSink {
        EventSink {
            client,
            reporter,
            memory: Mutex::new(EventMemory::default()),
        }
    }

    /// Records `event` on the object `reference` names: a new Event, or the next count
    /// of the series of the same event published before (kube's `Recorder::publish`).
    pub async fn publish(
        &self,
        event: &Event,
        reference: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let key = event_key(event, reference);
        let now = Timestamp::now();
        let write = self.lock().write_for(key, now);
        let namespace = reference.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let (name, count) = match write {
            Write::New => {
                let object = new_event(&self.reporter, event, reference, now);
                let created = events.create(&PostParams::default(), &object).await?;
                let name = created.metadata.name.or(object.metadata.name);
                (name.unwrap_or_default().into_boxed_str(), 1)
            }
            Write::Repeat { name, count } => {
                // What makes it the same event (immutable on the API server: the same
                // values) and the series; the first sighting's time and note stay.
                let repeat = K8sEvent {
                    event_time: None,
                    note: None,
                    metadata: ObjectMeta::default(),
                    series: Some(EventSeries {
                        count,
                        last_observed_time: MicroTime(now),
                    }),
                    ..new_event(&self.reporter, event, reference, now)
                };
                events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&repeat))
                    .await?;
                (name, count)
            }
        };
        self.lock().remember(key, name, count, now);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EventMemory> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The Event object of a first sighting, as kube's Recorder builds it.
fn new_event(
    reporter: &Reporter,
    event: &Event,
    reference: &ObjectReference,
    now: Timestamp,
) -> K8sEvent {
    let named = reference.name.as_ref().unwrap_or(&reporter.controller);
    K8sEvent {
        action: Some(event.action.clone()),
        reason: Some(event.reason.clone()),
        event_time: Some(MicroTime(now)),
        regarding: Some(reference.clone()),
        note: event.note.clone(),
        metadata: ObjectMeta {
            namespace: reference.namespace.clone(),
            name: Some(format!("{named}.{:x}", now.as_nanosecond())),
            ..ObjectMeta::default()
        },
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        type_: Some(
            match event.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_string(),
        ),
        related: event.secondary.clone(),
        ..K8sEvent::default()
    }
}

/// What makes two events the same for a series (kube's `EventKey` without the
/// reporter, which is one per sink): type, action, reason, the object and the related
/// one, as a 64-bit hash. Two different events with the same hash (about 1 in 10^12
/// with 4,096 remembered) would be counted as one series: a wrong count on an Event,
/// nothing more.
pub fn event_key(event: &Event, reference: &ObjectReference) -> u64 {
    let mut hasher = DefaultHasher::new();
    matches!(event.type_, EventType::Warning).hash(&mut hasher);
    event.action.hash(&mut hasher);
    event.reason.hash(&mut hasher);
    hash_reference(reference, &mut hasher);
    match &event.secondary {
        Some(related) => {
            true.hash(&mut hasher);
            hash_reference(related, &mut hasher);
        }
        None => false.hash(&mut hasher),
    }
    hasher.finish()
}

fn hash_reference(reference: &ObjectReference, hasher: &mut DefaultHasher) {
    let ObjectReference {
        api_version,
        field_path,
        kind,
        name,
        namespace,
        resource_version,
        uid,
    } = reference;
    for field in [
        api_version,
        field_path,
        kind,
        name,
        namespace,
        resource_version,
        uid,
    ] {
        field.hash(hasher);
    }
}

/// How to write an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// First sighting (or not remembered any more): a new Event.
    New,
    /// A repeat: the Event `name`'s series, now at `count`.
    Repeat { name: Box<str>, count: i32 },
}

/// What is remembered of the events published, to fold a repeat into its series.
/// Bounded as client-go's LRU of [`REMEMBERED_EVENTS`]: two generations of at most half
/// of that each; when the current one is full it becomes the previous one and the
/// previous one is forgotten, so the last `REMEMBERED_EVENTS / 2` events are always
/// remembered and never more than `REMEMBERED_EVENTS`.
#[derive(Debug, Default)]
pub struct EventMemory {
    current: HashMap<u64, Remembered>,
    previous: HashMap<u64, Remembered>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Remembered {
    /// The Event object's name.
    name: Box<str>,
    count: i32,
    last_seen: Timestamp,
}

impl EventMemory {
    /// How to write the event `key` seen at `now`.
    pub fn write_for(&self, key: u64, now: Timestamp) -> Write {
        match self.current.get(&key).or_else(|| self.previous.get(&key)) {
            Some(seen) if seen.last_seen + SERIES_WINDOW > now => Write::Repeat {
                name: seen.name.clone(),
                count: seen.count.saturating_add(1),
            },
            _ => Write::New,
        }
    }

    /// The event `key` was written as `name` with `count` at `now`.
    pub fn remember(&mut self, key: u64, name: Box<str>, count: i32, now: Timestamp) {
        self.previous.remove(&key);
        if !self.current.contains_key(&key) && self.current.len() >= REMEMBERED_EVENTS / 2 {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(
            key,
            Remembered {
                name,
                count,
                last_seen: now,
            },
        );
    }

    /// How many events are remembered.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, type_: EventType) -> Event {
        Event {
            type_,
            reason: reason.to_string(),
            note: Some("a note".to_string()),
            action: reason.to_string(),
            secondary: None,
        }
    }

    fn service(name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("Service".into()),
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..ObjectReference::default()
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The key tells apart what kube's EventKey tells apart, the note aside.
    #[test]
    fn the_key_is_the_event_and_its_object() {
        let web = service("web");
        let assigned = event("nodeAssigned", EventType::Normal);
        let key = event_key(&assigned, &web);
        let other_note = Event {
            note: Some("another note".into()),
            ..event("nodeAssigned", EventType::Normal)
        };
        assert_eq!(event_key(&other_note, &web), key);
        assert_ne!(event_key(&assigned, &service("db")), key);
        assert_ne!(
            event_key(&event("nodeAssigned", EventType::Warning), &web),
            key
        );
        assert_ne!(event_key(&event("other", EventType::Normal), &web), key);
        let related = Event {
            secondary: Some(service("db")),
            ..event("nodeAssigned", EventType::Normal)
        };
        assert_ne!(event_key(&related, &web), key);
    }

    /// A repeat continues the series by name while remembered and within 6 minutes.
    #[test]
    fn a_repeat_continues_the_series_within_the_window() {
        let mut memory = EventMemory::default();
        assert_eq!(memory.write_for(1, at(0)), Write::New);
        memory.remember(1, "web.1".into(), 1, at(0));
        let repeat = Write::Repeat {
            name: "web.1".into(),
            count: 2,
        };
        assert_eq!(memory.write_for(1, at(10)), repeat);
        memory.remember(1, "web.1".into(), 2, at(10));
        assert_eq!(
            memory.write_for(1, at(20)),
            Write::Repeat {
                name: "web.1".into(),
                count: 3
            }
        );
        assert_eq!(memory.write_for(2, at(20)), Write::New);
        // 6 minutes after it was last seen: a new Event.
        assert_eq!(memory.write_for(1, at(10 + 360)), Write::New);
    }

    /// Never more than REMEMBERED_EVENTS; the last half of them always.
    #[test]
    fn the_memory_is_bounded_and_keeps_the_recent_ones() {
        let mut memory = EventMemory::default();
        let total = REMEMBERED_EVENTS as u64 * 3;
        for key in 0..total {
            memory.remember(key, format!("e.{key}").into(), 1, at(0));
            assert!(memory.len() <= REMEMBERED_EVENTS);
        }
        for key in total - REMEMBERED_EVENTS as u64 / 2..total {
            assert_ne!(memory.write_for(key, at(1)), Write::New, "{key}");
        }
        assert_eq!(memory.write_for(0, at(1)), Write::New);
        // A repeat of a remembered event does not grow it.
        let len = memory.len();
        memory.remember(total - 1, "e.last".into(), 2, at(1));
        assert_eq!(memory.len(), len);
    }
}
