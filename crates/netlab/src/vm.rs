//! Runs one command inside a throw-away virtual machine that boots Debian's own kernel
//! (the `linux-image-amd64` package) under QEMU (`qemu-system-x86`), for tests that need
//! kernel features the host kernel lacks (e.g. VRF: CONFIG_NET_VRF).
//!
//! The guest sees the host's root file system read-only (9p over virtio, `-virtfs`),
//! with tmpfs over the directories programs write to, so an already-built test binary,
//! FRR and iproute2 run there as on the host. The initramfs is built here, on the fly,
//! from `busybox-static` and the kernel modules the guest needs (found with their
//! dependencies in `modules.dep`); its `/init` mounts the root, runs the command with
//! `chroot` and prints its exit status on the serial console, then reboots, which ends
//! QEMU (`-no-reboot`). KVM is used when `/dev/kvm` works, else software emulation
//! (TCG). QEMU is killed when the [`Vm`] drops, also when a test panics.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Guarded;

/// The marker `/init` prints once the guest's root is mounted, before the command.
pub const READY_MARKER: &str = "OXLB-VM-READY";
/// The marker `/init` prints with the command's exit status: `OXLB-VM-EXIT <status>`.
pub const EXIT_MARKER: &str = "OXLB-VM-EXIT";

/// Modules every guest loads: the 9p root over virtio-pci.
const BASE_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p"];

/// Directories made writable, empty (tmpfs).
const DEFAULT_WRITABLE: &[&str] = &["/tmp", "/run", "/var/tmp", "/var/log", "/var/lib/frr"];
/// Directories made writable and seeded with the host's (small) contents.
const DEFAULT_SEEDED: &[&str] = &["/etc/frr"];

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct VmSpec {
    pub kernel: PathBuf,
    /// `/lib/modules/<version>` of that kernel.
    pub modules_dir: PathBuf,
    /// Extra modules to load (with their dependencies), e.g. `vrf`, `veth`.
    pub modules: Vec<String>,
    pub memory_mb: u32,
    pub cpus: u32,
    /// Directories of the guest's root made writable: empty tmpfs.
    pub writable: Vec<PathBuf>,
    /// Directories made writable and seeded with the host's contents (read over 9p at
    /// boot: keep them small).
    pub seeded: Vec<PathBuf>,
    /// Use KVM when `/dev/kvm` can be opened (else TCG, software emulation). Off by
    /// default (on with `OXLB_VM_KVM=1`): on machines that are themselves VMs
    /// `/dev/kvm` may open while a nested guest never gets past the firmware (seen:
    /// nothing after SeaBIOS' "Booting from ROM" in 90 s, where TCG boots in ~8 s).
    pub allow_kvm: bool,
    /// Where the initramfs and the console log go (a fresh directory is made inside).
    pub scratch: PathBuf,
}

impl VmSpec {
    /// Debian's newest installed kernel (`/boot/vmlinuz-*` with its
    /// `/lib/modules/<version>`), or why there is none.
    pub fn debian() -> Result<VmSpec, String> {
        let mut kernels: Vec<String> = std::fs::read_dir("/boot")
            .map_err(|e| format!("/boot: {e}"))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_prefix("vmlinuz-").map(str::to_string))
            .filter(|v| {
                Path::new("/lib/modules")
                    .join(v)
                    .join("modules.dep")
                    .exists()
            })
            .collect();
        kernels.sort();
        let version = kernels.pop().ok_or(
            "no kernel in /boot with modules in /lib/modules: install linux-image-amd64 \
             (scripts/install-test-deps.sh)",
        )?;
        Ok(VmSpec {
            kernel: PathBuf::from("/boot").join(format!("vmlinuz-{version}")),
            modules_dir: PathBuf::from("/lib/modules").join(&version),
            modules: Vec::new(),
            memory_mb: 1024,
            cpus: 1,
            writable: DEFAULT_WRITABLE.iter().map(PathBuf::from).collect(),
            seeded: DEFAULT_SEEDED.iter().map(PathBuf::from).collect(),
            allow_kvm: std::env::var_os("OXLB_VM_KVM").is_some_and(|v| v == "1"),
            scratch: std::env::temp_dir(),
        })
    }
}

/// What the programs the VM needs are, and whether they are there.
pub fn missing_tools() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !Path::new("/usr/bin/qemu-system-x86_64").exists() {
        missing.push("qemu-system-x86");
    }
    if !Path::new("/bin/busybox").exists() {
        missing.push("busybox-static");
    }
    missing
}

