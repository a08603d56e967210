//! Stale sessions.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use serde::Serialize;
use tracing::instrument;

use super::sessions::count;
use super::sql::{epoch, Sql};
use super::{MIN_INTERVAL_SECS, STALE_AFTER_INTERVALS, STALE_CAUSE};

/// How stale sessions are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleSettings {
    /// The interim interval assumed for a row without `acctinterval`
    /// (SQLite's queries always write 0 there), in seconds.
    pub default_interval_secs: i64,
}

impl Default for StaleSettings {
    /// The Acct-Interim-Interval ispd sends every user.
    fn default() -> Self {
        Self {
            default_interval_secs: i64::from(super::super::service::ACCT_INTERIM_INTERVAL_SECS),
        }
    }
}

/// What [`close_stale_sessions`] did, or in a dry run would do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StaleReport {
    /// Open sessions before the run.
    pub open_sessions: u64,
    /// Sessions closed (in a dry run: that would be closed).
    pub closed: u64,
    pub dry_run: bool,
}

impl std::fmt::Display for StaleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.dry_run {
            write!(
                f,
                "{} of {} open session(s) are stale and would be closed (dry run; nothing written).",
                self.closed, self.open_sessions
            )
        } else {
            write!(
                f,
                "Closed {} stale session(s) of {} open; their terminate cause is {STALE_CAUSE}.",
                self.closed, self.open_sessions
            )
        }
    }
}

/// `acctstarttime + acctsessiontime`, in the column's own representation.
fn start_plus_session_time(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "acctstarttime + make_interval(secs => COALESCE(acctsessiontime, 0))"
        }
        DbBackend::MySql => "TIMESTAMPADD(SECOND, COALESCE(acctsessiontime, 0), acctstarttime)",
        _ => {
            "(CASE WHEN typeof(acctstarttime) IN ('integer', 'real') \
             THEN acctstarttime + COALESCE(acctsessiontime, 0) \
             ELSE datetime(acctstarttime, '+' || COALESCE(acctsessiontime, 0) || ' seconds') END)"
        }
    }
}

/// The stale condition for open rows: the last packet (update time, else
/// start plus session time) is older than [`STALE_AFTER_INTERVALS`]
/// intervals, the row's `acctinterval` when positive, else the default,
/// never below [`MIN_INTERVAL_SECS`]. Computed in Unix seconds, so that it
/// is one integer comparison on every backend.
fn push_stale_condition(sql: &mut Sql, settings: StaleSettings, now: DateTime<Utc>) {
    let backend = sql.backend;
    let last = format!(
        "COALESCE({}, {} + COALESCE(acctsessiontime, 0))",
        epoch(backend, "acctupdatetime"),
        epoch(backend, "acctstarttime")
    );
    let default = settings.default_interval_secs.max(MIN_INTERVAL_SECS);
    sql.push(" WHERE acctstoptime IS NULL AND acctstarttime IS NOT NULL AND ")
        .push(&last)
        .push(&format!(
            " + {STALE_AFTER_INTERVALS} * (CASE WHEN acctinterval >= {MIN_INTERVAL_SECS} \
             THEN acctinterval WHEN acctinterval > 0 THEN {MIN_INTERVAL_SECS} ELSE {default} END) < "
        ))
        .bind(now.timestamp());
}

/// Closes open sessions that have had no update for
/// [`STALE_AFTER_INTERVALS`] interim intervals: `acctstoptime` becomes the
/// time of the last packet (`acctupdatetime`, else start plus session
/// time) and `acctterminatecause` becomes `Stale-Session`.
///
/// One `UPDATE` whose condition includes `acctstoptime IS NULL` and the
/// staleness test, so running it twice, or twice at once, closes each
/// session once; a session that FreeRADIUS updates meanwhile is no longer
/// stale when the row is written (PostgreSQL and MySQL re-check the
/// condition on the row they lock) and stays open.
#[instrument(skip_all, fields(dry_run = dry_run))]
pub async fn close_stale_sessions(
    radius_db: &impl ConnectionTrait,
    settings: StaleSettings,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<StaleReport, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut open = Sql::new(backend);
    open.push("SELECT COUNT(*) AS total FROM radacct WHERE acctstoptime IS NULL");
    let open_sessions = count(radius_db, &open).await?;
    let closed = if dry_run {
        let mut sql = Sql::new(backend);
        sql.push("SELECT COUNT(*) AS total FROM radacct");
        push_stale_condition(&mut sql, settings, now);
        count(radius_db, &sql).await?
    } else {
        let mut sql = Sql::new(backend);
        sql.push(&format!(
            "UPDATE radacct SET acctstoptime = COALESCE(acctupdatetime, {}), \
             acctterminatecause = '{STALE_CAUSE}'",
            start_plus_session_time(backend)
        ));
        push_stale_condition(&mut sql, settings, now);
        radius_db
            .execute_raw(sql.statement())
            .await?
            .rows_affected()
    };
    let report = StaleReport {
        open_sessions,
        closed,
        dry_run,
    };
    tracing::info!(
        open = report.open_sessions,
        closed = report.closed,
        dry_run,
        "stale RADIUS sessions"
    );
    Ok(report)
}

/// [`close_stale_sessions`] at the current time, recorded in the audit log
/// (main DB) when it closed anything: what the API, the page, the CLI and
/// the scheduled job call.
pub async fn close_stale(
    main_db: &impl ConnectionTrait,
    radius_db: &impl ConnectionTrait,
    actor: &crate::audit::Actor,
    settings: StaleSettings,
    dry_run: bool,
) -> Result<StaleReport, DbErr> {
    let report = close_stale_sessions(radius_db, settings, Utc::now(), dry_run).await?;
    if !dry_run && report.closed > 0 {
        crate::audit::record(
            main_db,
            actor,
            "radius.close_stale",
            "radacct",
            None,
            serde_json::json!({
                "closed": report.closed,
                "open_sessions": report.open_sessions,
                "default_interval_secs": settings.default_interval_secs,
            }),
        )
        .await?;
    }
    Ok(report)
}
