//! Sessions.

use chrono::{DateTime, Duration, Utc};
use sea_orm::prelude::DateTimeWithTimeZone;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult};
use serde::Serialize;
use tracing::instrument;

use super::super::entities::radacct::SessionTime;
use super::ranges::DateRange;
use super::sql::{address, int64, Sql};
use crate::query::PageRequest;

/// One accounting session, as read from radacct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub radacctid: i64,
    pub acct_session_id: String,
    pub acct_unique_id: String,
    pub username: String,
    pub nas_ip: String,
    pub nas_port_id: Option<String>,
    pub framed_ip: Option<String>,
    /// Calling-Station-Id: the subscriber's MAC address (or caller id).
    pub calling_station_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// None while the session is open.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Acct-Session-Time of the last packet.
    pub session_time_secs: Option<i64>,
    pub interval_secs: Option<i64>,
    /// Octets from the subscriber (upload), gigawords included.
    pub input_octets: i64,
    /// Octets to the subscriber (download), gigawords included.
    pub output_octets: i64,
    pub terminate_cause: Option<String>,
}

impl Session {
    pub fn is_open(&self) -> bool {
        self.stopped_at.is_none()
    }

    /// The time of the last packet: the update time, else the start plus
    /// the session time.
    pub fn last_update(&self) -> Option<DateTime<Utc>> {
        self.updated_at.or_else(|| {
            self.started_at
                .map(|s| s + Duration::seconds(self.session_time_secs.unwrap_or(0)))
        })
    }

    /// Seconds since the last packet, for an open session.
    pub fn last_update_age_secs(&self, now: DateTime<Utc>) -> Option<i64> {
        self.last_update().map(|at| (now - at).num_seconds().max(0))
    }

    /// How long the session lasted (or has lasted so far, when open):
    /// Acct-Session-Time when the session is closed, else the time since
    /// its start.
    pub fn duration_secs(&self, now: DateTime<Utc>) -> Option<i64> {
        match (self.stopped_at, self.started_at) {
            (Some(stop), start) => self
                .session_time_secs
                .or_else(|| start.map(|s| (stop - s).num_seconds())),
            (None, Some(start)) => Some((now - start).num_seconds().max(0)),
            (None, None) => self.session_time_secs,
        }
    }
}

pub(super) fn select_sessions(backend: DbBackend) -> String {
    format!(
        "SELECT radacctid, acctsessionid, acctuniqueid, username, {nas} AS nasipaddress, \
         nasportid, {framed} AS framedipaddress, callingstationid, acctstarttime, \
         acctupdatetime, acctstoptime, {sessiontime} AS acctsessiontime, \
         {interval} AS acctinterval, {input} AS acctinputoctets, {output} AS acctoutputoctets, \
         acctterminatecause FROM radacct",
        nas = address(backend, "nasipaddress"),
        framed = address(backend, "framedipaddress"),
        sessiontime = int64(backend, "acctsessiontime"),
        interval = int64(backend, "acctinterval"),
        input = int64(backend, "acctinputoctets"),
        output = int64(backend, "acctoutputoctets"),
    )
}

pub(super) fn text(row: &QueryResult, column: &str) -> Result<Option<String>, DbErr> {
    Ok(row
        .try_get::<Option<String>>("", column)?
        .filter(|s| !s.is_empty()))
}

pub(super) fn time(row: &QueryResult, column: &str) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(row
        .try_get::<Option<DateTimeWithTimeZone>>("", column)?
        .map(|t| t.to_utc()))
}

fn session_of(row: &QueryResult) -> Result<Session, DbErr> {
    Ok(Session {
        radacctid: row.try_get("", "radacctid")?,
        acct_session_id: text(row, "acctsessionid")?.unwrap_or_default(),
        acct_unique_id: text(row, "acctuniqueid")?.unwrap_or_default(),
        username: text(row, "username")?.unwrap_or_default(),
        nas_ip: text(row, "nasipaddress")?.unwrap_or_default(),
        nas_port_id: text(row, "nasportid")?,
        framed_ip: text(row, "framedipaddress")?,
        calling_station_id: text(row, "callingstationid")?,
        started_at: time(row, "acctstarttime")?,
        updated_at: time(row, "acctupdatetime")?,
        stopped_at: time(row, "acctstoptime")?,
        session_time_secs: row
            .try_get::<Option<SessionTime>>("", "acctsessiontime")?
            .map(|t| t.0),
        interval_secs: row.try_get::<Option<i64>>("", "acctinterval")?,
        input_octets: row
            .try_get::<Option<i64>>("", "acctinputoctets")?
            .unwrap_or(0),
        output_octets: row
            .try_get::<Option<i64>>("", "acctoutputoctets")?
            .unwrap_or(0),
        terminate_cause: text(row, "acctterminatecause")?,
    })
}