/// The modules to load for `wanted`, dependencies first (from `modules.dep`).
pub fn module_order(modules_dep: &str, wanted: &[&str]) -> Result<Vec<String>, String> {
    let deps: std::collections::BTreeMap<String, (String, Vec<String>)> = modules_dep
        .lines()
        .filter_map(|line| {
            let (path, rest) = line.split_once(':')?;
            let name = module_name(path);
            let deps = rest.split_whitespace().map(module_name).collect();
            Some((name, (path.to_string(), deps)))
        })
        .collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit(
        name: &str,
        deps: &std::collections::BTreeMap<String, (String, Vec<String>)>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        if !seen.insert(name.to_string()) {
            return Ok(());
        }
        let (path, needs) = deps
            .get(name)
            .ok_or_else(|| format!("module {name} not in modules.dep (built in?)"))?;
        for need in needs {
            visit(need, deps, seen, order)?;
        }
        order.push(path.clone());
        Ok(())
    }
    for name in wanted {
        let name = name.replace('-', "_");
        if deps.contains_key(&name) {
            visit(&name, &deps, &mut seen, &mut order)?;
        }
        // Not a module: built into the kernel (nothing to load).
    }
    Ok(order)
}

fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let base = file.split(".ko").next().unwrap_or(file);
    base.replace('-', "_")
}

/// A `newc` cpio archive (what the kernel unpacks as initramfs).
#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.inode += 1;
        let header = format!(
            "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            self.inode,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[]);
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }
}

/// Single-quotes `text` for sh.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The guest's `/init`: mounts, loads modules, runs `command` (already quoted) in a
/// chroot of the host's root, prints the exit marker, reboots.
fn init_script(
    modules: &[String],
    writable: &[PathBuf],
    seeded: &[PathBuf],
    command: &str,
) -> String {
    let mut s = String::from("#!/bin/busybox sh\nB=/bin/busybox\n");
    s.push_str("$B mount -t proc proc /proc\n$B mount -t sysfs sys /sys\n");
    s.push_str("$B mount -t devtmpfs dev /dev\n");
    s.push_str("echo oxlb-vm: init\n");
    for m in modules {
        let file = m.rsplit('/').next().unwrap_or(m);
        s.push_str(&format!(
            "$B insmod /modules/{file} || echo \"oxlb-vm: insmod {file} failed\"\n"
        ));
    }
    s.push_str(
        "$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose \
         hostroot /root || { echo \"oxlb-vm: cannot mount the host's root\"; \
         echo \"OXLB-VM-EXIT 125\"; $B reboot -f; }\n",
    );
    s.push_str("$B mount -t proc proc /root/proc\n$B mount -t sysfs sys /root/sys\n");
    s.push_str("$B mount -t devtmpfs dev /root/dev\n");
    s.push_str("$B mkdir -p /root/dev/pts /root/dev/shm 2>/dev/null\n");
    s.push_str("$B mount -t devpts devpts /root/dev/pts 2>/dev/null\n");
    s.push_str("$B mount -t tmpfs shm /root/dev/shm 2>/dev/null\n");
    s.push_str("$B mount -t cgroup2 cgroup2 /root/sys/fs/cgroup 2>/dev/null\n");
    for dir in writable {
        let d = dir.to_string_lossy();
        s.push_str(&format!(
            "[ -d /root{d} ] && $B mount -t tmpfs tmpfs /root{d}\n"
        ));
    }
    for dir in seeded {
        let d = shell_quote(&dir.to_string_lossy());
        // Seed from the host's copy (read through 9p), then mount tmpfs over it.
        s.push_str(&format!(
            "if [ -d /root{d} ]; then $B mkdir -p /seed{d}; \
             $B cp -a /root{d}/. /seed{d}/ 2>/dev/null; \
             $B mount -t tmpfs tmpfs /root{d} && $B cp -a /seed{d}/. /root{d}/ 2>/dev/null; fi\n",
            d = d.trim_matches('\'')
        ));
    }
    s.push_str(&format!(
        "echo \"{READY_MARKER} $($B cut -d' ' -f1 /proc/uptime)\"\n"
    ));
    s.push_str(&format!(
        "$B chroot /root /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp OXLB_IN_VM=1 /bin/sh -c {}\n",
        shell_quote(command)
    ));
    s.push_str(&format!(
        "echo \"{EXIT_MARKER} $?\"\n$B sync\n$B reboot -f\n"
    ));
    s
}

/// How one run went.
#[derive(Debug, Clone)]
pub struct VmRun {
    /// The command's exit status (`None`: the guest never reported one).
    pub status: Option<i32>,
    /// Everything the guest printed on its console (kernel, init, command).
    pub console: String,
    /// From starting QEMU until the guest's root was mounted (the ready marker).
    pub boot: Option<Duration>,
    /// From starting QEMU until it exited.
    pub total: Duration,
    /// Whether KVM was used (else TCG).
    pub kvm: bool,
}

