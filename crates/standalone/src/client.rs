//! Fetches the status report of a running `oxlb run` (`oxlb status`, `oxlb explain`).
//! A plain HTTP/1.1 GET: the endpoint is local (loopback by default), so a full HTTP
//! client would add much and buy nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use oxlb_node::status::StatusReport;

/// A status report is small; anything larger is not from oxlb.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

pub fn fetch_status(address: SocketAddr) -> Result<StatusReport, String> {
    let body = get(address, "/api/v1/status")?;
    serde_json::from_slice(&body)
        .map_err(|e| format!("{address} answered, but not with an oxlb status report: {e}"))
}

pub fn get(address: SocketAddr, path: &str) -> Result<Vec<u8>, String> {
    let unreachable = |e: std::io::Error| {
        format!("cannot reach oxlb at {address}: {e} (is `oxlb run` running there? see --addr)")
    };
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(unreachable)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    )
    .map_err(unreachable)?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .map_err(unreachable)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{address}: malformed HTTP response"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let body = &response[split + 4..];
    let status_line = head.lines().next().unwrap_or_default();
    if !status_line.contains(" 200") {
        return Err(format!("{address}{path}: {status_line}"));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        dechunk(body).ok_or_else(|| format!("{address}: malformed chunked body"))
    } else {
        Ok(body.to_vec())
    }
}

/// Decodes a chunked transfer-encoded body (RFC 9112 §7.1).
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = body.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_and_rejects_garbage() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n").unwrap(),
            b"Wikipedia"
        );
        assert!(dechunk(b"zz\r\n").is_none());
        assert!(dechunk(b"ff\r\nshort").is_none());
    }

    #[test]
    fn a_closed_port_says_what_to_check() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = fetch_status(address).unwrap_err();
        assert!(error.contains("is `oxlb run` running there?"), "{error}");
    }
}
