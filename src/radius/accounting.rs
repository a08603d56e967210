//! Reading RADIUS accounting back: a user's sessions and usage, who is
//! online, closing stale sessions, and who had an address at a moment.
//!
//! FreeRADIUS writes `radacct` itself (Start, Interim-Update, Stop,
//! Accounting-On/Off); ispd reads it, and writes it only to close stale
//! sessions ([`close_stale_sessions`]).
//!
//! **What the columns hold** (FreeRADIUS 3.2.1's stock
//! `mods-config/sql/main/<dialect>/queries.conf`, as Debian ships it):
//!
//! - `acctinputoctets` / `acctoutputoctets` already hold the full 64-bit
//!   counts. Every stock query (interim-update, stop, and the inserts that
//!   stand in for a missing start) writes
//!   `(Acct-Input-Gigawords << 32) + Acct-Input-Octets` on PostgreSQL and
//!   `Acct-Input-Gigawords << 32 | Acct-Input-Octets` on MySQL and SQLite.
//!   So ispd reads the columns as they are and never adds gigawords again.
//!   *Input* is what the NAS received from the subscriber (upload), *output*
//!   what it sent to the subscriber (download).
//! - `acctsessiontime` is the NAS's Acct-Session-Time of the last packet.
//! - `acctupdatetime` is the time of the last packet (start, interim or
//!   stop); `acctinterval` the seconds between the last two interim
//!   updates on PostgreSQL and MySQL, and always 0 on SQLite.
//! - Timestamps are `timestamptz` on PostgreSQL, `datetime` (UTC, as
//!   `FROM_UNIXTIME` in a UTC session writes them) on MySQL, and **Unix
//!   seconds stored as integers** on SQLite (FreeRADIUS's SQLite queries
//!   write `event_timestamp_epoch`). Text timestamps on SQLite (from other
//!   writers) are read too.
//! - Addresses are `inet` on PostgreSQL (read through `host()`, compared
//!   after `CAST(.. AS inet)`), `varchar` elsewhere, where `''` means none.
//!
//! **Usage per day and month** counts each session on the UTC day its
//! start falls in, whole: radacct keeps only a session's cumulative
//! counters, not when within the session the bytes flowed.
//!
//! The queries are plain SQL with a variant per backend, because the three
//! schemas store times and addresses differently; [`Sql`] builds them with
//! bound values only.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use sea_orm::prelude::DateTimeWithTimeZone;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};
use serde::Serialize;
use tracing::instrument;

use super::entities::radacct::SessionTime;
use crate::error::FieldErrors;
use crate::query::PageRequest;

/// An open session is stale after this many interim intervals without an
/// update.
pub const STALE_AFTER_INTERVALS: i64 = 3;

/// The shortest interval the stale rule uses, in seconds. A row's
/// `acctinterval` is the gap FreeRADIUS observed between its last two
/// updates; a NAS that sends an extra update (an address change) can make it
/// a second or two, which would close a live session within seconds.
pub const MIN_INTERVAL_SECS: i64 = 60;

/// The terminate cause written on sessions closed as stale.
pub const STALE_CAUSE: &str = "Stale-Session";

/// The widest date range a report may span.
pub const MAX_RANGE_DAYS: i64 = 3660;

// ------------------------------------------------------------- the SQL

/// A statement under construction: text with backend placeholders and
/// its values, in order.
struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                let n = self.values.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self
    }

    fn statement(&self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text.clone(), self.values.clone())
    }
}

/// An address column as text (`host()` of PostgreSQL's `inet`).
fn address(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("host({column})"),
        _ => column.to_string(),
    }
}

/// A whole-number column as a signed 64-bit value on every backend
/// (MySQL's `int unsigned` and `int` decode only into narrower types).
fn int64(backend: DbBackend, expr: &str) -> String {
    match backend {
        DbBackend::MySql => format!("CAST({expr} AS SIGNED)"),
        DbBackend::Postgres => format!("CAST({expr} AS BIGINT)"),
        _ => expr.to_string(),
    }
}

/// The sum of a column as a 64-bit integer (PostgreSQL and MySQL sum
/// `bigint` into `numeric`/`decimal`), 0 when there are no rows.
fn sum64(backend: DbBackend, column: &str) -> String {
    let sum = format!("COALESCE(SUM({column}), 0)");
    int64(backend, &sum)
}

/// A timestamp column as Unix seconds.
fn epoch(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"),
        // No time zone conversion and no 2038 limit (UNIX_TIMESTAMP has both).
        DbBackend::MySql => format!("TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {column})"),
        _ => format!(
            "(CASE WHEN typeof({column}) IN ('integer', 'real') THEN CAST({column} AS INTEGER) \
             ELSE CAST(strftime('%s', {column}) AS INTEGER) END)"
        ),
    }
}

