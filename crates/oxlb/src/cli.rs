//! Command-line interface: subcommands and their flags, with help a newcomer can follow.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// oxlb gives Services of type LoadBalancer real IP addresses on clusters without a cloud
/// load balancer, announced by BGP or Layer 2 (ARP/NDP). It reads MetalLB's metallb.io
/// resources unchanged.
#[derive(Parser, Debug)]
#[command(name = "oxlb", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate a configuration (MetalLB CRs, legacy ConfigMap or Helm values) and show
    /// what it would do. Exit 0 when valid, 1 with every error when not.
    ///
    /// Example: oxlb check -f examples/bgp-basic.yaml
    Check(CheckArgs),
    /// Convert a legacy MetalLB ConfigMap (key `config`) or old Helm values
    /// (`configInline:`) into metallb.io custom resources, printed as YAML.
    ///
    /// Example: oxlb convert -f old-configmap.yaml > resources.yaml
    Convert(ConvertArgs),
    /// Print the CustomResourceDefinitions of every metallb.io kind, to apply with
    /// `kubectl apply -f -`.
    Crds,
    /// Run oxlb on this host without Kubernetes: allocate IPs to the Services in the
    /// files and announce this node's share by BGP and/or Layer 2. Watches the files and
    /// applies changes (also on SIGHUP); SIGTERM/SIGINT stop it cleanly.
    ///
    /// Example: oxlb run --node node1 -f /etc/oxlb/
    Run(RunArgs),
    /// Show a running `oxlb run`: BGP sessions, announced prefixes, Layer 2 IPs,
    /// service assignments and pools.
    Status(StatusArgs),
    /// Explain why a Service has the IP it has (or none), and why this node announces
    /// it or not. Asks a running `oxlb run`, or works offline on files with -f.
    ///
    /// Example: oxlb explain default/web
    Explain(ExplainArgs),
    /// Drain this host: a running `oxlb run` withdraws every BGP route (the service IPs
    /// stay on the host so open connections finish; Layer 2 IPs stay too), then
    /// this waits until every BGP session has sent the withdrawals and says how long
    /// that took. Asking twice changes nothing.
    ///
    /// Example: oxlb drain && systemctl stop my-service
    Drain(DrainArgs),
    /// Undo `oxlb drain`: announce again.
    Undrain(DrainArgs),
    /// Generate the router's side of the BGP configuration (FRR — also what pfSense,
    /// OPNsense and VyOS build on —, BIRD, VyOS or MikroTik RouterOS), with comments.
    ///
    /// Example: oxlb router-config --flavor frr -f config.yaml --node node1=192.168.1.11
    RouterConfig(RouterConfigArgs),
    /// Rehearse a setup on this machine: a router, a LAN and N nodes in network
    /// namespaces, each node running `oxlb run`. Needs root and FRR (or BIRD).
    Lab(LabArgs),
    /// (internal) The lab's HTTP backend: answers every request with the node's name.
    #[command(hide = true)]
    LabBackend { node: String },
    /// (internal) `lab chaos`'s request load, run in the workstation namespace.
    #[command(hide = true)]
    LabLoad {
        #[arg(long)]
        targets: PathBuf,
    },
    /// (internal) `lab chaos`'s lossy link: a frame relay in the LAN namespace.
    #[command(hide = true)]
    LabRelay {
        #[arg(long)]
        port: String,
        #[arg(long)]
        via: String,
        #[arg(long)]
        loss: u8,
        #[arg(long)]
        delay_ms: u64,
        #[arg(long)]
        seed: u64,
    },
    /// Print a new `memberlist` Secret (128 random bytes under key `secretkey`): the
    /// shared key that authenticates the Layer 2 speakers' gossip. Apply it in the
    /// cluster, or give the same file to every `oxlb run` host.
    ///
    /// Example: oxlb memberlist-secret > memberlist.yaml
    /// Generate the files that run `oxlb run` on each control-plane node to announce the
    /// Kubernetes API VIP (Layer 2 or BGP), health-checked against the local
    /// https://127.0.0.1:6443/livez: the `oxlb run` configuration, a static-pod manifest
    /// and a systemd unit. Needs nothing from the cluster.
    ///
    /// Example: oxlb control-plane-vip --address 192.168.1.100 --interface eth0 --out /tmp/cp
    ControlPlaneVip(ControlPlaneVipArgs),
    MemberlistSecret {
        #[arg(short = 'n', long, default_value = "metallb-system")]
        namespace: String,
    },
    /// Run the controller in a Kubernetes cluster (Deployment): allocates IPs and writes
    /// Service statuses. Reads the metallb.io resources of its namespace.
    Controller(ControllerArgs),
    /// Run the speaker in a Kubernetes cluster (DaemonSet, hostNetwork): announces this
    /// node's share of the Service IPs by BGP and Layer 2 (ARP/NDP), with BFD, and
    /// writes ServiceL2Status / ServiceBGPStatus. SIGTERM stops it cleanly.
    Speaker(SpeakerArgs),
}

