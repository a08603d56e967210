//! Logged-in RouterOS connections, kept per router and reused.
//!
//! Routers limit API sessions and log every login, so opening a connection
//! for each page refresh or each sync would flood their logs and, with a
//! few viewers, hit the session limit. The pool keeps a few logged-in
//! [`Client`]s per router:
//!
//! - at most [`PoolSettings::max_per_router`] connections are in use per
//!   router at once; a caller waits for one (within the timeout);
//! - a connection idle for longer than [`PoolSettings::idle_timeout`] is
//!   closed instead of reused (reaped whenever the pool is used);
//! - a connection that failed (lost, timed out, `!fatal`, unreadable) is
//!   dropped, never handed out again;
//! - a router that keeps failing is *backed off*: after `n` consecutive
//!   failures the pool does not try it again for `base * 2^(n-1)` (capped
//!   at [`PoolSettings::backoff_max`]) and answers at once with an
//!   "unreachable" error that says so. The state is visible through
//!   [`RouterPool::status`] (sessions page, health check). Only the repair
//!   or undo of a change that failed half-way
//!   ([`RouterPool::get_despite_backoff`]) is tried during a back-off.
//!
//! [`RouterPool::run`] makes one call with all of this. A caller that keeps
//! a connection for several calls (a PPPoE change: read, write, undo) gets
//! it with [`RouterPool::get`] and reports each outcome with
//! [`RouterPool::record_success`] or [`RouterPool::record_failure`], which
//! is what `run` does.
//!
//! Every connection attempt and every command is bounded by the timeout
//! (MIKROTIK_API_TIMEOUT). Web server and worker share one pool through
//! `AppState`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::ToSchema;

use super::entities::mikrotik_router;
use super::routeros::{self, Client};
use super::service::{self, MikrotikError};
use crate::config::Config;
use crate::crypto::AppKey;

/// How the pool behaves; [`PoolSettings::from_config`] for the defaults.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections in use at once per router.
    pub max_per_router: usize,
    /// An idle connection older than this is closed, not reused.
    pub idle_timeout: Duration,
    /// Bounds a connection attempt (TCP, TLS and login together), waiting
    /// for a free connection, and each command.
    pub timeout: Duration,
    /// The pause after the first failure; it doubles with each further one.
    pub backoff_base: Duration,
    /// The longest pause.
    pub backoff_max: Duration,
}

impl PoolSettings {
    pub const DEFAULT_MAX_PER_ROUTER: usize = 2;
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(5);
    pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);

    /// The defaults, with `timeout` as the bound of every call.
    pub fn with_timeout(timeout: Duration) -> Self {
        PoolSettings {
            max_per_router: Self::DEFAULT_MAX_PER_ROUTER,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            timeout,
            backoff_base: Self::DEFAULT_BACKOFF_BASE,
            backoff_max: Self::DEFAULT_BACKOFF_MAX,
        }
    }

    /// The defaults, bounded by MIKROTIK_API_TIMEOUT.
    pub fn from_config(config: &Config) -> Self {
        Self::with_timeout(config.mikrotik_api_timeout)
    }

    /// The pause after `failures` consecutive failures (at least one).
    pub fn backoff_after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

/// What the pool knows about one router right now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RouterPoolStatus {
    /// Failures in a row (0 once a call succeeds).
    #[schema(example = 0)]
    pub consecutive_failures: u32,
    /// Seconds before the pool tries the router again; absent when it is
    /// not backing off.
    #[schema(example = json!(null))]
    pub retry_in_secs: Option<u64>,
    /// The last failure, while failures continue.
    pub last_error: Option<String>,
    /// Logged-in connections waiting to be reused.
    #[schema(example = 1)]
    pub idle_connections: usize,
    /// Logins this process made to the router.
    #[schema(example = 1)]
    pub logins: u64,
}

impl RouterPoolStatus {
    pub fn backing_off(&self) -> bool {
        self.retry_in_secs.is_some()
    }
}

