//! The steady request load (`oxlb lab-load`, started by `lab chaos` inside the
//! workstation namespace): one thread per Service IP sends an HTTP GET every
//! [`INTERVAL`] on a new connection (so the router's ECMP hash spreads them), and
//! prints one line per request, `<unix ms> <ip> <1|0>`. The IPs are re-read from a
//! file every second, so Services added during the run get load too.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::timeline::Request;

pub const INTERVAL: Duration = Duration::from_millis(100);
/// A request that has not been answered in this time failed.
pub const TIMEOUT: Duration = Duration::from_millis(1000);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One GET; whether a `200` came back within [`TIMEOUT`].
pub fn get(ip: IpAddr) -> bool {
    let started = Instant::now();
    let Ok(mut stream) = TcpStream::connect_timeout(&SocketAddr::new(ip, 80), TIMEOUT) else {
        return false;
    };
    let left = TIMEOUT
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    if stream.set_read_timeout(Some(left)).is_err()
        || stream.set_write_timeout(Some(left)).is_err()
        || stream
            .write_all(b"GET / HTTP/1.0\r\nHost: chaos\r\n\r\n")
            .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if started.elapsed() > TIMEOUT {
            return false;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => return false,
        }
    }
    answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200")
}

fn read_targets(path: &Path) -> Vec<IpAddr> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Runs until killed.
pub fn run(targets: &Path) -> std::io::Result<()> {
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let mut running: BTreeMap<IpAddr, Arc<AtomicBool>> = BTreeMap::new();
    loop {
        let wanted = read_targets(targets);
        running.retain(|ip, stop| {
            let keep = wanted.contains(ip);
            if !keep {
                stop.store(true, Ordering::Relaxed);
            }
            keep
        });
        for ip in wanted {
            if running.contains_key(&ip) {
                continue;
            }
            let stop = Arc::new(AtomicBool::new(false));
            running.insert(ip, stop.clone());
            let out = out.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let at = now_ms();
                    let ok = get(ip);
                    if let Ok(mut out) = out.lock() {
                        let _ = writeln!(out, "{at} {ip} {}", u8::from(ok));
                        let _ = out.flush();
                    }
                    std::thread::sleep(INTERVAL.saturating_sub(started.elapsed()));
                }
            });
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Parses the load's output; times become milliseconds since `start_unix_ms`. Lines
/// that do not parse (a line cut by a kill) are skipped.
pub fn parse(text: &str, start_unix_ms: u64) -> Vec<Request> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let at: u64 = words.next()?.parse().ok()?;
            let ip: IpAddr = words.next()?.parse().ok()?;
            let ok = match words.next()? {
                "1" => true,
                "0" => false,
                _ => return None,
            };
            Some(Request {
                t_ms: at.saturating_sub(start_unix_ms),
                ip,
                ok,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines_parse_relative_to_the_start() {
        let text = "1000500 172.31.100.10 1\n1000600 172.31.0.200 0\n1000700 garbage 1\n10007";
        let parsed = parse(text, 1_000_000);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].t_ms, 500);
        assert!(parsed[0].ok && !parsed[1].ok);
    }
}
