//! Active PPP sessions on the routers: read live through the connection
//! pool, synced into `network_user_sessions`, disconnected on request.
//!
//! Sources on a router (RouterOS 7):
//! - `/ppp/active` lists each session: `.id`, user `name`, `service`,
//!   `caller-id` (the MAC for PPPoE), `address`, `uptime`, `session-id`;
//! - each session has a dynamic interface `<SERVICE-NAME>` (`<pppoe-alice>`)
//!   whose `rx-byte` is what the subscriber sent (upload) and `tx-byte`
//!   what it received (download).
//!
//! Both prints run at once on one pooled connection (tagged commands).
//!
//! **Sync** (`ispd mikrotik sync-sessions`; a scheduled job can call the
//! same [`sync_sessions`]) reads
//! every router, a bounded number at a time, and per router, in one write
//! transaction: inserts the sessions not seen before (start = now - uptime),
//! updates the counters and addresses of the known ones (multi-row upserts
//! on the `(nas_ip, session_id)` unique index), and closes the
//! sessions that disappeared (`end_time` = now, status `closed`). It is
//! idempotent: running it twice changes only counters. A router that
//! cannot be read is marked `offline` with its error and its sessions are
//! left as they were (nothing is known about them); the others go on.
//!
//! A session's `session_id` is `ROUTER_ID:.ID:SESSION-ID` (the PPP session
//! id, or the user name when the router gives none), so that two routers
//! behind one address never collide; its `nas_ip` is the router's address.
//! Router item ids restart after a reboot: when a new session reuses the
//! key of a closed one, the closed one is renamed (`KEY~ROW_ID`) first.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use utoipa::ToSchema;

use super::entities::mikrotik_router;
use super::pool::{RouterPool, RouterPoolStatus};
use super::routeros::{self, Client, Row};
use super::service::MikrotikError;
use crate::audit::{self, Actor};
use crate::db::begin_write;
use crate::users::entities::{network_user, network_user_session};

/// `network_user_sessions.source` of the sessions read from routers.
pub const SOURCE: &str = "mikrotik";
/// Session and router statuses written here.
pub const SESSION_ACTIVE: &str = "active";
pub const SESSION_CLOSED: &str = "closed";
pub const ROUTER_ONLINE: &str = super::service::ROUTER_STATUS_ONLINE;
pub const ROUTER_OFFLINE: &str = super::service::ROUTER_STATUS_OFFLINE;

/// Routers read at once by default (sync and live list).
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Rows per multi-row statement: 14 columns each stays far below every
/// backend's limit on bound parameters.
const CHUNK: usize = 500;

// ------------------------------------------------------------ reading

/// One `/ppp/active` entry with its interface's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    /// The router's item id, such as `*1A`.
    pub item_id: String,
    pub name: String,
    pub service: String,
    pub caller_id: Option<String>,
    pub address: Option<String>,
    pub uptime: Duration,
    /// The PPP session id (`0x81200001`), when the router gives one.
    pub session_id: Option<String>,
    /// From the subscriber (the interface's rx-byte).
    pub upload_bytes: Option<u64>,
    /// To the subscriber (the interface's tx-byte).
    pub download_bytes: Option<u64>,
}

/// Reads `/ppp/active` and the session interfaces' counters.
pub async fn read_active_sessions(client: Client) -> Result<Vec<ActiveSession>, routeros::Error> {
    let (active, interfaces) = tokio::try_join!(
        client.print(
            "/ppp/active",
            &[
                ".id",
                "name",
                "service",
                "caller-id",
                "address",
                "uptime",
                "session-id"
            ],
            &[],
        ),
        client.print("/interface", &["name", "rx-byte", "tx-byte"], &[]),
    )?;
    Ok(join_counters(active, interfaces))
}