/// The UTC day of a timestamp column, as `YYYY-MM-DD` text.
fn day_of(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
        DbBackend::MySql => format!("DATE_FORMAT({column}, '%Y-%m-%d')"),
        _ => format!(
            "(CASE WHEN typeof({column}) IN ('integer', 'real') THEN date({column}, 'unixepoch') \
             ELSE date({column}) END)"
        ),
    }
}

/// `column op at`, in the form that lets each backend use its index on
/// the column where it can.
fn push_time_cmp(sql: &mut Sql, column: &str, op: &str, at: DateTime<Utc>) {
    match sql.backend {
        DbBackend::Postgres => {
            sql.push(&format!("{column} {op} ")).bind(at.fixed_offset());
        }
        // A `datetime` column compared with text converts the text, and
        // the index stays usable; text also has no 2038 limit.
        DbBackend::MySql => {
            sql.push(&format!("{column} {op} "))
                .bind(at.format("%Y-%m-%d %H:%M:%S").to_string());
        }
        _ => {
            let column = epoch(sql.backend, column);
            sql.push(&format!("{column} {op} ")).bind(at.timestamp());
        }
    }
}

/// `column = ip` for an address column.
fn push_address_eq(sql: &mut Sql, column: &str, ip: IpAddr) {
    match sql.backend {
        DbBackend::Postgres => {
            sql.push(&format!("{column} = CAST("))
                .bind(ip.to_string())
                .push(" AS inet)");
        }
        _ => {
            sql.push(&format!("{column} = ")).bind(ip.to_string());
        }
    }
}

/// A `LIKE` pattern for "contains", with `!` as the escape character
/// (the same on every backend, unlike the backslash in MySQL strings).
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('!', "!!")
        .replace('%', "!%")
        .replace('_', "!_");
    format!("%{escaped}%")
}

// ------------------------------------------------------- date ranges

/// A half-open range of time, `[from, to)`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl DateRange {
    /// The last `days` whole UTC days, today included.
    pub fn last_days(days: i64, now: DateTime<Utc>) -> Self {
        let today = now.date_naive();
        Self {
            from: Some(start_of(today - Duration::days(days - 1))),
            to: Some(start_of(today + Duration::days(1))),
        }
    }

    /// Reads `from` and `to`: each a date (`2026-11-01`; `to` then
    /// includes that whole day) or an RFC 3339 time. Problems go into
    /// `errors` under the parameter's name.
    pub fn parse(from: Option<&str>, to: Option<&str>, errors: &mut FieldErrors) -> Self {
        let from = bound("from", from, false, errors);
        let to = bound("to", to, true, errors);
        if let (Some(f), Some(t)) = (from, to) {
            if t <= f {
                errors.insert("to".into(), "must be after from".into());
            } else if t - f > Duration::days(MAX_RANGE_DAYS) {
                errors.insert(
                    "to".into(),
                    format!("the range may span at most {MAX_RANGE_DAYS} days"),
                );
            }
        }
        Self { from, to }
    }

    fn push_condition(&self, sql: &mut Sql, column: &str) {
        if let Some(from) = self.from {
            sql.push(" AND ");
            push_time_cmp(sql, column, ">=", from);
        }
        if let Some(to) = self.to {
            sql.push(" AND ");
            push_time_cmp(sql, column, "<", to);
        }
    }
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
}

fn bound(
    field: &str,
    raw: Option<&str>,
    end_of_day: bool,
    errors: &mut FieldErrors,
) -> Option<DateTime<Utc>> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end_of_day {
            day.succ_opt().unwrap_or(day)
        } else {
            day
        };
        if (1970..=9998).contains(&chrono::Datelike::year(&day)) {
            return Some(start_of(day));
        }
    } else if let Ok(at) = DateTime::parse_from_rfc3339(text)
        // A `+` offset that arrived unencoded in a query string reads as a space.
        .or_else(|_| DateTime::parse_from_rfc3339(&text.replace(' ', "+")))
    {
        let at = at.with_timezone(&Utc);
        if (1970..=9998).contains(&chrono::Datelike::year(&at)) {
            return Some(at);
        }
    }
    errors.insert(
        field.into(),
        format!("\"{text}\" is not a date such as 2026-11-01 or a time such as 2026-11-01T10:30:00Z (years 1970 to 9998)"),
    );
    None
}

