//! Date ranges.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

use super::sql::{push_time_cmp, Sql};
use super::MAX_RANGE_DAYS;
use crate::error::FieldErrors;

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

    pub(super) fn push_condition(&self, sql: &mut Sql, column: &str) {
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
