//! `/api/v1/mikrotik/sessions`: the PPP sessions active on the routers now,
//! read live through the connection pool, and disconnecting one.
//!
//! Roles: any signed-in caller (viewer and up) lists; operators and admins
//! disconnect (audited as `mikrotik.session.disconnect`).

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Disconnected, LiveFilter, LiveSessionId, RouterSessions};
use crate::api::auth::Api;
use crate::api::docs::{NotFound, ValidationFailed};
use crate::api::extract::{ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::AppError;
use crate::mikrotik::sessions;
use crate::staff::{Operator, Viewer};

/// The live sessions routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_live_sessions))
        .routes(routes!(disconnect_session))
}

/// Filters of `GET /mikrotik/sessions`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveSessionsQuery {
    /// Only this router.
    #[param(value_type = Option<i32>, example = 3)]
    pub router_id: Option<String>,
    /// Part of the user name, address or caller id (MAC), any case.
    #[param(example = "alice")]
    pub q: Option<String>,
}

/// Every router's live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveSessionsView {
    pub routers: Vec<RouterSessions>,
    /// Sessions listed, after the search.
    #[schema(example = 1)]
    pub total: usize,
}

/// The PPP sessions active on every router now (or on one), read live
/// from the routers through ispd's connection pool. A router that cannot
/// be read is listed with `state: "unreachable"` and its error; the
/// others still list their sessions. Rates (`*_bps`) compare the counters
/// with ispd's previous reading of the same session (at least 1 s before).
#[utoipa::path(
    get,
    path = "/mikrotik/sessions",
    tag = "mikrotik",
    operation_id = "list_live_sessions",
    params(LiveSessionsQuery),
    responses(
        (status = 404, response = NotFound),
        (status = 200, description = "Each router with its state and sessions.", body = LiveSessionsView,
            example = json!({"routers": [
                {"router_id": 3, "router_name": "core-1", "state": "ok", "error": null,
                 "pool": {"consecutive_failures": 0, "retry_in_secs": null, "last_error": null,
                          "idle_connections": 1, "logins": 1},
                 "sessions": [{"id": "3-1A", "router_id": 3, "item_id": "*1A", "username": "alice",
                    "service": "pppoe", "address": "100.64.0.10", "caller_id": "AA:BB:CC:DD:EE:01",
                    "uptime_secs": 3725, "upload_bytes": 1048576, "download_bytes": 8388608,
                    "upload_bps": 80000, "download_bps": 320000}]},
                {"router_id": 4, "router_name": "edge-2", "state": "unreachable",
                 "error": "router edge-2 is unreachable: 192.0.2.4:8728: Connection refused",
                 "pool": {"consecutive_failures": 1, "retry_in_secs": 5,
                          "last_error": "router edge-2 is unreachable: 192.0.2.4:8728: Connection refused",
                          "idle_connections": 0, "logins": 0},
                 "sessions": []}],
                "total": 1})),
    ),
)]
pub async fn list_live_sessions(
    api: Api<Viewer>,
    ApiQuery(query): ApiQuery<LiveSessionsQuery>,
) -> Result<Json<LiveSessionsView>, AppError> {
    let filter = LiveFilter::parse(query.router_id.as_deref(), query.q.as_deref())?;
    let state = &api.state;
    let mut routers = sessions::live_sessions(
        api.db(),
        &state.router_pool,
        &state.session_rates,
        filter.router_id,
    )
    .await?;
    for router in &mut routers {
        router
            .sessions
            .retain(|s| sessions::matches_search(s, &filter.q));
    }
    let total = routers.iter().map(|r| r.sessions.len()).sum();
    Ok(Json(LiveSessionsView { routers, total }))
}

/// The session that was disconnected.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisconnectedView {
    pub disconnected: Disconnected,
}

/// Disconnect a session: removes it from the router's `/ppp/active`
/// (operators and admins). Its synced row, if any, is closed, and the
/// audit log records who did it. 404 when the router has no such session
/// (any more); 502/504 when the router cannot be reached.
#[utoipa::path(
    post,
    path = "/mikrotik/sessions/{id}/disconnect",
    tag = "mikrotik",
    operation_id = "disconnect_session",
    params(("id" = String, Path, description = "`ROUTER_ID-ITEM`, as `id` in the live list (`3-1A`).")),
    responses(
        (status = 422, response = ValidationFailed),
        (status = 200, description = "Disconnected.", body = DisconnectedView,
            example = json!({"disconnected": {"id": "3-1A", "router_id": 3, "router_name": "core-1",
                "username": "alice", "address": "100.64.0.10"}})),
        (status = 502, description = "The router could not be reached or refused.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "router_unreachable",
                "message": "router core-1 is unreachable: 192.0.2.3:8728: Connection refused"}})),
        (status = 504, description = "The router did not answer within MIKROTIK_API_TIMEOUT.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "router_timeout",
                "message": "router core-1 did not answer within 30 s"}})),
    ),
)]
pub async fn disconnect_session(
    api: Api<Operator>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DisconnectedView>, AppError> {
    let id = LiveSessionId::parse(&id).map_err(|message| AppError::invalid("id", message))?;
    let routers = &api.state.router_pool;
    let disconnected = sessions::disconnect(api.db(), routers, &api.actor, &id).await?;
    Ok(Json(DisconnectedView { disconnected }))
}
