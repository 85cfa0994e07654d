//! `oxlb run`, `oxlb status` and `oxlb explain`.

use std::process::ExitCode;

use oxlb_standalone::engine::{RunOptions, offline_report, run as run_engine};
use oxlb_standalone::l2_glue::Layer2Options;

use crate::cli::{ExplainArgs, OutputFormat, RunArgs, StatusArgs};
use crate::logging;

pub fn run(args: &RunArgs) -> ExitCode {
    // Before any thread: one malloc arena, large blocks unmapped when freed, so the
    // resident size follows the live heap (see oxlb_standalone::memory).
    oxlb_standalone::memory::tune_allocator();
    logging::init(&args.log);
    let options = RunOptions {
        node: args.node.clone(),
        paths: args.files.clone(),
        namespace: args.namespace.clone(),
        state_dir: args.state_dir.clone(),
        listen: args.listen,
        lb_class: args.lb_class.clone(),
        max_services: args.max_services,
        bgp_listen: args.bgp_listen,
        local_ip_interface: (!args.no_local_ips).then(|| args.ip_interface.clone()),
        drain_delay: std::time::Duration::from_secs(args.drain_delay_seconds),
        second_chance: args.second_chance.options(),
        layer2: Layer2Options {
            bind: args.memberlist_bind,
            members: args.members.clone(),
            exclude: args.l2_exclude.clone(),
        },
    };
    let runtime = match logging::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("oxlb run: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_engine(options, logging::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("oxlb run: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn status(args: &StatusArgs) -> ExitCode {
    match oxlb_standalone::client::fetch_status(args.addr) {
        Ok(report) => {
            match args.output {
                OutputFormat::Text => crate::out::print(&oxlb_standalone::render::status(&report)),
                OutputFormat::Json => match serde_json::to_string_pretty(&report) {
                    Ok(text) => crate::out::println(&text),
                    Err(e) => {
                        eprintln!("oxlb status: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oxlb status: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn explain(args: &ExplainArgs) -> ExitCode {
    let service = if args.service.contains('/') {
        args.service.clone()
    } else {
        format!("default/{}", args.service)
    };
    let report = if args.files.is_empty() {
        oxlb_standalone::client::fetch_status(args.addr)
    } else {
        offline_report(
            &args.node,
            &args.files,
            &args.namespace,
            args.state_dir.as_deref(),
            None,
        )
        .map_err(|errors| {
            format!(
                "the configuration is invalid, fix it first (oxlb check):\n  {}",
                errors.join("\n  ")
            )
        })
    };
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("oxlb explain: {e}");
            return ExitCode::FAILURE;
        }
    };
    match oxlb_standalone::render::explain(&report, &service) {
        Some(text) => {
            crate::out::print(&text);
            ExitCode::SUCCESS
        }
        None => {
            let known: Vec<&str> = report.services.iter().map(|s| s.service.as_str()).collect();
            eprintln!(
                "oxlb explain: no LoadBalancer Service {service:?}; known: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
            ExitCode::FAILURE
        }
    }
}
