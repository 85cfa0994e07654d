//! The check annotations of a Service, parsed and validated.
//!
//! `oxlb.io/health-check`: `http://HOST:PORT/PATH`, `https://HOST:PORT/PATH` or
//! `tcp://HOST:PORT`, run by each node's oxlb against that address (normally the
//! node-local endpoint, e.g. `https://127.0.0.1:6443/livez`). Further annotations:
//! `-interval`, `-timeout` (Go durations), `-rise`, `-fall` (counts), `-tls-verify`
//! (`true`/`false`; HTTPS only).
//!
//! A bad annotation must not take a production VIP down: [`parse`] returns the errors
//! and the caller announces the Service as if it had no check, saying so.

use std::time::Duration;

use oxlb_announce::ServiceKey;

pub const CHECK: &str = "oxlb.io/health-check";
pub const INTERVAL: &str = "oxlb.io/health-check-interval";
pub const TIMEOUT: &str = "oxlb.io/health-check-timeout";
pub const RISE: &str = "oxlb.io/health-check-rise";
pub const FALL: &str = "oxlb.io/health-check-fall";
pub const TLS_VERIFY: &str = "oxlb.io/health-check-tls-verify";

/// Defaults: a check that starts failing is withdrawn within 1.3 s — at worst it
/// passed just before, so the first failing check starts one interval later and the
/// second (FALL) one interval after that and takes at most the timeout:
/// 2 × 500 ms + 300 ms < 1.5 s. Announced again after three passes in a row.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(300);
pub const DEFAULT_RISE: u32 = 3;
pub const DEFAULT_FALL: u32 = 2;
/// Shorter intervals would make the checks themselves a load (and a flap source).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Counts above this are typos (at the minimum interval, 100 checks are 10 s).
pub const MAX_COUNT: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// GET the path; a 2xx or 3xx status passes (as HAProxy's httpchk).
    Http {
        host: String,
        port: u16,
        path: String,
    },
    Https {
        host: String,
        port: u16,
        path: String,
        /// Check the server certificate against the host's CA store. Default true;
        /// `false` for a self-signed server (the API server's /livez).
        verify: bool,
    },
    /// A TCP connection that completes passes.
    Tcp { host: String, port: u16 },
}

impl Target {
    pub fn scheme(&self) -> &'static str {
        match self {
            Target::Http { .. } => "http",
            Target::Https { .. } => "https",
            Target::Tcp { .. } => "tcp",
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Http { host, port, path } => write!(f, "http://{}:{port}{path}", bracket(host)),
            Target::Https {
                host,
                port,
                path,
                verify,
            } => {
                write!(f, "https://{}:{port}{path}", bracket(host))?;
                if !verify {
                    f.write_str(" (certificate not checked)")?;
                }
                Ok(())
            }
            Target::Tcp { host, port } => write!(f, "tcp://{}:{port}", bracket(host)),
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    pub target: Target,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

/// What is wrong with an annotation; decisions are enums, the text is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    UnparsableUrl(String),
    UnsupportedScheme(String),
    BadDuration(String),
    IntervalTooShort(Duration),
    TimeoutLongerThanInterval {
        timeout: Duration,
        interval: Duration,
    },
    BadCount(String),
    BadBool(String),
}

/// One invalid annotation of one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub service: ServiceKey,
    pub annotation: &'static str,
    pub value: String,
    pub problem: Problem,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Service {}: annotation {}={:?}: ",
            self.service, self.annotation, self.value
        )?;
        match &self.problem {
            Problem::UnparsableUrl(why) => write!(
                f,
                "not a check URL ({why}); expected http://HOST:PORT/PATH, https://HOST:PORT/PATH or tcp://HOST:PORT"
            )?,
            Problem::UnsupportedScheme(scheme) => write!(
                f,
                "unsupported scheme {scheme:?}; supported: http, https, tcp"
            )?,
            Problem::BadDuration(why) => write!(f, "not a duration ({why}), e.g. 500ms or 1s")?,
            Problem::IntervalTooShort(d) => {
                write!(f, "interval {d:?} is below the minimum {MIN_INTERVAL:?}")?
            }
            Problem::TimeoutLongerThanInterval { timeout, interval } => write!(
                f,
                "timeout {timeout:?} is longer than the interval {interval:?}"
            )?,
            Problem::BadCount(why) => write!(f, "not a count from 1 to {MAX_COUNT} ({why})")?,
            Problem::BadBool(why) => write!(f, "expected true or false ({why})")?,
        }
        f.write_str("; the Service is announced as if it had no health check")
    }
}

impl std::error::Error for SpecError {}

