//! `oxlb drain` hands Layer 2 IPs over (issue 19): three nodes on a LAN bridge run
//! `oxlb run` (membership on, kernel defaults); the drain reaches the other speakers
//! with the authenticated health news, and they elect an owner that is not drained.
//! A LAN client samples the ARP answers all along (a request every 100 ms, the replies
//! captured with tcpdump and counted per request, see [`Sampler`]): after `oxlb drain` on the owner another node
//! answers and the drained one no longer does, never two answerers to one request;
//! `oxlb undrain` gives the IP back to the election's own choice; with every node
//! drained one node still answers (the rule in crates/announce/src/election.rs).
//! The take-over times are printed (figures, not assertions).
//!
//! Needs root and arping (`OXLB_SKIP_NETNS=1` skips).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use oxlb_netlab::{netns_tests_enabled, wait_until};

const VIP: &str = "10.77.0.201";

/// ARP sampling from the LAN client: arping sends a request for [`VIP`] every 100 ms
/// while tcpdump records every ARP frame on the client's link. A sample is one request
/// and the unicast replies to the client that follow it before the next request: two
/// MACs in one sample are two answerers to the same request. (Gratuitous ARP, which a
/// new owner broadcasts, is not an answer and is left out: its destination is the
/// broadcast address.)
struct Sampler {
    arping: std::process::Child,
    tcpdump: std::process::Child,
    capture: std::path::PathBuf,
    client_mac: String,
}

impl Sampler {
    fn start(client: &str, client_mac: &str, capture: std::path::PathBuf) -> Sampler {
        let file = std::fs::File::create(&capture).unwrap();
        let tcpdump = std::process::Command::new("ip")
            .args([
                "netns", "exec", client, "tcpdump", "-i", "lan0", "-l", "-n", "-e", "-tt", "-U",
                "arp",
            ])
            .stdout(file)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // tcpdump listens once its link is open; a few samples lost at the start do
        // not matter (the owner is known to answer alone by then).
        std::thread::sleep(Duration::from_millis(500));
        let arping = std::process::Command::new("ip")
            .args([
                "netns", "exec", client, "arping", "-q", "-i", "lan0", "-W", "0.1", VIP,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Sampler {
            arping,
            tcpdump,
            capture,
            client_mac: client_mac.to_string(),
        }
    }

    /// Stops both (processes this test started) and returns the samples: when each
    /// request went (seconds since the epoch) and the MACs that answered it.
    fn finish(mut self) -> Vec<(f64, BTreeSet<String>)> {
        let _ = self.arping.kill();
        let _ = self.arping.wait();
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.tcpdump.kill();
        let _ = self.tcpdump.wait();
        let text = std::fs::read_to_string(&self.capture).unwrap_or_default();
        samples_of(&text, &self.client_mac)
    }
}

fn samples_of(capture: &str, client_mac: &str) -> Vec<(f64, BTreeSet<String>)> {
    let mut samples: Vec<(f64, BTreeSet<String>)> = Vec::new();
    for line in capture.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(at), Some(src), Some(dst)) = (
            words.first().and_then(|t| t.parse::<f64>().ok()),
            words.get(1),
            words.get(3).map(|d| d.trim_end_matches(',')),
        ) else {
            continue;
        };
        let request = line.contains(&format!("Request who-has {VIP} tell"));
        let reply = line.contains(&format!("Reply {VIP} is-at"));
        if request && src.eq_ignore_ascii_case(client_mac) {
            samples.push((at, BTreeSet::new()));
        } else if reply
            && dst.eq_ignore_ascii_case(client_mac)
            && let Some((_, macs)) = samples.last_mut()
        {
            macs.insert(src.to_lowercase());
        }
    }
    samples
}

fn epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The sender MACs of the replies to ARP requests for [`VIP`] (three, 100 ms apart).
fn arp_answers(client: &str) -> BTreeSet<String> {
    let out = std::process::Command::new("ip")
        .args([
            "netns", "exec", client, "arping", "-i", "lan0", "-c", "3", "-W", "0.1", "-w", "1", VIP,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "from")?;
            words.get(at + 1).map(|m| m.to_lowercase())
        })
        .collect()
}

