//! Sign-in throttling, against guessing without locking anyone out.
//!
//! **Counted before it is checked.** [`LoginThrottle::begin`] decides and
//! records the attempt under one lock, before the password is verified, so
//! concurrent sign-ins cannot all pass the check before any failure is
//! counted; a success then takes its attempt back.
//!
//! **Back-off per username and client.** A username gets
//! [`FREE_FAILURES`] failed attempts from one client (an IPv4 address, or
//! an IPv6 /64); after that each further attempt from that client waits
//! twice as long as the one before (1 min, 2, 4, 8, then [`MAX_BACKOFF`]). The same username from another client is not
//! affected, so a guesser cannot lock the real admin out.
//!
//! **Per client.** One client gets [`MAX_FAILURES_PER_CLIENT`] failures
//! across all usernames within [`WINDOW`]; then it waits until the oldest
//! is out of the window. (The login rate limit per address, in
//! `web::rate_limit`, bounds the attempts on top of this.)
//!
//! Entries not touched for a [`WINDOW`] are forgotten.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures per client are counted within this window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed attempts of one username from one client before back-off.
pub const FREE_FAILURES: u32 = 5;
/// The first back-off, after [`FREE_FAILURES`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Failed attempts of one client, across usernames, within [`WINDOW`].
pub const MAX_FAILURES_PER_CLIENT: usize = 20;

/// Who signs in from where: the address bucket (`rate_limit::client_bucket`),
/// or None when no address is known (in-process tests).
pub type Client = Option<IpAddr>;

#[derive(Debug)]
struct PairState {
    failures: u32,
    last: Instant,
}

#[derive(Debug, Default)]
struct State {
    pairs: HashMap<(String, Client), PairState>,
    clients: HashMap<Client, VecDeque<Instant>>,
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    state: Mutex<State>,
}

/// An attempt counted as a failure until [`LoginThrottle::succeeded`].
#[derive(Debug)]
pub struct Attempt {
    key: (String, Client),
    at: Instant,
}

/// The wait after `failures` failures of one username from one client.
fn backoff(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(over) => (FIRST_BACKOFF * (1u32 << over.min(16))).min(MAX_BACKOFF),
    }
}

impl LoginThrottle {
    /// Counts an attempt of `username` from `client`, or refuses it with
    /// the time to wait.
    pub fn begin(&self, username: &str, client: Client) -> Result<Attempt, Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.forget_stale(now);
        let key = (username.to_lowercase(), client);
        let mut wait = Duration::ZERO;
        if let Some(pair) = state.pairs.get(&key) {
            let until = pair.last + backoff(pair.failures);
            wait = wait.max(until.saturating_duration_since(now));
        }
        let times = state.clients.entry(client).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= MAX_FAILURES_PER_CLIENT {
            let oldest = *times.front().expect("non-empty at the limit");
            wait = wait.max(WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        if !wait.is_zero() {
            return Err(wait.max(Duration::from_secs(1)));
        }
        times.push_back(now);
        let pair = state.pairs.entry(key.clone()).or_insert(PairState {
            failures: 0,
            last: now,
        });
        pair.failures = pair.failures.saturating_add(1);
        pair.last = now;
        Ok(Attempt { key, at: now })
    }

    /// The attempt was right: it is no failure, and the username's back-off
    /// from this client starts again.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.pairs.remove(&attempt.key);
        if let Some(times) = state.clients.get_mut(&attempt.key.1) {
            if let Some(at) = times.iter().rposition(|t| *t == attempt.at) {
                times.remove(at);
            }
        }
    }
}

impl State {
    /// Bounds memory under a spray of usernames or addresses.
    fn forget_stale(&mut self, now: Instant) {
        if self.pairs.len() + self.clients.len() < 10_000 {
            return;
        }
        self.pairs
            .retain(|_, pair| now.duration_since(pair.last) < WINDOW.max(MAX_BACKOFF));
        self.clients.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < WINDOW)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Client {
        Some(text.parse().unwrap())
    }

    #[test]
    fn a_username_backs_off_after_five_failures_from_one_client_only() {
        let throttle = LoginThrottle::default();
        for _ in 0..FREE_FAILURES {
            throttle
                .begin("admin", ip("10.0.0.1"))
                .expect("a free attempt");
        }
        let wait = throttle.begin("ADMIN", ip("10.0.0.1")).unwrap_err();
        assert!(
            wait >= Duration::from_secs(1) && wait <= MAX_BACKOFF,
            "{wait:?}"
        );
        // The real admin, elsewhere, is not locked out.
        let attempt = throttle
            .begin("admin", ip("10.0.0.2"))
            .expect("another client");
        throttle.succeeded(attempt);
        assert!(throttle.begin("someone-else", ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(backoff(FREE_FAILURES), Duration::from_secs(60));
        assert_eq!(backoff(FREE_FAILURES + 1), Duration::from_secs(120));
        assert_eq!(backoff(FREE_FAILURES + 3), Duration::from_secs(480));
        assert_eq!(backoff(FREE_FAILURES + 40), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_success_takes_its_attempt_back() {
        let throttle = LoginThrottle::default();
        for _ in 0..(MAX_FAILURES_PER_CLIENT * 2) {
            let attempt = throttle.begin("noc", ip("192.0.2.1")).unwrap();
            throttle.succeeded(attempt);
        }
        assert!(throttle.begin("noc", ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn a_client_stops_after_twenty_failures_across_usernames() {
        let throttle = LoginThrottle::default();
        for i in 0..MAX_FAILURES_PER_CLIENT {
            throttle
                .begin(&format!("user{i}"), ip("192.0.2.9"))
                .unwrap();
        }
        assert!(throttle.begin("fresh-name", ip("192.0.2.9")).is_err());
        assert!(throttle.begin("fresh-name", ip("192.0.2.10")).is_ok());
    }

    #[test]
    fn concurrent_attempts_are_each_counted() {
        let throttle = std::sync::Arc::new(LoginThrottle::default());
        let admitted: usize = (0..16)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || throttle.begin("admin", ip("10.9.9.9")).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| usize::from(t.join().unwrap()))
            .sum();
        assert_eq!(admitted, FREE_FAILURES as usize);
    }
}