#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// Log verbosity: error, warn, info, debug, trace (or a tracing filter such as
    /// `info,oxlb_bgp=debug`). RUST_LOG, when set, overrides it.
    #[arg(long, env = "OXLB_LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,
    /// Log format: text for people (coloured only on a terminal), json for log
    /// collectors (one JSON object per line).
    #[arg(
        long,
        env = "OXLB_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// This host's node name: matched against nodeSelectors (through a Node object of
    /// that name in the files, if any) and used in the Layer 2 election.
    #[arg(long)]
    pub node: String,
    /// YAML files or directories with the configuration and the Services.
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Only resources in this namespace count as configuration.
    #[arg(short = 'n', long, default_value = "metallb-system")]
    pub namespace: String,
    /// Where assignments are kept so a restart never moves an IP.
    #[arg(long, default_value = "/var/lib/oxlb")]
    pub state_dir: PathBuf,
    /// Where /metrics (MetalLB's metric names), /healthz, /readyz and /api/v1/status
    /// (every Service with its IPs, BGP sessions with their peers and last errors,
    /// Layer 2 counters; what `oxlb status` and `oxlb explain` read) are served. The
    /// status API is unauthenticated: keep this on loopback unless the network is yours.
    #[arg(long, default_value = "127.0.0.1:7472")]
    pub listen: std::net::SocketAddr,
    /// Handle only Services with this spec.loadBalancerClass.
    #[arg(long)]
    pub lb_class: Option<String>,
    /// At most this many LoadBalancer Services are handled; more are refused with a
    /// ServiceLimitExceeded warning (event or log line) instead of growing memory.
    #[arg(long)]
    pub max_services: Option<usize>,
    /// Also accept BGP connections from the routers here (e.g. 0.0.0.0:179).
    #[arg(long)]
    pub bgp_listen: Option<std::net::SocketAddr>,
    /// Interface that carries the announced service IPs on this host.
    #[arg(long, default_value = "oxlb0")]
    pub ip_interface: String,
    /// Do not put the service IPs on this host (something else makes them local).
    #[arg(long)]
    pub no_local_ips: bool,
    /// On SIGTERM without graceful restart, or after `oxlb drain`: withdraw the routes
    /// first and keep the sessions and service IPs this many seconds (routers converge,
    /// open connections finish) before closing. 0: close at once (MetalLB). With
    /// graceful restart configured and the host not drained, a stop is a restart and
    /// the routers keep the routes instead.
    #[arg(long, default_value_t = 0)]
    pub drain_delay_seconds: u64,
    #[command(flatten)]
    pub second_chance: SecondChanceArgs,
    /// Layer 2 and weighted ECMP: the other speakers' membership addresses (host:port,
    /// comma separated). Default: the InternalIP of every other Node in the files, port
    /// 7946. With weighted ECMP the membership tells older speakers (mixed paths).
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<std::net::SocketAddr>,
    /// Layer 2: where this speaker's membership listens. The other speakers reach it
    /// at this address, so an unspecified one (the default) stands for this node's
    /// InternalIP from its Node object, else the address toward the first other speaker.
    #[arg(long, default_value = "0.0.0.0:7946")]
    pub memberlist_bind: std::net::SocketAddr,
    /// Layer 2: interface name patterns (regular expressions) never answered on,
    /// replacing the defaults (veth, docker, cni, flannel, cali, kube-ipvs, ...).
    #[arg(long, value_delimiter = ',')]
    pub l2_exclude: Option<Vec<String>>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Address of the running `oxlb run` (its --listen).
    #[arg(long, default_value = "127.0.0.1:7472")]
    pub addr: std::net::SocketAddr,
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    /// Address of the running `oxlb run` (its --listen).
    #[arg(long, default_value = "127.0.0.1:7472")]
    pub addr: std::net::SocketAddr,
    /// How many seconds `oxlb drain` waits for the peers to confirm the withdrawals
    /// (a peer that has nothing to send back may answer only with its next keepalive,
    /// and one that never answers is given up on after 95 s).
    #[arg(long, default_value_t = 120)]
    pub timeout_seconds: u64,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The Service, as namespace/name (a bare name means the default namespace).
    pub service: String,
    /// Address of the running `oxlb run`.
    #[arg(long, default_value = "127.0.0.1:7472")]
    pub addr: std::net::SocketAddr,
    /// Work offline on these files instead of asking a running instance.
    #[arg(short = 'f', long = "file", value_name = "PATH", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Offline: the node to decide for.
    #[arg(long, default_value = "localhost")]
    pub node: String,
    /// Offline: the state directory with the assignments made so far.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    #[arg(short = 'n', long, default_value = "metallb-system")]
    pub namespace: String,
}