fn owners(topo: &Topo) -> Vec<usize> {
    (0..topo.nodes.len())
        .filter(|i| {
            topo.status(*i).is_some_and(|s| {
                s["l2"]
                    .as_array()
                    .is_some_and(|l2| l2.iter().any(|e| e["ip"] == VIP))
            })
        })
        .collect()
}

/// Waits until exactly one node says it answers for [`VIP`] and it satisfies `want`.
fn wait_owner(topo: &Topo, want: impl Fn(usize) -> bool) -> usize {
    wait_until(CONVERGE, Duration::from_millis(20), || {
        let found = owners(topo);
        (found.len() == 1 && want(found[0])).then(|| found[0])
    })
    .unwrap_or_else(|| panic!("Layer 2 owners: {:?}\n{}", owners(topo), topo.logs()))
}

/// Waits until ARP requests are answered by `mac` alone.
fn wait_answerer(topo: &Topo, client: &str, mac: &str) {
    let want = BTreeSet::from([mac.to_string()]);
    let ok = wait_until(CONVERGE, Duration::from_millis(50), || {
        (arp_answers(client) == want).then_some(())
    });
    assert!(ok.is_some(), "{mac} never answered alone\n{}", topo.logs());
}

fn not_announced(topo: &Topo, i: usize) -> String {
    topo.status(i)
        .map(|s| {
            s["services"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|svc| svc["service"] == "default/api")
                .map(|svc| svc["not_announced"].to_string())
                .collect::<String>()
        })
        .unwrap_or_default()
}

fn lan_mac(topo: &Topo, i: usize) -> String {
    topo.nodes[i]
        .ns
        .exec_stdout(&["cat", "/sys/class/net/lan0/address"])
        .unwrap()
        .trim()
        .to_lowercase()
}

/// When the first request after `after` was answered by `mac` alone.
fn first_sample_of(samples: &[(f64, BTreeSet<String>)], after: f64, mac: &str) -> Option<f64> {
    samples
        .iter()
        .filter(|(at, _)| *at >= after)
        .find(|(_, macs)| macs.len() == 1 && macs.contains(mac))
        .map(|(at, _)| *at)
}

