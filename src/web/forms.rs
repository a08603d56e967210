//! Small helpers shared by the pages' handlers: htmx detection, redirects,
//! and how optional values are read from forms and shown.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

/// An htmx request that wants a fragment (a history restore wants the page).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-history-restore-request")
}

/// Marks a response that differs for htmx, so that caches keep both.
pub fn with_vary(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("HX-Request"));
    response
}

/// 303 to `path` after a successful form post.
pub fn see_other(path: String) -> Response {
    Redirect::to(&path).into_response()
}

/// A form field, trimmed; `None` when empty.
pub fn optional_string(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// A value as a page shows it: a dash when absent or empty.
pub fn dash(value: &Option<impl ToString>) -> String {
    value
        .as_ref()
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "—".into())
}