#[derive(Args, Debug)]
pub struct RouterConfigArgs {
    /// frr, bird, vyos or mikrotik.
    #[arg(long, default_value = "frr")]
    pub flavor: String,
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// A node and its address as the router sees it: NAME=ADDRESS (repeat per node).
    #[arg(
        long = "node",
        value_name = "NAME=ADDRESS",
        required_unless_present = "links"
    )]
    pub nodes: Vec<String>,
    /// For unnumbered BGPPeers (`interface`): a node and the router's interface toward
    /// it, NODE=IFNAME (repeat per node).
    #[arg(long = "link", value_name = "NODE=IFNAME")]
    pub links: Vec<String>,
    /// Which BGPPeer address is this router (when the config has several routers).
    #[arg(long)]
    pub router_address: Option<std::net::IpAddr>,
    /// The router's AS, needed when the BGPPeer uses dynamicASN: external.
    #[arg(long)]
    pub router_asn: Option<u32>,
    #[arg(short = 'n', long, default_value = "metallb-system")]
    pub namespace: String,
}

#[derive(Args, Debug)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
    /// Namespace name prefix: several labs side by side need different ones.
    #[arg(long, global = true, default_value = "oxlblab")]
    pub prefix: String,
    /// Where the lab keeps its state file, generated configuration and logs.
    #[arg(long, global = true, default_value = "/run/oxlb-lab")]
    pub state_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Build the lab and start oxlb on every node.
    Up {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// frr or bird.
        #[arg(long, default_value = "frr")]
        router: String,
        /// Your own configuration: files or directories, as `check` and `run` take
        /// them (the built-in demo config when not given).
        #[arg(short = 'f', long = "file", value_name = "PATH", num_args = 1..)]
        config: Vec<PathBuf>,
    },
    /// The router's BGP summary and routes, the workstation's neighbours, each node's status.
    Status,
    /// An HTTP GET from the workstation to IP.
    Curl { ip: std::net::IpAddr },
    /// Cut a node's LAN link (watch BGP withdraw or Layer 2 fail over).
    Fail { node: String },
    /// Restore a node's LAN link.
    Heal { node: String },
    /// Remove everything the lab created (also after a crash).
    Down,
    /// The whole tour: up with the built-in config, status, curl every service IP, fail a
    /// node and show traffic still flowing, down. Exit 0 only if every check passed.
    Demo {
        #[arg(long, default_value = "frr")]
        router: String,
    },
    /// Rehearse failures on a lab that is up: random faults (oxlb killed or stopped, a
    /// link cut, gossip cut, a lossy link, the router's bgpd restarted or reloaded, the
    /// configuration changed) under a steady request load to every Service IP. Prints
    /// the seed (replay with --seed), a score per fault kind, writes the timeline
    /// (JSON and SVG). Exit 1 if an invariant broke (an IP moved, two ARP answerers,
    /// a session not back, a Service lost).
    ///
    /// Example: oxlb lab chaos --duration 30m
    Chaos {
        /// How long to inject faults: 90s, 10m, 1h.
        #[arg(long, default_value = "5m")]
        duration: String,
        /// Replay a run: the seed it printed.
        #[arg(long)]
        seed: Option<u64>,
        /// Fault kinds, comma-separated: kill, term, link-flap, partition, lossy,
        /// bgpd-restart, router-reload, pool-edit, service-change, or all.
        #[arg(long, default_value = "all")]
        faults: String,
        /// Nodes node faults may hit (comma-separated names or numbers); all by default.
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
        /// Where chaos-SEED.json and chaos-SEED.svg are written.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ControllerArgs {
    #[arg(long, default_value = "metallb-system")]
    pub namespace: String,
    #[arg(long)]
    pub lb_class: Option<String>,
    /// At most this many LoadBalancer Services are handled; more are refused with a
    /// ServiceLimitExceeded warning (event or log line) instead of growing memory.
    #[arg(long)]
    pub max_services: Option<usize>,
    /// Where /metrics (MetalLB's metric names), /healthz (alive; config errors when the
    /// last change was rejected) and /readyz are served, for Prometheus and the kubelet.
    #[arg(long, default_value = "0.0.0.0:7472")]
    pub metrics_address: std::net::SocketAddr,
    /// Where /api/v1/status is served: every Service with its IPs and pool, the pools'
    /// usage. Unauthenticated, so loopback only (`kubectl port-forward` reaches it).
    /// 7475, not the speaker's 7474, so both fit on one host network.
    #[arg(long, default_value = "127.0.0.1:7475", value_parser = loopback_address)]
    pub status_address: std::net::SocketAddr,
    /// Run without leader election (a single replica only).
    #[arg(long)]
    pub no_leader_election: bool,
    /// This controller's Pod (downward API metadata.name and metadata.uid): its name is
    /// the leader-election identity (default: the hostname) and the Pod owns the
    /// ConfigurationState it writes.
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    pub pod_name: Option<String>,
    #[arg(long, env = "POD_UID", value_name = "UID", requires = "pod_name")]
    pub pod_uid: Option<String>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Args, Debug)]
