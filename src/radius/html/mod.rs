//! RADIUS accounting pages: who is online (refreshed every 5 s with
//! htmx), the usage report with its CSV export, a user's accounting, and
//! the RADIUS panels of the user page.
//!
//! Every handler reads its query, calls [`super::accounting`] (the same
//! functions the API calls) and builds a view. Times are shown in UTC.

use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;
use crate::error::FieldErrors;

mod charts;
mod online;
mod report;
mod rows;
mod user_accounting;
mod user_panels;
pub use charts::*;
pub use online::*;
pub use report::*;
pub use rows::*;
pub use user_accounting::*;
pub use user_panels::*;

/// The RADIUS accounting pages; merged into the staff router by
/// `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/radius/online", get(online_users))
        .route("/radius/close-stale", post(close_stale))
        .route("/radius/accounting", get(accounting_report))
        .route("/radius/accounting.csv", get(export_accounting))
        .route("/users/{id}/accounting", get(user_accounting))
        .route("/users/{id}/accounting.csv", get(export_user_sessions))
}

/// Sessions shown on the user page.
pub const USER_PAGE_SESSIONS: u64 = 10;
/// Days in the user page's usage chart.
pub const CHART_DAYS: i64 = 30;

// ------------------------------------------------------------ helpers

pub(super) fn text(raw: &Option<String>) -> String {
    raw.as_deref().unwrap_or("").trim().to_string()
}

pub(super) fn problems(errors: &FieldErrors) -> Option<String> {
    (!errors.is_empty()).then(|| {
        errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn query_string(params: &[(&'static str, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
        .finish()
}

pub(super) fn with_query(path: &str, params: &[(&'static str, String)]) -> String {
    let q = query_string(params);
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

#[cfg(test)]
mod tests;
