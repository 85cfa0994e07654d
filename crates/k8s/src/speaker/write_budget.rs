//! How fast one speaker may write its status objects (issue 22): a token bucket whose
//! rate is a cluster-wide budget shared by the live speakers, so the writes of the
//! whole cluster stay near that budget whether it has 3 nodes or 1,000. Sans-I/O: the
//! caller passes the time and sleeps.
//!
//! Only the status objects go through it: they say what is announced, the routes and
//! ARP answers do not wait for them. A burst (a new pool of 10,000 Services) is spread
//! over time instead of arriving at the API server from every node at once; what is
//! still pending when the wanted state changes again is re-planned from the newest
//! state, so repeated changes of one Service cost one write (client-go's work queues
//! coalesce the same way).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cluster-wide status writes per second, shared by the speakers (the API server's
/// default `--max-mutating-requests-inflight` is 200; status writes stay well under).
pub const DEFAULT_CLUSTER_WRITES_PER_SECOND: f64 = 100.0;
/// The least one speaker may write per second however many speakers share the budget
/// (at 1,000 speakers and the default budget, exactly their share).
pub const MIN_SPEAKER_WRITES_PER_SECOND: f64 = 0.1;
/// A speaker's burst: one second of its rate, and at least [`MIN_BURST`] (so the
/// whole cluster's first second is at most the budget or 6 requests a speaker).
const BURST_SECONDS: f64 = 1.0;
/// A Service starting on both protocols costs 6 requests (per protocol the object,
/// its status and the `nodeAssigned` event): one Service change is never delayed.
pub const MIN_BURST: f64 = 6.0;

/// One speaker's token bucket.
#[derive(Debug, Clone)]
pub struct WriteBudget {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl WriteBudget {
    /// A full bucket for this speaker's share of `cluster_per_second` among
    /// `speakers` live speakers.
    pub fn new(cluster_per_second: f64, speakers: usize, now: Instant) -> WriteBudget {
        let mut budget = WriteBudget {
            per_second: 0.0,
            burst: 0.0,
            tokens: 0.0,
            refilled_at: now,
        };
        budget.share(cluster_per_second, speakers);
        budget.tokens = budget.burst;
        budget
    }

    /// Sets this speaker's share (the number of live speakers changed); the tokens
    /// held stay, capped by the new burst.
    pub fn share(&mut self, cluster_per_second: f64, speakers: usize) {
        let speakers = speakers.max(1) as f64;
        let cluster = if cluster_per_second.is_finite() && cluster_per_second > 0.0 {
            cluster_per_second
        } else {
            DEFAULT_CLUSTER_WRITES_PER_SECOND
        };
        self.per_second = (cluster / speakers).max(MIN_SPEAKER_WRITES_PER_SECOND);
        self.burst = (self.per_second * BURST_SECONDS).max(MIN_BURST);
        self.tokens = self.tokens.min(self.burst);
    }

    /// This speaker's writes per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled_at = now;
    }

    /// Whole tokens held at `now`.
    pub fn available(&mut self, now: Instant) -> u32 {
        self.refill(now);
        // Bounded by the burst, a few thousand at most.
        self.tokens.floor().clamp(0.0, f64::from(u32::MAX)) as u32
    }

    /// Takes `requests` tokens if the bucket holds them; otherwise how long until it
    /// will (a write of more requests than the burst waits for a full bucket).
    pub fn take(&mut self, requests: u32, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        let wanted = f64::from(requests).min(self.burst);
        if self.tokens >= wanted {
            self.tokens -= wanted;
            return Ok(());
        }
        let missing = wanted - self.tokens;
        Err(Duration::from_secs_f64(missing / self.per_second))
    }
}

/// One speaker's budget, shared by its writers (both status kinds and the
/// `nodeAssigned` events) on the clock.
#[derive(Debug, Clone)]
pub struct SharedBudget(Arc<Mutex<WriteBudget>>);

