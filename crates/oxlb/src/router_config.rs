//! `oxlb router-config`: the router's side of the BGP configuration.

use std::process::ExitCode;

use crate::cli::RouterConfigArgs;

pub fn run(args: &RouterConfigArgs) -> ExitCode {
    let flavor: oxlb_routercfg::Flavor = match args.flavor.parse() {
        Ok(flavor) => flavor,
        Err(e) => {
            eprintln!("oxlb router-config: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut nodes = Vec::new();
    for entry in &args.nodes {
        let parsed = entry
            .split_once('=')
            .and_then(|(name, address)| Some((name.to_string(), address.parse().ok()?)));
        match parsed {
            Some(node) => nodes.push(node),
            None => {
                eprintln!(
                    "oxlb router-config: --node {entry:?}: expected NAME=ADDRESS, e.g. node1=192.168.1.11"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let mut links = Vec::new();
    for entry in &args.links {
        match entry.split_once('=') {
            Some((node, interface)) if !node.is_empty() && !interface.is_empty() => {
                links.push((node.to_string(), interface.to_string()));
            }
            _ => {
                eprintln!(
                    "oxlb router-config: --link {entry:?}: expected NODE=IFNAME, e.g. node1=swp1"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let config = match crate::load_config(&args.files, &args.namespace) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("oxlb router-config: {e}");
            return ExitCode::FAILURE;
        }
    };
    match oxlb_routercfg::generate_with_links(
        flavor,
        &config,
        &nodes,
        &links,
        args.router_address,
        args.router_asn,
    ) {
        Ok(text) => {
            crate::out::print(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oxlb router-config: {e}");
            ExitCode::FAILURE
        }
    }
}
