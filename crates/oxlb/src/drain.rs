//! `oxlb drain` / `oxlb undrain`: ask a running `oxlb run` to withdraw this host (or
//! announce again) and, for a drain, wait until its BGP sessions have sent the
//! withdrawals.

use std::process::ExitCode;
use std::time::{Duration, Instant};

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
                crate::out::println(&format!(
                    "drained: node {} withdrew every route; the BGP sessions sent the withdrawals {took} ms after the drain began",
                    report.node
                ));
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
                "oxlb drain: the node is drained, but not every BGP session has sent the withdrawals within {} s (a session may be stuck; see oxlb status)",
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