impl SharedBudget {
    pub fn new(cluster_per_second: f64) -> SharedBudget {
        SharedBudget(Arc::new(Mutex::new(WriteBudget::new(
            cluster_per_second,
            1,
            tokio::time::Instant::now().into_std(),
        ))))
    }

    fn with<T>(&self, f: impl FnOnce(&mut WriteBudget) -> T) -> T {
        // A writer that panicked holding it left a valid bucket: go on with it.
        let mut budget = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut budget)
    }

    /// See [`WriteBudget::share`].
    pub fn share(&self, cluster_per_second: f64, speakers: usize) {
        self.with(|b| b.share(cluster_per_second, speakers));
    }

    /// Whole tokens held now.
    pub fn available(&self) -> u32 {
        self.with(|b| b.available(tokio::time::Instant::now().into_std()))
    }

    /// See [`WriteBudget::take`], now (tokio's clock, which tests can pause).
    pub fn take(&self, requests: u32) -> Result<(), Duration> {
        self.with(|b| b.take(requests, tokio::time::Instant::now().into_std()))
    }

    /// Waits until `requests` tokens are taken.
    pub async fn spend(&self, requests: u32) {
        while let Err(wait) = self.take(requests) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_pays_a_burst_then_the_rate_paces() {
        let start = Instant::now();
        // 3 speakers share 100/s: 33.3/s each, a burst of 33.3.
        let mut budget = WriteBudget::new(100.0, 3, start);
        assert!((budget.per_second() - 100.0 / 3.0).abs() < 1e-9);
        let mut paid = 0;
        while budget.take(1, start).is_ok() {
            paid += 1;
        }
        assert_eq!(paid, 33);
        // A third of a token left: 1.67 more at 33.3/s.
        let wait = budget.take(2, start).unwrap_err();
        assert!(wait > Duration::from_millis(49) && wait <= Duration::from_millis(51));
        assert!(budget.take(2, start + wait).is_ok());
    }

    #[test]
    fn many_speakers_share_the_budget_down_to_the_floor() {
        let now = Instant::now();
        let budget = WriteBudget::new(100.0, 1_000, now);
        assert!((budget.per_second() - 0.1).abs() < 1e-12);
        let budget = WriteBudget::new(100.0, 10_000, now);
        assert_eq!(budget.per_second(), MIN_SPEAKER_WRITES_PER_SECOND);
        let mut budget = WriteBudget::new(100.0, 10, now);
        assert_eq!(budget.per_second(), 10.0);
        // The burst shrinks with the share: 10 tokens, then a share of 1,000.
        budget.share(100.0, 1_000);
        let mut paid = 0;
        while budget.take(1, now).is_ok() {
            paid += 1;
        }
        assert_eq!(paid, MIN_BURST as usize);
    }

    #[test]
    fn nonsense_budgets_fall_back_to_the_default() {
        let now = Instant::now();
        for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            let budget = WriteBudget::new(bad, 1, now);
            assert_eq!(budget.per_second(), DEFAULT_CLUSTER_WRITES_PER_SECOND);
        }
        // No speakers counted yet: this one alone.
        assert_eq!(WriteBudget::new(50.0, 0, now).per_second(), 50.0);
    }

    #[test]
    fn a_write_larger_than_the_burst_waits_for_a_full_bucket_not_forever() {
        let now = Instant::now();
        // 1/s with a burst of 6.
        let mut budget = WriteBudget::new(1.0, 1, now);
        for _ in 0..6 {
            budget.take(1, now).unwrap();
        }
        let wait = budget.take(1_000, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(6));
        assert!(budget.take(1_000, now + wait).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_budget_paces_every_writer_on_the_clock() {
        let budget = SharedBudget::new(1.0);
        let other = budget.clone();
        let start = tokio::time::Instant::now();
        // The burst (6), then one per second for the two writers together.
        for _ in 0..6 {
            budget.spend(1).await;
            other.spend(1).await;
        }
        budget.spend(1).await;
        assert_eq!(start.elapsed(), Duration::from_secs(7));
    }
}