// ---------------------------------------------------------- sessions

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

fn select_sessions(backend: DbBackend) -> String {
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

fn text(row: &QueryResult, column: &str) -> Result<Option<String>, DbErr> {
    Ok(row
        .try_get::<Option<String>>("", column)?
        .filter(|s| !s.is_empty()))
}

fn time(row: &QueryResult, column: &str) -> Result<Option<DateTime<Utc>>, DbErr> {
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

async fn count(db: &impl ConnectionTrait, sql: &Sql) -> Result<u64, DbErr> {
    let row = db.query_one_raw(sql.statement()).await?;
    let total: i64 = match row {
        Some(row) => row.try_get("", "total")?,
        None => 0,
    };
    Ok(total.max(0) as u64)
}

async fn sessions(db: &impl ConnectionTrait, sql: &Sql) -> Result<Vec<Session>, DbErr> {
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

// ------------------------------------------------------------- usage

/// Sessions and traffic over some period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub sessions: u64,
    pub input_octets: i64,
    pub output_octets: i64,
    pub session_time_secs: i64,
}

impl Usage {
    fn add(&mut self, other: &Usage) {
        self.sessions += other.sessions;
        self.input_octets = self.input_octets.saturating_add(other.input_octets);
        self.output_octets = self.output_octets.saturating_add(other.output_octets);
        self.session_time_secs = self
            .session_time_secs
            .saturating_add(other.session_time_secs);
    }

    pub fn total_octets(&self) -> i64 {
        self.input_octets.saturating_add(self.output_octets)
    }

    fn of(row: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            sessions: row.try_get::<i64>("", "sessions")?.max(0) as u64,
            input_octets: row.try_get("", "input_octets")?,
            output_octets: row.try_get("", "output_octets")?,
            session_time_secs: row.try_get("", "session_time")?,
        })
    }
}

/// Usage on one UTC day (sessions that started on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyUsage {
    pub day: NaiveDate,
    #[serde(flatten)]
    pub usage: Usage,
}

/// Usage in one calendar month (UTC), `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthlyUsage {
    pub month: String,
    #[serde(flatten)]
    pub usage: Usage,
}

fn usage_columns(backend: DbBackend) -> String {
    format!(
        "COUNT(*) AS sessions, {} AS input_octets, {} AS output_octets, {} AS session_time",
        sum64(backend, "acctinputoctets"),
        sum64(backend, "acctoutputoctets"),
        sum64(backend, "acctsessiontime"),
    )
}

/// Usage per UTC day over `range`, of one user or (None) of everyone,
/// oldest day first. Days without sessions are left out.
#[instrument(skip_all)]
pub async fn usage_by_day(
    radius_db: &impl ConnectionTrait,
    username: Option<&str>,
    range: &DateRange,
) -> Result<Vec<DailyUsage>, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push(&format!(
        "SELECT {} AS day, {} FROM radacct WHERE acctstarttime IS NOT NULL",
        day_of(backend, "acctstarttime"),
        usage_columns(backend)
    ));
    if let Some(username) = username {
        sql.push(" AND username = ").bind(username.to_string());
    }
    range.push_condition(&mut sql, "acctstarttime");
    sql.push(" GROUP BY 1 ORDER BY 1");
    let mut days = Vec::new();
    for row in radius_db.query_all_raw(sql.statement()).await? {
        let Some(day) = row.try_get::<Option<String>>("", "day")? else {
            continue;
        };
        let Ok(day) = NaiveDate::parse_from_str(&day, "%Y-%m-%d") else {
            continue;
        };
        days.push(DailyUsage {
            day,
            usage: Usage::of(&row)?,
        });
    }
    Ok(days)
}

/// Folds days into calendar months, oldest first.
pub fn months_of(days: &[DailyUsage]) -> Vec<MonthlyUsage> {
    let mut months: BTreeMap<String, Usage> = BTreeMap::new();
    for d in days {
        months
            .entry(d.day.format("%Y-%m").to_string())
            .or_default()
            .add(&d.usage);
    }
    months
        .into_iter()
        .map(|(month, usage)| MonthlyUsage { month, usage })
        .collect()
}

/// The sum of some days.
pub fn total_of(days: &[DailyUsage]) -> Usage {
    let mut total = Usage::default();
    for d in days {
        total.add(&d.usage);
    }
    total
}

/// A user's accounting over a range: one page of sessions, and usage per
/// day, per month and in all.
#[derive(Debug, Clone)]
pub struct AccountingData {
    pub sessions: Vec<Session>,
    /// Sessions in the range, on every page.
    pub total_sessions: u64,
    pub daily: Vec<DailyUsage>,
    pub monthly: Vec<MonthlyUsage>,
    pub totals: Usage,
}

