//! Reload triggers: a change to any configuration file or directory, or SIGHUP.
//!
//! Editors replace files (write a new one, rename it over the old), which drops an
//! inotify watch on the file itself; so the parent directory of every file is watched
//! and events are filtered to the paths that matter. Bursts of events (an editor
//! writes, renames, chmods) are folded into one reload after a short quiet period.
//!
//! How long to wait depends on what the last event says about the file. A rename into
//! place, a close after writing, or a removal means the writer is done: reload almost
//! at once. A bare write or create may be the first of several (a file written in
//! pieces), and reading it now could apply a truncated but valid file, withdrawing the
//! Services it no longer lists: wait until the writes stop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Why a reload happens (logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadCause {
    FileChanged(PathBuf),
    Sighup,
}

/// How long events must stop before a reload while a file may still be half-written.
const QUIET: Duration = Duration::from_millis(150);

/// How long to wait after an event that says the writer is done: only long enough to
/// fold the rest of the same burst (several files copied at once, a chmod after).
const SETTLED_QUIET: Duration = Duration::from_millis(15);

/// What an event says about the file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// Complete: renamed into place, closed after writing, or removed.
    Settled,
    /// Possibly half-written: created, or written to and not yet closed.
    InFlux,
    /// Says nothing about the content (permissions, timestamps).
    Unchanged,
}

/// `None`: the event is not a change at all (a read, an open).
fn content_of(kind: &notify::EventKind) -> Option<Content> {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Content::Settled),
        EventKind::Access(_) => None,
        EventKind::Modify(ModifyKind::Name(_)) | EventKind::Remove(_) => Some(Content::Settled),
        EventKind::Modify(ModifyKind::Metadata(_)) => Some(Content::Unchanged),
        _ => Some(Content::InFlux),
    }
}

/// The quiet period after the events so far: short once the last event that said
/// anything about the content says it is complete.
fn quiet_after(last: Content) -> Duration {
    match last {
        Content::Settled => SETTLED_QUIET,
        Content::InFlux | Content::Unchanged => QUIET,
    }
}

/// Keeps the watcher alive; dropping it stops watching.
pub struct ConfigWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `paths` (files or directories). Returns the watcher guard and a
/// channel that yields one cause per reload needed.
pub fn watch(paths: &[PathBuf]) -> notify::Result<(ConfigWatcher, mpsc::Receiver<ReloadCause>)> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<(PathBuf, Content)>();
    let (tx, rx) = mpsc::channel(16);
    let watched: Vec<PathBuf> = paths
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let relevant = watched.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let Some(content) = content_of(&event.kind) else {
            return;
        };
        for path in event.paths {
            if relevant.iter().any(|r| is_relevant(r, &path)) {
                let _ = raw_tx.send((path, content));
            }
        }
    })?;
    for path in &watched {
        if path.is_dir() {
            watcher.watch(path, RecursiveMode::Recursive)?;
        } else {
            let parent = path.parent().unwrap_or(Path::new("/"));
            watcher.watch(parent, RecursiveMode::NonRecursive)?;
        }
    }

    let sighup_tx = tx.clone();
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            if sighup_tx.send(ReloadCause::Sighup).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some((first, content)) = raw_rx.recv().await {
            // Fold the burst: wait until the quiet period passes without another event.
            let mut last = content;
            while let Ok(Some((_, content))) =
                tokio::time::timeout(quiet_after(last), raw_rx.recv()).await
            {
                if content != Content::Unchanged {
                    last = content;
                }
            }
            if tx.send(ReloadCause::FileChanged(first)).await.is_err() {
                return;
            }
        }
    });
    Ok((ConfigWatcher { _watcher: watcher }, rx))
}

/// A change matters when it is the watched file, or inside a watched directory and a
/// YAML/JSON file (editor swap files and the like are ignored).
fn is_relevant(watched: &Path, changed: &Path) -> bool {
    if changed == watched {
        return true;
    }
    watched.is_dir()
        && changed.starts_with(watched)
        && changed
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_edit_of_a_watched_file_triggers_one_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "a: 1\n").unwrap();
        let other = dir.path().join("unrelated.txt");
        let (_guard, mut reloads) = watch(std::slice::from_ref(&file)).unwrap();
        std::fs::write(&other, "x").unwrap();
        // Replace the file the way editors do: write elsewhere, rename over.
        let swap = dir.path().join(".config.yaml.swp");
        std::fs::write(&swap, "a: 2\n").unwrap();
        std::fs::rename(&swap, &file).unwrap();
        let cause = tokio::time::timeout(Duration::from_secs(10), reloads.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(cause, ReloadCause::FileChanged(_)), "{cause:?}");
        // The burst was folded into one reload.
        assert!(
            tokio::time::timeout(Duration::from_millis(600), reloads.recv())
                .await
                .is_err()
        );
    }

    #[test]
    fn only_a_finished_write_shortens_the_wait() {
        use notify::EventKind;
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind,
            RenameMode,
        };
        let settled = [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            EventKind::Remove(RemoveKind::File),
        ];
        for kind in settled {
            assert_eq!(content_of(&kind), Some(Content::Settled), "{kind:?}");
        }
        let in_flux = [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Content)),
            EventKind::Modify(ModifyKind::Any),
        ];
        for kind in in_flux {
            assert_eq!(content_of(&kind), Some(Content::InFlux), "{kind:?}");
        }
        assert_eq!(
            content_of(&EventKind::Modify(ModifyKind::Metadata(
                MetadataKind::Permissions
            ))),
            Some(Content::Unchanged)
        );
        assert_eq!(content_of(&EventKind::Access(AccessKind::Read)), None);
        assert!(quiet_after(Content::Settled) < quiet_after(Content::InFlux));
    }

    #[tokio::test]
    async fn a_file_written_in_pieces_is_read_once_complete() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "").unwrap();
        let (_guard, mut reloads) = watch(std::slice::from_ref(&file)).unwrap();
        // Written in place in two pieces with a pause shorter than QUIET between them,
        // the file closed only at the end: one reload, after the whole file is there.
        let mut writer = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .unwrap();
        std::io::Write::write_all(&mut writer, b"a: 1\n").unwrap();
        std::thread::sleep(QUIET / 5);
        assert!(
            reloads.try_recv().is_err(),
            "a bare write must not trigger a reload before the writes stop"
        );
        std::io::Write::write_all(&mut writer, b"b: 2\n").unwrap();
        drop(writer);
        tokio::time::timeout(Duration::from_secs(10), reloads.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(600), reloads.recv())
                .await
                .is_err(),
            "one reload for one write"
        );
    }

    #[tokio::test]
    async fn a_new_yaml_file_in_a_watched_directory_triggers_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (_guard, mut reloads) = watch(&[dir.path().to_path_buf()]).unwrap();
        std::fs::write(dir.path().join("pool.yaml"), "a: 1\n").unwrap();
        let cause = tokio::time::timeout(Duration::from_secs(10), reloads.recv())
            .await
            .unwrap();
        assert!(cause.is_some());
    }
}
