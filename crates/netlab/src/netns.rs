use std::io;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::process::Guarded;

/// Every namespace this crate makes is named `oxlb-<tag>-<pid>-<n>`.
const PREFIX: &str = "oxlb-";

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A network namespace owned by this process. Dropping it kills every process inside
/// it and deletes it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `oxlb-<tag>-<pid>-<n>` with its loopback up. `tag` keeps names readable
    /// in `ip netns list` (e.g. "frr", "node1"); it is cut so names stay short.
    pub fn new(tag: &str) -> io::Result<Netns> {
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        let name = format!(
            "{PREFIX}{tag}-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        Netns::named(&name)
    }

    /// Creates a namespace with an exact name (the lab uses stable names so a later
    /// `lab down` finds them). The guard still removes it on drop unless [`Netns::keep`].
    pub fn named(name: &str) -> io::Result<Netns> {
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Takes over an existing namespace (for `lab down`).
    pub fn adopt(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
        }
    }

    /// Leaves the namespace in place when the guard drops; returns its name.
    pub fn keep(self) -> String {
        let name = self.name.clone();
        std::mem::forget(self);
        name
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs a command inside the namespace; an error carries its stderr when it fails.
    pub fn exec(&self, argv: &[&str]) -> io::Result<Output> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::other("empty command"))?;
        run(self.command(program).args(args))
    }

    /// Like [`Netns::exec`], returning stdout as text.
    pub fn exec_stdout(&self, argv: &[&str]) -> io::Result<String> {
        let output = self.exec(argv)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts a long-running process inside the namespace, killed when the guard drops
    /// (and in any case when the namespace is removed).
    pub fn spawn(&self, argv: &[&str], log: Option<&std::path::Path>) -> io::Result<Guarded> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::other("empty command"))?;
        let mut command = self.command(program);
        command.args(args).stdin(Stdio::null());
        match log {
            Some(path) => {
                let file = std::fs::File::create(path)?;
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        Ok(Guarded::new(command.spawn()?))
    }

    /// Adds an address (`10.0.0.1/24`, `fd00::1/64`) to an interface and sets it up.
    /// IPv6 duplicate address detection is turned off so the address is usable at once.
    pub fn add_address(&self, interface: &str, address: &str) -> io::Result<()> {
        let mut argv = vec!["ip", "address", "add", address, "dev", interface];
        if address.contains(':') {
            argv.push("nodad");
        }
        self.exec(&argv)?;
        self.link_up(interface)
    }

    pub fn link_up(&self, interface: &str) -> io::Result<()> {
        self.exec(&["ip", "link", "set", interface, "up"]).map(drop)
    }

    pub fn link_down(&self, interface: &str) -> io::Result<()> {
        self.exec(&["ip", "link", "set", interface, "down"])
            .map(drop)
    }

    /// Creates a bridge inside the namespace and brings it up.
    pub fn add_bridge(&self, bridge: &str) -> io::Result<()> {
        self.exec(&["ip", "link", "add", bridge, "type", "bridge"])?;
        self.link_up(bridge)
    }

    /// Attaches an interface of this namespace to a bridge of this namespace.
    pub fn attach_to_bridge(&self, interface: &str, bridge: &str) -> io::Result<()> {
        self.exec(&["ip", "link", "set", interface, "master", bridge])?;
        self.link_up(interface)
    }

    /// Turns on IP forwarding (for a router namespace).
    pub fn enable_forwarding(&self) -> io::Result<()> {
        self.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        self.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
            .map(drop)
    }

    fn kill_all_processes(&self) {
        let Ok(output) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        else {
            return;
        };
        for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

fn remove(name: &str) {
    Netns::adopt_without_drop(name).kill_all_processes();
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

impl Netns {
    /// A view of a namespace by name that does not delete it when dropped.
    fn adopt_without_drop(name: &str) -> std::mem::ManuallyDrop<Netns> {
        std::mem::ManuallyDrop::new(Netns::adopt(name))
    }
}

/// Creates a veth pair with one end in each namespace (created directly inside them, so
/// no name is ever used in the root namespace) and brings both ends up.
pub fn veth(a: &Netns, a_interface: &str, b: &Netns, b_interface: &str) -> io::Result<()> {
    run(Command::new("ip").args([
        "link",
        "add",
        "name",
        a_interface,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_interface,
        "netns",
        b.name(),
    ]))?;
    a.link_up(a_interface)?;
    b.link_up(b_interface)
}

/// Removes namespaces left by test processes that no longer exist (a run killed with
/// SIGKILL cannot run its guards). Namespaces of live processes are left alone.
pub fn sweep_stale() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        // oxlb-<tag>-<pid>-<n>: the pid is the second-to-last field.
        let mut fields = rest.rsplit('-');
        let _counter = fields.next();
        let Some(pid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            remove(name);
        }
    }
}

fn run(command: &mut Command) -> io::Result<Output> {
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(io::Error::other(format!(
            "{:?} failed ({}): {}",
            command,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