/// Everything the accounting page and `GET /users/{id}/accounting` show
/// for one username.
#[instrument(skip_all)]
pub async fn get_accounting_data(
    radius_db: &impl ConnectionTrait,
    username: &str,
    range: &DateRange,
    page: PageRequest,
) -> Result<AccountingData, DbErr> {
    let (sessions, total_sessions) = user_sessions(radius_db, username, range, page).await?;
    let daily = usage_by_day(radius_db, Some(username), range).await?;
    Ok(AccountingData {
        sessions,
        total_sessions,
        monthly: months_of(&daily),
        totals: total_of(&daily),
        daily,
    })
}

/// One user's usage over a range (the accounting report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserUsage {
    pub username: String,
    #[serde(flatten)]
    pub usage: Usage,
}

/// Usage per username over `range`, most traffic first; `q` narrows to
/// usernames containing it. `page` None returns every row (CSV export).
#[instrument(skip_all)]
pub async fn usage_by_user(
    radius_db: &impl ConnectionTrait,
    range: &DateRange,
    q: Option<&str>,
    page: Option<PageRequest>,
) -> Result<(Vec<UserUsage>, u64), DbErr> {
    let backend = radius_db.get_database_backend();
    let filter = |sql: &mut Sql| {
        sql.push(" WHERE acctstarttime IS NOT NULL");
        range.push_condition(sql, "acctstarttime");
        if let Some(q) = q.filter(|q| !q.is_empty()) {
            sql.push(" AND LOWER(username) LIKE ")
                .bind(contains_pattern(q))
                .push(" ESCAPE '!'");
        }
    };
    let mut counting = Sql::new(backend);
    counting.push("SELECT COUNT(DISTINCT username) AS total FROM radacct");
    filter(&mut counting);
    let total = count(radius_db, &counting).await?;
    let mut sql = Sql::new(backend);
    sql.push(&format!(
        "SELECT username, {} FROM radacct",
        usage_columns(backend)
    ));
    filter(&mut sql);
    sql.push(
        " GROUP BY username ORDER BY (COALESCE(SUM(acctinputoctets), 0) + \
         COALESCE(SUM(acctoutputoctets), 0)) DESC, username",
    );
    if let Some(page) = page {
        sql.push(&format!(
            " LIMIT {} OFFSET {}",
            page.per_page,
            page.offset()
        ));
    }
    let rows = radius_db
        .query_all_raw(sql.statement())
        .await?
        .iter()
        .map(|row| {
            Ok(UserUsage {
                username: text(row, "username")?.unwrap_or_default(),
                usage: Usage::of(row)?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok((rows, total))
}

// ------------------------------------------------------ online users

/// The order of the online list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnlineSort {
    /// Newest sessions first.
    #[default]
    NewestFirst,
    OldestFirst,
    Username,
    /// Longest without an update first (the likely stale ones).
    LastUpdateOldest,
    Nas,
}

impl OnlineSort {
    /// The names `?sort=` takes.
    pub const NAMES: &'static [(&'static str, OnlineSort)] = &[
        ("-started", OnlineSort::NewestFirst),
        ("started", OnlineSort::OldestFirst),
        ("username", OnlineSort::Username),
        ("last_update", OnlineSort::LastUpdateOldest),
        ("nas", OnlineSort::Nas),
    ];

    pub fn parse(raw: Option<&str>, errors: &mut FieldErrors) -> Self {
        let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
            return Self::default();
        };
        match Self::NAMES.iter().find(|(name, _)| *name == text) {
            Some((_, sort)) => *sort,
            None => {
                let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                errors.insert(
                    "sort".into(),
                    format!("\"{text}\" is not one of {}", names.join(", ")),
                );
                Self::default()
            }
        }
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .unwrap_or("-started")
    }

    fn order_by(self, backend: DbBackend) -> String {
        match self {
            OnlineSort::NewestFirst => "acctstarttime DESC, radacctid DESC".into(),
            OnlineSort::OldestFirst => "acctstarttime, radacctid".into(),
            OnlineSort::Username => "username, radacctid".into(),
            OnlineSort::LastUpdateOldest => format!(
                "COALESCE({}, {}), radacctid",
                epoch(backend, "acctupdatetime"),
                epoch(backend, "acctstarttime")
            ),
            OnlineSort::Nas => "nasipaddress, acctstarttime DESC, radacctid DESC".into(),
        }
    }
}

