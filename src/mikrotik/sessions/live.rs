//! The live list: every router's active sessions read now, in parallel,
//! with their rates and the search over them.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use utoipa::ToSchema;

use super::super::entities::mikrotik_router;
use super::super::pool::{RouterPool, RouterPoolStatus};
use super::super::routers::service::all_routers;
use super::super::service::MikrotikError;
use super::reading::{read_active_sessions, ActiveSession};
use super::DEFAULT_CONCURRENCY;

/// Identifies a live session in URLs: `ROUTER_ID-ITEM` (`3-1A` for the
/// item `*1A` on router 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSessionId {
    pub router_id: i32,
    /// With its `*`.
    pub item_id: String,
}

impl LiveSessionId {
    pub fn new(router_id: i32, item_id: &str) -> Self {
        LiveSessionId {
            router_id,
            item_id: item_id.to_owned(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("\"{text}\" is not a session id (ROUTER_ID-ITEM, such as 3-1A)");
        let (router, item) = text.split_once('-').ok_or_else(bad)?;
        let router_id: i32 = router.parse().map_err(|_| bad())?;
        if router_id < 1
            || item.is_empty()
            || item.len() > 8
            || !item.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(bad());
        }
        Ok(LiveSessionId {
            router_id,
            item_id: format!("*{}", item.to_ascii_uppercase()),
        })
    }
}

impl fmt::Display for LiveSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.router_id,
            self.item_id.trim_start_matches('*')
        )
    }
}

/// A session as the API and the page show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveSession {
    /// For `POST /mikrotik/sessions/{id}/disconnect`.
    #[schema(example = "3-1A")]
    pub id: String,
    #[schema(example = 3)]
    pub router_id: i32,
    /// The router's `/ppp/active` item id.
    #[schema(example = "*1A")]
    pub item_id: String,
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = "pppoe")]
    pub service: String,
    #[schema(example = "100.64.0.10")]
    pub address: Option<String>,
    /// The caller id: the subscriber's MAC for PPPoE.
    #[schema(example = "AA:BB:CC:DD:EE:01")]
    pub caller_id: Option<String>,
    #[schema(example = 3725)]
    pub uptime_secs: u64,
    /// From the subscriber (the session interface's rx-byte).
    #[schema(example = 1_048_576)]
    pub upload_bytes: Option<u64>,
    /// To the subscriber (the session interface's tx-byte).
    #[schema(example = 8_388_608)]
    pub download_bytes: Option<u64>,
    /// Bits per second since the previous reading ispd made of this
    /// session; absent on the first reading.
    #[schema(example = 80_000)]
    pub upload_bps: Option<u64>,
    #[schema(example = 320_000)]
    pub download_bps: Option<u64>,
}

/// One router's part of the live list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RouterSessions {
    #[schema(example = 3)]
    pub router_id: i32,
    #[schema(example = "core-1")]
    pub router_name: String,
    /// `ok`, or `unreachable` (the router could not be read; `error` says
    /// why, and `pool` whether ispd is backing off).
    #[schema(example = "ok")]
    pub state: &'static str,
    pub error: Option<String>,
    pub pool: RouterPoolStatus,
    pub sessions: Vec<LiveSession>,
}

/// The previous counter reading of each live session, for rates.
#[derive(Default)]
pub struct SessionRates {
    samples: Mutex<HashMap<(i32, String), Sample>>,
}

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    upload: u64,
    download: u64,
    /// The rate computed when this sample replaced the one before it.
    rates: Option<(u64, u64)>,
}

impl SessionRates {
    /// Readings closer together than this reuse the last rate instead of
    /// dividing a tiny difference by a tiny interval.
    pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

    /// Fills in the rates of one router's sessions and remembers their
    /// counters; forgets the router's sessions that are gone.
    pub fn observe(&self, router_id: i32, sessions: &mut [LiveSession]) {
        self.observe_at(router_id, sessions, Instant::now());
    }

    pub(super) fn observe_at(&self, router_id: i32, sessions: &mut [LiveSession], now: Instant) {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let seen: HashSet<&str> = sessions.iter().map(|s| s.item_id.as_str()).collect();
        samples.retain(|(router, item), _| *router != router_id || seen.contains(item.as_str()));
        for session in sessions.iter_mut() {
            let (Some(upload), Some(download)) = (session.upload_bytes, session.download_bytes)
            else {
                continue;
            };
            let key = (router_id, session.item_id.clone());
            let rates = match samples.get(&key) {
                Some(previous) if now.duration_since(previous.at) < Self::MIN_INTERVAL => {
                    previous.rates
                }
                Some(previous) if upload >= previous.upload && download >= previous.download => {
                    let secs = now.duration_since(previous.at).as_secs_f64();
                    let bps = |now: u64, before: u64| ((now - before) as f64 * 8.0 / secs) as u64;
                    let rates = Some((
                        bps(upload, previous.upload),
                        bps(download, previous.download),
                    ));
                    samples.insert(
                        key,
                        Sample {
                            at: now,
                            upload,
                            download,
                            rates,
                        },
                    );
                    rates
                }
                // First reading, or counters that went backwards.
                _ => {
                    samples.insert(
                        key,
                        Sample {
                            at: now,
                            upload,
                            download,
                            rates: None,
                        },
                    );
                    None
                }
            };
            (session.upload_bps, session.download_bps) = match rates {
                Some((up, down)) => (Some(up), Some(down)),
                None => (None, None),
            };
        }
    }
}

