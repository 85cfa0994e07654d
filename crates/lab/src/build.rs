//! `lab up`: namespaces, links, addresses, the router, and on every node `oxlb run` and
//! the HTTP backend. Anything that fails part-way is torn down again before returning.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oxlb_config::{Config, Family, PeerAddress};
use oxlb_netlab::{Netns, veth};
use oxlb_routercfg::{Flavor, generate};

use crate::error::Error;
use crate::exec::{log_tail, namespaces, run_in, spawn_detached};
use crate::plan::*;
use crate::state::{NodeState, RouterKind, State, state_file};
use crate::{LabOptions, down, members, preflight, router};

/// The built-in configuration written when `up` is given no `-f`.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default-config.yaml");

pub fn up(options: LabOptions) -> Result<State, Error> {
    preflight::check(options.router, &options.oxlb_bin, &options.backend_bin)?;
    if !(1..=MAX_NODES).contains(&options.nodes) {
        return Err(Error::Config(format!(
            "--nodes must be between 1 and {MAX_NODES}"
        )));
    }
    let names = Names {
        prefix: options.prefix.clone(),
    };
    let leftovers: Vec<String> = namespaces().into_iter().filter(|n| names.owns(n)).collect();
    if state_file(&options.state_dir).exists() || !leftovers.is_empty() {
        return Err(Error::AlreadyUp(format!(
            "a lab is already up ({}{}): run `oxlb lab down` first",
            state_file(&options.state_dir).display(),
            if leftovers.is_empty() {
                String::new()
            } else {
                format!(", namespaces {}", leftovers.join(" "))
            }
        )));
    }
    std::fs::create_dir_all(options.state_dir.join("logs"))?;
    let result = build(&options, &names);
    if result.is_err() {
        let _ = down::down(&options.prefix, &options.state_dir);
    }
    result
}

fn build(options: &LabOptions, names: &Names) -> Result<State, Error> {
    let state_dir = &options.state_dir;
    let (config_paths, added_dir, own_dir) = if options.config.is_empty() {
        let dir = state_dir.join("config");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("lab.yaml"), DEFAULT_CONFIG_YAML)?;
        (vec![dir.clone()], dir, true)
    } else {
        let absolute = options
            .config
            .iter()
            .map(|path| {
                std::path::absolute(path)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
            })
            .collect::<Result<Vec<PathBuf>, Error>>()?;
        (absolute, state_dir.join("lab-objects"), false)
    };
    let config = (options.load_config)(&config_paths)
        .map_err(|e| Error::Config(format!("{}: {e}", members::display_paths(&config_paths))))?;
    // Layer 2 needs the speakers to know each other, as in a real cluster.
    let added = if config.l2_advertisements.is_empty() {
        members::Added::default()
    } else {
        members::complete(&config_paths, options.nodes, &added_dir, own_dir)?
    };
    let router_text = router_config(options, &config, &config_paths)?;

    // Namespaces. Names are fixed (prefix-based) so a later `down` finds them.
    let ws = create(&names.ws())?;
    let router_ns = create(&names.router())?;
    let lan = create(&names.lan())?;
    let mut nodes = Vec::new();
    for index in 1..=options.nodes {
        nodes.push((index, create(&names.node(index))?));
    }
    let result = wire(&ws, &router_ns, &lan, &nodes, &config);
    // From here on the namespaces belong to the lab, not to guards.
    let ws_name = ws.keep();
    let router_name = router_ns.keep();
    let lan_name = lan.keep();
    let node_names: Vec<(usize, String)> =
        nodes.into_iter().map(|(i, ns)| (i, ns.keep())).collect();
    result?;

    let router_dir = state_dir.join("router");
    router::start(options.router, &router_name, &router_text, &router_dir)?;

    let mut node_states = Vec::new();
    let mut children = Vec::new();
    for (index, ns) in &node_names {
        let name = node_name(*index);
        let node_dir = state_dir.join("nodes").join(&name);
        std::fs::create_dir_all(&node_dir)?;
        let logs = state_dir.join("logs");
        let backend_log = logs.join(format!("{name}-backend.log"));
        let backend = spawn_detached(
            ns,
            &[&path_arg(&options.backend_bin), "lab-backend", &name],
            &backend_log,
        )?;
        let run_log = logs.join(format!("{name}-oxlb.log"));
        let argv = node_run_argv(
            &options.oxlb_bin,
            &name,
            &node_dir,
            &config_paths,
            added.extra_path.as_deref(),
        );
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let run = spawn_detached(ns, &argv, &run_log)?;
        node_states.push(NodeState {
            name: name.clone(),
            index: *index,
            namespace: ns.clone(),
            ipv4: node_v4(*index).to_string(),
            ipv6: node_v6(*index).to_string(),
            pids: vec![run.id(), backend.id()],
        });
        children.push((name.clone(), "oxlb run", run, run_log));
        children.push((name, "HTTP backend", backend, backend_log));
    }
    // A process that dies at once (bad flags, bad config, port taken) is reported now
    // rather than discovered later as a missing route.
    std::thread::sleep(Duration::from_millis(700));
    for (node, what, child, log) in &mut children {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Setup(format!(
                "{what} on {node} exited at once ({status}); its log ({}):\n{}",
                log.display(),
                log_tail(log, 20)
            )));
        }
    }
    let state = State {
        prefix: options.prefix.clone(),
        state_dir: state_dir.clone(),
        router: options.router,
        ws_namespace: ws_name,
        router_namespace: router_name,
        lan_namespace: lan_name,
        nodes: node_states,
        config_paths,
        added_path: added.extra_path.clone(),
        added: added.notes.clone(),
        oxlb_bin: options.oxlb_bin.clone(),
        bird_socket: (options.router == RouterKind::Bird).then(|| router_dir.join("bird.ctl")),
    };
    state.write()?;
    Ok(state)
}

