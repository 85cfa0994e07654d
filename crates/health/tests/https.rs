//! HTTPS checks against a real TLS server on loopback (`openssl s_server -www` with a
//! self-signed certificate, as an API server's is to a host): passes with the
//! certificate check off, fails in TLS with it on. Skipped (with a message) without
//! the openssl binary.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use oxlb_health::Target;
use oxlb_health::probe::{self, Failure};

struct Server(Child, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn server() -> Option<(Server, u16)> {
    let dir = std::env::temp_dir().join(format!("oxlb-health-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=kube-apiserver"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    assert!(made.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.join("cert.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child, dir);
    // Wait until it listens (a wait for a condition, not a timed assertion).
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((server, port));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("openssl s_server never listened");
}

fn target(port: u16, verify: bool) -> Target {
    Target::Https {
        host: "127.0.0.1".into(),
        port,
        path: "/livez".into(),
        verify,
    }
}

#[tokio::test]
async fn a_self_signed_server_passes_only_without_the_certificate_check() {
    let Some((_server, port)) = server() else {
        eprintln!("skipped: no openssl binary");
        return;
    };
    let unchecked = probe::check(&target(port, false), Duration::from_secs(5)).await;
    assert!(unchecked.is_ok(), "{unchecked:?}");
    let checked = probe::check(&target(port, true), Duration::from_secs(5)).await;
    assert!(matches!(checked, Err(Failure::Tls(_))), "{checked:?}");
}
