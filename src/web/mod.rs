//! Cross-cutting HTTP: probes, assets, the page layout.

pub mod assets;
pub mod csrf;
pub mod csv;
pub mod error_pages;
pub mod flash;
pub mod forms;
pub mod layout;
pub mod listing;
pub mod metrics;
pub mod pagination;
pub mod rate_limit;
pub mod security_headers;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;

/// The HTML routes: each room's `pages` (which `app::build_router` brings
/// together), the sign-in pages and the probes. Every page but the login
/// page requires a signed-in staff member; every state-changing request
/// carries the CSRF token; errors render as pages.
pub fn router(state: &AppState, pages: Router<AppState>) -> Router<AppState> {
    use axum::middleware::{from_fn, from_fn_with_state};
    Router::new()
        .merge(pages)
        .fallback(error_pages::not_found)
        .layer(from_fn(csrf::verify))
        // Pages show subscribers, one-time tokens and revealed passwords:
        // no browser or proxy keeps them, and Back after signing out shows
        // nothing.
        .layer(no_store())
        .layer(from_fn_with_state(
            state.clone(),
            error_pages::render_errors,
        ))
        .route("/healthz", get(healthz))
        // Readiness is the API health check: databases, and Redis when set.
        .route("/readyz", get(crate::api::system::health))
}

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ispd_session";

/// `Cache-Control: no-store` on every answer that has no other policy.
pub fn no_store() -> tower_http::set_header::SetResponseHeaderLayer<axum::http::HeaderValue> {
    tower_http::set_header::SetResponseHeaderLayer::if_not_present(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    )
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}
