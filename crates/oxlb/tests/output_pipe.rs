//! Every command that prints stops quietly when its reader goes away (`oxlb check -f X
//! -o json | head -1` used to panic on the broken pipe): no panic message, no error
//! text, and the status a shell shows for a Unix tool stopped by SIGPIPE (141), or 0
//! when the command had written everything before the reader left.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Service for `oxlb explain` (the examples hold none), removed on drop.
struct ServiceFile(PathBuf);

impl ServiceFile {
    fn new() -> ServiceFile {
        // One directory per test (both run in one process, in parallel): a shared one was
        // removed by the first test to finish while the other still read it.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dfx-output-pipe-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("service.yaml");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n\
             spec:\n  type: LoadBalancer\n  ports:\n  - port: 80\n",
        )
        .unwrap();
        ServiceFile(dir)
    }
    fn path(&self) -> String {
        self.0.join("service.yaml").display().to_string()
    }
}

impl Drop for ServiceFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The printing commands, each with arguments that make it print.
fn commands(status_addr: &str, service: &str) -> Vec<Vec<String>> {
    let list: Vec<Vec<&str>> = vec![
        vec!["check", "-f", "examples/bgp-basic.yaml"],
        vec!["check", "-f", "examples/bgp-basic.yaml", "-o", "json"],
        vec!["convert", "-f", "examples/legacy-configmap.yaml"],
        vec!["crds"],
        vec![
            "router-config",
            "-f",
            "examples/bgp-basic.yaml",
            "--node",
            "node1=192.168.1.11",
        ],
        vec![
            "explain",
            "default/web",
            "-f",
            "examples/l2-basic.yaml",
            "-f",
            service,
        ],
        vec!["memberlist-secret"],
        vec!["status", "--addr", status_addr],
        vec!["status", "--addr", status_addr, "-o", "json"],
        vec!["--help"],
        vec!["check", "--help"],
        vec!["--version"],
    ];
    list.into_iter()
        .map(|c| c.into_iter().map(String::from).collect())
        .collect()
}

/// A running status endpoint for `oxlb status` to read.
fn status_server() -> (
    String,
    std::thread::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let report = oxlb_node::status::StatusReport {
                node: "node1".into(),
                ..Default::default()
            };
            let (_tx, rx) = tokio::sync::watch::channel(report);
            let listener = oxlb_node::http::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let server = oxlb_node::http::serve(listener, rx, async {
                let _ = stop_rx.await;
            });
            let _ = server.await;
        });
    });
    let addr = addr_rx.recv().unwrap().to_string();
    (addr, thread, stop_tx)
}

fn assert_quiet(args: &[String], status: std::process::ExitStatus, stderr: &[u8]) {
    let stderr = String::from_utf8_lossy(stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(
        status.code() == Some(0) || status.code() == Some(141),
        "{args:?}: {status:?} {stderr}"
    );
    if status.code() == Some(141) {
        assert!(stderr.trim().is_empty(), "{args:?}: {stderr}");
    }
}

/// `oxlb ... | head -c1`, as a shell runs it.
#[test]
fn every_printing_command_piped_into_head_exits_quietly() {
    let (addr, server, stop) = status_server();
    let service = ServiceFile::new();
    for args in commands(&addr, &service.path()) {
        let mut head = Command::new("head")
            .arg("-c1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_oxlb"))
            .current_dir(root())
            .args(&args)
            .stdout(head.stdin.take().unwrap())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let head = head.wait_with_output().unwrap();
        assert_eq!(head.stdout.len(), 1, "{args:?}: no output at all");
        assert_quiet(&args, out.status, &out.stderr);
    }
    let _ = stop.send(());
    server.join().unwrap();
}

/// The reader is gone before the first byte: the write fails for certain, and the
/// command must still stop quietly with 141.
#[test]
fn every_printing_command_stops_with_141_when_the_reader_is_gone() {
    let (addr, server, stop) = status_server();
    let service = ServiceFile::new();
    for args in commands(&addr, &service.path()) {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_oxlb"))
            .current_dir(root())
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // clap's own --help / --version printing ignores write errors (exit 0).
        let clap = args.iter().any(|a| a == "--help" || a == "--version");
        let expected = if clap { 0 } else { 141 };
        assert_eq!(out.status.code(), Some(expected), "{args:?}: {stderr}");
        assert!(stderr.trim().is_empty(), "{args:?}: {stderr}");
    }
    let _ = stop.send(());
    server.join().unwrap();
}