/// Filters of the online list.
#[derive(Debug, Clone, Default)]
pub struct OnlineFilter {
    /// Part of the username, the framed address or the MAC address
    /// (Calling-Station-Id, in any of its spellings).
    pub q: Option<String>,
    /// Only sessions on this NAS.
    pub nas: Option<IpAddr>,
}

fn push_online_filter(sql: &mut Sql, filter: &OnlineFilter) {
    sql.push(" WHERE acctstoptime IS NULL");
    if let Some(nas) = filter.nas {
        sql.push(" AND ");
        push_address_eq(sql, "nasipaddress", nas);
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let framed = address(sql.backend, "framedipaddress");
        sql.push(" AND (LOWER(username) LIKE ")
            .bind(contains_pattern(q))
            .push(" ESCAPE '!' OR ")
            .push(&framed)
            .push(" LIKE ")
            .bind(contains_pattern(q))
            .push(" ESCAPE '!'");
        // A MAC address in any spelling: compare the hex digits alone.
        let digits: String = q
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect::<String>()
            .to_lowercase();
        if digits.len() >= 2 && digits.chars().all(|c| c.is_ascii_hexdigit()) {
            sql.push(
                " OR LOWER(REPLACE(REPLACE(REPLACE(callingstationid, ':', ''), '-', ''), '.', '')) LIKE ",
            )
            .bind(contains_pattern(&digits))
            .push(" ESCAPE '!'");
        }
        sql.push(")");
    }
}

/// The open sessions (no stop time), one page, with the total.
#[instrument(skip_all)]
pub async fn online_sessions(
    radius_db: &impl ConnectionTrait,
    filter: &OnlineFilter,
    sort: OnlineSort,
    page: PageRequest,
) -> Result<(Vec<Session>, u64), DbErr> {
    let backend = radius_db.get_database_backend();
    let mut counting = Sql::new(backend);
    counting.push("SELECT COUNT(*) AS total FROM radacct");
    push_online_filter(&mut counting, filter);
    let total = count(radius_db, &counting).await?;
    if total == 0 {
        return Ok((Vec::new(), 0));
    }
    let mut select = Sql::new(backend);
    select.push(&select_sessions(backend));
    push_online_filter(&mut select, filter);
    select.push(&format!(
        " ORDER BY {} LIMIT {} OFFSET {}",
        sort.order_by(backend),
        page.per_page,
        page.offset()
    ));
    Ok((sessions(radius_db, &select).await?, total))
}

/// The NAS addresses that have open sessions, for the filter's choices.
pub async fn online_nas_addresses(radius_db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push(&format!(
        "SELECT DISTINCT {} AS nas FROM radacct WHERE acctstoptime IS NULL ORDER BY 1 LIMIT 500",
        address(backend, "nasipaddress")
    ));
    let mut out = Vec::new();
    for row in radius_db.query_all_raw(sql.statement()).await? {
        if let Some(nas) = text(&row, "nas")? {
            out.push(nas);
        }
    }
    Ok(out)
}

// ---------------------------------------------------- stale sessions

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
            default_interval_secs: i64::from(super::service::ACCT_INTERIM_INTERVAL_SECS),
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

// ------------------------------------------- who had this address

/// Where a record of an address's holder comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldingSource {
    /// An IPAM allocation (ip_allocation_history).
    Ipam,
    /// A RADIUS accounting session (radacct.framedipaddress).
    Radius,
}

impl HoldingSource {
    pub fn label(self) -> &'static str {
        match self {
            HoldingSource::Ipam => "IPAM",
            HoldingSource::Radius => "RADIUS",
        }
    }
}

/// One holder of an address over an interval, from either source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressHolding {
    pub source: HoldingSource,
    pub ip_address: String,
    pub username: Option<String>,
    /// The allocation's MAC address, or the session's Calling-Station-Id.
    pub mac_address: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// None while still held (allocation) or open (session).
    pub until: Option<DateTime<Utc>>,
    /// IPAM: `allocate` or `release`; RADIUS: `session`.
    pub event: String,
    pub allocation_id: Option<i64>,
    pub subnet_id: Option<i32>,
    pub radacctid: Option<i64>,
    pub acct_session_id: Option<String>,
    pub nas_ip: Option<String>,
    pub terminate_cause: Option<String>,
}

impl AddressHolding {
    fn of_allocation(h: crate::ipam::entities::ip_allocation_history::Model) -> Self {
        Self {
            source: HoldingSource::Ipam,
            ip_address: h.ip_address,
            username: h.username,
            mac_address: h.mac_address,
            from: Some(h.allocated_at.to_utc()),
            until: h.released_at.map(|t| t.to_utc()),
            event: h.action,
            allocation_id: h.allocation_id,
            subnet_id: h.subnet_id,
            radacctid: None,
            acct_session_id: None,
            nas_ip: None,
            terminate_cause: None,
        }
    }