#[test]
fn oxlb_drain_hands_layer2_ips_to_a_node_that_is_not_drained() {
    if !netns_tests_enabled("drain_l2").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut topo = Topo::build_dual_tagged("kd", 3);
    topo.write_config("metallb.yaml", &l2_yaml(&topo));
    for i in 0..3 {
        topo.start_run(i);
    }
    let client = topo.client.take().expect("a LAN client");
    let client_name = client.name().to_string();
    let macs: Vec<String> = (0..3).map(|i| lan_mac(&topo, i)).collect();

    let owner = wait_owner(&topo, |_| true);
    wait_answerer(&topo, &client_name, &macs[owner]);
    let client_mac = client
        .exec_stdout(&["cat", "/sys/class/net/lan0/address"])
        .unwrap()
        .trim()
        .to_lowercase();
    let sampler = Sampler::start(&client_name, &client_mac, topo.dir.0.join("arp.txt"));
    std::thread::sleep(Duration::from_millis(1000));

    // Drain the owner: another node takes over, the drained one stops answering.
    let drained_at = epoch();
    let said = topo
        .oxlb(owner, &["drain", "--addr", LISTEN])
        .unwrap_or_else(|e| panic!("{e}\n{}", topo.logs()));
    assert!(said.contains("drained"), "{said}");
    let successor = wait_owner(&topo, |o| o != owner);
    let elected = epoch() - drained_at;
    wait_answerer(&topo, &client_name, &macs[successor]);
    let reasons = not_announced(&topo, owner);
    assert!(reasons.contains("node_drained"), "{reasons}");
    std::thread::sleep(Duration::from_secs(2));

    // Undrain: the election's own choice (the old owner) again.
    let undrained_at = epoch();
    let said = topo.oxlb(owner, &["undrain", "--addr", LISTEN]).unwrap();
    assert!(said.contains("undrained"), "{said}");
    wait_owner(&topo, |o| o == owner);
    let back_elected = epoch() - undrained_at;
    wait_answerer(&topo, &client_name, &macs[owner]);
    std::thread::sleep(Duration::from_secs(1));

    // Every node drained: one still answers, the election's own choice.
    let all_drained_at = epoch();
    for i in 0..3 {
        topo.oxlb(i, &["drain", "--addr", LISTEN]).unwrap();
    }
    // Every node has heard of every drain (each elects without the others' news
    // otherwise), then exactly one owner.
    let heard = wait_until(CONVERGE, Duration::from_millis(50), || {
        (0..3)
            .all(|i| {
                topo.status(i).is_some_and(|s| {
                    s["drain"]["drained"] == true
                        && s["services"].as_array().is_some_and(|services| {
                            services.iter().all(|svc| {
                                !svc["not_announced"].to_string().contains("node_drained")
                            })
                        })
                })
            })
            .then_some(())
    });
    assert!(heard.is_some(), "{}", topo.logs());
    let all_owner = wait_owner(&topo, |_| true);
    assert_eq!(
        all_owner, owner,
        "every node drained: the election's own choice"
    );
    wait_answerer(&topo, &client_name, &macs[owner]);
    let all_undrained_at = epoch();
    for i in 0..3 {
        topo.oxlb(i, &["undrain", "--addr", LISTEN]).unwrap();
    }
    wait_owner(&topo, |o| o == owner);
    std::thread::sleep(Duration::from_secs(2));
    let samples = sampler.finish();

    let took = |from: f64, mac: &str| first_sample_of(&samples, from, mac).map(|t| t - from);
    eprintln!(
        "drain of {}: {} elected after {:.0} ms (status poll), first request answered by it alone \
         after {:?} s (ARP capture); undrain: {} owner again after {:.0} ms, answering alone after {:?} s",
        topo.nodes[owner].name,
        topo.nodes[successor].name,
        elected * 1000.0,
        took(drained_at, &macs[successor]),
        topo.nodes[owner].name,
        back_elected * 1000.0,
        took(undrained_at, &macs[owner]),
    );
    let unanswered: Vec<f64> = samples
        .iter()
        .filter(|(_, m)| m.is_empty())
        .map(|(at, _)| at - drained_at)
        .collect();
    let doubles: Vec<_> = samples
        .iter()
        .filter(|(_, m)| m.len() > 1)
        .map(|(at, m)| (at - drained_at, m.clone()))
        .collect();
    eprintln!(
        "ARP samples: {} requests, unanswered {} (at {:?} s after the drain), two or more \
         answerers {}; all drained at +{:.1} s, all undrained at +{:.1} s",
        samples.len(),
        unanswered.len(),
        unanswered,
        doubles.len(),
        all_drained_at - drained_at,
        all_undrained_at - drained_at
    );
    assert!(samples.len() > 50, "too few ARP samples: {}", samples.len());
    assert!(
        doubles.is_empty(),
        "two answerers to one request: {doubles:?}"
    );
    // While drained (from the successor's first answer until the undrain), the drained
    // node never answered.
    let takeover = first_sample_of(&samples, drained_at, &macs[successor]).unwrap();
    let drained_answers = samples
        .iter()
        .filter(|(at, _)| *at >= takeover && *at < undrained_at)
        .filter(|(_, m)| m.contains(&macs[owner]))
        .count();
    assert_eq!(drained_answers, 0, "the drained node answered");
    drop(client);
}

fn l2_yaml(topo: &Topo) -> String {
    let nodes = topo.node_objects_yaml();
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: lan
  namespace: metallb-system
spec:
  addresses:
    - {VIP}/32
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: lan
  namespace: metallb-system
---
apiVersion: v1
kind: Secret
metadata:
  name: memberlist
  namespace: metallb-system
stringData:
  secretkey: kd-drain-l2-test-key-not-secret
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: default
spec:
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 80
{nodes}"
    )
}