/// The command line of a node's `oxlb run` (also used to restart it: `lab chaos`).
pub fn node_run_argv(
    oxlb_bin: &Path,
    name: &str,
    node_dir: &Path,
    config_paths: &[PathBuf],
    extra: Option<&Path>,
) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        path_arg(oxlb_bin),
        "run".into(),
        "--node".into(),
        name.into(),
        "--state-dir".into(),
        path_arg(node_dir),
        "--listen".into(),
        "127.0.0.1:7472".into(),
    ];
    for path in config_paths.iter().map(PathBuf::as_path).chain(extra) {
        argv.push("-f".into());
        argv.push(path_arg(path));
    }
    argv
}

fn create(name: &str) -> Result<Netns, Error> {
    Netns::named(name).map_err(|e| Error::Setup(format!("cannot create namespace {name}: {e}")))
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The router's configuration for the lab's nodes, from the user's (or default) config.
fn router_config(
    options: &LabOptions,
    config: &Config,
    paths: &[PathBuf],
) -> Result<String, Error> {
    let families = peer_families(config);
    let nodes: Vec<(String, IpAddr)> = (1..=options.nodes)
        .flat_map(|i| {
            node_addresses(i)
                .into_iter()
                .filter(|ip| families.contains(&Family::of(ip)))
                .map(move |ip| (node_name(i), ip))
        })
        .collect();
    let flavor = match options.router {
        RouterKind::Frr => Flavor::Frr,
        RouterKind::Bird => Flavor::Bird,
    };
    generate(flavor, config, &nodes, None).map_err(|e| {
        Error::Config(format!(
            "cannot configure the lab router from {}: {e}",
            members::display_paths(paths)
        ))
    })
}

fn peer_families(config: &Config) -> Vec<Family> {
    let mut out: Vec<Family> = peer_addresses(config).iter().map(Family::of).collect();
    out.sort();
    out.dedup();
    out
}

fn peer_addresses(config: &Config) -> Vec<IpAddr> {
    config
        .peers
        .values()
        .filter_map(|p| match p.address {
            PeerAddress::Ip(ip) => Some(ip),
            PeerAddress::Interface(_) => None,
        })
        .collect()
}

fn wire(
    ws: &Netns,
    router: &Netns,
    lan: &Netns,
    nodes: &[(usize, Netns)],
    config: &Config,
) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Setup(e.to_string());
    veth(ws, WAN_IF, router, WAN_IF).map_err(io)?;
    veth(router, LAN_IF, lan, LAN_ROUTER_PORT).map_err(io)?;
    lan.add_bridge(BRIDGE).map_err(io)?;
    // No IGMP/MLD snooping: there is no querier, and NDP must reach every node.
    lan.exec(&[
        "ip",
        "link",
        "set",
        BRIDGE,
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ])
    .map_err(io)?;
    lan.attach_to_bridge(LAN_ROUTER_PORT, BRIDGE).map_err(io)?;
    ws.add_address(WAN_IF, &format!("{WS_V4}/24")).map_err(io)?;
    ws.add_address(WAN_IF, &format!("{WS_V6}/64")).map_err(io)?;
    router
        .add_address(WAN_IF, &format!("{ROUTER_WAN_V4}/24"))
        .map_err(io)?;
    router
        .add_address(WAN_IF, &format!("{ROUTER_WAN_V6}/64"))
        .map_err(io)?;
    router
        .add_address(LAN_IF, &format!("{ROUTER_LAN_V4}/24"))
        .map_err(io)?;
    router
        .add_address(LAN_IF, &format!("{ROUTER_LAN_V6}/64"))
        .map_err(io)?;
    router.enable_forwarding().map_err(io)?;
    // ECMP by addresses *and ports*: successive curls from the one workstation then
    // spread over the nodes instead of all hashing to one path.
    router
        .exec(&["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"])
        .map_err(io)?;
    router
        .exec(&["sysctl", "-qw", "net.ipv6.fib_multipath_hash_policy=1"])
        .map_err(io)?;
    ws.exec(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        &ROUTER_WAN_V4.to_string(),
    ])
    .map_err(io)?;
    ws.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "default",
        "via",
        &ROUTER_WAN_V6.to_string(),
    ])
    .map_err(io)?;
    // A BGPPeer address outside the lab plan (the user's real router) is given to the
    // lab router too, so the user's config works unchanged; nodes reach it on the LAN.
    let extra: Vec<IpAddr> = peer_addresses(config)
        .into_iter()
        .filter(|ip| *ip != IpAddr::V4(ROUTER_LAN_V4) && *ip != IpAddr::V6(ROUTER_LAN_V6))
        .collect();
    for ip in &extra {
        let host = match ip {
            IpAddr::V4(_) => format!("{ip}/32"),
            IpAddr::V6(_) => format!("{ip}/128"),
        };
        router.add_address(LAN_IF, &host).map_err(io)?;
    }
    for (index, node) in nodes {
        let port = lan_node_port(*index);
        veth(node, LAN_IF, lan, &port).map_err(io)?;
        lan.attach_to_bridge(&port, BRIDGE).map_err(io)?;
        node.add_address(LAN_IF, &format!("{}/24", node_v4(*index)))
            .map_err(io)?;
        node.add_address(LAN_IF, &format!("{}/64", node_v6(*index)))
            .map_err(io)?;
        node.exec(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &ROUTER_LAN_V4.to_string(),
        ])
        .map_err(io)?;
        node.exec(&[
            "ip",
            "-6",
            "route",
            "add",
            "default",
            "via",
            &ROUTER_LAN_V6.to_string(),
        ])
        .map_err(io)?;
        for ip in &extra {
            let family = if ip.is_ipv4() { "-4" } else { "-6" };
            node.exec(&["ip", family, "route", "add", &ip.to_string(), "dev", LAN_IF])
                .map_err(io)?;
        }
    }
    Ok(())
}

