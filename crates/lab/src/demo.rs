//! `oxlb lab demo`: up with the built-in configuration, status, curl every service from
//! the workstation, fail a node and show traffic still flowing, down. Every check is
//! printed as it passes or fails; the result is Err unless all passed.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use oxlb_netlab::wait_until;

use crate::error::Error;
use crate::exec::run_in;
use crate::plan::{DEFAULT_BGP_SERVICE_IP, DEFAULT_L2_SERVICE_IP};
use crate::{Lab, LabOptions};

/// How long to wait for a route, a withdrawal or a failover before a check fails.
const CONVERGE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Also check the Layer 2 service (ARP answered by one node, failover on `fail`).
    pub check_layer2: bool,
}

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        DemoOptions { check_layer2: true }
    }
}

/// Runs the whole demo; `options.config` is ignored (the demo uses the built-in config).
/// Progress goes to `out`. The lab is removed at the end, whatever happened.
pub fn demo(mut options: LabOptions, demo: DemoOptions, out: &mut dyn Write) -> Result<(), Error> {
    let started = Instant::now();
    options.config = Vec::new();
    if demo.check_layer2 {
        crate::preflight::check_arping()?;
    }
    let _ = writeln!(
        out,
        "[1/6] building the lab: workstation, {} router, LAN, {} nodes running oxlb",
        options.router.name(),
        options.nodes
    );
    let lab = Lab::up(options)?;
    let _ = write!(out, "{}", lab.describe());
    let mut run = Run {
        out,
        failures: Vec::new(),
    };
    run.checks(&lab, &demo);
    let _ = writeln!(run.out, "[6/6] removing the lab");
    if let Err(e) = lab.down() {
        run.failures.push(format!("lab down: {e}"));
    }
    let _ = writeln!(
        run.out,
        "demo finished in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        if run.failures.is_empty() {
            "every check passed".to_string()
        } else {
            format!("{} check(s) FAILED", run.failures.len())
        }
    );
    if run.failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Checks(run.failures))
    }
}

struct Run<'a> {
    out: &'a mut dyn Write,
    failures: Vec<String>,
}

