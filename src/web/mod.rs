//! Cross-cutting HTTP: probes, assets, the page layout.

pub mod assets;
pub mod auth;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;
use crate::error::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Both databases answer (and Redis, once jobs use it): safe to route traffic.
async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let main = state.db.main.ping().await.is_ok();
    let radius = state.db.radius.ping().await.is_ok();
    let status = if main && radius {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    Ok((
        status,
        Json(json!({
            "status": if main && radius { "ready" } else { "not_ready" },
            "checks": { "database": word(main), "radius_database": word(radius) },
        })),
    ))
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    assets: assets::Assets,
    version: &'static str,
}

async fn home(State(state): State<AppState>) -> HomePage {
    HomePage {
        assets: state.assets.as_ref().clone(),
        version: env!("CARGO_PKG_VERSION"),
    }
}
