//! Usage.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult};
use serde::Serialize;
use tracing::instrument;

use super::ranges::DateRange;
use super::sessions::{count, text, user_sessions, Session};
use super::sql::{contains_pattern, day_of, sum64, Sql};
use crate::query::PageRequest;

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

    pub(super) fn of(row: &QueryResult) -> Result<Self, DbErr> {
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

pub(super) fn usage_columns(backend: DbBackend) -> String {
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
