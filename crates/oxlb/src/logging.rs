//! Log setup shared by the long-running subcommands.

use crate::cli::{LogArgs, LogFormat};

/// Logs go to stderr: text (coloured only when stderr is a terminal, so `kubectl logs`,
/// files and pipes get no escape codes) or JSON lines. The level is `--log-level`
/// (or `OXLB_LOG_LEVEL`); `RUST_LOG`, when set, overrides it with a full tracing filter.
pub fn init(args: &LogArgs) {
    use std::io::IsTerminal;
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = level_filter(&args.log_level, rust_log.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder
            .with_ansi(colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// `RUST_LOG` (when set and valid) wins over `--log-level`; an invalid level falls back
/// to info.
fn level_filter(level: &str, rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    rust_log
        .filter(|s| !s.trim().is_empty())
        .and_then(|s| tracing_subscriber::EnvFilter::try_new(s).ok())
        .or_else(|| tracing_subscriber::EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"))
}

/// Colour only for a person at a terminal, and never with NO_COLOR (no-color.org).
fn colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some("1".into())));
        assert!(colour(true, Some("".into())));
    }

    #[test]
    fn rust_log_overrides_the_level() {
        assert_eq!(level_filter("warn", None).to_string(), "warn");
        assert_eq!(
            level_filter("warn", Some("oxlb=debug")).to_string(),
            "oxlb=debug"
        );
        assert_eq!(level_filter("warn", Some("")).to_string(), "warn");
        assert_eq!(level_filter("oxlb=notalevel", None).to_string(), "info");
    }
}
