//! Table-driven cases: every rule of COMPAT.md's Services section, messages exact.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::*;
use k8s_openapi::api::core::v1::Namespace;
use oxlb_config::Config;
use oxlb_controller::Change;

pub enum Step {
    Up(Svc),
    Del(&'static str),
    Cfg(Config),
    Ns(Namespace),
}

pub type Ev = (&'static str, &'static str, &'static str);

struct Expect {
    key: &'static str,
    ingress: &'static [&'static str],
    pool: Option<&'static str>,
    events: Vec<Ev>,
}

pub struct Case {
    name: &'static str,
    config: Config,
    class: Option<&'static str>,
    namespaces: Vec<Namespace>,
    sync: Vec<Svc>,
    then: Vec<Step>,
    expect: Vec<Expect>,
    /// (pool, [assigned v4, assigned v6, available v4, available v6])
    counters: Vec<(&'static str, [u128; 4])>,
}

fn case(name: &'static str, config: Config) -> Case {
    Case {
        name,
        config,
        class: None,
        namespaces: vec![],
        sync: vec![],
        then: vec![],
        expect: vec![],
        counters: vec![],
    }
}

impl Case {
    fn sync(mut self, s: Vec<Svc>) -> Self {
        self.sync = s;
        self
    }
    fn then(mut self, s: Step) -> Self {
        self.then.push(s);
        self
    }
    fn ns(mut self, n: Namespace) -> Self {
        self.namespaces.push(n);
        self
    }
    fn class(mut self, c: &'static str) -> Self {
        self.class = Some(c);
        self
    }
    /// After the last step: `key` holds `ingress` from `pool` and got exactly `events`.
    fn expect(
        mut self,
        key: &'static str,
        ingress: &'static [&'static str],
        events: Vec<Ev>,
    ) -> Self {
        let pool = None;
        self.expect.push(Expect {
            key,
            ingress,
            pool,
            events,
        });
        self
    }
    fn expect_pool(
        mut self,
        key: &'static str,
        ingress: &'static [&'static str],
        pool: &'static str,
        events: Vec<Ev>,
    ) -> Self {
        self.expect.push(Expect {
            key,
            ingress,
            pool: Some(pool),
            events,
        });
        self
    }
    fn counters(mut self, pool: &'static str, c: [u128; 4]) -> Self {
        self.counters.push((pool, c));
        self
    }
}

fn allocated(msg: &'static str) -> Ev {
    ("IPAllocated", "Normal", msg)
}
fn failed(msg: &'static str) -> Ev {
    ("AllocationFailed", "Warning", msg)
}
fn cleared(msg: &'static str) -> Ev {
    ("ClearAssignment", "Normal", msg)
}
fn deprecated(msg: &'static str) -> Ev {
    ("deprecatedAnnotation", "Warning", msg)
}

fn run(case: Case) -> Result<(), String> {
    let mut cluster = Cluster::with_class(case.config.clone(), case.class);
    cluster.namespaces = case.namespaces.clone();
    let mut outcome = cluster.sync(case.sync);
    for step in case.then {
        outcome = match step {
            Step::Up(s) => cluster.upsert(s),
            Step::Del(k) => cluster.delete(k),
            Step::Cfg(c) => cluster.set_config(c),
            Step::Ns(n) => {
                cluster
                    .namespaces
                    .retain(|x| x.metadata.name != n.metadata.name);
                cluster.namespaces.push(n.clone());
                cluster.apply(vec![Change::UpsertNamespace(Box::new(n))])
            }
        };
    }
    for e in &case.expect {
        let ingress = cluster.ingress(e.key);
        if ingress != e.ingress {
            return Err(format!(
                "{}: ingress {:?}, want {:?}",
                e.key, ingress, e.ingress
            ));
        }
        if let Some(pool) = e.pool
            && cluster.pool_of(e.key).as_deref() != Some(pool)
        {
            return Err(format!(
                "{}: pool {:?}, want {pool}",
                e.key,
                cluster.pool_of(e.key)
            ));
        }
        let got: Vec<(String, String, String)> = outcome
            .services
            .get(e.key)
            .map(|s| {
                s.events
                    .iter()
                    .map(|ev| {
                        (
                            ev.reason.as_str().to_string(),
                            ev.event_type.as_str().to_string(),
                            ev.message.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let want: Vec<(String, String, String)> = e
            .events
            .iter()
            .map(|(r, t, m)| (r.to_string(), t.to_string(), m.to_string()))
            .collect();
        if got != want {
            return Err(format!(
                "{}: events\n  got  {got:#?}\n  want {want:#?}",
                e.key
            ));
        }
    }
    for (pool, want) in &case.counters {
        let c = outcome.pools.get(*pool).copied().unwrap_or_default();
        let got = [
            c.assigned_ipv4,
            c.assigned_ipv6,
            c.available_ipv4,
            c.available_ipv6,
        ];
        if got != *want {
            return Err(format!("counters of {pool}: {got:?}, want {want:?}"));
        }
    }
    if case.class.is_none() {
        cluster.restart_check();
    }
    Ok(())
}

#[test]
fn table() {
    let cases = cases();
    let count = cases.len();
    assert!(count >= 80, "only {count} cases");
    let mut failures = Vec::new();
    for c in cases {
        let name = c.name;
        if let Err(e) = run(c) {
            failures.push(format!("[{name}] {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn v4pool() -> Config {
    config(vec![pool("p", &["10.0.0.0/30"])])
}

fn dualpool() -> Config {
    config(vec![pool("p", &["10.0.0.0/30", "fc00::/126"])])
}

mod table_cases;
use table_cases::cases;
