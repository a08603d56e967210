//! Login throttling: after too many failed sign-ins for one username, or
//! from one address, further attempts are refused with 429 for a while.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures counted within this window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_FAILURES_PER_USERNAME: usize = 5;
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// `Err(retry_after)` when the username or the address is locked out.
    pub fn check(&self, username: &str, address: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = Duration::ZERO;
        for (key, limit) in keys(username, address) {
            if let Some(times) = failures.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = *times.front().expect("non-empty at the limit");
                    wait = wait.max(WINDOW - now.duration_since(oldest));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    pub fn record_failure(&self, username: &str, address: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bound memory under a spray of random usernames: forget stale keys.
        if failures.len() > 10_000 {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        for (key, _) in keys(username, address) {
            failures.entry(key).or_default().push_back(now);
        }
    }

    /// A successful sign-in clears the username's failures (not the
    /// address's: one good password must not reset a guessing campaign).
    pub fn record_success(&self, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&username_key(username));
    }
}

fn username_key(username: &str) -> String {
    format!("user:{}", username.to_lowercase())
}

fn keys(username: &str, address: &str) -> [(String, usize); 2] {
    [
        (username_key(username), MAX_FAILURES_PER_USERNAME),
        (format!("addr:{address}"), MAX_FAILURES_PER_ADDRESS),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_locks_after_five_failures_and_success_clears_it() {
        let throttle = LoginThrottle::default();
        for _ in 0..MAX_FAILURES_PER_USERNAME {
            assert!(throttle.check("admin", "10.0.0.1").is_ok());
            throttle.record_failure("admin", "10.0.0.1");
        }
        let wait = throttle.check("ADMIN", "10.0.0.2").unwrap_err();
        assert!(wait <= WINDOW && wait > Duration::from_secs(60));
        assert!(throttle.check("someone-else", "10.0.0.2").is_ok());
        throttle.record_success("admin");
        assert!(throttle.check("admin", "10.0.0.2").is_ok());
    }

    #[test]
    fn an_address_locks_after_twenty_failures_across_usernames() {
        let throttle = LoginThrottle::default();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            throttle.record_failure(&format!("user{i}"), "192.0.2.9");
        }
        assert!(throttle.check("fresh-name", "192.0.2.9").is_err());
        assert!(throttle.check("fresh-name", "192.0.2.10").is_ok());
    }
}