/// What `up` built, for the user.
pub fn describe(state: &State) -> String {
    let mut out = format!(
        "lab {} is up (state in {}):\n\
         \x20 workstation  {:<18} {WS_V4} {WS_V6} (default route via the router)\n\
         \x20 router       {:<18} WAN {ROUTER_WAN_V4} {ROUTER_WAN_V6}, LAN {ROUTER_LAN_V4} {ROUTER_LAN_V6} ({})\n\
         \x20 LAN bridge   {:<18} {BRIDGE}\n",
        state.prefix,
        state.state_dir.display(),
        state.ws_namespace,
        state.router_namespace,
        state.router.name(),
        state.lan_namespace,
    );
    for node in &state.nodes {
        out.push_str(&format!(
            "  {:<12} {:<18} {} {} (oxlb run, HTTP backend on :80)\n",
            node.name, node.namespace, node.ipv4, node.ipv6
        ));
    }
    out.push_str(&format!(
        "  config: {}\n",
        members::display_paths(&state.config_paths)
    ));
    if let Some(path) = &state.added_path {
        out.push_str(&format!(
            "          {} (added by the lab)\n",
            path.display()
        ));
    }
    for note in &state.added {
        out.push_str(&format!("  Layer 2 membership: {note}\n"));
    }
    out.push_str(&format!(
        "  logs:   {}\n",
        PathBuf::from(&state.state_dir).join("logs").display()
    ));
    out
}

/// Runs a command in the workstation namespace (used by `curl`).
pub fn in_ws(state: &State, argv: &[&str]) -> Result<String, Error> {
    run_in(&state.ws_namespace, argv)
}
