//! MikroTik routers and PPPoE users: the staff pages. Every handler parses
//! the form, calls one function of [`super::service`] and builds a view.
//!
//! Forms post normally: a redirect with a flash message on success, the
//! same page with inline messages (422), a notice naming the conflict (409)
//! or the router's error (502/504) otherwise. Passwords never appear in a
//! page, not even in a form sent back with errors.

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use super::service::MikrotikError;
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::web::forms::{Errors, Notice};

pub use crate::mikrotik::pppoe::html::*;
pub use crate::mikrotik::routers::html::*;

/// The MikroTik pages; merged into the staff router (behind its auth, CSRF
/// and error layers) by `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mikrotik/routers", get(list_routers).post(create_router))
        .route("/mikrotik/routers/new", get(new_router))
        .route(
            "/mikrotik/routers/{id}",
            get(show_router).post(update_router),
        )
        .route("/mikrotik/routers/{id}/test", post(test_router))
        .route("/mikrotik/routers/{id}/delete", post(delete_router))
        .route("/mikrotik/pppoe", get(list_pppoe).post(create_pppoe))
        .route("/mikrotik/pppoe.csv", get(export_pppoe))
        .route("/mikrotik/pppoe/new", get(new_pppoe))
        .route("/mikrotik/pppoe/{id}", get(show_pppoe).post(update_pppoe))
        .route("/mikrotik/pppoe/{id}/delete", post(delete_pppoe))
}

/// What a failed form submission shows: the HTTP status, inline field
/// messages, and a notice above the form. Other errors become error pages.
pub(crate) fn form_failure(
    err: MikrotikError,
    known: &[&str],
    conflict_field: &str,
) -> Result<(StatusCode, Errors, Option<Notice>), AppError> {
    match err {
        MikrotikError::Invalid(fields) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Errors::from_fields(fields, known),
            None,
        )),
        MikrotikError::Conflict { message, code } => {
            let status = StatusCode::CONFLICT;
            if code == "pppoe_secret_missing" {
                return Ok((status, Errors::default(), Some(Notice::error(message))));
            }
            Ok((
                status,
                Errors::from_fields(
                    FieldErrors::from([(conflict_field.to_string(), message)]),
                    known,
                ),
                None,
            ))
        }
        err if err.is_router_error() => {
            let app = AppError::from(err);
            let message = app.to_string();
            Ok((
                app.status(),
                Errors::default(),
                Some(Notice::error(format!("Nothing was saved: {message}"))),
            ))
        }
        other => Err(other.into()),
    }
}
