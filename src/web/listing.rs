//! Paged tables for the HTML pages: `?page=` and `?q=` in, rows out.

use serde::Deserialize;

use crate::web::pagination::{PageRequest, DEFAULT_PER_PAGE};

/// Rows per HTML page.
pub const PER_PAGE: u64 = DEFAULT_PER_PAGE;

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    /// Kept as text: a bad page number shows page 1 rather than an error.
    pub page: Option<String>,
    pub q: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> u64 {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<u64>().ok())
            .filter(|p| (1..=crate::web::pagination::MAX_PAGE).contains(p))
            .unwrap_or(1)
    }

    pub fn page_request(&self) -> PageRequest {
        PageRequest {
            page: self.page(),
            per_page: PER_PAGE,
        }
    }

    /// The search text, trimmed; empty when absent.
    pub fn search(&self) -> String {
        self.q
            .as_deref()
            .unwrap_or("")
            .trim()
            .chars()
            .take(100)
            .collect()
    }
}

pub struct Listing {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub total: u64,
    pub page: u64,
    pub q: String,
    pub base_path: &'static str,
}

impl Listing {
    pub fn first_shown(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.page - 1) * PER_PAGE + 1
        }
    }

    pub fn last_shown(&self) -> u64 {
        ((self.page - 1) * PER_PAGE + self.rows.len() as u64).min(self.total)
    }

    /// The link to the page `step` pages away, if there is one.
    pub fn page_href(&self, step: i64) -> Option<String> {
        let target = self.page as i64 + step;
        let last = self.total.div_ceil(PER_PAGE).max(1) as i64;
        if target < 1 || target > last {
            return None;
        }
        let mut href = format!("{}?page={target}", self.base_path);
        if !self.q.is_empty() {
            href.push_str("&q=");
            href.extend(form_urlencoded::byte_serialize(self.q.as_bytes()));
        }
        Some(href)
    }
}

/// A timestamp as staff read it, always in UTC.
pub fn when<Tz: chrono::TimeZone>(at: &chrono::DateTime<Tz>) -> String {
    at.with_timezone(&chrono::Utc)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

pub fn when_opt<Tz: chrono::TimeZone>(at: &Option<chrono::DateTime<Tz>>) -> String {
    at.as_ref().map(when).unwrap_or_else(|| "—".into())
}

pub fn or_dash(value: &Option<impl ToString>) -> String {
    value
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "—".into())
}
