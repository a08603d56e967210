//! The form kit of the pages: who is acting ([`Staff`]), how a form's
//! fields are read (optional numbers, moments, choices), how a post ends
//! (a flash and a 303, or the page again with its messages), and htmx
//! fragments.

use std::marker::PhantomData;
use std::str::FromStr;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use tower_sessions::Session;

use crate::access::{Actor, AtLeast, Role, SignedIn, StaffUser, Viewer};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::web::layout::Chrome;

/// The signed-in member behind a page request, whose role is at least `R`
/// (else 403, before the handler runs), with what a handler needs around
/// it: the app state, who acts (for the audit log), the session (for flash
/// messages) and, on demand, the page frame.
///
/// The frame is built only when asked for: building it takes the pending
/// flash messages, which a post that ends in a redirect must leave for the
/// next page.
pub struct Staff<R: AtLeast = Viewer> {
    pub user: StaffUser,
    pub actor: Actor,
    pub state: AppState,
    pub session: Session,
    role: PhantomData<R>,
}

impl<R: AtLeast> FromRequestParts<AppState> for Staff<R> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let SignedIn(user) = SignedIn::from_request_parts(parts, state).await?;
        user.require(R::ROLE)?;
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no session layer")))?;
        let address = crate::web::rate_limit::client_address(
            &parts.headers,
            &parts.extensions,
            state.config.trust_proxy,
        );
        Ok(Self {
            actor: user.actor(address.map(|ip| ip.to_string())),
            user,
            state: state.clone(),
            session,
            role: PhantomData,
        })
    }
}

impl<R: AtLeast> Staff<R> {
    /// The page frame (navigation, CSRF token, flash messages).
    pub async fn chrome(&self) -> Result<Chrome, AppError> {
        Chrome::build(&self.state, Some(&self.session), Some(self.user.clone())).await
    }

    /// The main database.
    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.state.db.main
    }

    /// Whether the member's role is at least `role`.
    pub fn can(&self, role: Role) -> bool {
        self.user.role >= role
    }

    /// A post that worked: `message` on the next page, which is `location`.
    pub async fn done(&self, message: impl Into<String>, location: impl Into<String>) -> Response {
        crate::web::flash::success(&self.session, message).await;
        see_other(location.into())
    }
}

/// What handlers want to know of the request itself.
pub struct RequestParts {
    /// The client's address, when the server knows it.
    pub address: Option<String>,
    pub ip: Option<std::net::IpAddr>,
}

impl axum::extract::FromRequestParts<AppState> for RequestParts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let address = crate::web::rate_limit::client_address(
            &parts.headers,
            &parts.extensions,
            state.config.trust_proxy,
        );
        Ok(Self {
            address: address.map(|ip| ip.to_string()),
            ip: address,
        })
    }
}

/// Only a local path: `/x`, never `//host`, `/\host` or `https://host`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control()) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

/// A page shown again with `status` (422 for a form's messages, 409 for a
/// notice), instead of the redirect a success gets.
pub fn again(status: StatusCode, page: impl IntoResponse) -> Result<Response, AppError> {
    Ok((status, page).into_response())
}

/// A template block rendered on its own for htmx, marked `Vary: HX-Request`.
pub fn render_fragment(status: StatusCode, fragment: &impl Template) -> Result<Response, AppError> {
    let html = fragment
        .render()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering a fragment: {e}")))?;
    Ok(with_vary((status, Html(html)).into_response()))
}

/// The messages found reading a form, completed by the service's own; the
/// form's message wins where both speak of one field.
pub fn merged(mut early: FieldErrors, later: FieldErrors) -> FieldErrors {
    for (field, message) in later {
        early.entry(field).or_insert(message);
    }
    early
}

/// One `<option>`: value, label, selected.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    pub fn new(value: impl Into<String>, label: impl Into<String>, current: &str) -> Self {
        let value = value.into();
        Self {
            selected: value == current,
            label: label.into(),
            value,
        }
    }
}

/// Options whose labels are their values, `current` selected.
pub fn choices(values: &[&str], current: &str) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice::new(*v, *v, current))
        .collect()
}

/// A search box's text: trimmed, at most 100 characters.
pub fn search_text(raw: &Option<String>) -> String {
    raw.as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(100)
        .collect()
}

/// An optional form field of type `T`: "" is `None`; text that does not
/// parse leaves `problem(text)` under `field` and is `None` too.
pub fn optional_parsed<T: FromStr>(
    field: &str,
    text: &str,
    errors: &mut FieldErrors,
    problem: impl FnOnce(&str) -> String,
) -> Option<T> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match text.parse::<T>() {
        Ok(value) => Some(value),
        Err(_) => {
            errors.insert(field.into(), problem(text));
            None
        }
    }
}

/// An optional whole number: see [`optional_parsed`].
pub fn optional_number<T: FromStr>(field: &str, text: &str, errors: &mut FieldErrors) -> Option<T> {
    optional_parsed(field, text, errors, |text| {
        format!("\"{text}\" is not a whole number")
    })
}

/// A moment typed into a form: a `datetime-local` value (minutes or
/// seconds, `T` or a space) or RFC 3339; without a zone it is UTC.
pub fn moment(text: &str) -> Result<DateTime<Utc>, String> {
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
        "\"{text}\" is not a date and time such as 2027-01-31T14:30 (UTC)"
    ))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_read_as_utc_in_every_form_a_browser_sends() {
        for text in [
            "2027-01-31T14:30",
            "2027-01-31T14:30:00",
            "2027-01-31T14:30:00.000",
            "2027-01-31 14:30",
            "2027-01-31T15:30:00+01:00",
        ] {
            assert_eq!(
                moment(text).unwrap().to_rfc3339(),
                "2027-01-31T14:30:00+00:00",
                "{text}"
            );
        }
        assert!(moment("yesterday").unwrap_err().contains("not a date"));
    }

    #[test]
    fn optional_numbers_are_none_when_empty_and_named_when_wrong() {
        let mut errors = FieldErrors::new();
        assert_eq!(optional_number::<i64>("ports", " ", &mut errors), None);
        assert_eq!(optional_number::<i64>("ports", " 7 ", &mut errors), Some(7));
        assert!(errors.is_empty());
        assert_eq!(optional_number::<i64>("ports", "x", &mut errors), None);
        assert_eq!(errors["ports"], "\"x\" is not a whole number");
    }

    #[test]
    fn a_forms_own_message_wins_over_the_services() {
        let early = FieldErrors::from([("a".to_string(), "form".to_string())]);
        let later = FieldErrors::from([
            ("a".to_string(), "service".to_string()),
            ("b".to_string(), "service".to_string()),
        ]);
        let all = merged(early, later);
        assert_eq!(all["a"], "form");
        assert_eq!(all["b"], "service");
    }

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(safe_next(Some("/ipam/pools?page=2")), "/ipam/pools?page=2");
        for evil in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "",
            "/\nx",
        ] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
