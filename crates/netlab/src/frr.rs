use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::netns::Netns;
use crate::wait::wait_until;

/// FRR daemons running inside one namespace as their own instance (`-N`), so several
/// can run side by side and none touches the host's FRR.
#[derive(Debug)]
pub struct Frr {
    instance: String,
    namespace: String,
    daemons: Vec<String>,
}

impl Frr {
    /// Starts `daemons` (e.g. `["zebra", "bgpd"]`, or `["zebra", "bgpd", "bfdd"]`) in
    /// `ns` with `config` (an frr.conf text). zebra, when listed, is started first so
    /// bgpd can install routes in the namespace's kernel table.
    pub fn start(ns: &Netns, config: &str, daemons: &[&str]) -> io::Result<Frr> {
        Frr::start_inner(ns, config, daemons, false)
    }

    /// Like [`Frr::start`], but the daemons start on an empty configuration and
    /// `config` is then loaded through vtysh, as FRR's init script applies an
    /// integrated frr.conf (`vtysh -b`). Needed for configurations in the form FRR 8
    /// writes and `oxlb router-config` generates: a daemon reading the whole file
    /// itself (`-f`) stops at the `exit` closing a block it does not own (bgpd at
    /// bfdd's `bfd` block) and never reads `router bgp` after it.
    pub fn start_via_vtysh(ns: &Netns, config: &str, daemons: &[&str]) -> io::Result<Frr> {
        Frr::start_inner(ns, config, daemons, true)
    }

