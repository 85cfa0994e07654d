//! `oxlb speaker`: the per-node speaker in a Kubernetes cluster (crates/k8s).

use std::process::ExitCode;

use crate::cli::SpeakerArgs;
use crate::logging;

pub fn run(args: &SpeakerArgs) -> ExitCode {
    // Before any thread: the resident size follows the live heap (oxlb_node::memory;
    // the speaker trims once a burst of changes is over).
    oxlb_node::memory::tune_allocator();
    logging::init(&args.log);
    if args.node_name.trim().is_empty() {
        eprintln!("oxlb speaker: --node-name (or NODE_NAME) is empty");
        return ExitCode::FAILURE;
    }
    let options = oxlb_k8s::SpeakerOptions {
        namespace: args.namespace.clone(),
        node_name: args.node_name.clone(),
        lb_class: args.lb_class.clone(),
        metrics_address: Some(match args.host {
            Some(host) => std::net::SocketAddr::new(host, args.metrics_address.port()),
            None => args.metrics_address,
        }),
        status_address: Some(args.status_address),
        pod: crate::cli::pod_identity(args.pod_name.as_deref(), args.pod_uid.as_deref()),
        membership: oxlb_k8s::MembershipOptions {
            bind_addr: args.ml_bind_addr,
            bind_port: args.ml_bind_port,
            secret_key_path: args.ml_secret_key_path.clone(),
            ..oxlb_k8s::MembershipOptions::default()
        },
        cordon_withdraws: !args.keep_routes_when_cordoned,
        status_writes_per_second: args.status_writes_per_second,
        bgp_node_status: args.bgp_node_status,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        node = %args.node_name,
        metrics = ?options.metrics_address,
        status = ?options.status_address,
        pod = ?options.pod.as_ref().map(|p| &p.name),
        "oxlb speaker starting"
    );
    let mut protocols = oxlb_k8s::ProtocolOptions::new(&args.node_name);
    protocols.bgp_listen = args.bgp_listen;
    protocols.l2_exclude = args.l2_exclude.clone();
    protocols.drain_delay = std::time::Duration::from_secs(args.drain_delay_seconds);
    protocols.second_chance = args.second_chance.options();
    let runtime = match logging::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("oxlb speaker: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(oxlb_k8s::run_speaker_in_cluster(
        options,
        protocols,
        logging::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxlb speaker: {e}");
            ExitCode::FAILURE
        }
    }
}
