//! Reload triggers: a change to any configuration file or directory, or SIGHUP.
//!
//! Editors replace files (write a new one, rename it over the old), which drops an
//! inotify watch on the file itself; so the parent directory of every file is watched
//! and events are filtered to the paths that matter. Bursts of events (an editor
//! writes, renames, chmods) are folded into one reload after a short quiet period.

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

/// How long events must stop before a reload: long enough to fold an editor's burst,
/// short enough that an edit applies at once.
const QUIET: Duration = Duration::from_millis(150);

/// Keeps the watcher alive; dropping it stops watching.
pub struct ConfigWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `paths` (files or directories). Returns the watcher guard and a
/// channel that yields one cause per reload needed.
pub fn watch(paths: &[PathBuf]) -> notify::Result<(ConfigWatcher, mpsc::Receiver<ReloadCause>)> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<PathBuf>();
    let (tx, rx) = mpsc::channel(16);
    let watched: Vec<PathBuf> = paths
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let relevant = watched.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        for path in event.paths {
            if relevant.iter().any(|r| is_relevant(r, &path)) {
                let _ = raw_tx.send(path);
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
        while let Some(first) = raw_rx.recv().await {
            // Fold the burst: wait until QUIET passes without another event.
            while let Ok(Some(_)) = tokio::time::timeout(QUIET, raw_rx.recv()).await {}
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