    fn of_session(s: Session, ip: IpAddr) -> Self {
        Self {
            source: HoldingSource::Radius,
            ip_address: s.framed_ip.unwrap_or_else(|| ip.to_string()),
            username: Some(s.username).filter(|u| !u.is_empty()),
            mac_address: s.calling_station_id,
            from: s.started_at,
            until: s.stopped_at,
            event: "session".into(),
            allocation_id: None,
            subnet_id: None,
            radacctid: Some(s.radacctid),
            acct_session_id: Some(s.acct_session_id),
            nas_ip: Some(s.nas_ip).filter(|n| !n.is_empty()),
            terminate_cause: s.terminate_cause,
        }
    }
}

/// Newest first: by start, then IPAM before RADIUS, then by id.
fn sort_holdings(holdings: &mut [AddressHolding]) {
    holdings.sort_by(|a, b| {
        b.from
            .cmp(&a.from)
            .then_with(|| (a.source as u8).cmp(&(b.source as u8)))
            .then_with(|| b.allocation_id.cmp(&a.allocation_id))
            .then_with(|| b.radacctid.cmp(&a.radacctid))
    });
}

/// radacct's column for this kind of address.
fn framed_column(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "framedipaddress",
        IpAddr::V6(_) => "framedipv6address",
    }
}

/// Sessions that had `ip` (as Framed-IP-Address, or Framed-IPv6-Address
/// for IPv6) at `at`, or (`at` None) the latest `limit` sessions with it.
pub async fn sessions_with_address(
    radius_db: &impl ConnectionTrait,
    ip: IpAddr,
    at: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<Session>, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push(&select_sessions(backend)).push(" WHERE ");
    push_address_eq(&mut sql, framed_column(ip), ip);
    if let Some(at) = at {
        sql.push(" AND ");
        push_time_cmp(&mut sql, "acctstarttime", "<=", at);
        sql.push(" AND (acctstoptime IS NULL OR ");
        push_time_cmp(&mut sql, "acctstoptime", ">", at);
        sql.push(")");
    }
    sql.push(&format!(
        " ORDER BY acctstarttime DESC, radacctid DESC LIMIT {limit}"
    ));
    let mut found = sessions(radius_db, &sql).await?;
    if ip.is_ipv6() {
        // The column holds what FreeRADIUS was sent; show the address asked.
        for s in &mut found {
            s.framed_ip = Some(ip.to_string());
        }
    }
    Ok(found)
}

/// Who had `ip` at `at`: IPAM allocations and RADIUS sessions whose
/// interval contains that moment, labelled by source, newest first.
#[instrument(skip_all)]
pub async fn who_had_address(
    main_db: &impl ConnectionTrait,
    radius_db: &impl ConnectionTrait,
    ip: IpAddr,
    at: DateTime<Utc>,
) -> Result<Vec<AddressHolding>, crate::error::AppError> {
    let mut out: Vec<AddressHolding> = crate::ipam::service::address_history(main_db, ip, at)
        .await?
        .into_iter()
        .map(AddressHolding::of_allocation)
        .collect();
    out.extend(
        sessions_with_address(radius_db, ip, Some(at), 100)
            .await?
            .into_iter()
            .map(|s| AddressHolding::of_session(s, ip)),
    );
    sort_holdings(&mut out);
    Ok(out)
}

/// The history of `ip` from both sources, newest first: the latest
/// `limit` IPAM events and the latest `limit` RADIUS sessions.
#[instrument(skip_all)]
pub async fn address_timeline(
    main_db: &impl ConnectionTrait,
    radius_db: &impl ConnectionTrait,
    ip: IpAddr,
    limit: u64,
) -> Result<Vec<AddressHolding>, crate::error::AppError> {
    let mut out: Vec<AddressHolding> = crate::ipam::service::address_timeline(main_db, ip, limit)
        .await?
        .into_iter()
        .map(AddressHolding::of_allocation)
        .collect();
    out.extend(
        sessions_with_address(radius_db, ip, None, limit)
            .await?
            .into_iter()
            .map(|s| AddressHolding::of_session(s, ip)),
    );
    sort_holdings(&mut out);
    Ok(out)
}

// ------------------------------------------------- dashboard figures