/// The check of a Service from its annotations: `None` without `oxlb.io/health-check`;
/// `Some(Err)` with every problem found (the caller then announces as unchecked).
pub fn parse<'a>(
    service: &ServiceKey,
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Option<Result<CheckSpec, Vec<SpecError>>> {
    let mut url = None;
    let mut interval = None;
    let mut timeout = None;
    let mut rise = None;
    let mut fall = None;
    let mut verify = None;
    for (key, value) in annotations {
        match key.as_str() {
            CHECK => url = Some(value.as_str()),
            INTERVAL => interval = Some(value.as_str()),
            TIMEOUT => timeout = Some(value.as_str()),
            RISE => rise = Some(value.as_str()),
            FALL => fall = Some(value.as_str()),
            TLS_VERIFY => verify = Some(value.as_str()),
            _ => {}
        }
    }
    let url = url?;
    let mut errors = Vec::new();
    let mut error = |annotation: &'static str, value: &str, problem: Problem| {
        errors.push(SpecError {
            service: service.clone(),
            annotation,
            value: value.to_string(),
            problem,
        })
    };
    let verify = match verify.map(|v| (v, v.trim().parse::<bool>())) {
        None => true,
        Some((_, Ok(b))) => b,
        Some((v, Err(e))) => {
            error(TLS_VERIFY, v, Problem::BadBool(e.to_string()));
            true
        }
    };
    let target = match parse_url(url, verify) {
        Ok(target) => Some(target),
        Err(problem) => {
            error(CHECK, url, problem);
            None
        }
    };
    let mut duration =
        |annotation: &'static str, value: Option<&str>, default: Duration| match value
            .map(|v| (v, oxlb_config::build::parse::parse_duration(v)))
        {
            None => Some(default),
            Some((_, Ok(d))) => Some(d),
            Some((v, Err(e))) => {
                error(annotation, v, Problem::BadDuration(e));
                None
            }
        };
    let interval_value = duration(INTERVAL, interval, DEFAULT_INTERVAL);
    let timeout_value = duration(TIMEOUT, timeout, DEFAULT_TIMEOUT);
    if let Some(i) = interval_value
        && i < MIN_INTERVAL
    {
        error(
            INTERVAL,
            interval.unwrap_or_default(),
            Problem::IntervalTooShort(i),
        );
    }
    if let (Some(i), Some(t)) = (interval_value, timeout_value)
        && t > i
    {
        let (annotation, value) = match timeout {
            Some(v) => (TIMEOUT, v),
            None => (INTERVAL, interval.unwrap_or_default()),
        };
        error(
            annotation,
            value,
            Problem::TimeoutLongerThanInterval {
                timeout: t,
                interval: i,
            },
        );
    }
    let mut count = |annotation: &'static str, value: Option<&str>, default: u32| match value {
        None => default,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_COUNT).contains(&n) => n,
            Ok(n) => {
                error(
                    annotation,
                    v,
                    Problem::BadCount(format!("{n} is out of range")),
                );
                default
            }
            Err(e) => {
                error(annotation, v, Problem::BadCount(e.to_string()));
                default
            }
        },
    };
    let rise = count(RISE, rise, DEFAULT_RISE);
    let fall = count(FALL, fall, DEFAULT_FALL);
    match (target, interval_value, timeout_value) {
        (Some(target), Some(interval), Some(timeout)) if errors.is_empty() => Some(Ok(CheckSpec {
            target,
            interval,
            timeout,
            rise,
            fall,
        })),
        _ => Some(Err(errors)),
    }
}

/// `scheme://host:port[/path]`. IPv6 hosts in brackets. The port is required for tcp
/// and defaults to 80/443 for http/https.
fn parse_url(url: &str, verify: bool) -> Result<Target, Problem> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Problem::UnparsableUrl("no scheme://".into()))?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "tcp") {
        return Err(Problem::UnsupportedScheme(scheme));
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(Problem::UnparsableUrl(
            "credentials are not supported".into(),
        ));
    }
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let (host, tail) = after
            .split_once(']')
            .ok_or_else(|| Problem::UnparsableUrl("unclosed [ in the host".into()))?;
        let port = match tail {
            "" => None,
            t => Some(
                t.strip_prefix(':')
                    .ok_or_else(|| Problem::UnparsableUrl("junk after ]".into()))?,
            ),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(Problem::UnparsableUrl("no host".into()));
    }
    if host.contains(char::is_whitespace) || host.contains(':') && !authority.starts_with('[') {
        return Err(Problem::UnparsableUrl("bad host".into()));
    }
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(Problem::UnparsableUrl(format!("bad port {p:?}"))),
            Ok(p) => p,
        },
        None => match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(Problem::UnparsableUrl("tcp needs a port".into())),
        },
    };
    if path.contains(char::is_whitespace) || path.contains(char::is_control) {
        return Err(Problem::UnparsableUrl("bad characters in the path".into()));
    }
    let path = if path.is_empty() { "/" } else { path };
    let host = host.to_string();
    Ok(match scheme.as_str() {
        "http" => Target::Http {
            host,
            port,
            path: path.to_string(),
        },
        "https" => Target::Https {
            host,
            port,
            path: path.to_string(),
            verify,
        },
        _ => {
            if path != "/" {
                return Err(Problem::UnparsableUrl("a tcp check has no path".into()));
            }
            Target::Tcp { host, port }
        }
    })
}