pub struct SpeakerArgs {
    /// The namespace of the metallb.io resources (and of the speaker pods).
    #[arg(long, default_value = "metallb-system")]
    pub namespace: String,
    /// This node's name (the DaemonSet passes spec.nodeName through NODE_NAME).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// Handle only Services with this spec.loadBalancerClass.
    #[arg(long)]
    pub lb_class: Option<String>,
    /// Where /metrics (MetalLB's metric names: announced IPs, BGP sessions, config
    /// loaded / stale), /healthz (alive; config errors when the last change was
    /// rejected) and /readyz are served, for Prometheus and the kubelet. Nothing else is
    /// served there: the speaker runs on the host network.
    #[arg(long, default_value = "0.0.0.0:7472")]
    pub metrics_address: std::net::SocketAddr,
    /// The node's address (the DaemonSet passes status.hostIP, as MetalLB's
    /// METALLB_HOST): the metrics listener binds it, at the port of --metrics-address,
    /// instead of every address of the node.
    #[arg(long, env = "OXLB_HOST", value_name = "IP")]
    pub host: Option<std::net::IpAddr>,
    /// Where /api/v1/status is served: every Service this node announces with its IPs,
    /// the BGP sessions with their peers and last errors, Layer 2 counters.
    /// Unauthenticated, so loopback only (`kubectl port-forward` reaches it).
    #[arg(long, default_value = "127.0.0.1:7474", value_parser = loopback_address)]
    pub status_address: std::net::SocketAddr,
    /// This speaker's Pod (downward API metadata.name and metadata.uid): it owns the
    /// ServiceL2Status / ServiceBGPStatus objects it writes, so they go with it.
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    pub pod_name: Option<String>,
    #[arg(long, env = "POD_UID", value_name = "UID", requires = "pod_name")]
    pub pod_uid: Option<String>,
    /// Also accept BGP connections from the routers here (e.g. 0.0.0.0:179; needs
    /// CAP_NET_BIND_SERVICE). Default: connect only, as MetalLB's speaker.
    #[arg(long)]
    pub bgp_listen: Option<std::net::SocketAddr>,
    /// Keep announcing from a cordoned node (MetalLB's behaviour: only the label
    /// node.kubernetes.io/exclude-from-external-load-balancers withdraws). By default a
    /// cordon (`kubectl cordon`, the first step of `kubectl drain`) withdraws the
    /// node's BGP routes and hands over its Layer 2 IPs before its pods are evicted.
    #[arg(long)]
    pub keep_routes_when_cordoned: bool,
    /// Writes per second of ServiceL2Status / ServiceBGPStatus objects and nodeAssigned
    /// events for the whole cluster, shared by the live speakers (each at least 0.1 per
    /// second, in bursts of one second's worth and at least 6, so one Service change is
    /// never delayed). Routes and ARP answers never wait for them.
    #[arg(long, default_value_t = oxlb_k8s::DEFAULT_CLUSTER_WRITES_PER_SECOND, value_parser = positive_rate)]
    pub status_writes_per_second: f64,
    /// Write a ServiceBGPStatus object and a nodeAssigned event per BGP-announced
    /// Service from this node (MetalLB's behaviour). With externalTrafficPolicy Cluster
    /// every node announces every Service: nodes x Services objects (10 million at
    /// 1,000 nodes and 10,000 Services); `false` writes none and deletes this node's.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub bgp_node_status: bool,
    /// On SIGTERM when no graceful restart is configured (an upgrade: the Node is
    /// schedulable), or on a cordoned Node whose routes are still out: withdraw the
    /// routes first and keep the sessions this many seconds (routers converge, open
    /// connections finish) before closing. 0: close at once (MetalLB). A cordoned Node
    /// (going down: `kubectl drain` cordons first) whose routes are withdrawn already
    /// closes at once; with graceful restart configured on a schedulable Node the
    /// routers keep the routes instead. Keep the Pod's terminationGracePeriodSeconds
    /// above it.
    #[arg(long, default_value_t = 0)]
    pub drain_delay_seconds: u64,
    #[command(flatten)]
    pub second_chance: SecondChanceArgs,
    /// Layer 2: interface name patterns (regular expressions) never answered on,
    /// replacing the defaults (veth, docker, cni, flannel, cali, kube-ipvs, ...).
    #[arg(long, value_delimiter = ',')]
    pub l2_exclude: Option<Vec<String>>,
    /// Layer 2 liveness (MetalLB's memberlist): the address this speaker's membership
    /// binds and the other speakers reach it at, normally the pod IP from the downward
    /// API (status.podIP; with hostNetwork the node's address). Default: this node's
    /// speaker pod IP as the API reports it.
    #[arg(
        long = "ml-bindaddr",
        visible_alias = "ml-bind-addr",
        env = "OXLB_MEMBERLIST_BIND_ADDR",
        value_name = "IP"
    )]
    pub ml_bind_addr: Option<std::net::IpAddr>,
    /// Layer 2 liveness: the UDP port of every speaker's membership (the other
    /// speakers are reached at their pod IP and this port).
    #[arg(
        long = "ml-bindport",
        visible_alias = "ml-bind-port",
        env = "OXLB_MEMBERLIST_BIND_PORT",
        default_value_t = 7946,
        value_name = "PORT"
    )]
    pub ml_bind_port: u16,
    /// Layer 2 liveness: the key that authenticates every membership packet, as a file
    /// or as the directory where the `memberlist` Secret is mounted (its `secretkey`).
    /// When absent or unreadable, the `memberlist` Secret (key `secretkey`) is read
    /// from the API. Without any key, a node counts as alive while its speaker pod is
    /// Ready (its IPs move only after the kubelet notices, tens of seconds).
    #[arg(
        long = "ml-secret-key-path",
        env = "OXLB_MEMBERLIST_KEY_PATH",
        value_name = "PATH"
    )]
    pub ml_secret_key_path: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// YAML files or directories (read recursively, *.yaml / *.yml / *.json). Any mix of
    /// metallb.io resources, Services, Nodes, Namespaces, Secrets, EndpointSlices and
    /// ConfigMaps, several documents per file separated by `---`.
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Only resources in this namespace count as configuration (like MetalLB, which reads
    /// its own namespace). Resources without a namespace are taken to be in it.
    #[arg(short = 'n', long, default_value = "metallb-system")]
    pub namespace: String,
    /// Output format: `text` for people, `json` for scripts.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The legacy files: a ConfigMap with key `config`, Helm values with
    /// `configInline:`, or the bare config YAML (`peers:`, `address-pools:` ...). Several
    /// are converted one after the other into one stream.
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Namespace written into the generated resources.
    #[arg(short = 'n', long, default_value = "metallb-system")]
    pub namespace: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// The status API listens on loopback only (it is unauthenticated).
fn loopback_address(text: &str) -> Result<std::net::SocketAddr, String> {
    let address: std::net::SocketAddr =
        text.parse().map_err(|e| format!("{e}: expected IP:PORT"))?;
    oxlb_node::http::check_status_address(address)
}

/// The Pod from `--pod-name` / `--pod-uid` (downward API): the one place the controller
/// and the speaker learn which Pod they run in. Both, non-empty, or none.
pub fn pod_identity(name: Option<&str>, uid: Option<&str>) -> Option<oxlb_k8s::PodIdentity> {
    match (name, uid) {
        (Some(name), Some(uid)) if !name.is_empty() && !uid.is_empty() => {
            Some(oxlb_k8s::PodIdentity {
                name: name.to_string(),
                uid: uid.to_string(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every `-f` (check, run, explain, router-config, convert, lab up) takes the same:
    /// one or more files or directories, repeatable.
    #[test]
    fn every_dash_f_takes_several_paths() {
        fn walk(command: &clap::Command, path: &str, seen: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if arg.get_short() == Some('f') {
                    let name = format!("{path} -f");
                    assert_eq!(arg.get_long(), Some("file"), "{name}");
                    assert_eq!(
                        arg.get_num_args(),
                        Some(clap::builder::ValueRange::new(1..)),
                        "{name}"
                    );
                    assert!(
                        matches!(arg.get_action(), clap::ArgAction::Append),
                        "{name}: {:?}",
                        arg.get_action()
                    );
                    seen.push(name);
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), seen);
            }
        }
        let mut seen = Vec::new();
        walk(&Cli::command(), "oxlb", &mut seen);
        for expected in [
            "oxlb check -f",
            "oxlb run -f",
            "oxlb convert -f",
            "oxlb lab up -f",
        ] {
            assert!(seen.iter().any(|s| s == expected), "{expected}: {seen:?}");
        }
        let parsed = Cli::try_parse_from(["oxlb", "lab", "up", "-f", "a.yaml", "-f", "b/"]);
        match parsed.map(|c| c.command) {
            Ok(Command::Lab(LabArgs {
                command: LabCommand::Up { config, .. },
                ..
            })) => assert_eq!(config, [PathBuf::from("a.yaml"), PathBuf::from("b/")]),
            other => panic!("{other:?}"),
        }
    }

    /// The controller and the speaker learn their Pod the same way, from the flags.
    #[test]
    fn both_components_take_their_pod_from_the_flags() {
        let expected = Some(oxlb_k8s::PodIdentity {
            name: "p".into(),
            uid: "u".into(),
        });
        let controller =
            Cli::try_parse_from(["oxlb", "controller", "--pod-name", "p", "--pod-uid", "u"]);
        match controller.map(|c| c.command) {
            Ok(Command::Controller(a)) => assert_eq!(
                pod_identity(a.pod_name.as_deref(), a.pod_uid.as_deref()),
                expected
            ),
            other => panic!("{other:?}"),
        }
        let speaker = Cli::try_parse_from([
            "oxlb",
            "speaker",
            "--node-name",
            "n",
            "--pod-name",
            "p",
            "--pod-uid",
            "u",
        ]);
        match speaker.map(|c| c.command) {
            Ok(Command::Speaker(a)) => assert_eq!(
                pod_identity(a.pod_name.as_deref(), a.pod_uid.as_deref()),
                expected
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(pod_identity(Some("p"), None), None);
        assert_eq!(pod_identity(Some("p"), Some("")), None);
        assert_eq!(pod_identity(None, None), None);
    }

    /// What charts/oxlb renders for `speaker.statusWritesPerSecond` and
    /// `speaker.bgpNodeStatus` (Go's formatting of a float64: `0.5`, `1e+06`) parses.
    #[test]
    fn speaker_takes_the_charts_status_write_flags() {
        let speaker = |flags: &[&str]| {
            let args = ["oxlb", "speaker", "--node-name", "n"];
            match Cli::try_parse_from(args.iter().chain(flags)).map(|c| c.command) {
                Ok(Command::Speaker(a)) => Ok((a.status_writes_per_second, a.bgp_node_status)),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(
            speaker(&[]),
            Ok((oxlb_k8s::DEFAULT_CLUSTER_WRITES_PER_SECOND, true))
        );
        assert_eq!(
            speaker(&["--status-writes-per-second=0.5", "--bgp-node-status=false"]),
            Ok((0.5, false))
        );
        assert_eq!(
            speaker(&["--status-writes-per-second=1e+06", "--bgp-node-status=true"]),
            Ok((1e6, true))
        );
        assert_eq!(
            speaker(&[
                "--status-writes-per-second",
                "2.5",
                "--bgp-node-status",
                "false"
            ]),
            Ok((2.5, false))
        );
        for bad in ["0", "-1", "NaN", "inf", "many"] {
            assert_eq!(
                speaker(&[&format!("--status-writes-per-second={bad}")]),
                Err(clap::error::ErrorKind::ValueValidation),
                "{bad}"
            );
        }
        // A bare `--bgp-node-status` needs its value (ArgAction::Set).
        assert!(speaker(&["--bgp-node-status"]).is_err());
    }
}

#[derive(clap::Args, Debug)]
pub struct ControlPlaneVipArgs {
    /// The API server's VIP.
    #[arg(long)]
    pub address: std::net::IpAddr,
    /// Layer 2: the interface to answer ARP/NDP for the VIP on.
    #[arg(long, required_unless_present = "peer", conflicts_with = "peer")]
    pub interface: Option<String>,
    /// BGP: the router's address.
    #[arg(long)]
    pub peer: Option<std::net::IpAddr>,
    #[arg(long, default_value_t = 64512)]
    pub my_asn: u32,
    #[arg(long, default_value_t = 64512)]
    pub peer_asn: u32,
    /// BGP: the source address of the session. Needed beside `oxlb speaker` on the same
    /// node when both peer with the same router address (one session per address).
    #[arg(long)]
    pub source_address: Option<std::net::IpAddr>,
    /// The check of the local API server.
    #[arg(long, default_value = "https://127.0.0.1:6443/livez")]
    pub check: String,
    /// Check the API server's certificate against the host's CA store (off: it is
    /// signed by the cluster's own CA).
    #[arg(long)]
    pub verify_certificate: bool,
    /// Layer 2: the other control-plane nodes' membership addresses (host:7947, comma
    /// separated).
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<std::net::SocketAddr>,
    #[arg(long, default_value = "ghcr.io/oxlb/oxlb:0.1.0")]
    pub image: String,
    /// The oxlb binary in the systemd unit.
    #[arg(long, default_value = "/usr/local/bin/oxlb")]
    pub binary: PathBuf,
    /// Where the configuration is installed on the nodes.
    #[arg(long, default_value = "/etc/oxlb-control-plane")]
    pub config_dir: PathBuf,
    #[arg(long, default_value = "/var/lib/oxlb-control-plane")]
    pub state_dir: PathBuf,
    /// Status API of this instance (oxlb speaker uses 7472).
    #[arg(long, default_value = "127.0.0.1:7473")]
    pub listen: std::net::SocketAddr,
    /// Layer 2 membership (oxlb speaker uses 7946).
    #[arg(long, default_value = "0.0.0.0:7947")]
    pub memberlist_bind: std::net::SocketAddr,
    /// Write config/control-plane-vip.yaml, oxlb-control-plane.yaml (static pod) and
    /// oxlb-control-plane.service here instead of printing them.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The second chance (both `oxlb run` and `oxlb speaker`).
#[derive(Debug, Clone, clap::Args)]
pub struct SecondChanceArgs {
    /// Hand TCP connections that the router re-hashes to another node (a drain, a node
    /// failing or coming back) to the node that has them, so they are not reset: a
    /// node sends a copy of a packet of a connection it does not know to the other
    /// nodes on the link, and the one that knows it answers (nf_tables rules in table
    /// `ip oxlb` / `ip6 oxlb`, kept across restarts; needs CAP_NET_ADMIN). A connection
    /// no node knows is reset after about half a second instead of at once. `false`
    /// removes the tables.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub second_chance: bool,
    /// Second chance: at most this many copies per second (all connections together;
    /// bounds what a flood of stray packets can make the node send on its links).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub second_chance_rate: u32,
}

impl SecondChanceArgs {
    pub fn options(&self) -> oxlb_node::second_chance::Options {
        oxlb_node::second_chance::Options {
            enabled: self.second_chance,
            copies_per_second: self.second_chance_rate,
            manage_nf_tables: true,
        }
    }
}

/// A rate: a finite number above zero.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate above zero (e.g. 100 or 2.5)"
        )),
    }
}
