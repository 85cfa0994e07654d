//! The lab's stand-in for a real workload: a tiny HTTP server answering every request
//! with the node's name, so a curl from the workstation shows which node served it.
//! Run inside a node namespace as `oxlb lab-backend NODE` (or the `oxlb-lab-backend`
//! binary); it listens on port 80 of every address, service IPs included.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// At most this many requests are served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;
/// A request larger than this is answered without reading the rest.
const MAX_REQUEST: usize = 8192;

/// Serves forever on port 80 (IPv6 and IPv4). Returns only if no socket can be bound.
pub fn serve(node: &str) -> std::io::Result<()> {
    serve_on(node, 80)
}

/// Serves on `port` of every address. Returns only if no socket can be bound.
pub fn serve_on(node: &str, port: u16) -> std::io::Result<()> {
    let mut listeners = Vec::new();
    // On Linux [::] also accepts IPv4 (mapped) unless bindv6only is set; then the
    // separate IPv4 socket binds; otherwise binding it fails harmlessly.
    let v6 = TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
    let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    let mut first_error = None;
    for listener in [v6, v4] {
        match listener {
            Ok(l) => listeners.push(l),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if listeners.is_empty() {
        return Err(first_error.unwrap_or_else(|| std::io::Error::other("no socket")));
    }
    let body: Arc<str> = Arc::from(format!("{node}\n"));
    let active = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for listener in listeners {
        let body = body.clone();
        let active = active.clone();
        threads.push(std::thread::spawn(move || {
            accept_loop(listener, body, active)
        }));
    }
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

fn accept_loop(listener: TcpListener, body: Arc<str>, active: Arc<AtomicUsize>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            continue; // dropped: the client retries
        }
        let body = body.clone();
        let active = active.clone();
        std::thread::spawn(move || {
            let _ = answer(stream, &body);
            active.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

fn answer(mut stream: TcpStream, body: &str) -> std::io::Result<()> {
    // Long enough for the drain test's held requests (their head is finished after a
    // drain), short enough that a stuck client frees its thread.
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    // Read the request head (up to the blank line); its content does not matter.
    let mut request = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while request.len() < MAX_REQUEST && !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_the_node_name_on_loopback() {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        std::thread::spawn(move || serve_on("node7", port));
        let mut text = String::new();
        for _ in 0..100 {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                s.read_to_string(&mut text).unwrap();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.ends_with("\r\n\r\nnode7\n"), "{text}");
    }
}