/// What the live list is asked for: one router or every one, and a
/// search over the sessions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LiveFilter {
    pub router_id: Option<i32>,
    /// Trimmed; empty for no search.
    pub q: String,
}

impl LiveFilter {
    /// The filters read and checked: a router id (a positive whole number)
    /// and a search term of at most 100 characters.
    pub fn parse(router_id: Option<&str>, q: Option<&str>) -> Result<Self, MikrotikError> {
        let router_id = match router_id.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => match text.parse::<i32>() {
                Ok(id) if id > 0 => Some(id),
                _ => {
                    return Err(MikrotikError::invalid(
                        "router_id",
                        format!("\"{text}\" is not a router id (a positive whole number)"),
                    ))
                }
            },
        };
        let q = q.map(str::trim).unwrap_or_default();
        if q.chars().count() > 100 {
            return Err(MikrotikError::invalid(
                "q",
                "must be at most 100 characters long",
            ));
        }
        Ok(Self {
            router_id,
            q: q.to_string(),
        })
    }
}

/// True when `q` (already trimmed) is empty or is part of the session's
/// user name, address or caller id, in any case.
pub fn matches_search(session: &LiveSession, q: &str) -> bool {
    if q.is_empty() {
        return true;
    }
    let q = q.to_lowercase();
    [
        Some(session.username.as_str()),
        session.address.as_deref(),
        session.caller_id.as_deref(),
    ]
    .into_iter()
    .flatten()
    .any(|field| field.to_lowercase().contains(&q))
}

/// Loads one router, or every router (by name).
pub(super) async fn routers(
    db: &DatabaseConnection,
    router_id: Option<i32>,
) -> Result<Vec<mikrotik_router::Model>, MikrotikError> {
    match router_id {
        Some(id) => Ok(vec![find_router(db, id).await?]),
        None => all_routers(db).await,
    }
}

pub(super) async fn find_router(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<mikrotik_router::Model, MikrotikError> {
    mikrotik_router::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| MikrotikError::NotFound(format!("there is no router with id {id}")))
}

/// Reads the active sessions of every router (or one) through the pool,
/// a bounded number of routers at a time. A router that cannot be read is
/// listed as `unreachable`; the others still list their sessions.
pub async fn live_sessions(
    db: &DatabaseConnection,
    pool: &RouterPool,
    rates: &SessionRates,
    router_id: Option<i32>,
) -> Result<Vec<RouterSessions>, MikrotikError> {
    let routers = routers(db, router_id).await?;
    let fetched = read_routers(pool, routers, DEFAULT_CONCURRENCY).await;
    Ok(fetched
        .into_iter()
        .map(|(router, read)| {
            let (state, error, sessions) = match read {
                Ok(active) => {
                    let mut sessions: Vec<LiveSession> = active
                        .into_iter()
                        .map(|s| LiveSession {
                            id: LiveSessionId::new(router.id, &s.item_id).to_string(),
                            router_id: router.id,
                            item_id: s.item_id,
                            username: s.name,
                            service: s.service,
                            address: s.address,
                            caller_id: s.caller_id,
                            uptime_secs: s.uptime.as_secs(),
                            upload_bytes: s.upload_bytes,
                            download_bytes: s.download_bytes,
                            upload_bps: None,
                            download_bps: None,
                        })
                        .collect();
                    rates.observe(router.id, &mut sessions);
                    ("ok", None, sessions)
                }
                Err(err) => ("unreachable", Some(err.to_string()), Vec::new()),
            };
            RouterSessions {
                router_id: router.id,
                router_name: router.name.clone(),
                state,
                error,
                pool: pool.status(router.id),
                sessions,
            }
        })
        .collect())
}

pub(super) type ReadResult = Result<Vec<ActiveSession>, MikrotikError>;

/// Reads each router's sessions, `concurrency` routers at a time; the
/// answers come back in the routers' order.
async fn read_routers(
    pool: &RouterPool,
    routers: Vec<mikrotik_router::Model>,
    concurrency: usize,
) -> Vec<(mikrotik_router::Model, ReadResult)> {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (index, router) in routers.into_iter().enumerate() {
        let (pool, limit) = (pool.clone(), limit.clone());
        tasks.spawn(async move {
            let read = match limit.acquire_owned().await {
                Ok(_permit) => pool.run(&router, read_active_sessions).await,
                Err(_) => Err(MikrotikError::Protocol {
                    router: router.name.clone(),
                    detail: "the sync was stopped".into(),
                }),
            };
            (index, router, read)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(done) => out.push(done),
            Err(err) => tracing::error!(error = %err, "a router read task failed"),
        }
    }
    out.sort_by_key(|(index, _, _)| *index);
    out.into_iter()
        .map(|(_, router, read)| (router, read))
        .collect()
}
