//! `/api/v1/mikrotik/routers`: CRUD and the connection test.

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::Api;
use crate::api::check;
use crate::api::created;
use crate::api::docs::{RouterFailed, RouterTimeout};
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::mikrotik::api::{RouterTestView, RouterView};
use crate::mikrotik::service::{self, RouterFilter, RouterInput};
use crate::staff::{Operator, Viewer};
use crate::web::pagination::{Page, PageParams, Paged};

/// Filters and order of `GET /mikrotik/routers`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RouterQuery {
    /// Part of the name, address or identity, any case.
    pub q: Option<String>,
    /// `unknown`, `online` or `offline`.
    pub status: Option<String>,
    /// `id`, `name`, `ip_address`, `status`, `last_seen_at` or
    /// `created_at`; `-` in front for descending. Default `name`.
    pub sort: Option<String>,
}

/// The body of `POST /mikrotik/routers` and `PUT /mikrotik/routers/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "core-1", "ip_address": "192.0.2.1", "api_port": 8729,
    "use_tls": true,
    "tls_fingerprint": "3a5f0c1b9d2e4f60718293a4b5c6d7e8f9011223344556677889900aabbccdd",
    "username": "ispd-api", "password": "api password"}))]
pub struct RouterBody {
    /// 1 to 64 characters, unique.
    #[schema(example = "core-1")]
    pub name: String,
    /// An IP address or a host name.
    #[schema(example = "192.0.2.1")]
    pub ip_address: String,
    /// 1 to 65535; default 8728, or 8729 with `use_tls`.
    #[schema(minimum = 1, maximum = 65535)]
    pub api_port: Option<i64>,
    /// API-SSL; default false.
    pub use_tls: Option<bool>,
    /// SHA-256 of the router's certificate: 64 hex digits, with or without
    /// colons. Required with `use_tls`.
    pub tls_fingerprint: Option<String>,
    /// The API user, 1 to 64 characters.
    pub username: String,
    /// Write-only, never returned. Required on `POST`; on `PUT`, omitted or
    /// empty keeps the current one.
    #[schema(write_only, max_length = 128)]
    pub password: Option<String>,
}

impl From<RouterBody> for RouterInput {
    fn from(b: RouterBody) -> Self {
        Self {
            name: b.name,
            ip_address: b.ip_address,
            api_port: b.api_port,
            use_tls: b.use_tls.unwrap_or(false),
            tls_fingerprint: b.tls_fingerprint,
            username: b.username,
            password: b.password.map(Secret::new),
        }
    }
}

/// List MikroTik routers.
#[utoipa::path(
    get,
    path = "/mikrotik/routers",
    tag = "mikrotik",
    operation_id = "list_routers",
    params(PageParams, RouterQuery),
    responses(
        (status = 200, description = "One page of routers (never their passwords).", body = Page<RouterView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 1, "name": "core-1", "ip_address": "192.0.2.1", "api_port": 8728,
                "use_tls": false, "tls_fingerprint": null, "username": "ispd-api", "status": "online",
                "identity": "core-1", "version": "7.16.2 (stable)", "last_seen_at": "2026-12-01T09:05:00Z",
                "last_error": null, "created_at": "2026-12-01T09:00:00Z", "updated_at": "2026-12-01T09:05:00Z"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_routers(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<RouterQuery>,
) -> Result<Paged<RouterView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = RouterFilter::parse(query.q.as_deref(), query.status.as_deref(), &mut errors);
    let sort = service::router_sort(query.sort.as_deref(), &mut errors);
    check(errors)?;
    let (rows, total) = service::list_routers(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(|r| RouterView::for_role(r, api.role)))
}

/// Add a router. Nothing is sent to it; `POST .../test` checks the
/// connection.
#[utoipa::path(
    post,
    path = "/mikrotik/routers",
    tag = "mikrotik",
    operation_id = "create_router",
    request_body = RouterBody,
    responses(
        (status = 201, description = "Created; `Location` names it. No password in it.", body = RouterView,
            headers(("Location" = String, description = "The new router's URL."))),
        (status = 409, description = "The name is taken (`router_name_taken`).",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "router_name_taken",
                "message": "a router named \"core-1\" exists already"}})),
    ),
)]
pub async fn create_router(
    api: Api<Operator>,
    ApiJson(body): ApiJson<RouterBody>,
) -> Result<Response, AppError> {
    let key = &api.state.app_key;
    let router = service::create_router(api.db(), key, &api.actor, &body.into()).await?;
    Ok(created(
        &format!("/mikrotik/routers/{}", router.id),
        RouterView::from(router),
    ))
}

/// Show one router (never its password).
#[utoipa::path(
    get,
    path = "/mikrotik/routers/{id}",
    tag = "mikrotik",
    operation_id = "get_router",
    params(("id" = i32, Path, description = "The router's id.")),
    responses(
        (status = 200, description = "The router.", body = RouterView),
    ),
)]
pub async fn get_router(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<RouterView>, AppError> {
    let router = service::get_router(api.db(), id).await?;
    Ok(Json(RouterView::for_role(router, api.role)))
}

/// Replace a router's settings (every field, as in `POST`; without
/// `password` the current one stays). A change of how it is reached makes
/// its status `unknown` until the next test.
#[utoipa::path(
    put,
    path = "/mikrotik/routers/{id}",
    tag = "mikrotik",
    operation_id = "update_router",
    params(("id" = i32, Path, description = "The router's id.")),
    request_body = RouterBody,
    responses(
        (status = 200, description = "The router, changed.", body = RouterView),
        (status = 409, description = "The name is taken (`router_name_taken`).",
            body = crate::api::docs::ErrorBody),
    ),
)]
pub async fn update_router(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<RouterBody>,
) -> Result<Json<RouterView>, AppError> {
    let key = &api.state.app_key;
    let router = service::update_router(api.db(), key, &api.actor, id, &body.into()).await?;
    // New address or credentials: no old connection or back-off is reused.
    api.state.router_pool.forget(id);
    Ok(Json(router.into()))
}

/// Delete a router. Its PPPoE users are forgotten here; their secrets stay
/// on the router (which may be gone for good).
#[utoipa::path(
    delete,
    path = "/mikrotik/routers/{id}",
    tag = "mikrotik",
    operation_id = "delete_router",
    params(("id" = i32, Path, description = "The router's id.")),
    responses(
        (status = 204, description = "Deleted."),
    ),
)]
pub async fn delete_router(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    service::delete_router(api.db(), &api.actor, id).await?;
    api.state.router_pool.forget(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Test the connection: log in, read the identity, RouterOS version and
/// uptime. The outcome is recorded on the router (`status`, `identity`,
/// `version`, `last_seen_at`, or `last_error`).
#[utoipa::path(
    post,
    path = "/mikrotik/routers/{id}/test",
    tag = "mikrotik",
    operation_id = "test_router",
    params(("id" = i32, Path, description = "The router's id.")),
    responses(
        (status = 200, description = "The router answered.", body = RouterTestView),
        (status = 502, response = RouterFailed),
        (status = 504, response = RouterTimeout),
    ),
)]
pub async fn test_router(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<RouterTestView>, AppError> {
    let routers = &api.state.router_pool;
    let probe = service::test_router(api.db(), routers, &api.actor, id).await?;
    Ok(Json(probe.into()))
}