/// Connections per router, shared by every clone.
#[derive(Clone)]
pub struct RouterPool {
    inner: Arc<Inner>,
}

struct Inner {
    settings: PoolSettings,
    key: AppKey,
    slots: Mutex<HashMap<i32, Arc<Slot>>>,
}

struct Slot {
    permits: Arc<Semaphore>,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// How the idle connections were made; a router edited since then
    /// (address, credentials, TLS pin) gets new ones.
    made_with: Option<Reach>,
    idle: Vec<(Client, Instant)>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    logins: u64,
}

/// The columns a connection depends on.
#[derive(Clone, PartialEq, Eq)]
struct Reach {
    host: String,
    port: i32,
    use_tls: bool,
    fingerprint: Option<String>,
    username: String,
    password_encrypted: String,
}

impl Reach {
    fn of(router: &mikrotik_router::Model) -> Self {
        Reach {
            host: router.ip_address.clone(),
            port: router.api_port,
            use_tls: router.use_tls,
            fingerprint: router.tls_fingerprint.clone(),
            username: router.username.clone(),
            password_encrypted: router.password_encrypted.clone(),
        }
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// True when the error means the connection cannot be trusted any more,
/// and counts as the router failing. A `!trap` is the router answering.
pub fn breaks_connection(err: &routeros::Error) -> bool {
    !matches!(err, routeros::Error::Trap { .. })
}

/// A connection borrowed from the pool; it goes back when dropped, unless
/// it was marked broken or has closed.
pub struct PooledClient {
    client: Option<Client>,
    reused: bool,
    reach: Reach,
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
}

impl PooledClient {
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the client is only taken out on drop")
    }

    /// True when this connection was used before (it may have gone stale).
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Closes the connection instead of returning it.
    pub fn discard(mut self) {
        self.client = None;
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if client.is_closed() {
            return;
        }
        let mut state = locked(&self.slot.state);
        if state.made_with.as_ref() == Some(&self.reach) {
            state.idle.push((client, Instant::now()));
        }
    }
}

impl RouterPool {
    pub fn new(key: AppKey, settings: PoolSettings) -> Self {
        RouterPool {
            inner: Arc::new(Inner {
                settings,
                key,
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn settings(&self) -> &PoolSettings {
        &self.inner.settings
    }

    /// The key that decrypts the routers' passwords (APP_KEY); services
    /// that hold the pool use it for their other secrets too.
    pub fn key(&self) -> &AppKey {
        &self.inner.key
    }

    fn slot(&self, router_id: i32) -> Arc<Slot> {
        let mut slots = locked(&self.inner.slots);
        let max = self.inner.settings.max_per_router.max(1);
        slots
            .entry(router_id)
            .or_insert_with(|| {
                Arc::new(Slot {
                    permits: Arc::new(Semaphore::new(max)),
                    state: Mutex::new(SlotState::default()),
                })
            })
            .clone()
    }

    /// Closes idle connections past the idle timeout, on every router.
    pub fn reap_idle(&self) {
        let idle_timeout = self.inner.settings.idle_timeout;
        let slots: Vec<Arc<Slot>> = locked(&self.inner.slots).values().cloned().collect();
        for slot in slots {
            let expired: Vec<Client> = {
                let mut state = locked(&slot.state);
                let (keep, expired): (Vec<_>, Vec<_>) =
                    state.idle.drain(..).partition(|(client, since)| {
                        !client.is_closed() && since.elapsed() < idle_timeout
                    });
                state.idle = keep;
                expired.into_iter().map(|(client, _)| client).collect()
            };
            // Dropped outside the lock: dropping a client closes its socket.
            drop(expired);
        }
    }

    /// Forgets a router: closes its idle connections and clears its
    /// back-off (after an edit or a delete, or to retry at once).
    pub fn forget(&self, router_id: i32) {
        let slot = locked(&self.inner.slots).remove(&router_id);
        if let Some(slot) = slot {
            let idle = std::mem::take(&mut locked(&slot.state).idle);
            drop(idle);
        }
    }

    /// What the pool knows about a router (all zero when never used).
    pub fn status(&self, router_id: i32) -> RouterPoolStatus {
        let slot = locked(&self.inner.slots).get(&router_id).cloned();
        let Some(slot) = slot else {
            return RouterPoolStatus::default();
        };
        let state = locked(&slot.state);
        let now = Instant::now();
        RouterPoolStatus {
            consecutive_failures: state.failures,
            retry_in_secs: state
                .retry_at
                .filter(|at| *at > now)
                .map(|at| (at - now).as_secs_f64().ceil() as u64),
            last_error: state.last_error.clone(),
            idle_connections: state.idle.len(),
            logins: state.logins,
        }
    }

    /// A logged-in connection to `router`: an idle one when there is one,
    /// else a new login. Fails at once while the router is backed off.
    pub async fn get(
        &self,
        router: &mikrotik_router::Model,
    ) -> Result<PooledClient, MikrotikError> {
        self.checked_out(router, true).await
    }

    /// As [`RouterPool::get`], but tried even while the router is backed
    /// off: for setting right what a failed call may have left half-done
    /// (reading back an unclear write, undoing a change the database could
    /// not record). That is part of the call that failed, not a new one,
    /// and skipping it would leave the router and the database apart.
    pub async fn get_despite_backoff(
        &self,
        router: &mikrotik_router::Model,
    ) -> Result<PooledClient, MikrotikError> {
        self.checked_out(router, false).await
    }

    async fn checked_out(
        &self,
        router: &mikrotik_router::Model,
        honour_backoff: bool,
    ) -> Result<PooledClient, MikrotikError> {
        self.reap_idle();
        let settings = &self.inner.settings;
        let slot = self.slot(router.id);
        if honour_backoff {
            check_backoff(&slot, router)?;
        }
        let permit = tokio::time::timeout(settings.timeout, slot.permits.clone().acquire_owned())
            .await
            .map_err(|_| MikrotikError::Timeout {
                router: router.name.clone(),
                after: settings.timeout,
            })?
            .map_err(|_| MikrotikError::Protocol {
                router: router.name.clone(),
                detail: "the connection pool is closed".into(),
            })?;
        let reach = Reach::of(router);
        let reusable = {
            let mut state = locked(&slot.state);
            if state.made_with.as_ref() != Some(&reach) {
                state.idle.clear();
                state.made_with = Some(reach.clone());
            }
            let mut found = None;
            while let Some((client, since)) = state.idle.pop() {
                if !client.is_closed() && since.elapsed() < settings.idle_timeout {
                    found = Some(client);
                    break;
                }
            }
            found
        };
        if let Some(client) = reusable {
            return Ok(PooledClient {
                client: Some(client),
                reused: true,
                reach,
                slot,
                _permit: permit,
            });
        }
        // Waiting for the permit may have taken a while: check again.
        if honour_backoff {
            check_backoff(&slot, router)?;
        }
        let connected = tokio::time::timeout(
            settings.timeout,
            service::connect(router, &self.inner.key, settings.timeout),
        )
        .await
        .unwrap_or_else(|_| {
            Err(MikrotikError::Timeout {
                router: router.name.clone(),
                after: settings.timeout,
            })
        });
        match connected {
            Ok(client) => {
                {
                    let mut state = locked(&slot.state);
                    state.logins += 1;
                    clear_failures(&mut state);
                }
                Ok(PooledClient {
                    client: Some(client),
                    reused: false,
                    reach,
                    slot,
                    _permit: permit,
                })
            }
            Err(err) => {
                if err.is_router_error() {
                    self.note_failure(&slot, &err);
                }
                Err(err)
            }
        }
    }

    /// Runs `call` on a pooled connection to `router`. A failure that
    /// breaks the connection drops it and counts towards the back-off; a
    /// stale reused connection (closed by the router while idle) is
    /// replaced once before giving up. A `!trap` leaves the connection in
    /// the pool.
    pub async fn run<T, F, Fut>(
        &self,
        router: &mikrotik_router::Model,
        call: F,
    ) -> Result<T, MikrotikError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, routeros::Error>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let pooled = self.get(router).await?;
            match call(pooled.client().clone()).await {
                Ok(value) => {
                    self.record_success(&pooled);
                    return Ok(value);
                }
                Err(err) if breaks_connection(&err) => {
                    if attempt == 1 && is_stale(&pooled, &err) {
                        tracing::debug!(router = %router.name, error = %err, "a pooled connection had gone stale; reconnecting");
                        pooled.discard();
                        continue;
                    }
                    let err = MikrotikError::from_client(&router.name, err);
                    self.record_failure(pooled, &err);
                    return Err(err);
                }
                Err(err) => return Err(MikrotikError::from_client(&router.name, err)),
            }
        }
    }

    /// The router answered a call on this connection: its failures in a
    /// row end, and any back-off with them.
    pub fn record_success(&self, pooled: &PooledClient) {
        clear_failures(&mut locked(&pooled.slot.state));
    }

    /// A call on this connection failed in a way that breaks it (see
    /// [`breaks_connection`]): the connection is closed, not returned, and
    /// the failure counts towards the router's back-off.
    pub fn record_failure(&self, pooled: PooledClient, err: &MikrotikError) {
        let slot = pooled.slot.clone();
        pooled.discard();
        self.note_failure(&slot, err);
    }

    fn note_failure(&self, slot: &Slot, err: &MikrotikError) {
        let settings = &self.inner.settings;
        let mut state = locked(&slot.state);
        state.failures = state.failures.saturating_add(1);
        let pause = settings.backoff_after(state.failures);
        state.retry_at = Some(Instant::now() + pause);
        state.last_error = Some(err.to_string());
        // Whatever is idle went to the same failing router.
        state.idle.clear();
        tracing::warn!(
            failures = state.failures,
            retry_in_secs = pause.as_secs(),
            error = %err,
            "router call failed; backing off"
        );
    }
}

/// True when a connection that waited in the pool turns out to have been
/// closed meanwhile: worth one more try on a new connection.
pub fn is_stale(pooled: &PooledClient, err: &routeros::Error) -> bool {
    pooled.reused() && matches!(err, routeros::Error::ConnectionLost(_))
}

fn clear_failures(state: &mut SlotState) {
    state.failures = 0;
    state.retry_at = None;
    state.last_error = None;
}

/// An "unreachable" answer while the router is backed off.
fn check_backoff(slot: &Slot, router: &mikrotik_router::Model) -> Result<(), MikrotikError> {
    let state = locked(&slot.state);
    match state.retry_at {
        Some(at) if at > Instant::now() => {
            let wait = (at - Instant::now()).as_secs_f64().ceil() as u64;
            Err(MikrotikError::Unreachable {
                router: router.name.clone(),
                detail: format!(
                    "not tried again for {wait} s after {} failure(s) in a row; last: {}",
                    state.failures,
                    state.last_error.as_deref().unwrap_or("unknown")
                ),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_the_cap() {
        let settings = PoolSettings {
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(60),
            ..PoolSettings::with_timeout(Duration::from_secs(1))
        };
        let pauses: Vec<u64> = (1..=6)
            .map(|n| settings.backoff_after(n).as_secs())
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 60, 60]);
        assert_eq!(settings.backoff_after(u32::MAX).as_secs(), 60);
    }

    #[test]
    fn only_a_trap_keeps_the_connection() {
        assert!(!breaks_connection(&routeros::Error::Trap {
            category: Some(0),
            message: "no such item".into()
        }));
        for err in [
            routeros::Error::Timeout(Duration::from_secs(1)),
            routeros::Error::ConnectionLost("reset".into()),
            routeros::Error::Fatal("bye".into()),
            routeros::Error::Protocol("garbage".into()),
        ] {
            assert!(breaks_connection(&err), "{err}");
        }
    }
}