/// Online sessions at moments in the past, derived from radacct, with the
/// number of open sessions now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnlineTrend {
    /// Rows without a stop time, as the online list counts them.
    pub open_now: u64,
    /// Each moment asked for, oldest first, with the sessions online then.
    pub points: Vec<(DateTime<Utc>, u64)>,
}

/// How many sessions were online at each of `moments` (oldest first): a
/// session was online at `t` when it started at or before `t` and had not
/// stopped by then (no stop time, or a later one).
///
/// One query, a `SUM(CASE ...)` per moment, over the rows that can matter:
/// those still open or stopped after the earliest moment. Sessions that
/// FreeRADIUS never saw stop (a NAS that rebooted without Accounting-Off)
/// count as online until they are closed as stale.
#[instrument(skip_all, fields(moments = moments.len()))]
pub async fn online_trend(
    radius_db: &impl ConnectionTrait,
    moments: &[DateTime<Utc>],
) -> Result<OnlineTrend, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push(&format!(
        "SELECT {} AS total",
        sum64(backend, "CASE WHEN acctstoptime IS NULL THEN 1 ELSE 0 END")
    ));
    for (i, at) in moments.iter().enumerate() {
        sql.push(", ");
        push_sum64(&mut sql, |sql| {
            sql.push("CASE WHEN ");
            push_time_cmp(sql, "acctstarttime", "<=", *at);
            sql.push(" AND (acctstoptime IS NULL OR ");
            push_time_cmp(sql, "acctstoptime", ">", *at);
            sql.push(") THEN 1 ELSE 0 END");
        });
        sql.push(&format!(" AS p{i}"));
    }
    sql.push(" FROM radacct WHERE acctstoptime IS NULL");
    if let Some(earliest) = moments.iter().min() {
        sql.push(" OR ");
        push_time_cmp(&mut sql, "acctstoptime", ">", *earliest);
    }
    let row = radius_db.query_one_raw(sql.statement()).await?;
    let get = |column: &str| -> Result<u64, DbErr> {
        Ok(match &row {
            Some(row) => row.try_get::<i64>("", column)?.max(0) as u64,
            None => 0,
        })
    };
    let mut points = Vec::with_capacity(moments.len());
    for (i, at) in moments.iter().enumerate() {
        points.push((*at, get(&format!("p{i}"))?));
    }
    Ok(OnlineTrend {
        open_now: get("total")?,
        points,
    })
}

/// [`sum64`] of an expression that binds values of its own.
fn push_sum64(sql: &mut Sql, expression: impl FnOnce(&mut Sql)) {
    const HOLE: &str = "\u{1}";
    let wrapper = sum64(sql.backend, HOLE);
    let (before, after) = wrapper.split_once(HOLE).unwrap_or((&wrapper, ""));
    sql.push(before);
    expression(sql);
    sql.push(after);
}

/// The traffic of the sessions active at some time in `[from, to)`: those
/// that started before `to` and had not stopped before `from`.
///
/// Each session counts whole, with its cumulative counters: radacct does not
/// say when within a session the bytes flowed, so a session that started
/// before `from` brings what it carried before `from` too. For "today",
/// that overstates the day by what yesterday's still-open (or overnight)
/// sessions carried before midnight; counting only sessions that started
/// today (as [`usage_by_day`] does) would leave out every long-lived PPPoE
/// session instead.
#[instrument(skip_all)]
pub async fn usage_of_sessions_active_between(
    radius_db: &impl ConnectionTrait,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Usage, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push(&format!(
        "SELECT {} FROM radacct WHERE acctstarttime IS NOT NULL AND ",
        usage_columns(backend)
    ));
    push_time_cmp(&mut sql, "acctstarttime", "<", to);
    sql.push(" AND (acctstoptime IS NULL OR ");
    push_time_cmp(&mut sql, "acctstoptime", ">=", from);
    sql.push(")");
    match radius_db.query_one_raw(sql.statement()).await? {
        Some(row) => Usage::of(&row),
        None => Ok(Usage::default()),
    }
}

// ------------------------------------------------------------ display

