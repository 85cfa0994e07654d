//! Leader election on a `coordination.k8s.io/v1` Lease, so that of the controller's
//! replicas exactly one writes. The decision is a pure function of the Lease and the
//! time; the shell reads and writes the Lease with optimistic concurrency (the
//! `resourceVersion` of what it read, so two replicas racing get one 409).
//!
//! Written here rather than with kube-lease-manager: the release on SIGTERM must happen
//! after the controller has stopped writing, and the shell must be drivable by the
//! mock API server tests request by request.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

/// What to do with the Lease as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// It is ours: renew it.
    Renew,
    /// Someone else holds it and it is fresh.
    Follow { holder: String },
}

/// The pure rule. An expired Lease (renewTime + leaseDurationSeconds in the past) is
/// free; so is one with no holder (released on shutdown).
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() {
        return Decision::Acquire;
    }
    if holder == me {
        return Decision::Renew;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref());
    match renewed {
        Some(MicroTime(at)) if *at + SignedDuration::from_secs(duration) > now => {
            Decision::Follow {
                holder: holder.to_string(),
            }
        }
        _ => Decision::Acquire,
    }
}

/// The Lease spec after `decision` (Acquire or Renew) by `me`.
pub fn next_spec(
    old: Option<&LeaseSpec>,
    me: &str,
    now: Timestamp,
    duration: Duration,
) -> LeaseSpec {
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX);
    let ours = old.and_then(|s| s.holder_identity.as_deref()) == Some(me);
    let transitions = old.and_then(|s| s.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(seconds),
        acquire_time: if ours {
            old.and_then(|s| s.acquire_time.clone())
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if ours || old.is_none() {
            transitions
        } else {
            transitions.saturating_add(1)
        }),
        ..LeaseSpec::default()
    }
}

/// Lease settings (client-go's defaults: 15 s lease, renew well before it expires).
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's name (the pod name).
    pub identity: String,
    pub duration: Duration,
    /// How often the leader renews and a follower retries.
    pub renew_every: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: &str, identity: &str) -> LeaseConfig {
        LeaseConfig {
            name: "oxlb-controller".to_string(),
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

/// Runs the election until `shutdown` turns true, publishing leadership on `leader`.
/// On shutdown a leader first publishes `false` (the controller stops writing), then
/// releases the Lease at once so the other replica takes over without waiting for it
/// to expire.
pub async fn run(
    client: Client,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    // A follower also watches the Lease: when the leader releases it (SIGTERM), the
    // follower tries at once instead of at its next poll.
    let mut changes: BoxStream<'static, ()> = watcher(
        api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={}", config.name)),
    )
    .default_backoff()
    .touched_objects()
    .map(|_| ())
    .boxed();
    // When we last renewed successfully: a leader that cannot renew steps down before
    // its Lease can expire and another replica takes over.
    let mut renewed_at: Option<Timestamp> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = Timestamp::now();
        match try_once(&api, &config, now).await {
            Ok(true) => renewed_at = Some(now),
            Ok(false) => renewed_at = None,
            Err(e) => tracing::warn!(error = %e, lease = %config.name, "lease renewal failed"),
        }
        let still_valid = renewed_at.is_some_and(|at| {
            let margin = config.duration.saturating_sub(config.renew_every);
            Timestamp::now() < at + SignedDuration::try_from(margin).unwrap_or_default()
        });
        if *leader.borrow() != still_valid {
            tracing::info!(leader = still_valid, identity = %config.identity, "leadership changed");
        }
        leader.send_if_modified(|l| std::mem::replace(l, still_valid) != still_valid);
        let wait = if still_valid {
            config.renew_every
        } else {
            config.renew_every.min(Duration::from_secs(2))
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = shutdown.changed() => break,
                change = changes.next() => match change {
                    // The leader's own renewals change the Lease too: only a follower
                    // acts on a change. The stream is polled either way, so the watch
                    // never backs up.
                    Some(()) if !still_valid => break,
                    Some(()) => {}
                    None => changes = futures::stream::pending().boxed(),
                },
            }
        }
    }
    let was_leader = *leader.borrow();
    leader.send_if_modified(|l| std::mem::replace(l, false));
    if was_leader && let Err(e) = release(&api, &config).await {
        tracing::warn!(error = %e, "releasing the lease failed; it expires on its own");
    }
}

/// One read-decide-write round. `Ok(true)`: we hold the Lease now.
async fn try_once(
    api: &Api<Lease>,
    config: &LeaseConfig,
    now: Timestamp,
) -> Result<bool, kube::Error> {
    let current = api.get_opt(&config.name).await?;
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    match decide(spec, &config.identity, now) {
        Decision::Follow { .. } => Ok(false),
        Decision::Acquire | Decision::Renew => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    resource_version: current
                        .as_ref()
                        .and_then(|l| l.metadata.resource_version.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(next_spec(spec, &config.identity, now, config.duration)),
            };
            let written = match current {
                None => api.create(&PostParams::default(), &lease).await,
                Some(_) => {
                    api.replace(&config.name, &PostParams::default(), &lease)
                        .await
                }
            };
            match written {
                Ok(_) => Ok(true),
                // Another replica wrote first (409 on replace, 409 AlreadyExists on create).
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// Gives the Lease up: no holder, so the next replica's first try acquires it.
async fn release(api: &Api<Lease>, config: &LeaseConfig) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace(&config.name, &PostParams::default(), &lease)
        .await?;
    tracing::info!(lease = %config.name, "lease released");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: Timestamp, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(seconds),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decides_from_holder_and_expiry() {
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let later = |s| t0 + SignedDuration::from_secs(s);
        assert_eq!(decide(None, "a", t0), Decision::Acquire);
        assert_eq!(
            decide(Some(&spec("a", t0, 15)), "a", later(100)),
            Decision::Renew
        );
        assert_eq!(
            decide(Some(&spec("b", t0, 15)), "a", later(14)),
            Decision::Follow { holder: "b".into() }
        );
        assert_eq!(
            decide(Some(&spec("b", t0, 15)), "a", later(15)),
            Decision::Acquire
        );
        assert_eq!(decide(Some(&spec("", t0, 15)), "a", t0), Decision::Acquire);
    }

    #[test]
    fn next_spec_counts_transitions_and_keeps_acquire_time() {
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let t1 = t0 + SignedDuration::from_secs(5);
        let taken = next_spec(Some(&spec("b", t0, 15)), "a", t1, Duration::from_secs(15));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(t1)));
        let renewed = next_spec(
            Some(&taken),
            "a",
            t1 + SignedDuration::from_secs(5),
            Duration::from_secs(15),
        );
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(MicroTime(t1)));
        assert_eq!(
            next_spec(None, "a", t0, Duration::from_secs(15)).lease_transitions,
            Some(0)
        );
    }
}
