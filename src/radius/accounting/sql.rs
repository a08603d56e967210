//! The SQL.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::{DbBackend, Statement, Value};

/// A statement under construction: text with backend placeholders and
/// its values, in order.
pub(super) struct Sql {
    pub(super) backend: DbBackend,
    pub(super) text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(super) fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(super) fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
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

    pub(super) fn statement(&self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text.clone(), self.values.clone())
    }
}

/// An address column as text (`host()` of PostgreSQL's `inet`).
pub(super) fn address(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("host({column})"),
        _ => column.to_string(),
    }
}

/// A whole-number column as a signed 64-bit value on every backend
/// (MySQL's `int unsigned` and `int` decode only into narrower types).
pub(super) fn int64(backend: DbBackend, expr: &str) -> String {
    match backend {
        DbBackend::MySql => format!("CAST({expr} AS SIGNED)"),
        DbBackend::Postgres => format!("CAST({expr} AS BIGINT)"),
        _ => expr.to_string(),
    }
}

/// The sum of a column as a 64-bit integer (PostgreSQL and MySQL sum
/// `bigint` into `numeric`/`decimal`), 0 when there are no rows.
pub(super) fn sum64(backend: DbBackend, column: &str) -> String {
    let sum = format!("COALESCE(SUM({column}), 0)");
    int64(backend, &sum)
}

/// A timestamp column as Unix seconds.
pub(super) fn epoch(backend: DbBackend, column: &str) -> String {
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
pub(super) fn day_of(backend: DbBackend, column: &str) -> String {
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
pub(super) fn push_time_cmp(sql: &mut Sql, column: &str, op: &str, at: DateTime<Utc>) {
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
pub(super) fn push_address_eq(sql: &mut Sql, column: &str, ip: IpAddr) {
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
pub(super) fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('!', "!!")
        .replace('%', "!%")
        .replace('_', "!_");
    format!("%{escaped}%")
}
