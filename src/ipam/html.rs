//! IPAM staff pages: pools, subnets, allocations, the CSV export and the
//! address history. Every handler parses the form, calls one service
//! function and builds a view; the rules live in [`super::service`].
//!
//! Forms post normally (redirect with a flash message on success, the same
//! page with inline messages and 422/409 otherwise). On the subnet page the
//! allocate and release forms also carry `hx-post`: htmx then swaps the
//! allocations section (the `allocations` block of `ipam/subnet.html`).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDateTime, Utc};

use super::service::Utilization;
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::web::forms::with_vary;

pub use crate::ipam::allocation::html::*;
pub use crate::ipam::history::html::*;
pub use crate::ipam::pools::html::*;
pub use crate::ipam::subnets::html::*;

/// The IPAM pages; merged into the staff router (behind its auth, CSRF and
/// error layers) by `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ipam/pools", get(list_pools).post(create_pool))
        .route("/ipam/pools/{id}", get(show_pool).post(update_pool))
        .route("/ipam/pools/{id}/delete", post(delete_pool))
        .route("/ipam/pools/{id}/subnets", post(create_subnet))
        .route("/ipam/subnets", get(list_subnets))
        .route("/ipam/subnets/{id}", get(show_subnet).post(update_subnet))
        .route("/ipam/subnets/{id}/delete", post(delete_subnet))
        .route("/ipam/subnets/{id}/allocations", post(allocate_ip))
        .route("/ipam/allocations", get(list_allocations))
        .route("/ipam/allocations.csv", get(export_allocations))
        .route("/ipam/allocations/{id}/release", post(release_ip))
        .route("/ipam/history", get(address_history))
}

pub(crate) const ALLOCATION_STATUSES: [&str; 3] = ["active", "released", "expired"];
/// The 404 message of a bad id in the path.
pub(crate) const NOT_FOUND: &str = "There is no such IPAM record.";
/// Free addresses shown on the subnet page.
pub(crate) const AVAILABLE_SHOWN: usize = 16;
/// Holdings shown on the history page.
pub(crate) const TIMELINE_LIMIT: u64 = 200;

// ------------------------------------------------------------ view helpers

/// The status choices of a pool or subnet form, with the current one marked.
pub(crate) fn status_options(current: &str) -> Vec<(&'static str, bool)> {
    ["active", "reserved", "deprecated"]
        .into_iter()
        .map(|s| (s, s == current))
        .collect()
}

/// A utilization bar: an SVG drawing plus the same figure as text.
#[derive(Default)]
pub struct Bar {
    pub percent: f64,
    pub text: String,
}

impl Bar {
    pub(super) fn new(u: &Utilization) -> Self {
        Self {
            percent: u.percent,
            text: format!("{:.1}% used ({} of {})", u.percent, u.allocated, u.total),
        }
    }

    pub fn width(&self) -> String {
        format!("{:.2}", self.percent.clamp(0.0, 100.0))
    }

    pub fn color(&self) -> &'static str {
        match self.percent {
            p if p >= 90.0 => "#b91c1c",
            p if p >= 75.0 => "#d97706",
            _ => "#0369a1",
        }
    }
}

pub(crate) fn search_text(raw: &Option<String>) -> String {
    raw.as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(100)
        .collect()
}

/// "" -> None; a number -> Some; anything else -> a field message.
pub(crate) fn optional_number(field: &str, text: &str, errors: &mut FieldErrors) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match text.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.insert(
                field.into(),
                format!("\"{text}\" is not a VLAN id (1 to 4094)"),
            );
            None
        }
    }
}

/// A `datetime-local` value (or RFC 3339), read as UTC.
pub(crate) fn parse_utc(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(at.and_utc());
        }
    }
    Err(format!(
        "\"{text}\" is not a date and time such as 2025-01-31T14:30 (UTC)"
    ))
}

pub(crate) fn render_fragment(
    status: StatusCode,
    fragment: impl Template,
) -> Result<Response, AppError> {
    let html = fragment
        .render()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering a fragment: {e}")))?;
    Ok(with_vary((status, Html(html)).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::pools::html::POOL_FIELDS;
    use crate::ipam::subnets::html::allocation_filter;
    use crate::web::forms::Errors;

    #[test]
    fn formula_cells_are_defused_and_quoted_cells_escaped() {
        assert_eq!(crate::web::csv::cell("alice"), "alice");
        assert_eq!(
            crate::web::csv::cell("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(crate::web::csv::cell("+1"), "'+1");
        assert_eq!(crate::web::csv::cell("-1+2"), "'-1+2");
        assert_eq!(crate::web::csv::cell("@evil"), "'@evil");
        assert_eq!(crate::web::csv::cell("a,b"), "\"a,b\"");
        assert_eq!(crate::web::csv::cell("2001:db8::1"), "2001:db8::1");
        assert_eq!(crate::web::csv::cell(""), "");
    }

    #[test]
    fn datetime_local_values_are_read_as_utc() {
        let at = parse_utc("2025-01-31T14:30").unwrap();
        assert_eq!(at.to_rfc3339(), "2025-01-31T14:30:00+00:00");
        assert!(parse_utc("2025-01-31T14:30:15").is_ok());
        assert!(parse_utc("2025-01-31T14:30:00+02:00").is_ok());
        assert!(parse_utc("yesterday").unwrap_err().contains("not a date"));
    }

    #[test]
    fn search_text_picks_the_filter() {
        let f = allocation_filter("10.0.0.5", "active");
        assert!(f.ip.is_some() && f.status.as_deref() == Some("active"));
        let f = allocation_filter("AA-BB-CC-DD-EE-FF", "bogus");
        assert_eq!(f.mac_address.unwrap().as_str(), "aa:bb:cc:dd:ee:ff");
        assert!(f.status.is_none());
        let f = allocation_filter("alice", "");
        assert_eq!(f.username.as_deref(), Some("alice"));
    }

    #[test]
    fn dns_numbered_fields_fold_into_one_message() {
        let errors = Errors::from_indexed_fields(
            FieldErrors::from([
                ("dns_servers[0]".to_string(), "a".to_string()),
                ("dns_servers[2]".to_string(), "b".to_string()),
                ("pool_id".to_string(), "c".to_string()),
            ]),
            POOL_FIELDS,
        );
        assert_eq!(errors.get("dns_servers"), Some("a; b"));
        assert_eq!(errors.get("_form"), Some("c"));
    }
}
