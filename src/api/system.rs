//! `GET /health` (public) and `GET /me`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::docs::RateLimited;
use crate::app::AppState;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every check passes, else `degraded`.
    #[schema(example = "ok")]
    pub status: &'static str,
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    pub checks: HealthChecks,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthChecks {
    /// `ok` or `unreachable`.
    #[schema(example = "ok")]
    pub database: &'static str,
    #[schema(example = "ok")]
    pub radius_database: &'static str,
    /// Only when REDIS_URL is set.
    #[schema(example = "ok")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<&'static str>,
}

/// Health of ispd and what it depends on. Needs no credentials.
#[utoipa::path(
    get,
    path = "/health",
    tag = "system",
    operation_id = "health",
    security(()),
    responses(
        (status = 429, response = RateLimited),
        (status = 200, description = "Every check passes.", body = Health,
            example = json!({"status": "ok", "version": "0.1.0",
                "checks": {"database": "ok", "radius_database": "ok"}})),
        (status = 503, description = "A check fails; the body says which.", body = Health,
            example = json!({"status": "degraded", "version": "0.1.0",
                "checks": {"database": "ok", "radius_database": "unreachable"}})),
    ),
)]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    // One check at a time, and its answer reused for a moment: probes
    // (public, unauthenticated) must not be a way to open database and
    // Redis connections at will.
    let mut cached = state.health.lock().await;
    if let Some((at, status, health)) = cached.as_ref() {
        if at.elapsed() < HEALTH_CACHE_FOR {
            return (*status, Json(health.clone()));
        }
    }
    let (status, health) = check_health(&state).await;
    *cached = Some((std::time::Instant::now(), status, health.clone()));
    (status, Json(health))
}

/// How long a health answer is reused.
pub const HEALTH_CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// The last health answer and when it was made ([`health`]).
pub type HealthCache = tokio::sync::Mutex<Option<(std::time::Instant, StatusCode, Health)>>;

async fn check_health(state: &AppState) -> (StatusCode, Health) {
    let (main, radius) = tokio::join!(state.db.main.ping(), state.db.radius.ping());
    let redis = match &state.config.redis_url {
        Some(url) => Some(crate::db::redis_ready(url).await),
        None => None,
    };
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let healthy = main.is_ok() && radius.is_ok() && redis.unwrap_or(true);
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Health {
            status: if healthy { "ok" } else { "degraded" },
            version: env!("CARGO_PKG_VERSION"),
            checks: HealthChecks {
                database: word(main.is_ok()),
                radius_database: word(radius.is_ok()),
                redis: redis.map(word),
            },
        },
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `token` or `staff`.
    #[schema(example = "token")]
    pub kind: &'static str,
    /// The token's or the staff member's id.
    #[schema(example = 3)]
    pub id: Option<i32>,
    /// The token's name or the staff member's username.
    #[schema(example = "billing")]
    pub name: String,
    #[schema(value_type = super::RoleName, example = "operator")]
    pub role: &'static str,
}

/// The caller: which token or staff member, and its role.
#[utoipa::path(
    get,
    path = "/me",
    tag = "system",
    operation_id = "get_me",
    responses(
        (status = 200, description = "The caller.", body = Me,
            example = json!({"kind": "token", "id": 3, "name": "billing", "role": "operator"})),
    ),
)]
pub async fn me(caller: ApiCaller) -> Json<Me> {
    Json(Me {
        kind: caller.kind(),
        id: caller.actor.id,
        name: caller.actor.name.clone(),
        role: caller.role.as_str(),
    })
}
