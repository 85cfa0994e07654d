//! A test and benchmark helper until `oxlb run` wires Layer 2 mode: runs the responder
//! (and, with --members, the membership) in the current network namespace.
//!
//! oxlb-l2-probe --name N [--owned IP,...] [--ips IP,... --bind ADDR:PORT
//!               --members ADDR:PORT,... --secret-file F] [--interfaces IF,...]
//!               [--allow-veth]
//!
//! --owned: announce these IPs unconditionally (also with --members). --ips with --members: own each IP for
//! which this node wins MetalLB's election among the live members (lowest
//! sha256(name + "#" + ip)), while it has the quorum of `oxlb_announce::quorum`. Prints one line per ownership change:
//! `<unix time> owned <ips>`, and one per change of the quorum standing or of the peers
//! it does not count, with the reasons: `<unix time> standing <standing> excluded=<addr>:<why>,...
//! check_gap=<ms>` (never an ownership change: tests count only `owned` lines). SIGTERM or SIGINT: leaves the cluster, then exits.

fn main() {
    if let Err(error) = probe::run() {
        eprintln!("oxlb-l2-probe: {error}");
        std::process::exit(2);
    }
}

mod probe {
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::{IpAddr, SocketAddr};
    use std::time::SystemTime;

    use oxlb_l2::membership::{Membership, Tuning};
    use oxlb_l2::{OwnedIp, OwnedSet, Responder, Settings};

    struct Args {
        name: String,
        owned: Vec<IpAddr>,
        ips: Vec<IpAddr>,
        bind: Option<SocketAddr>,
        members: Vec<SocketAddr>,
        secret_file: Option<String>,
        interfaces: Vec<String>,
        allow_veth: bool,
    }

    fn list<T: std::str::FromStr>(value: &str) -> Result<Vec<T>, String> {
        value
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| format!("cannot parse {s:?}")))
            .collect()
    }

    fn parse_args() -> Result<Args, String> {
        let mut args = Args {
            name: String::new(),
            owned: Vec::new(),
            ips: Vec::new(),
            bind: None,
            members: Vec::new(),
            secret_file: None,
            interfaces: Vec::new(),
            allow_veth: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--allow-veth" {
                args.allow_veth = true;
                continue;
            }
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--name" => args.name = value,
                "--owned" => args.owned = list(&value)?,
                "--ips" => args.ips = list(&value)?,
                "--bind" => args.bind = Some(value.parse().map_err(|_| "bad --bind")?),
                "--members" => args.members = list(&value)?,
                "--secret-file" => args.secret_file = Some(value),
                "--interfaces" => args.interfaces = list(&value)?,
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        if args.name.is_empty() {
            return Err("--name is required".into());
        }
        Ok(args)
    }

    /// MetalLB's election (COMPAT.md): the live node with the lowest
    /// sha256(name + "#" + ip) owns the IP.
    fn owner<'a>(ip: &IpAddr, live: &'a BTreeSet<String>) -> Option<&'a str> {
        oxlb_announce::l2_owner(live.iter().map(String::as_str), ip)
    }

    fn owned_set(ips: &[IpAddr], interfaces: &[String]) -> OwnedSet {
        ips.iter()
            .map(|ip| {
                (
                    *ip,
                    OwnedIp {
                        interfaces: interfaces.to_vec(),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>()
    }

    fn unix_now() -> f64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    }

    fn report(ips: &OwnedSet) {
        let list: Vec<String> = ips.keys().map(|ip| ip.to_string()).collect();
        println!("{:.6} owned {}", unix_now(), list.join(","));
    }

    pub fn run() -> Result<(), String> {
        let args = parse_args()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(serve(args))
    }

    async fn serve(args: Args) -> Result<(), String> {
        let mut settings = Settings::default();
        if args.allow_veth {
            settings.exclude.retain(|r| r != "^veth");
        }
        let responder = Responder::start(settings).map_err(|e| format!("responder: {e}"))?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        let Some(bind) = args.bind else {
            let owned = owned_set(&args.owned, &args.interfaces);
            responder.set_owned(owned.clone());
            report(&owned);
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return Ok(());
        };
        let secret = match &args.secret_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| format!("{path}: {e}"))?),
            None => None,
        };
        let membership = Membership::start(
            &args.name,
            bind,
            args.members.clone(),
            secret.as_deref(),
            Tuning::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
        // The electorate: the live members, without this one while it may not claim
        // (no quorum, or not settled yet).
        let mut live = membership.watch_electorate();
        let mut quorum = membership.watch_quorum();
        loop {
            let members = live.borrow_and_update().clone();
            let mine: Vec<IpAddr> = args
                .ips
                .iter()
                .filter(|ip| owner(ip, &members) == Some(args.name.as_str()))
                .chain(&args.owned)
                .copied()
                .collect();
            let owned = owned_set(&mine, &args.interfaces);
            if owned != responder.owned() {
                responder.set_owned(owned.clone());
                report(&owned);
            }
            tokio::select! {
                changed = live.changed() => if changed.is_err() { break },
                changed = quorum.changed() => {
                    if changed.is_err() { break }
                    let report = quorum.borrow_and_update().clone();
                    let stats = membership.stats();
                    println!(
                        "{:.6} {report} lost_total={} no_beat={} beat_stale={} echo_stale={}",
                        unix_now(),
                        stats.quorum_lost,
                        stats.excluded_no_beat,
                        stats.excluded_beat_stale,
                        stats.excluded_echo_stale
                    );
                }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        responder.set_owned(OwnedSet::new());
        membership.leave().await;
        Ok(())
    }
}
