use std::time::{Duration, Instant};

/// Polls `probe` every `every` until it returns `Some` or `timeout` passes. For tests
/// that wait for a router to converge: a generous timeout, never a timed assertion.
pub fn wait_until<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}