/// Pairs each active entry with its `<service-name>` interface.
pub fn join_counters(active: Vec<Row>, interfaces: Vec<Row>) -> Vec<ActiveSession> {
    let mut counters: HashMap<String, (Option<u64>, Option<u64>)> = HashMap::new();
    for row in interfaces {
        let Some(name) = row.get("name") else {
            continue;
        };
        if name.starts_with('<') && name.ends_with('>') {
            let parse = |key: &str| row.get(key).and_then(|v| v.parse::<u64>().ok());
            counters.insert(name.clone(), (parse("rx-byte"), parse("tx-byte")));
        }
    }
    active
        .into_iter()
        .filter_map(|mut row| {
            let item_id = row.remove(".id")?;
            let name = row.remove("name")?;
            let service = row.remove("service").unwrap_or_default();
            let (upload_bytes, download_bytes) = counters
                .get(&format!("<{service}-{name}>"))
                .copied()
                .unwrap_or((None, None));
            let non_empty = |value: Option<String>| value.filter(|v| !v.is_empty());
            Some(ActiveSession {
                item_id,
                uptime: row
                    .get("uptime")
                    .and_then(|u| parse_uptime(u))
                    .unwrap_or_default(),
                caller_id: non_empty(row.remove("caller-id")),
                address: non_empty(row.remove("address")),
                session_id: non_empty(row.remove("session-id")),
                name,
                service,
                upload_bytes,
                download_bytes,
            })
        })
        .collect()
}

/// Parses a RouterOS duration: `2w3d4h5m6s` (units w, d, h, m, s, ms; any
/// subset, in order), or the older `1d02:03:04` / `02:03:04`.
pub fn parse_uptime(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.contains(':') {
        let (days, clock) = match text.split_once('d') {
            Some((days, clock)) => (days.parse::<u64>().ok()?, clock),
            None => (0, text),
        };
        let parts: Vec<u64> = clock
            .split(':')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<_>>()?;
        let [h, m, s] = parts[..] else {
            return None;
        };
        if m >= 60 || s >= 60 {
            return None;
        }
        let secs = days
            .checked_mul(86_400)?
            .checked_add(h.checked_mul(3_600)?)?
            .checked_add(m * 60 + s)?;
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else {
            let secs = match rest.chars().next()? {
                'w' => 604_800,
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return None,
            };
            (Duration::from_secs(secs), 1)
        };
        rest = &rest[len..];
        total = total.checked_add(unit.checked_mul(u32::try_from(value).ok()?)?)?;
    }
    Some(total)
}

/// `ROUTER:.ID:SESSION` as stored in `network_user_sessions.session_id`
/// (at most 64 characters).
pub fn session_key(router_id: i32, session: &ActiveSession) -> String {
    let tail = session.session_id.as_deref().unwrap_or(&session.name);
    truncate(format!("{router_id}:{}:{tail}", session.item_id), 64)
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The router's address as `nas_ip` (a 45-character column).
fn nas_ip(router: &mikrotik_router::Model) -> String {
    truncate(router.ip_address.clone(), 45)
}

// ------------------------------------------------------------ live list

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

    fn observe_at(&self, router_id: i32, sessions: &mut [LiveSession], now: Instant) {
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
async fn routers(
    db: &DatabaseConnection,
    router_id: Option<i32>,
) -> Result<Vec<mikrotik_router::Model>, MikrotikError> {
    match router_id {
        Some(id) => Ok(vec![find_router(db, id).await?]),
        None => Ok(mikrotik_router::Entity::find()
            .order_by_asc(mikrotik_router::Column::Name)
            .all(db)
            .await?),
    }
}

async fn find_router(
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

type ReadResult = Result<Vec<ActiveSession>, MikrotikError>;

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

// ------------------------------------------------------------ disconnect

/// What was disconnected.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Disconnected {
    #[schema(example = "3-1A")]
    pub id: String,
    #[schema(example = 3)]
    pub router_id: i32,
    #[schema(example = "core-1")]
    pub router_name: String,
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = "100.64.0.10")]
    pub address: Option<String>,
}

