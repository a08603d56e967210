//! Cross-cutting HTTP: probes, assets, the page layout.

pub mod account;
pub mod admin;
pub mod assets;
pub mod auth;
pub mod csrf;
pub mod csv;
pub mod flash;
pub mod forms;
pub mod layout;
pub mod listing;
pub mod metrics;
pub mod pages;
pub mod pagination;
pub mod rate_limit;
pub mod security_headers;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;

/// The HTML routes (staff pages) and the probes. Every page but the login
/// page requires a signed-in staff member; every state-changing request
/// carries the CSRF token; errors render as pages.
pub fn router(state: &AppState) -> Router<AppState> {
    use axum::middleware::{from_fn, from_fn_with_state};
    use axum::routing::post;
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/dashboard/figures", get(pages::dashboard_figures))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route(
            "/account/password",
            get(account::password_page).post(account::change_password),
        )
        .merge(crate::ipam::html::router())
        .merge(crate::users::html::router())
        .merge(crate::radius::nas_html::router())
        .merge(crate::mikrotik::sessions_html::router())
        .merge(crate::radius::html::router())
        .merge(crate::mikrotik::html::router())
        .merge(crate::jobs::html::router())
        .route("/audit", get(pages::audit))
        .route("/tokens", get(admin::list_tokens).post(admin::create_token))
        .route("/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/staff", get(admin::list_staff).post(admin::create_staff))
        .route(
            "/staff/{id}/reset-password",
            post(admin::reset_staff_password),
        )
        .route("/staff/{id}/{action}", post(admin::set_staff_active))
        .fallback(pages::not_found)
        .layer(from_fn(csrf::verify))
        // Pages show subscribers, one-time tokens and revealed passwords:
        // no browser or proxy keeps them, and Back after signing out shows
        // nothing.
        .layer(no_store())
        .layer(from_fn_with_state(state.clone(), pages::render_errors))
        .route("/healthz", get(healthz))
        // Readiness is the API health check: databases, and Redis when set.
        .route("/readyz", get(crate::api::system::health))
}

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
