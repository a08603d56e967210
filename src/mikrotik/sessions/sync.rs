//! The session sync job: store what each router reports in
//! `network_user_sessions`, and mark each router online or offline.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::super::entities::mikrotik_router;
use super::super::pool::RouterPool;
use super::super::service::MikrotikError;
use super::live::ReadResult;
use super::reading::{nas_ip, read_active_sessions, session_key, truncate, ActiveSession};
use super::{
    CHUNK, DEFAULT_CONCURRENCY, ROUTER_OFFLINE, ROUTER_ONLINE, SESSION_ACTIVE, SESSION_CLOSED,
    SOURCE,
};
use crate::db::begin_write;
use crate::users::entities::{network_user, network_user_session};

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
