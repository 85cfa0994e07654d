//! A cache that keeps, per object, only the caller's compact projection of it, not the
//! object: kube's reflector store holds every k8s-openapi object whole (a Service is
//! an 824-byte struct before its strings and maps, about 5 KB in all), which at
//! 100,000 Services was 500 MB of a controller that reads a tenth of it (issue 22).
//!
//! Same list + watch as the reflector (re-listing after a 410 Gone, with backoff), same
//! semantics: a re-list replaces the contents in one step when it is complete
//! (`InitDone`), so a reader never sees half a list; the cache is ready after the
//! first complete list. Each object is projected as it arrives and dropped, so at most
//! one LIST page of whole objects is alive at a time.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::watcher;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// `namespace/name` (`name` alone for a cluster-scoped kind): the key of an entry.
pub fn key_of<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    }
}

/// Keys as `Box<str>`: a map slot is 8 bytes smaller than with `String` (16,384 slots
/// for 10,000 entries).
struct Entries<V> {
    current: HashMap<Box<str>, Arc<V>>,
    /// A re-list in progress: what it brought so far.
    relisting: Option<HashMap<Box<str>, Arc<V>>>,
}

/// The read side: cheap to clone, shared with the task that fills it.
pub struct Projected<V> {
    entries: Arc<RwLock<Entries<V>>>,
    ready: watch::Receiver<bool>,
}

impl<V> Clone for Projected<V> {
    fn clone(&self) -> Self {
        Projected {
            entries: self.entries.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<V> Projected<V> {
    /// Every entry (in no particular order).
    pub fn state(&self) -> Vec<Arc<V>> {
        self.read(|e| e.current.values().cloned().collect())
    }

    /// The entry of `key` (`namespace/name`).
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        self.read(|e| e.current.get(key).cloned())
    }

    /// Every key (`namespace/name`), in no particular order.
    pub fn keys(&self) -> Vec<String> {
        self.read(|e| e.current.keys().map(|k| k.to_string()).collect())
    }

    pub fn len(&self) -> usize {
        self.read(|e| e.current.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once the first list is complete.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.clone();
        // An error means the filling side is gone: nothing more will come either way.
        let _ = ready.wait_for(|r| *r).await;
    }

    fn read<T>(&self, f: impl FnOnce(&Entries<V>) -> T) -> T {
        f(&self.entries.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The write side: applies watch events.
pub struct Filler<K, V> {
    entries: Arc<RwLock<Entries<V>>>,
    ready: watch::Sender<bool>,
    project: fn(&K) -> V,
}

/// An empty cache and what fills it, projecting each object with `project`.
pub fn projected<K, V>(project: fn(&K) -> V) -> (Projected<V>, Filler<K, V>) {
    let entries = Arc::new(RwLock::new(Entries {
        current: HashMap::new(),
        relisting: None,
    }));
    let (ready_tx, ready_rx) = watch::channel(false);
    (
        Projected {
            entries: entries.clone(),
            ready: ready_rx,
        },
        Filler {
            entries,
            ready: ready_tx,
            project,
        },
    )
}

impl<K: Resource, V> Filler<K, V> {
    /// Applies one event of kube's watcher.
    pub fn apply(&self, event: watcher::Event<K>) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Apply(object) => {
                let value = Arc::new((self.project)(&object));
                entries
                    .current
                    .insert(key_of(&object).into_boxed_str(), value);
            }
            watcher::Event::Delete(object) => {
                entries.current.remove(key_of(&object).as_str());
            }
            watcher::Event::Init => entries.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                let value = Arc::new((self.project)(&object));
                entries
                    .relisting
                    .get_or_insert_with(HashMap::new)
                    .insert(key_of(&object).into_boxed_str(), value);
            }
            watcher::Event::InitDone => {
                if let Some(mut listed) = entries.relisting.take() {
                    listed.shrink_to_fit();
                    entries.current = listed;
                }
                drop(entries);
                self.ready.send_replace(true);
            }
        }
    }
}

/// Fills a projected cache from `events` in a task (pushed to `tasks`), waking
/// `notify` after every event that arrived (errors are logged; the watcher retries).
pub fn spawn<K, V>(
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    project: fn(&K) -> V,
    notify: &Arc<Notify>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Projected<V>
where
    K: Resource + Send + 'static,
    K::DynamicType: Default,
    V: Send + Sync + 'static,
{
    let (reader, filler) = projected(project);
    let notify = notify.clone();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    tasks.push(tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Err(e) => tracing::warn!(kind = %kind, error = %e, "watch failed; retrying"),
                Ok(event) => {
                    filler.apply(event);
                    notify.notify_one();
                }
            }
        }
    }));
    reader
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn map(name: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_string(), value.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    fn value(m: &ConfigMap) -> String {
        m.data
            .as_ref()
            .and_then(|d| d.get("k"))
            .cloned()
            .unwrap_or_default()
    }

    fn sorted(p: &Projected<String>) -> Vec<String> {
        let mut all: Vec<String> = p.state().iter().map(|v| (**v).clone()).collect();
        all.sort();
        all
    }

    #[test]
    fn a_relist_replaces_the_contents_only_when_complete() {
        let (reader, filler) = projected(value);
        assert!(!*reader.ready.borrow());
        filler.apply(watcher::Event::Init);
        filler.apply(watcher::Event::InitApply(map("a", "1")));
        filler.apply(watcher::Event::InitApply(map("b", "2")));
        assert!(reader.is_empty(), "half a list is not shown");
        filler.apply(watcher::Event::InitDone);
        assert!(*reader.ready.borrow());
        assert_eq!(sorted(&reader), ["1", "2"]);
        filler.apply(watcher::Event::Apply(map("a", "3")));
        filler.apply(watcher::Event::Delete(map("b", "2")));
        assert_eq!(sorted(&reader), ["3"]);
        assert_eq!(reader.get("ns/a").as_deref().map(String::as_str), Some("3"));
        // A re-list after a 410: the old contents stay until it is complete, then
        // what it did not bring is gone.
        filler.apply(watcher::Event::Init);
        filler.apply(watcher::Event::InitApply(map("c", "4")));
        assert_eq!(sorted(&reader), ["3"]);
        filler.apply(watcher::Event::InitDone);
        assert_eq!(sorted(&reader), ["4"]);
        assert!(reader.get("ns/a").is_none());
    }
}
