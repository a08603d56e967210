//! `ispd network health-check`: logs in to every router and reads its
//! identity, pings the main and RADIUS databases, and Redis when REDIS_URL
//! is set. The results replace the previous ones in
//! `network_health_checks` (the dashboard shows them), and each router's
//! row gets its status (`online`/`offline`), identity, version and error.
//!
//! Router checks open a fresh connection instead of borrowing one from the
//! pool: the point is to prove that a login works now. They run a bounded
//! number at a time, each bounded by MIKROTIK_API_TIMEOUT.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryOrder, Set,
    TransactionTrait,
};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::entities::network_health_check;
use crate::config::{redact_url, Config};
use crate::crypto::AppKey;
use crate::db::Databases;
use crate::mikrotik::entities::mikrotik_router;
use crate::mikrotik::service::{self as mikrotik, socket_address};
use crate::mikrotik::sessions::{ROUTER_OFFLINE, ROUTER_ONLINE};

/// Routers checked at once.
pub const CONCURRENCY: usize = 8;
/// Bounds connecting to a database and its ping.
pub const DB_TIMEOUT: Duration = Duration::from_secs(5);

pub const UP: &str = "up";
pub const DOWN: &str = "down";

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// `router`, `database`, `radius_database` or `redis`.
    pub kind: String,
    /// The router's name; `main`, `radius` or `redis` otherwise.
    pub name: String,
    /// `host:port`, or the URL without its password.
    pub target: String,
    /// `up` or `down`.
    pub status: String,
    /// What was seen (a router's identity and version), or why it is down.
    pub detail: Option<String>,
    pub latency_ms: u64,
}

impl HealthCheck {
    pub fn is_up(&self) -> bool {
        self.status == UP
    }
}

/// Every check of one run.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub checked_at: DateTime<Utc>,
    /// True when every check is up.
    pub healthy: bool,
    pub checks: Vec<HealthCheck>,
}

impl HealthReport {
    fn new(checked_at: DateTime<Utc>, checks: Vec<HealthCheck>) -> Self {
        HealthReport {
            checked_at,
            healthy: checks.iter().all(HealthCheck::is_up),
            checks,
        }
    }

    pub fn down(&self) -> usize {
        self.checks.iter().filter(|c| !c.is_up()).count()
    }
}

impl fmt::Display for HealthReport {
    /// A table: check, name, target, status, latency, detail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |header: &str, cell: fn(&HealthCheck) -> &str| {
            self.checks
                .iter()
                .map(|c| cell(c).chars().count())
                .max()
                .unwrap_or(0)
                .max(header.len())
        };
        let kind_w = width("CHECK", |c| &c.kind);
        let name_w = width("NAME", |c| &c.name);
        let target_w = width("TARGET", |c| &c.target);
        writeln!(
            f,
            "{:<kind_w$}  {:<name_w$}  {:<target_w$}  {:<6}  {:>8}  DETAIL",
            "CHECK", "NAME", "TARGET", "STATUS", "LATENCY"
        )?;
        for c in &self.checks {
            writeln!(
                f,
                "{:<kind_w$}  {:<name_w$}  {:<target_w$}  {:<6}  {:>8}  {}",
                c.kind,
                c.name,
                c.target,
                c.status,
                format!("{} ms", c.latency_ms),
                c.detail.as_deref().unwrap_or("-")
            )?;
        }
        let down = self.down();
        if down == 0 {
            write!(f, "All {} check(s) up.", self.checks.len())
        } else {
            write!(f, "{down} of {} check(s) down.", self.checks.len())
        }
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn check(
    kind: &str,
    name: &str,
    target: String,
    result: Result<Option<String>, String>,
    started: Instant,
) -> HealthCheck {
    let (status, detail) = match result {
        Ok(detail) => (UP, detail),
        Err(why) => (DOWN, Some(why)),
    };
    HealthCheck {
        kind: kind.into(),
        name: name.into(),
        target,
        status: status.into(),
        detail,
        latency_ms: millis(started),
    }
}

