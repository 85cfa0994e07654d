//! `oxlb drain` / `oxlb undrain`: ask a running `oxlb run` to withdraw this host (or
//! announce again) and, for a drain, wait until every peer has confirmed the withdrawals
//! (RFC 7313 End-of-Route-Refresh after our request) or, where it cannot confirm, been
//! sent them.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use oxlb_node::status::DrainOutcome;
use oxlb_standalone::client;

use crate::cli::DrainArgs;

pub fn drain(args: &DrainArgs) -> ExitCode {
    let started = Instant::now();
    if let Err(e) = client::post_drain(args.addr, true) {
        eprintln!("oxlb drain: {e}");
        return ExitCode::FAILURE;
    }
    let deadline = started + Duration::from_secs(args.timeout_seconds);
    loop {
        match client::fetch_status(args.addr) {
            Ok(report) if report.drain.converged => {
                let took = report
                    .drain
                    .converged_after_ms
                    .map_or_else(|| "?".to_string(), |ms| ms.to_string());
                let confirmed = report
                    .drain
                    .peers
                    .iter()
                    .filter(|p| p.outcome == DrainOutcome::Confirmed)
                    .count();
                crate::out::println(&format!(
                    "drained: node {} withdrew every route; {confirmed} of {} peers confirmed, converged {took} ms after the drain began",
                    report.node,
                    report.drain.peers.len()
                ));
                for p in &report.drain.peers {
                    crate::out::println(&format!("  {}: {p}", p.peer));
                }
                return ExitCode::SUCCESS;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("oxlb drain: {e}");
                return ExitCode::FAILURE;
            }
        }
        if Instant::now() >= deadline {
            eprintln!(
                "oxlb drain: the node is drained, but not every peer has confirmed or been sent the withdrawals within {} s (a session may be stuck; see oxlb status)",
                args.timeout_seconds
            );
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn undrain(args: &DrainArgs) -> ExitCode {
    match client::post_drain(args.addr, false) {
        Ok(_) => {
            crate::out::println("undrained: announcing again");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oxlb undrain: {e}");
            ExitCode::FAILURE
        }
    }
}