pub(super) async fn count(db: &impl ConnectionTrait, sql: &Sql) -> Result<u64, DbErr> {
    let row = db.query_one_raw(sql.statement()).await?;
    let total: i64 = match row {
        Some(row) => row.try_get("", "total")?,
        None => 0,
    };
    Ok(total.max(0) as u64)
}

pub(super) async fn sessions(db: &impl ConnectionTrait, sql: &Sql) -> Result<Vec<Session>, DbErr> {
    db.query_all_raw(sql.statement())
        .await?
        .iter()
        .map(session_of)
        .collect()
}

/// A user's sessions that started in `range`, newest first, one page.
#[instrument(skip_all)]
pub async fn user_sessions(
    radius_db: &impl ConnectionTrait,
    username: &str,
    range: &DateRange,
    page: PageRequest,
) -> Result<(Vec<Session>, u64), DbErr> {
    let backend = radius_db.get_database_backend();
    let filter = |sql: &mut Sql| {
        sql.push(" WHERE username = ").bind(username.to_string());
        range.push_condition(sql, "acctstarttime");
    };
    let mut counting = Sql::new(backend);
    counting.push("SELECT COUNT(*) AS total FROM radacct");
    filter(&mut counting);
    let total = count(radius_db, &counting).await?;
    if total == 0 {
        return Ok((Vec::new(), 0));
    }
    let mut select = Sql::new(backend);
    select.push(&select_sessions(backend));
    filter(&mut select);
    select.push(&format!(
        " ORDER BY acctstarttime DESC, radacctid DESC LIMIT {} OFFSET {}",
        page.per_page,
        page.offset()
    ));
    Ok((sessions(radius_db, &select).await?, total))
}

/// The open sessions of `username` (no stop time), oldest first.
#[instrument(skip_all)]
pub async fn open_sessions_of(
    radius_db: &impl ConnectionTrait,
    username: &str,
) -> Result<Vec<Session>, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut select = Sql::new(backend);
    select.push(&select_sessions(backend));
    select
        .push(" WHERE username = ")
        .bind(username.to_string())
        .push(" AND acctstoptime IS NULL ORDER BY radacctid");
    sessions(radius_db, &select).await
}

/// What the quota metering reads each pass: every open session, and every
/// session whose id is above `after_id` (those that started, and maybe
/// stopped, since the last pass).
#[instrument(skip_all)]
pub async fn sessions_to_meter(
    radius_db: &impl ConnectionTrait,
    after_id: i64,
) -> Result<Vec<Session>, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut select = Sql::new(backend);
    select.push(&select_sessions(backend));
    select
        .push(" WHERE acctstoptime IS NULL OR radacctid > ")
        .bind(after_id)
        // One order for every pass: two passes at once lock rows alike.
        .push(" ORDER BY radacctid");
    sessions(radius_db, &select).await
}

/// The sessions with these ids, open or closed (one statement per 500).
#[instrument(skip_all)]
pub async fn sessions_by_ids(
    radius_db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<Vec<Session>, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut select = Sql::new(backend);
        select.push(&select_sessions(backend));
        select.push(" WHERE radacctid IN (");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                select.push(", ");
            }
            select.bind(*id);
        }
        select.push(") ORDER BY radacctid");
        found.extend(sessions(radius_db, &select).await?);
    }
    Ok(found)
}

/// The highest radacctid there is (0 when radacct is empty).
pub async fn last_radacctid(radius_db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut select = Sql::new(backend);
    select.push(&format!(
        "SELECT {} AS total FROM radacct",
        int64(backend, "COALESCE(MAX(radacctid), 0)")
    ));
    Ok(count(radius_db, &select).await? as i64)
}