async fn ping_database(
    kind: &str,
    name: &str,
    url: &str,
    db: &DatabaseConnection,
    timeout: Duration,
) -> HealthCheck {
    let started = Instant::now();
    let result = match tokio::time::timeout(timeout, db.ping()).await {
        Ok(Ok(())) => Ok(None),
        Ok(Err(err)) => Err(format!("does not answer: {err}")),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    };
    check(kind, name, redact_url(url), result, started)
}

/// Logs in to one router, reads its identity and version, and records
/// the outcome on its row.
async fn check_router(
    db: &DatabaseConnection,
    router: &mikrotik_router::Model,
    key: &AppKey,
    timeout: Duration,
) -> HealthCheck {
    let started = Instant::now();
    let target = u16::try_from(router.api_port)
        .map(|port| socket_address(&router.ip_address, port))
        .unwrap_or_else(|_| format!("{}:{}", router.ip_address, router.api_port));
    let probe = async {
        let client = mikrotik::connect(router, key, timeout)
            .await
            .map_err(|e| e.to_string())?;
        let read = async {
            let identity = client.print("/system/identity", &["name"], &[]).await?;
            let resource = client.print("/system/resource", &["version"], &[]).await?;
            Ok::<_, crate::mikrotik::routeros::Error>((
                identity.first().and_then(|row| row.get("name").cloned()),
                resource.first().and_then(|row| row.get("version").cloned()),
            ))
        }
        .await;
        client.close().await;
        read.map_err(|e| {
            crate::mikrotik::service::MikrotikError::from_client(&router.name, e).to_string()
        })
    };
    let result = match tokio::time::timeout(timeout.saturating_mul(2), probe).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "router {} did not answer within {} s",
            router.name,
            timeout.as_secs()
        )),
    };
    let now = Utc::now();
    let mut row: mikrotik_router::ActiveModel = router.clone().into();
    let detail = match &result {
        Ok((identity, version)) => {
            row.status = Set(ROUTER_ONLINE.into());
            row.identity = Set(identity.clone());
            row.version = Set(version.clone());
            row.last_seen_at = Set(Some(now.fixed_offset()));
            row.last_error = Set(None);
            Ok(Some(format!(
                "identity {}, RouterOS {}",
                identity.as_deref().unwrap_or("?"),
                version.as_deref().unwrap_or("?")
            )))
        }
        Err(why) => {
            row.status = Set(ROUTER_OFFLINE.into());
            row.last_error = Set(Some(why.clone()));
            Err(why.clone())
        }
    };
    if let Err(err) = row.update(db).await {
        tracing::error!(router = %router.name, error = %err, "cannot record the router's health");
    }
    check("router", &router.name, target, detail, started)
}

/// The database connections to check: a connection, or why there is none.
pub struct Connections<'a> {
    pub main: Result<&'a DatabaseConnection, String>,
    pub radius: Result<&'a DatabaseConnection, String>,
}

impl<'a> From<&'a Databases> for Connections<'a> {
    fn from(db: &'a Databases) -> Self {
        Connections {
            main: Ok(&db.main),
            radius: Ok(&db.radius),
        }
    }
}

/// Opens both databases for a check, each on its own, so that one that is
/// down does not hide the other.
pub async fn connect(
    config: &Config,
) -> (
    Result<DatabaseConnection, String>,
    Result<DatabaseConnection, String>,
) {
    let open = |url: String| async move {
        match tokio::time::timeout(
            DB_TIMEOUT,
            crate::db::connect(&url, config.ipam_lock_timeout),
        )
        .await
        {
            Ok(connected) => connected.map_err(|e| format!("cannot connect: {e:#}")),
            Err(_) => Err(format!("cannot connect within {} s", DB_TIMEOUT.as_secs())),
        }
    };
    tokio::join!(
        open(config.database_url.clone()),
        open(config.radius_database_url.clone())
    )
}