/// Removes a session from `/ppp/active`, which disconnects the subscriber;
/// closes its synced row, if any, and records the disconnection in the
/// audit log. 404 when the router has no such session (any more).
pub async fn disconnect(
    db: &DatabaseConnection,
    pool: &RouterPool,
    actor: &Actor,
    id: &LiveSessionId,
) -> Result<Disconnected, MikrotikError> {
    let router = find_router(db, id.router_id).await?;
    let item_id = id.item_id.clone();
    let removed = pool
        .run(&router, |client| {
            let item_id = item_id.clone();
            async move {
                let query = format!(".id={item_id}");
                let rows = client
                    .print(
                        "/ppp/active",
                        &[".id", "name", "service", "address", "session-id"],
                        &[&query],
                    )
                    .await?;
                let Some(row) = rows.into_iter().next() else {
                    return Ok(None);
                };
                match client
                    .command("/ppp/active/remove", &[(".id", &item_id)], &[])
                    .await
                {
                    Ok(_) => Ok(Some(row)),
                    // Gone between the print and the remove.
                    Err(routeros::Error::Trap {
                        category: Some(0), ..
                    }) => Ok(None),
                    Err(err) => Err(err),
                }
            }
        })
        .await?;
    let Some(row) = removed else {
        return Err(MikrotikError::NotFound(format!(
            "router {} has no active session {}",
            router.name, item_id
        )));
    };
    let session = ActiveSession {
        item_id: item_id.clone(),
        name: row.get("name").cloned().unwrap_or_default(),
        service: row.get("service").cloned().unwrap_or_default(),
        caller_id: None,
        address: row.get("address").cloned().filter(|a| !a.is_empty()),
        uptime: Duration::ZERO,
        session_id: row.get("session-id").cloned().filter(|s| !s.is_empty()),
        upload_bytes: None,
        download_bytes: None,
    };
    let now = Utc::now();
    let txn = begin_write(db).await?;
    network_user_session::Entity::update_many()
        .col_expr(
            network_user_session::Column::Status,
            Expr::value(SESSION_CLOSED),
        )
        .col_expr(
            network_user_session::Column::EndTime,
            Expr::value(now.fixed_offset()),
        )
        .col_expr(
            network_user_session::Column::UpdatedAt,
            Expr::value(now.fixed_offset()),
        )
        .filter(network_user_session::Column::NasIp.eq(nas_ip(&router)))
        .filter(network_user_session::Column::SessionId.eq(session_key(router.id, &session)))
        .filter(network_user_session::Column::Status.eq(SESSION_ACTIVE))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        "mikrotik.session.disconnect",
        "mikrotik_session",
        Some(id.to_string()),
        serde_json::json!({
            "router_id": router.id,
            "router": router.name,
            "item_id": item_id,
            "username": session.name,
            "address": session.address,
        }),
    )
    .await?;
    txn.commit().await?;
    Ok(Disconnected {
        id: id.to_string(),
        router_id: router.id,
        router_name: router.name,
        username: session.name,
        address: session.address,
    })
}

// ------------------------------------------------------------ sync

/// How `sync_sessions` runs.
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Routers read at once.
    pub concurrency: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// One router's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct RouterSyncOutcome {
    pub router_id: i32,
    pub router: String,
    /// Sessions active on the router now.
    pub sessions: usize,
    /// Of those, the ones seen for the first time.
    pub new: usize,
    /// Sessions that disappeared since the last sync.
    pub closed: usize,
    /// Why the router could not be synced.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub routers: Vec<RouterSyncOutcome>,
}

impl SyncReport {
    pub fn failed(&self) -> usize {
        self.routers.iter().filter(|r| r.error.is_some()).count()
    }

    /// True when there were routers and not one could be synced.
    pub fn all_failed(&self) -> bool {
        !self.routers.is_empty() && self.failed() == self.routers.len()
    }
}