    fn start_inner(ns: &Netns, config: &str, daemons: &[&str], via_vtysh: bool) -> io::Result<Frr> {
        let instance = ns.name().to_string();
        let frr = Frr {
            instance: instance.clone(),
            namespace: ns.name().to_string(),
            daemons: daemons.iter().map(|d| d.to_string()).collect(),
        };
        std::fs::create_dir_all(frr.config_dir())?;
        std::fs::create_dir_all(frr.run_dir())?;
        chown_frr(&frr.config_dir())?;
        chown_frr(&frr.run_dir())?;
        std::fs::write(frr.config_dir().join("vtysh.conf"), "")?;
        let config_path = frr.config_dir().join("frr.conf");
        std::fs::write(&config_path, config)?;
        chown_frr(&config_path)?;
        let daemon_config = if via_vtysh {
            let empty = frr.config_dir().join("empty.conf");
            std::fs::write(&empty, "")?;
            chown_frr(&empty)?;
            empty
        } else {
            config_path.clone()
        };
        for daemon in daemons {
            let pid_file = frr.run_dir().join(format!("{daemon}.pid"));
            let binary = format!("/usr/lib/frr/{daemon}");
            let config_arg = daemon_config.to_string_lossy().into_owned();
            let pid_arg = pid_file.to_string_lossy().into_owned();
            let mut argv = vec![
                binary.as_str(),
                "-N",
                &instance,
                "-d",
                "-i",
                &pid_arg,
                "-f",
                &config_arg,
            ];
            if *daemon == "bgpd" && !daemons.contains(&"zebra") {
                argv.push("-Z");
            }
            ns.exec(&argv)?;
        }
        // vtysh answers once every daemon's socket is there.
        let ready = wait_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
            || frr.vtysh("show version").ok(),
        );
        if ready.is_none() {
            return Err(io::Error::other(format!(
                "FRR instance {} did not answer vtysh within 20 s",
                frr.instance
            )));
        }
        if via_vtysh {
            frr.load(&config_path)?;
            // A neighbour configured through vtysh stays Idle for a few seconds (FRR
            // refuses its connections meanwhile, and the speaker backs off). A real
            // router has long been up when nodes connect: wait until none is Idle.
            if daemons.contains(&"bgpd") {
                let _ = wait_until(
                    std::time::Duration::from_secs(15),
                    std::time::Duration::from_millis(100),
                    || {
                        frr.vtysh("show bgp neighbors json")
                            .ok()
                            .filter(|out| !out.contains("\"bgpState\":\"Idle\""))
                    },
                );
            }
        }
        Ok(frr)
    }

    /// Applies a configuration file through vtysh (`vtysh -f`).
    fn load(&self, path: &std::path::Path) -> io::Result<()> {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace,
                "vtysh",
                "-N",
                &self.instance,
                "-f",
            ])
            .arg(path)
            .stdin(Stdio::null())
            .output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "vtysh -f {} failed: {}{}",
                path.display(),
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// Runs one vtysh command against this instance and returns its output.
    /// A connection to bgpd's vty socket, the one vtysh itself talks to: a command costs
    /// one round trip instead of starting `vtysh` (tens of milliseconds on a loaded
    /// machine), for probes that time something.
    pub fn bgpd_vty(&self) -> io::Result<Vty> {
        let stream = std::os::unix::net::UnixStream::connect(self.run_dir().join("bgpd.vty"))?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        Ok(Vty { stream })
    }

    pub fn vtysh(&self, command: &str) -> io::Result<String> {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace,
                "vtysh",
                "-N",
                &self.instance,
                "-c",
                command,
            ])
            .stdin(Stdio::null())
            .output()?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(io::Error::other(format!(
                "vtysh -c '{command}' failed: {}{}",
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// Runs several configuration lines in `configure terminal`.
    pub fn configure(&self, lines: &[&str]) -> io::Result<String> {
        let mut args = vec![
            "netns".to_string(),
            "exec".to_string(),
            self.namespace.clone(),
            "vtysh".to_string(),
            "-N".to_string(),
            self.instance.clone(),
            "-c".to_string(),
            "configure terminal".to_string(),
        ];
        for line in lines {
            args.push("-c".to_string());
            args.push(line.to_string());
        }
        let output = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .output()?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(io::Error::other(format!(
                "vtysh configure failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// Restarts one daemon as an operator's `systemctl restart` would: SIGTERM, wait
    /// until it has exited, start it again on the instance's frr.conf (so for
    /// instances made by [`Frr::start`]). Returns once the new process has daemonised.
    pub fn restart(&self, daemon: &str) -> io::Result<()> {
        let pid = self.pid(daemon)?.to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let gone = wait_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(10),
            || (!std::path::Path::new("/proc").join(&pid).exists()).then_some(()),
        );
        if gone.is_none() {
            return Err(io::Error::other(format!(
                "{daemon} ({pid}) ignored SIGTERM"
            )));
        }
        let binary = format!("/usr/lib/frr/{daemon}");
        let pid_file = self.run_dir().join(format!("{daemon}.pid"));
        let config = self.config_dir().join("frr.conf");
        let (pid_arg, config_arg) = (
            pid_file.to_string_lossy().into_owned(),
            config.to_string_lossy().into_owned(),
        );
        let mut argv = vec![
            binary.as_str(),
            "-N",
            &self.instance,
            "-d",
            "-i",
            &pid_arg,
            "-f",
            &config_arg,
        ];
        if daemon == "bgpd" && !self.daemons.iter().any(|d| d == "zebra") {
            argv.push("-Z");
        }
        let output = Command::new("ip")
            .args(["netns", "exec", &self.namespace])
            .args(&argv)
            .stdin(Stdio::null())
            .output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "restarting {daemon} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// The pid of one of this instance's daemons (to SIGSTOP it in a test, say).
    pub fn pid(&self, daemon: &str) -> io::Result<u32> {
        let text = std::fs::read_to_string(self.run_dir().join(format!("{daemon}.pid")))?;
        text.trim()
            .parse()
            .map_err(|_| io::Error::other(format!("bad pid file for {daemon}: {text:?}")))
    }

    fn config_dir(&self) -> PathBuf {
        PathBuf::from("/etc/frr").join(&self.instance)
    }

    fn run_dir(&self) -> PathBuf {
        PathBuf::from("/var/run/frr").join(&self.instance)
    }
}

/// A daemon's vty, spoken as vtysh speaks it: the command and a NUL byte out; the
/// output back, ended by three NUL bytes and the command's status byte (0: success).
#[derive(Debug)]
pub struct Vty {
    stream: std::os::unix::net::UnixStream,
}

impl Vty {
    pub fn command(&mut self, command: &str) -> io::Result<String> {
        use std::io::{Read, Write};
        let mut request = command.as_bytes().to_vec();
        request.push(0);
        self.stream.write_all(&request)?;
        let mut reply = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the daemon closed its vty",
                ));
            }
            reply.extend_from_slice(&chunk[..n]);
            let len = reply.len();
            if len >= 4 && reply[len - 4..len - 1] == [0, 0, 0] {
                let status = reply[len - 1];
                reply.truncate(len - 4);
                let text = String::from_utf8_lossy(&reply).into_owned();
                return if status == 0 {
                    Ok(text)
                } else {
                    Err(io::Error::other(format!(
                        "{command}: status {status}: {text}"
                    )))
                };
            }
        }
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for daemon in self.daemons.iter().rev() {
            if let Ok(pid) = self.pid(daemon) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(self.config_dir());
        let _ = std::fs::remove_dir_all(self.run_dir());
    }
}

fn chown_frr(path: &std::path::Path) -> io::Result<()> {
    let status = Command::new("chown")
        .arg("frr:frr")
        .arg(path)
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "chown frr:frr {} failed: is the frr package installed?",
            path.display()
        )))
    }
}