/// Bytes as staff read them: `1.5 GB` (powers of 1000, as ISPs bill).
pub fn human_bytes(octets: i64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = octets.max(0) as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{} B", octets.max(0))
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// Seconds as `2d 03:04:05` / `03:04:05`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    if days > 0 {
        format!("{days}d {clock}")
    } else {
        clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn date_ranges_take_days_and_times_and_refuse_nonsense() {
        let mut errors = FieldErrors::new();
        let r = DateRange::parse(Some("2026-11-01"), Some("2026-11-30"), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(r.from, Some(at("2026-11-01T00:00:00Z")));
        // `to` as a day includes that day.
        assert_eq!(r.to, Some(at("2026-12-01T00:00:00Z")));

        let r = DateRange::parse(Some("2026-11-01T10:00:00+02:00"), None, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(r.from, Some(at("2026-11-01T08:00:00Z")));
        assert_eq!(r.to, None);

        for (from, to, field) in [
            (Some("yesterday"), None, "from"),
            (None, Some("2026-13-01"), "to"),
            (Some("2026-11-05"), Some("2026-11-01"), "to"),
            (Some("1900-01-01"), None, "from"),
            (Some("2000-01-01"), Some("2026-01-01"), "to"),
        ] {
            let mut errors = FieldErrors::new();
            DateRange::parse(from, to, &mut errors);
            assert!(errors.contains_key(field), "{from:?} {to:?}: {errors:?}");
        }
    }

    #[test]
    fn the_last_days_end_tomorrow_at_midnight() {
        let r = DateRange::last_days(30, at("2026-11-28T15:00:00Z"));
        assert_eq!(r.from, Some(at("2026-10-30T00:00:00Z")));
        assert_eq!(r.to, Some(at("2026-11-29T00:00:00Z")));
    }

    #[test]
    fn months_add_up_their_days() {
        let day = |d: &str, input: i64| DailyUsage {
            day: NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap(),
            usage: Usage {
                sessions: 1,
                input_octets: input,
                output_octets: 2 * input,
                session_time_secs: 10,
            },
        };
        let days = vec![
            day("2026-10-31", 5),
            day("2026-11-01", 7),
            day("2026-11-02", 1),
        ];
        let months = months_of(&days);
        assert_eq!(months.len(), 2);
        assert_eq!(months[0].month, "2026-10");
        assert_eq!(months[1].month, "2026-11");
        assert_eq!(months[1].usage.input_octets, 8);
        assert_eq!(months[1].usage.output_octets, 16);
        assert_eq!(months[1].usage.sessions, 2);
        assert_eq!(total_of(&days).session_time_secs, 30);
    }

    #[test]
    fn a_session_lasts_its_session_time_or_until_now() {
        let mut s = Session {
            radacctid: 1,
            acct_session_id: "a".into(),
            acct_unique_id: "b".into(),
            username: "u".into(),
            nas_ip: "192.0.2.1".into(),
            nas_port_id: None,
            framed_ip: None,
            calling_station_id: None,
            started_at: Some(at("2026-11-28T10:00:00Z")),
            updated_at: None,
            stopped_at: None,
            session_time_secs: Some(600),
            interval_secs: None,
            input_octets: 0,
            output_octets: 0,
            terminate_cause: None,
        };
        let now = at("2026-11-28T11:00:00Z");
        assert_eq!(s.duration_secs(now), Some(3600));
        assert_eq!(s.last_update(), Some(at("2026-11-28T10:10:00Z")));
        assert_eq!(s.last_update_age_secs(now), Some(3000));
        s.stopped_at = Some(at("2026-11-28T10:20:00Z"));
        assert_eq!(s.duration_secs(now), Some(600));
        s.session_time_secs = None;
        assert_eq!(s.duration_secs(now), Some(1200));
    }

    #[test]
    fn bytes_and_durations_read_as_staff_expect() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000_000), "1.50 GB");
        assert_eq!(human_bytes((1 << 32) + 5), "4.29 GB");
        assert_eq!(human_duration(3_723), "01:02:03");
        assert_eq!(human_duration(90_061), "1d 01:01:01");
    }

    #[test]
    fn like_patterns_escape_their_wildcards() {
        assert_eq!(contains_pattern("A_b%c!"), "%a!_b!%c!!%");
    }

    #[test]
    fn placeholders_follow_the_backend() {
        let mut pg = Sql::new(DbBackend::Postgres);
        pg.push("a = ").bind(1).push(" AND b = ").bind(2);
        assert_eq!(pg.text, "a = $1 AND b = $2");
        let mut my = Sql::new(DbBackend::MySql);
        my.push("a = ").bind(1);
        assert_eq!(my.text, "a = ?");
    }

    #[test]
    fn online_sort_names_round_trip() {
        for (name, sort) in OnlineSort::NAMES {
            let mut errors = FieldErrors::new();
            assert_eq!(OnlineSort::parse(Some(name), &mut errors), *sort);
            assert_eq!(sort.name(), *name);
        }
        let mut errors = FieldErrors::new();
        OnlineSort::parse(Some("password"), &mut errors);
        assert!(errors.contains_key("sort"));
    }
}