/// A running VM; QEMU is killed when it drops.
pub struct Vm {
    qemu: Guarded,
    console: PathBuf,
    dir: PathBuf,
    started: Instant,
    kvm: bool,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.qemu.child_mut().kill();
        let _ = self.qemu.child_mut().wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

impl Vm {
    /// Boots `spec` and runs `command` (a shell command line) in the guest.
    pub fn start(spec: &VmSpec, command: &str) -> io::Result<Vm> {
        let dir = spec.scratch.join(format!(
            "oxlb-vm-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let dep = std::fs::read_to_string(spec.modules_dir.join("modules.dep"))?;
        let mut wanted: Vec<&str> = BASE_MODULES.to_vec();
        wanted.extend(spec.modules.iter().map(String::as_str));
        let order = module_order(&dep, &wanted).map_err(io::Error::other)?;
        let mut cpio = Cpio::default();
        for d in [
            "bin", "proc", "sys", "dev", "root", "modules", "seed", "tmp",
        ] {
            cpio.dir(d);
        }
        cpio.file("bin/busybox", 0o755, &std::fs::read("/bin/busybox")?);
        for m in &order {
            let file = m.rsplit('/').next().unwrap_or(m);
            let data = std::fs::read(spec.modules_dir.join(m))?;
            cpio.file(&format!("modules/{file}"), 0o644, &data);
        }
        cpio.file(
            "init",
            0o755,
            init_script(&order, &spec.writable, &spec.seeded, command).as_bytes(),
        );
        let initrd = dir.join("initrd.cpio");
        std::fs::File::create(&initrd)?.write_all(&cpio.finish())?;
        let console = dir.join("console.log");
        let log = std::fs::File::create(&console)?;
        let kvm = spec.allow_kvm && kvm_usable();
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(["-accel", if kvm { "kvm" } else { "tcg" }])
            .args(["-m", &spec.memory_mb.to_string()])
            .args(["-smp", &spec.cpus.to_string()])
            .args(["-nographic", "-no-reboot", "-nic", "none"])
            .arg("-kernel")
            .arg(&spec.kernel)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", "console=ttyS0 panic=-1 quiet loglevel=3"])
            .args([
                "-virtfs",
                "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let started = Instant::now();
        let child = qemu.spawn()?;
        Ok(Vm {
            qemu: Guarded::new(child),
            console,
            dir,
            started,
            kvm,
        })
    }

    /// The console so far.
    pub fn console(&self) -> String {
        std::fs::read(&self.console)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until QEMU exits or `limit` passes (then kills it).
    pub fn wait(mut self, limit: Duration) -> VmRun {
        let mut boot = None;
        loop {
            if boot.is_none() && self.console().contains(READY_MARKER) {
                boot = Some(self.started.elapsed());
            }
            if self.qemu.has_exited() || self.started.elapsed() > limit {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.qemu.child_mut().kill();
        let _ = self.qemu.child_mut().wait();
        let total = self.started.elapsed();
        let console = self.console();
        if boot.is_none() && console.contains(READY_MARKER) {
            boot = Some(total);
        }
        VmRun {
            status: exit_status(&console),
            console,
            boot,
            total,
            kvm: self.kvm,
        }
    }
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The status in the console's exit marker line.
pub fn exit_status(console: &str) -> Option<i32> {
    console
        .lines()
        .filter_map(|l| l.trim().strip_prefix(EXIT_MARKER))
        .filter_map(|rest| rest.trim().parse().ok())
        .next_back()
}

/// Runs test `test` of the current test binary inside a VM (`--exact`, one thread,
/// output on the console) and returns how it went. Inside, `OXLB_IN_VM=1` is set: the
/// test checks [`in_vm`] to know it is the inner run.
pub fn run_this_test(spec: &VmSpec, test: &str, limit: Duration) -> io::Result<VmRun> {
    let exe = std::env::current_exe()?;
    let command = format!(
        "cd /tmp && {} --exact {} --nocapture --test-threads=1 2>&1",
        shell_quote(&exe.to_string_lossy()),
        shell_quote(test)
    );
    Ok(Vm::start(spec, &command)?.wait(limit))
}

/// Whether this process runs inside a VM started by [`run_this_test`].
pub fn in_vm() -> bool {
    std::env::var_os("OXLB_IN_VM").is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_load_dependencies_first_once() {
        let dep = "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n\
                   kernel/net/9p/9pnet.ko:\n\
                   kernel/fs/netfs/netfs.ko:\n\
                   kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko\n";
        let order = module_order(dep, &["9pnet_virtio", "9p", "vrf"]).unwrap();
        assert_eq!(
            order,
            [
                "kernel/net/9p/9pnet.ko",
                "kernel/net/9p/9pnet_virtio.ko",
                "kernel/fs/netfs/netfs.ko",
                "kernel/fs/9p/9p.ko"
            ]
        );
    }

    #[test]
    fn the_exit_marker_gives_the_status() {
        assert_eq!(exit_status("boot\nOXLB-VM-EXIT 0\n"), Some(0));
        assert_eq!(exit_status("x\r\nOXLB-VM-EXIT 101\r\n"), Some(101));
        assert_eq!(exit_status("no marker"), None);
    }

    #[test]
    fn cpio_entries_are_aligned_and_end_with_the_trailer() {
        let mut c = Cpio::default();
        c.file("init", 0o755, b"abc");
        let bytes = c.finish();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        assert!(
            bytes
                .windows(b"TRAILER!!!".len())
                .any(|w| w == b"TRAILER!!!")
        );
    }
}
