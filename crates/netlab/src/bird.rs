use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::netns::Netns;
use crate::process::Guarded;
use crate::wait::wait_until;

/// A BIRD 2 daemon running in the foreground inside one namespace, with its own control
/// socket. Killed (and its files removed) when dropped.
#[derive(Debug)]
pub struct Bird {
    dir: PathBuf,
    process: Option<Guarded>,
}

impl Bird {
    /// Writes `config` and starts `bird -f -c CONF -s SOCKET` in `ns`; returns once
    /// `birdc` answers. BIRD's own output goes to `DIR/bird.log`.
    pub fn start(ns: &Netns, config: &str) -> io::Result<Bird> {
        let dir = std::env::temp_dir().join(format!("oxlb-bird-{}", ns.name()));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("bird.conf");
        std::fs::write(&conf, config)?;
        let sock = dir.join("bird.ctl");
        let conf_arg = conf.to_string_lossy().into_owned();
        let sock_arg = sock.to_string_lossy().into_owned();
        let process = ns.spawn(
            &["bird", "-f", "-c", &conf_arg, "-s", &sock_arg],
            Some(&dir.join("bird.log")),
        )?;
        let mut bird = Bird {
            dir,
            process: Some(process),
        };
        let ready = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            bird.birdc("show status").ok()
        });
        if ready.is_none() {
            let exited = bird.process.as_mut().is_some_and(Guarded::has_exited);
            let log = std::fs::read_to_string(bird.dir.join("bird.log")).unwrap_or_default();
            return Err(io::Error::other(format!(
                "BIRD in {} did not answer birdc within 20 s (exited: {exited}): {}",
                ns.name(),
                log.trim()
            )));
        }
        Ok(bird)
    }

    /// Runs one birdc command (`show protocols`, `show route all`) and returns its output.
    pub fn birdc(&self, command: &str) -> io::Result<String> {
        let sock = self.dir.join("bird.ctl");
        let output = Command::new("birdc")
            .arg("-s")
            .arg(&sock)
            .args(command.split_whitespace())
            .stdin(Stdio::null())
            .output()?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(io::Error::other(format!(
                "birdc {command} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// The daemon's process id (to read its memory), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Guarded::id)
    }

    /// BIRD's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bird.log")).unwrap_or_default()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        drop(self.process.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