impl fmt::Display for SyncReport {
    /// A table: router, sessions, new, closed, error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.routers.is_empty() {
            return writeln!(f, "No routers to sync.");
        }
        let width = self
            .routers
            .iter()
            .map(|r| r.router.chars().count())
            .max()
            .unwrap_or(0)
            .max("ROUTER".len());
        writeln!(
            f,
            "{:<width$}  {:>8}  {:>6}  {:>6}  ERROR",
            "ROUTER", "SESSIONS", "NEW", "CLOSED"
        )?;
        for r in &self.routers {
            writeln!(
                f,
                "{:<width$}  {:>8}  {:>6}  {:>6}  {}",
                r.router,
                r.sessions,
                r.new,
                r.closed,
                r.error.as_deref().unwrap_or("-")
            )?;
        }
        let ok = self.routers.len() - self.failed();
        write!(
            f,
            "{ok} of {} router(s) synced: {} session(s), {} new, {} closed.",
            self.routers.len(),
            self.routers.iter().map(|r| r.sessions).sum::<usize>(),
            self.routers.iter().map(|r| r.new).sum::<usize>(),
            self.routers.iter().map(|r| r.closed).sum::<usize>(),
        )
    }
}

/// Reads every router's active sessions into `network_user_sessions`
/// (see the module documentation). Only a failure to list the routers is
/// an error; each router's failure is in its line of the report.
pub async fn sync_sessions(
    db: &DatabaseConnection,
    pool: &RouterPool,
    options: SyncOptions,
) -> Result<SyncReport, DbErr> {
    let routers = mikrotik_router::Entity::find()
        .order_by_asc(mikrotik_router::Column::Name)
        .all(db)
        .await?;
    let limit = Arc::new(Semaphore::new(options.concurrency.max(1)));
    // Reads run in parallel. Writes take turns on SQLite (one writer at a
    // time anyway) and MariaDB (concurrent inserts into one unique index
    // can deadlock on InnoDB gap locks); PostgreSQL writes routers' rows
    // side by side.
    let serialize = db.get_database_backend() != DbBackend::Postgres;
    let writer = Arc::new(tokio::sync::Mutex::new(()));
    let mut tasks = JoinSet::new();
    for router in routers {
        let (db, pool, limit, writer) = (db.clone(), pool.clone(), limit.clone(), writer.clone());
        tasks.spawn(async move {
            let read = match limit.acquire_owned().await {
                Ok(_permit) => pool.run(&router, read_active_sessions).await,
                Err(_) => Err(MikrotikError::Protocol {
                    router: router.name.clone(),
                    detail: "the sync was stopped".into(),
                }),
            };
            let _turn = if serialize {
                Some(writer.lock().await)
            } else {
                None
            };
            sync_router(&db, &router, read).await
        });
    }
    let mut routers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcome) => routers.push(outcome),
            Err(err) => tracing::error!(error = %err, "a session sync task failed"),
        }
    }
    routers.sort_by(|a, b| a.router.cmp(&b.router));
    Ok(SyncReport { routers })
}

/// Stores one router's reading (or its failure) and says what changed.
async fn sync_router(
    db: &DatabaseConnection,
    router: &mikrotik_router::Model,
    read: ReadResult,
) -> RouterSyncOutcome {
    let mut outcome = RouterSyncOutcome {
        router_id: router.id,
        router: router.name.clone(),
        sessions: 0,
        new: 0,
        closed: 0,
        error: None,
    };
    let now = Utc::now();
    match read {
        Err(err) => {
            tracing::warn!(router = %router.name, error = %err, "cannot read the router's sessions");
            outcome.error = Some(err.to_string());
            if let Err(db_err) = mark_router(db, router, Err(err.to_string()), now).await {
                tracing::error!(router = %router.name, error = %db_err, "cannot mark the router offline");
            }
        }
        Ok(active) => {
            outcome.sessions = active.len();
            match store_sessions(db, router, &active, now).await {
                Ok((new, closed)) => {
                    outcome.new = new;
                    outcome.closed = closed;
                }
                Err(err) => {
                    tracing::error!(router = %router.name, error = %err, "cannot store the router's sessions");
                    outcome.error = Some("the sessions could not be saved (see the log)".into());
                }
            }
        }
    }
    outcome
}