/// Runs every check. Never fails: whatever cannot be checked is down.
pub async fn check_everything(config: &Config, db: Connections<'_>, key: &AppKey) -> HealthReport {
    let checked_at = Utc::now();
    let timeout = config.mikrotik_api_timeout;
    let mut checks = Vec::new();
    for (kind, name, url, conn) in [
        ("database", "main", &config.database_url, &db.main),
        (
            "radius_database",
            "radius",
            &config.radius_database_url,
            &db.radius,
        ),
    ] {
        checks.push(match conn {
            Ok(conn) => ping_database(kind, name, url, conn, DB_TIMEOUT).await,
            Err(why) => check(
                kind,
                name,
                redact_url(url),
                Err(why.clone()),
                Instant::now(),
            ),
        });
    }
    let main = db.main.ok().filter(|_| checks[0].is_up());
    if let Some(url) = &config.redis_url {
        let started = Instant::now();
        let up = crate::db::redis_ready(url).await;
        let result = if up {
            Ok(None)
        } else {
            Err("does not answer PING".to_string())
        };
        checks.push(check("redis", "redis", redact_url(url), result, started));
    }
    if let Some(main) = main {
        match mikrotik_router::Entity::find()
            .order_by_asc(mikrotik_router::Column::Name)
            .all(main)
            .await
        {
            Ok(routers) => checks.extend(check_routers(main, routers, key, timeout).await),
            Err(err) => checks.push(HealthCheck {
                kind: "router".into(),
                name: "(all)".into(),
                target: "-".into(),
                status: DOWN.into(),
                detail: Some(format!("cannot list the routers: {err}")),
                latency_ms: 0,
            }),
        }
    }
    HealthReport::new(checked_at, checks)
}

async fn check_routers(
    db: &DatabaseConnection,
    routers: Vec<mikrotik_router::Model>,
    key: &AppKey,
    timeout: Duration,
) -> Vec<HealthCheck> {
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for (index, router) in routers.into_iter().enumerate() {
        let (db, key, limit) = (db.clone(), key.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (index, check_router(&db, &router, &key, timeout).await)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => done.push(result),
            Err(err) => tracing::error!(error = %err, "a router check failed"),
        }
    }
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, check)| check).collect()
}

/// Replaces the stored results with `report`'s.
pub async fn store(db: &DatabaseConnection, report: &HealthReport) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    network_health_check::Entity::delete_many()
        .exec(&txn)
        .await?;
    let rows = report
        .checks
        .iter()
        .map(|c| network_health_check::ActiveModel {
            kind: Set(c.kind.clone()),
            name: Set(c.name.chars().take(64).collect()),
            target: Set(c.target.chars().take(255).collect()),
            status: Set(c.status.clone()),
            detail: Set(c.detail.clone()),
            latency_ms: Set(i64::try_from(c.latency_ms).unwrap_or(i64::MAX)),
            checked_at: Set(report.checked_at.fixed_offset()),
            ..Default::default()
        });
    network_health_check::Entity::insert_many(rows)
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await
}

/// The stored results of the last run, if any.
pub async fn latest(db: &impl ConnectionTrait) -> Result<Option<HealthReport>, DbErr> {
    let rows = network_health_check::Entity::find()
        .order_by_asc(network_health_check::Column::Id)
        .all(db)
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let checked_at = first.checked_at.to_utc();
    let checks = rows
        .into_iter()
        .map(|r| HealthCheck {
            kind: r.kind,
            name: r.name,
            target: r.target,
            status: r.status,
            detail: r.detail,
            latency_ms: u64::try_from(r.latency_ms).unwrap_or(0),
        })
        .collect();
    Ok(Some(HealthReport::new(checked_at, checks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: &str) -> HealthCheck {
        HealthCheck {
            kind: "router".into(),
            name: "core-1".into(),
            target: "192.0.2.1:8728".into(),
            status: status.into(),
            detail: None,
            latency_ms: 12,
        }
    }

    #[test]
    fn the_table_names_every_check_and_the_summary_counts_the_down_ones() {
        let report = HealthReport::new(Utc::now(), vec![sample(UP), sample(DOWN)]);
        assert!(!report.healthy);
        let text = report.to_string();
        assert!(text.starts_with("CHECK "), "{text}");
        assert_eq!(text.matches("core-1").count(), 2);
        assert!(text.ends_with("1 of 2 check(s) down."), "{text}");
        let healthy = HealthReport::new(Utc::now(), vec![sample(UP)]);
        assert!(healthy.healthy);
        assert!(healthy.to_string().ends_with("All 1 check(s) up."));
    }
}
