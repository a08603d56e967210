//! Dashboard figures.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::Serialize;
use tracing::instrument;

use super::sql::{push_time_cmp, sum64, Sql};
use super::usage::{usage_columns, Usage};

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