/// Sets a router `online` (seen now) or `offline` with its error. Leaves
/// `updated_at` alone: that tracks edits of the router's settings.
pub async fn mark_router(
    db: &impl ConnectionTrait,
    router: &mikrotik_router::Model,
    result: Result<(), String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut row: mikrotik_router::ActiveModel = router.clone().into();
    match result {
        Ok(()) => {
            row.status = Set(ROUTER_ONLINE.into());
            row.last_seen_at = Set(Some(now.fixed_offset()));
            row.last_error = Set(None);
        }
        Err(message) => {
            row.status = Set(ROUTER_OFFLINE.into());
            row.last_error = Set(Some(message));
        }
    }
    row.update(db).await?;
    Ok(())
}

/// Upserts the router's sessions and closes the ones gone, in one
/// transaction; returns (new, closed).
async fn store_sessions(
    db: &DatabaseConnection,
    router: &mikrotik_router::Model,
    active: &[ActiveSession],
    now: DateTime<Utc>,
) -> Result<(usize, usize), DbErr> {
    use network_user_session::Column as C;
    let nas = nas_ip(router);
    let txn = begin_write(db).await?;
    let open: HashMap<String, i64> = network_user_session::Entity::find()
        .select_only()
        .columns([C::SessionId, C::Id])
        .filter(C::RouterId.eq(router.id))
        .filter(C::Source.eq(SOURCE))
        .filter(C::Status.eq(SESSION_ACTIVE))
        .into_tuple::<(String, i64)>()
        .all(&txn)
        .await?
        .into_iter()
        .collect();

    // One entry per key: a router lists an item once, but be safe.
    let mut seen = HashSet::new();
    let live: Vec<(String, &ActiveSession)> = active
        .iter()
        .map(|s| (session_key(router.id, s), s))
        .filter(|(key, _)| seen.insert(key.clone()))
        .collect();
    let new: Vec<&(String, &ActiveSession)> = live
        .iter()
        .filter(|(key, _)| !open.contains_key(key))
        .collect();

    // Link new sessions to their network users, by user name.
    let mut user_ids: HashMap<String, i32> = HashMap::new();
    let names: Vec<&str> = new
        .iter()
        .map(|(_, s)| s.name.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for chunk in names.chunks(CHUNK) {
        let found: Vec<(i32, String)> = network_user::Entity::find()
            .select_only()
            .columns([network_user::Column::Id, network_user::Column::Username])
            .filter(network_user::Column::Username.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(&txn)
            .await?;
        user_ids.extend(found.into_iter().map(|(id, name)| (name, id)));
    }

    let stamp = now.fixed_offset();
    let counter = |value: Option<u64>| i64::try_from(value.unwrap_or(0)).unwrap_or(i64::MAX);
    let model = |key: &String, s: &ActiveSession| {
        let started = now - chrono::Duration::from_std(s.uptime).unwrap_or_default();
        network_user_session::ActiveModel {
            user_id: Set(user_ids.get(&s.name).copied()),
            username: Set(truncate(s.name.clone(), 64)),
            session_id: Set(key.clone()),
            source: Set(SOURCE.into()),
            router_id: Set(Some(router.id)),
            start_time: Set(started.fixed_offset()),
            end_time: Set(None),
            upload_bytes: Set(counter(s.upload_bytes)),
            download_bytes: Set(counter(s.download_bytes)),
            ip_address: Set(s.address.clone().map(|a| truncate(a, 45))),
            mac_address: Set(s.caller_id.clone().map(|c| truncate(c, 17))),
            nas_ip: Set(nas.clone()),
            status: Set(SESSION_ACTIVE.into()),
            created_at: Set(stamp),
            updated_at: Set(stamp),
            ..Default::default()
        }
    };

    // Known sessions: counters and addresses, through the conflict path of
    // a multi-row upsert.
    let known: Vec<&(String, &ActiveSession)> = live
        .iter()
        .filter(|(key, _)| open.contains_key(key))
        .collect();
    for chunk in known.chunks(CHUNK) {
        network_user_session::Entity::insert_many(chunk.iter().map(|(key, s)| model(key, s)))
            .on_conflict(
                OnConflict::columns([C::NasIp, C::SessionId])
                    .update_columns([
                        C::UploadBytes,
                        C::DownloadBytes,
                        C::IpAddress,
                        C::MacAddress,
                        C::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }

    // New sessions. A key may still be held by a closed row (item ids
    // restart after a reboot): that row is renamed first. Looking for such
    // rows costs an IN-list query, which PostgreSQL plans as a scan of the
    // whole table while its statistics are stale (a freshly filled table),
    // so on PostgreSQL and SQLite it is only run when an insert skipped
    // rows. MariaDB reports a skipped row as affected (found rows), so
    // there it runs first; InnoDB uses the unique index for the list.
    let look_first = db.get_database_backend() == DbBackend::MySql;
    for chunk in new.chunks(CHUNK) {
        if look_first {
            rename_reused_keys(&txn, &nas, chunk).await?;
        }
        let inserted = insert_new(&txn, chunk.iter().map(|(key, s)| model(key, s))).await?;
        if inserted < chunk.len() as u64 && !look_first {
            rename_reused_keys(&txn, &nas, chunk).await?;
            insert_new(&txn, chunk.iter().map(|(key, s)| model(key, s))).await?;
        }
    }

    let live_keys: HashSet<&str> = live.iter().map(|(key, _)| key.as_str()).collect();
    let gone: Vec<i64> = open
        .iter()
        .filter(|(key, _)| !live_keys.contains(key.as_str()))
        .map(|(_, id)| *id)
        .collect();
    for chunk in gone.chunks(CHUNK) {
        network_user_session::Entity::update_many()
            .col_expr(C::Status, Expr::value(SESSION_CLOSED))
            .col_expr(C::EndTime, Expr::value(stamp))
            .col_expr(C::UpdatedAt, Expr::value(stamp))
            .filter(C::Id.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await?;
    }
    mark_router(&txn, router, Ok(()), now).await?;
    txn.commit().await?;
    Ok((new.len(), gone.len()))
}

/// Inserts sessions, skipping any whose key is taken; returns how many
/// were inserted.
async fn insert_new(
    txn: &DatabaseTransaction,
    rows: impl Iterator<Item = network_user_session::ActiveModel>,
) -> Result<u64, DbErr> {
    use network_user_session::Column as C;
    let result = network_user_session::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([C::NasIp, C::SessionId])
        .exec_without_returning(txn)
        .await?;
    Ok(match result {
        sea_orm::TryInsertResult::Inserted(count) => count,
        sea_orm::TryInsertResult::Conflicted | sea_orm::TryInsertResult::Empty => 0,
    })
}

/// Renames the closed rows whose keys new sessions reuse (`KEY~ROW_ID`).
async fn rename_reused_keys(
    txn: &DatabaseTransaction,
    nas: &str,
    chunk: &[&(String, &ActiveSession)],
) -> Result<(), DbErr> {
    use network_user_session::Column as C;
    let keys: Vec<&str> = chunk.iter().map(|(key, _)| key.as_str()).collect();
    let reused: Vec<(i64, String)> = network_user_session::Entity::find()
        .select_only()
        .columns([C::Id, C::SessionId])
        .filter(C::NasIp.eq(nas))
        .filter(C::SessionId.is_in(keys))
        .filter(C::Status.ne(SESSION_ACTIVE))
        .into_tuple()
        .all(txn)
        .await?;
    for (id, key) in reused {
        let suffix = format!("~{id}");
        let renamed = format!("{}{suffix}", truncate(key, 64 - suffix.len()));
        network_user_session::Entity::update_many()
            .col_expr(C::SessionId, Expr::value(renamed))
            .filter(C::Id.eq(id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uptimes_parse_in_both_routeros_spellings() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0s", Some(0)),
            ("45s", Some(45)),
            ("1m5s", Some(65)),
            ("2w3d7s", Some(2 * 604_800 + 3 * 86_400 + 7)),
            ("1d2h3m4s", Some(93_784)),
            ("3s500ms", Some(3)),
            ("02:03:04", Some(7_384)),
            ("1d02:03:04", Some(93_784)),
            ("", None),
            ("abc", None),
            ("5x", None),
            ("m5", None),
            ("01:75:00", None),
            ("1:2", None),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_uptime(text).map(|d| d.as_secs()), *secs, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn the_mock_routers_uptimes_read_back(secs in 0u64..10_000_000_000) {
            let text = super::super::routeros::mock::format_uptime(Duration::from_secs(secs));
            prop_assert_eq!(parse_uptime(&text), Some(Duration::from_secs(secs)));
        }

        #[test]
        fn parse_uptime_never_panics(text in "\\PC{0,24}") {
            let _ = parse_uptime(&text);
        }
    }

    #[test]
    fn session_ids_round_trip_and_reject_junk() {
        let id = LiveSessionId::parse("3-1a").unwrap();
        assert_eq!(id, LiveSessionId::new(3, "*1A"));
        assert_eq!(id.to_string(), "3-1A");
        for bad in [
            "",
            "3",
            "3-",
            "-1A",
            "x-1A",
            "0-1A",
            "3-*1A",
            "3-123456789",
            "3-zz",
        ] {
            assert!(LiveSessionId::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn row(pairs: &[(&str, &str)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sessions_get_their_interfaces_counters() {
        let active = vec![
            row(&[
                (".id", "*1"),
                ("name", "alice"),
                ("service", "pppoe"),
                ("caller-id", "AA:BB:CC:DD:EE:01"),
                ("address", "100.64.0.10"),
                ("uptime", "1h"),
                ("session-id", "0x81200001"),
            ]),
            row(&[
                (".id", "*2"),
                ("name", "bob"),
                ("service", "l2tp"),
                ("uptime", "5s"),
            ]),
            row(&[("name", "no id")]),
        ];
        let interfaces = vec![
            row(&[("name", "ether1"), ("rx-byte", "1"), ("tx-byte", "2")]),
            row(&[
                ("name", "<pppoe-alice>"),
                ("rx-byte", "100"),
                ("tx-byte", "400"),
            ]),
        ];
        let sessions = join_counters(active, interfaces);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].upload_bytes, Some(100));
        assert_eq!(sessions[0].download_bytes, Some(400));
        assert_eq!(sessions[0].uptime, Duration::from_secs(3600));
        assert_eq!(sessions[0].caller_id.as_deref(), Some("AA:BB:CC:DD:EE:01"));
        assert_eq!(session_key(7, &sessions[0]), "7:*1:0x81200001");
        assert_eq!(sessions[1].upload_bytes, None);
        assert_eq!(sessions[1].address, None);
        assert_eq!(session_key(7, &sessions[1]), "7:*2:bob");
    }

    fn live(item: &str, up: u64, down: u64) -> LiveSession {
        LiveSession {
            id: format!("1-{item}"),
            router_id: 1,
            item_id: format!("*{item}"),
            username: "u".into(),
            service: "pppoe".into(),
            address: None,
            caller_id: None,
            uptime_secs: 0,
            upload_bytes: Some(up),
            download_bytes: Some(down),
            upload_bps: None,
            download_bps: None,
        }
    }

    #[test]
    fn rates_are_the_counter_difference_over_time() {
        let rates = SessionRates::default();
        let t0 = Instant::now();
        let mut first = vec![live("1", 1_000, 2_000)];
        rates.observe_at(1, &mut first, t0);
        assert_eq!(first[0].upload_bps, None);

        let mut second = vec![live("1", 2_000, 6_000)];
        rates.observe_at(1, &mut second, t0 + Duration::from_secs(2));
        assert_eq!(second[0].upload_bps, Some(4_000));
        assert_eq!(second[0].download_bps, Some(16_000));

        // Too soon after: the same rate, the sample kept.
        let mut soon = vec![live("1", 2_100, 6_100)];
        rates.observe_at(1, &mut soon, t0 + Duration::from_millis(2_500));
        assert_eq!(soon[0].download_bps, Some(16_000));

        // Gone, then back with lower counters: no rate.
        rates.observe_at(1, &mut [], t0 + Duration::from_secs(3));
        let mut back = vec![live("1", 10, 10)];
        rates.observe_at(1, &mut back, t0 + Duration::from_secs(4));
        assert_eq!(back[0].upload_bps, None);
    }
}