impl Run<'_> {
    fn check(&mut self, ok: bool, what: String) -> bool {
        let _ = writeln!(self.out, "  {} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.failures.push(what);
        }
        ok
    }

    fn checks(&mut self, lab: &Lab, demo: &DemoOptions) {
        let nodes: Vec<String> = lab.state().nodes.iter().map(|n| n.ipv4.clone()).collect();
        let bgp_ip = IpAddr::V4(DEFAULT_BGP_SERVICE_IP);
        let l2_ip = IpAddr::V4(DEFAULT_L2_SERVICE_IP);

        let _ = writeln!(
            self.out,
            "[2/6] waiting for the router to learn {bgp_ip} from every node (BGP, ECMP)"
        );
        let t = Instant::now();
        let all = wait_until(CONVERGE, Duration::from_millis(250), || {
            let hops = next_hops(lab, bgp_ip);
            nodes.iter().all(|n| hops.contains(n)).then_some(hops)
        });
        let hops = next_hops(lab, bgp_ip);
        self.check(
            all.is_some(),
            format!(
                "router route to {bgp_ip} via {} of {} nodes [{}] ({:.1} s)",
                hops.len(),
                nodes.len(),
                hops.join(", "),
                t.elapsed().as_secs_f64()
            ),
        );
        let all_nodes: Vec<String> = lab.state().nodes.iter().map(|n| n.name.clone()).collect();
        let mut l2_owner = None;
        if demo.check_layer2 {
            let _ = writeln!(
                self.out,
                "  Layer 2: ARP for {l2_ip} from the router; exactly one node may answer"
            );
            l2_owner = self.one_l2_owner(lab, l2_ip, &all_nodes, None, "");
            let t = Instant::now();
            let answered = wait_until(CONVERGE, Duration::from_millis(250), || {
                lab.curl(l2_ip).ok()
            });
            self.check(
                answered.is_some(),
                format!(
                    "{l2_ip} answers HTTP on the LAN (Layer 2) ({:.1} s)",
                    t.elapsed().as_secs_f64()
                ),
            );
        }

        let _ = writeln!(self.out, "[3/6] lab status");
        let _ = write!(self.out, "{}", lab.status());

        let _ = writeln!(
            self.out,
            "[4/6] curl from the workstation, through the router"
        );
        let rounds = nodes.len() * 3;
        self.curl_all(lab, bgp_ip, rounds, None);
        let mut victim = lab
            .state()
            .nodes
            .first()
            .map(|n| n.name.clone())
            .unwrap_or_default();
        if demo.check_layer2 {
            let served = self.curl_all(lab, l2_ip, 3, None);
            let owner = l2_owner.clone().unwrap_or_default();
            self.check(
                served.len() == 1 && served.contains(&owner),
                format!(
                    "curl http://{l2_ip}/ reached the Layer 2 owner {owner} only (served by [{}])",
                    served
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            // Fail the Layer 2 owner, so the failover is visible.
            if let Some(owner) = l2_owner.clone() {
                victim = owner;
            }
        }

        let _ = writeln!(
            self.out,
            "[5/6] failing {victim} (its LAN link goes down); traffic must keep flowing"
        );
        if let Err(e) = lab.fail(&victim) {
            self.check(false, format!("lab fail {victim}: {e}"));
            return;
        }
        let failed_at = Instant::now();
        let survivors: Vec<String> = all_nodes
            .iter()
            .filter(|n| **n != victim)
            .cloned()
            .collect();
        if demo.check_layer2 && !survivors.is_empty() {
            self.one_l2_owner(
                lab,
                l2_ip,
                &survivors,
                Some((&victim, failed_at)),
                "after the failure: ",
            );
        }
        let victim_ip = lab
            .node(&victim)
            .map(|n| n.ipv4.clone())
            .unwrap_or_default();
        let t = Instant::now();
        let withdrawn = wait_until(CONVERGE, Duration::from_millis(250), || {
            let hops = next_hops(lab, bgp_ip);
            (!hops.is_empty() && !hops.contains(&victim_ip)).then_some(hops)
        });
        self.check(
            withdrawn.is_some() || nodes.len() == 1,
            format!(
                "router withdrew {victim}'s path to {bgp_ip}: now via [{}] ({:.1} s)",
                next_hops(lab, bgp_ip).join(", "),
                t.elapsed().as_secs_f64()
            ),
        );
        if nodes.len() > 1 {
            self.curl_all(lab, bgp_ip, rounds, Some(&victim));
            if demo.check_layer2 {
                let t = Instant::now();
                let moved = wait_until(CONVERGE, Duration::from_millis(250), || {
                    lab.curl(l2_ip)
                        .ok()
                        .map(|b| b.trim().to_string())
                        .filter(|b| *b != victim)
                });
                self.check(
                    moved.is_some(),
                    format!(
                        "{l2_ip} failed over to {} ({:.1} s)",
                        moved.as_deref().unwrap_or("no node"),
                        t.elapsed().as_secs_f64()
                    ),
                );
            }
        }
        if let Err(e) = lab.heal(&victim) {
            self.check(false, format!("lab heal {victim}: {e}"));
        } else {
            let _ = writeln!(self.out, "  healed {victim}");
            if demo.check_layer2 && nodes.len() > 1 {
                // The healed node rejoins the membership; the election gives the IP back
                // to it, and again only one node answers.
                self.one_l2_owner(
                    lab,
                    l2_ip,
                    &all_nodes,
                    Some((&victim, Instant::now())),
                    "after healing: ",
                );
            }
        }
    }

    /// Waits until exactly one node answers ARP for `ip` on the LAN and it is the node
    /// the election picks among `candidates`, then checks that the candidates' own
    /// status agrees (only that node claims the IP). `failed`: a node whose link was cut
    /// at that instant (its time is the failover time; while cut off it cannot hear the
    /// others and may still claim the IP, which the LAN never sees). Returns the owner.
    fn one_l2_owner(
        &mut self,
        lab: &Lab,
        ip: IpAddr,
        candidates: &[String],
        failed: Option<(&str, Instant)>,
        when: &str,
    ) -> Option<String> {
        let IpAddr::V4(v4) = ip else {
            return None;
        };
        let expected = lab.l2_elected(candidates.iter().map(String::as_str), ip)?;
        let start = failed.map_or_else(Instant::now, |(_, at)| at);
        let mut last = BTreeSet::new();
        let mut polls = 0u32;
        let one = wait_until(CONVERGE, Duration::from_millis(50), || {
            polls += 1;
            last = lab
                .arp_answerers(v4)
                .unwrap_or_else(|e| BTreeSet::from([e.to_string()]));
            (last.len() == 1 && last.contains(&expected)).then_some(())
        });
        let took = start.elapsed().as_secs_f64();
        let answered: Vec<&str> = last.iter().map(String::as_str).collect();
        self.check(
            one.is_some(),
            format!(
                "{when}exactly one node answers ARP for {ip}: [{}], the one the election \
                 picks among [{}]: {expected} ({took:.1} s{})",
                answered.join(", "),
                candidates.join(", "),
                match failed {
                    Some((node, _)) if when.starts_with("after the failure") => format!(
                        " after cutting {node}'s link = measured failover time, {polls} ARP polls"
                    ),
                    _ => String::new(),
                }
            ),
        );
        let claims = lab.l2_claims().remove(&ip).unwrap_or_default();
        let claimed: BTreeSet<&String> = claims.iter().filter(|n| candidates.contains(n)).collect();
        let cut_off = failed
            .filter(|(node, _)| !candidates.iter().any(|c| c == node) && claims.contains(*node))
            .map(|(node, _)| {
                format!(" ({node}, cut off, still claims it: it cannot hear the others)")
            })
            .unwrap_or_default();
        self.check(
            claimed.len() == 1 && claimed.contains(&expected),
            format!(
                "{when}oxlb status: {ip} owned by [{}]{cut_off}",
                claimed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        one.map(|()| expected)
    }

    /// `rounds` GETs of `ip`; every one must be answered by a node (not `avoid`).
    /// Returns the nodes that answered.
    fn curl_all(
        &mut self,
        lab: &Lab,
        ip: IpAddr,
        rounds: usize,
        avoid: Option<&str>,
    ) -> BTreeSet<String> {
        let names: BTreeSet<&str> = lab.state().nodes.iter().map(|n| n.name.as_str()).collect();
        let mut served = BTreeSet::new();
        let mut good = 0;
        let mut errors = Vec::new();
        for _ in 0..rounds {
            match lab.curl(ip) {
                Ok(body) => {
                    let body = body.trim().to_string();
                    if names.contains(body.as_str()) && Some(body.as_str()) != avoid {
                        good += 1;
                    } else {
                        errors.push(format!("answered {body:?}"));
                    }
                    served.insert(body);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let served_list: Vec<&str> = served.iter().map(String::as_str).collect();
        self.check(
            good == rounds,
            format!(
                "curl http://{ip}/ : {good}/{rounds} answered{} by [{}]{}",
                avoid.map(|v| format!(" (not {v})")).unwrap_or_default(),
                served_list.join(", "),
                errors.first().map(|e| format!("; {e}")).unwrap_or_default()
            ),
        );
        served
    }
}

/// The router's kernel next hops for `ip` (one per ECMP path).
fn next_hops(lab: &Lab, ip: IpAddr) -> Vec<String> {
    let text = run_in(
        &lab.state().router_namespace,
        &["ip", "route", "show", &ip.to_string()],
    )
    .unwrap_or_default();
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect()
}
