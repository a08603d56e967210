//! Small helpers shared by the pages' handlers: htmx detection, redirects,
//! and how optional values are read from forms and shown.

use std::str::FromStr;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::{AppError, FieldErrors};

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

/// An id from the path; anything else is a 404 page (showing `not_found`),
/// not a 400.
pub fn path_id<T: FromStr>(raw: &str, not_found: impl Into<String>) -> Result<T, AppError> {
    raw.parse().map_err(|_| AppError::not_found(not_found))
}

/// Inline messages of one form, by field name; `_form` holds the ones that
/// belong to no field shown.
#[derive(Debug, Default, Clone)]
pub struct Errors(FieldErrors);

impl Errors {
    /// Each message under its field when `known` lists it, else under
    /// `_form`; messages of one field are joined with "; ".
    pub fn from_fields(fields: FieldErrors, known: &[&str]) -> Self {
        Self::collect(fields, known, |key| key)
    }

    /// As [`Errors::from_fields`], but numbered fields fold into their
    /// list: `dns_servers[2]` shows under `dns_servers`.
    pub fn from_indexed_fields(fields: FieldErrors, known: &[&str]) -> Self {
        Self::collect(fields, known, |key| {
            key.split('[').next().unwrap_or(&key).to_string()
        })
    }

    fn collect(fields: FieldErrors, known: &[&str], name: impl Fn(String) -> String) -> Self {
        let mut errors = FieldErrors::new();
        for (key, message) in fields {
            let base = name(key);
            let field = if known.contains(&base.as_str()) {
                base
            } else {
                "_form".to_string()
            };
            errors
                .entry(field)
                .and_modify(|m: &mut String| {
                    m.push_str("; ");
                    m.push_str(&message);
                })
                .or_insert(message);
        }
        Self(errors)
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A message shown above a section (success or error).
pub struct Notice {
    pub kind: &'static str,
    pub text: String,
}

impl Notice {
    pub fn success(text: impl Into<String>) -> Self {
        Self {
            kind: "success",
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }
}
