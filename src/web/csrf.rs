//! CSRF protection: a random token per session, checked on every request
//! that changes state and relies on the session cookie.
//!
//! Forms carry it as the hidden field `csrf_token`; htmx sends it in the
//! `X-CSRF-Token` header (set once, from a meta tag, by the bundled JS).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::error::AppError;

const SESSION_KEY: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
pub const FORM_FIELD: &str = "csrf_token";
/// Forms are small; a larger body is refused before it is buffered.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The session's token, created on first use; templates put it in forms.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("no session layer")))?;
        Ok(CsrfToken(token_for(&session).await?))
    }
}

/// The session's token if it has one; creates nothing.
pub async fn existing_token(session: &Session) -> Result<Option<String>, AppError> {
    session
        .get::<String>(SESSION_KEY)
        .await
        .map_err(|e| AppError::Internal(e.into()))
}

pub async fn token_for(session: &Session) -> Result<String, AppError> {
    if let Some(token) = existing_token(session).await? {
        return Ok(token);
    }
    let token = crate::crypto::random_token(32);
    session
        .insert(SESSION_KEY, &token)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(token)
}

/// A fresh token, e.g. after signing in (the session id rotates too).
pub async fn rotate(session: &Session) -> Result<(), AppError> {
    session
        .remove::<String>(SESSION_KEY)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_form(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn forbidden(reason: &str) -> Response {
    AppError::Forbidden(format!(
        "{reason}. Reload the page and try again (CSRF protection)."
    ))
    .into_response()
}

/// Middleware of the HTML routes: refuses a state-changing request whose
/// token is missing or wrong, with a 403 that says so. HTML routes
/// authenticate by cookie alone, so an `Authorization` header exempts
/// nothing here (the API has its own check, `api::csrf_for_cookies`).
pub async fn verify(session: Session, request: Request, next: Next) -> Response {
    if is_safe(request.method()) {
        return next.run(request).await;
    }
    let expected = match session.get::<String>(SESSION_KEY).await {
        Ok(Some(token)) => token,
        Ok(None) => return forbidden("This form has expired"),
        Err(e) => return AppError::Internal(e.into()).into_response(),
    };
    let from_header = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (request, presented) = match from_header {
        Some(token) => (request, Some(token)),
        None if is_form(&request) => {
            let (parts, body) = request.into_parts();
            let bytes: Bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
                Ok(bytes) => bytes,
                Err(_) => {
                    return AppError::PayloadTooLarge {
                        limit: MAX_FORM_BYTES,
                    }
                    .into_response()
                }
            };
            let token = form_urlencoded::parse(&bytes)
                .find(|(key, _)| key == FORM_FIELD)
                .map(|(_, value)| value.into_owned());
            (Request::from_parts(parts, Body::from(bytes)), token)
        }
        None => (request, None),
    };
    match presented {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => forbidden("The security token of this form is wrong"),
        None => forbidden("The security token of this form is missing"),
    }
}
