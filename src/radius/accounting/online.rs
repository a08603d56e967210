//! Online users.

use std::net::IpAddr;

use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use tracing::instrument;

use super::sessions::{count, select_sessions, sessions, text, Session};
use super::sql::{address, contains_pattern, epoch, push_address_eq, Sql};
use crate::error::FieldErrors;
use crate::query::{filters, PageRequest};
use crate::text::parse_ip;

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

impl OnlineFilter {
    /// Reads the online-list filters (of the pages and the API alike);
    /// problems go into `errors` by parameter.
    pub fn parse(q: Option<&str>, nas: Option<&str>, errors: &mut FieldErrors) -> OnlineFilter {
        let nas = nas
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .and_then(|text| {
                parse_ip(text)
                    .map_err(|problem| errors.insert("nas".into(), problem))
                    .ok()
            });
        OnlineFilter {
            q: filters::text("q", q, 100, errors),
            nas,
        }
    }
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
