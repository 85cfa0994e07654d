//! `oxlb controller`: the Kubernetes controller (crates/k8s).

use std::process::ExitCode;

use crate::cli::ControllerArgs;
use crate::logging;

pub fn run(args: &ControllerArgs) -> ExitCode {
    // Before any thread: one malloc arena and large blocks mapped on their own, so
    // the resident size follows the live heap after a bulk reconcile frees its
    // scratch (oxlb_node::memory; the reconciler trims after one).
    oxlb_node::memory::tune_allocator();
    logging::init(&args.log);
    let mut options = oxlb_k8s::ControllerOptions {
        namespace: args.namespace.clone(),
        lb_class: args.lb_class.clone(),
        max_services: args.max_services,
        metrics_address: Some(args.metrics_address),
        status_address: Some(args.status_address),
        pod: crate::cli::pod_identity(args.pod_name.as_deref(), args.pod_uid.as_deref()),
        ..Default::default()
    };
    if let Some(name) = args.pod_name.as_deref().filter(|n| !n.is_empty()) {
        options.identity = name.to_string();
    }
    options.leader_election = !args.no_leader_election;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        identity = %options.identity,
        metrics = ?options.metrics_address,
        status = ?options.status_address,
        "oxlb controller starting"
    );
    let runtime = match logging::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("oxlb controller: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(oxlb_k8s::run_controller(
        options,
        logging::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxlb controller: {e}");
            ExitCode::FAILURE
        }
    }
}
