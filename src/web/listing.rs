//! Paged tables for the HTML pages: `?page=` and `?q=` in, rows out.

use serde::Deserialize;

use crate::query::{PageRequest, DEFAULT_PER_PAGE, MAX_PAGE};

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
            .filter(|p| (1..=crate::query::MAX_PAGE).contains(p))
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

/// A `?page=` value: a number from 1 to `MAX_PAGE`, else page 1.
pub fn page_number(raw: &Option<String>) -> u64 {
    raw.as_deref()
        .and_then(|p| p.trim().parse::<u64>().ok())
        .filter(|p| (1..=MAX_PAGE).contains(p))
        .unwrap_or(1)
}

/// The page a `?page=` value asks for, `PER_PAGE` rows long.
pub fn page_request(raw: &Option<String>) -> PageRequest {
    PageRequest {
        page: page_number(raw),
        per_page: PER_PAGE,
    }
}

/// "1–50 of 120" and the links to the pages around, keeping the filters
/// (the empty ones are left out of the links).
pub struct Pager {
    base: String,
    params: Vec<(&'static str, String)>,
    pub page: u64,
    pub total: u64,
    per_page: u64,
    shown: u64,
}

impl Pager {
    /// Page `page` of `base` (`PER_PAGE` rows a page), showing `shown` of
    /// `total` rows.
    pub fn new(
        base: impl Into<String>,
        params: Vec<(&'static str, String)>,
        page: u64,
        total: u64,
        shown: usize,
    ) -> Self {
        Self {
            base: base.into(),
            params: params.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
            page,
            total,
            per_page: PER_PAGE,
            shown: shown as u64,
        }
    }

    /// Pages of `per_page` rows instead of `PER_PAGE`.
    pub fn per_page(mut self, per_page: u64) -> Self {
        self.per_page = per_page;
        self
    }

    pub fn first_shown(&self) -> u64 {
        if self.shown == 0 {
            0
        } else {
            (self.page - 1) * self.per_page + 1
        }
    }

    pub fn last_shown(&self) -> u64 {
        ((self.page - 1) * self.per_page + self.shown).min(self.total)
    }

    /// The link to the page `step` pages away, if there is one.
    pub fn href(&self, step: i64) -> Option<String> {
        let target = self.page as i64 + step;
        let last = self.total.div_ceil(self.per_page).max(1) as i64;
        if target < 1 || target > last {
            return None;
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            query.append_pair(k, v);
        }
        query.append_pair("page", &target.to_string());
        Some(format!("{}?{}", self.base, query.finish()))
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
