//! Notices when someone deletes this component's own ConfigurationState (`controller`
//! or `speaker-<node>`), so that it is written again at once, as MetalLB's reconcilers
//! recreate theirs. Without this the object stayed gone until the result changed, since
//! the writers skip a result they already wrote.
//!
//! A watch on that one object (field selector on its name); [`Presence`] turns the
//! watch events into "it went away", including a deletion missed while the watch was
//! down (a re-list that no longer contains it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use oxlb_api::ConfigurationState;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Pure core: whether the watched object exists, from the watcher's events.
#[derive(Debug, Default)]
pub struct Presence {
    present: bool,
    /// During a (re-)list: whether the listing has contained the object so far.
    listing: Option<bool>,
}

impl Presence {
    /// Feeds one event; true when the object went away (deleted, or absent from a
    /// re-list after it was there).
    pub fn observe<K>(&mut self, event: &watcher::Event<K>) -> bool {
        match event {
            watcher::Event::Apply(_) => {
                self.present = true;
                false
            }
            // A deletion seen on the watch: it existed, now it does not.
            watcher::Event::Delete(_) => {
                self.present = false;
                true
            }
            watcher::Event::Init => {
                self.listing = Some(false);
                false
            }
            watcher::Event::InitApply(_) => {
                self.listing = Some(true);
                false
            }
            watcher::Event::InitDone => {
                let now = self.listing.take().unwrap_or(false);
                let gone = self.present && !now;
                self.present = now;
                gone
            }
        }
    }
}

/// The running watch; stopped when dropped.
pub struct OwnStateWatch {
    gone: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl OwnStateWatch {
    /// Watches `namespace/name`; on its deletion, flags it and wakes `notify` (the
    /// component's reconcile loop).
    pub fn start(client: &Client, namespace: &str, name: &str, notify: &Arc<Notify>) -> Self {
        let api: Api<ConfigurationState> = Api::namespaced(client.clone(), namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let gone = Arc::new(AtomicBool::new(false));
        let flag = gone.clone();
        let notify = notify.clone();
        let task = tokio::spawn(async move {
            let mut presence = Presence::default();
            let mut events = std::pin::pin!(watcher(api, config).default_backoff());
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        if presence.observe(&event) {
                            tracing::info!("own ConfigurationState deleted; writing it again");
                            flag.store(true, Ordering::SeqCst);
                            notify.notify_one();
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "watching own ConfigurationState");
                    }
                }
            }
        });
        OwnStateWatch { gone, task }
    }

    /// True once per deletion noticed since the last call: the caller forgets what it
    /// wrote, so that its next pass writes the object again.
    pub fn take_gone(&self) -> bool {
        self.gone.swap(false, Ordering::SeqCst)
    }
}

impl Drop for OwnStateWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watcher::Event;

    #[test]
    fn deletion_on_the_watch_and_in_a_relist() {
        let mut p = Presence::default();
        // First list: not there yet (never written) is not a deletion.
        assert!(!p.observe::<()>(&Event::Init));
        assert!(!p.observe::<()>(&Event::InitDone));
        assert!(!p.observe(&Event::Apply(())));
        assert!(p.observe(&Event::Delete(())));
        assert!(!p.observe(&Event::Apply(())));
        // Deleted while the watch was down: the re-list no longer has it.
        assert!(!p.observe::<()>(&Event::Init));
        assert!(p.observe::<()>(&Event::InitDone));
        // A re-list that still has it changes nothing.
        assert!(!p.observe(&Event::Apply(())));
        assert!(!p.observe::<()>(&Event::Init));
        assert!(!p.observe(&Event::InitApply(())));
        assert!(!p.observe::<()>(&Event::InitDone));
    }
}
