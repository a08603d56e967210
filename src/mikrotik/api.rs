//! `/api/v1/mikrotik/routers` and `/api/v1/mikrotik/pppoe-users`: MikroTik
//! routers and the PPPoE secrets ispd keeps on them.
//!
//! Thin handlers over [`super::service`]. Roles: any signed-in caller
//! (viewer and up) reads; operators and admins create, change, delete and
//! test. Passwords (the router's API password, PPP passwords) are
//! write-only: no view has them.
//!
//! A PPPoE change goes to the router first, then to the database; a router
//! that cannot be reached answers 502 (504 when it does not answer in
//! time) and nothing is saved.

use axum::extract::{OriginalUri, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::entities::{mikrotik_pppoe_user, mikrotik_router};
use super::service::{
    self, PppoeFilter, PppoeInput, RouterFilter, RouterInput, RouterProbe, PPPOE_SORTS,
    ROUTER_SORTS,
};
use crate::api::auth::ApiCaller;
use crate::api::docs::{RouterFailed, RouterTimeout};
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::query::{filters, Sort};
use crate::staff::Role;
use crate::web::pagination::{Page, PageParams, Paged};

/// The MikroTik routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_routers, create_router))
        .routes(routes!(get_router, update_router, delete_router))
        .routes(routes!(test_router))
        .routes(routes!(list_pppoe_users, create_pppoe_user))
        .routes(routes!(
            get_pppoe_user,
            update_pppoe_user,
            delete_pppoe_user
        ))
}

fn check(errors: FieldErrors) -> Result<(), AppError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::validation(errors))
    }
}

fn id_filter(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<i32> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    match text.parse::<i32>() {
        Ok(id) if id > 0 => Some(id),
        _ => {
            errors.insert(field.into(), "must be a positive whole number".into());
            None
        }
    }
}

// ---------------------------------------------------------------- views

/// A MikroTik router. Its API password is never part of it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "core-1", "ip_address": "192.0.2.1",
    "api_port": 8729, "use_tls": true,
    "tls_fingerprint": "3A:...:9F", "username": "ispd-api", "status": "online",
    "identity": "core-1", "version": "7.16.2 (stable)",
    "last_seen_at": "2026-12-01T10:00:00Z", "last_error": null,
    "created_at": "2026-12-01T09:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct RouterView {
    #[schema(example = 1)]
    pub id: i32,
    #[schema(example = "core-1")]
    pub name: String,
    /// An IP address or a host name.
    #[schema(example = "192.0.2.1")]
    pub ip_address: String,
    #[schema(example = 8728)]
    pub api_port: i32,
    /// API-SSL, accepting only the certificate with `tls_fingerprint`.
    pub use_tls: bool,
    /// SHA-256 of the router's certificate, upper-case hex pairs and `:`.
    pub tls_fingerprint: Option<String>,
    /// The API user.
    #[schema(example = "ispd-api")]
    pub username: String,
    /// `unknown` (never tested since added or changed), `online` or
    /// `offline` (the last test or check failed: see `last_error`).
    #[schema(example = "online")]
    pub status: String,
    /// `/system/identity`, from the last successful test.
    pub identity: Option<String>,
    /// The RouterOS version, from the last successful test.
    #[schema(example = "7.16.2 (stable)")]
    pub version: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RouterView {
    /// The router as `role` may see it ([`service::router_error_for`]).
    fn for_role(r: mikrotik_router::Model, role: Role) -> Self {
        let last_error = service::router_error_for(role, r.last_error.clone());
        Self {
            last_error,
            ..r.into()
        }
    }
}

impl From<mikrotik_router::Model> for RouterView {
    fn from(r: mikrotik_router::Model) -> Self {
        Self {
            id: r.id,
            name: r.name,
            ip_address: r.ip_address,
            api_port: r.api_port,
            use_tls: r.use_tls,
            tls_fingerprint: r.tls_fingerprint,
            username: r.username,
            status: r.status,
            identity: r.identity,
            version: r.version,
            last_seen_at: r.last_seen_at.map(|t| t.to_utc()),
            last_error: r.last_error,
            created_at: r.created_at.to_utc(),
            updated_at: r.updated_at.to_utc(),
        }
    }
}

/// The answer of a successful connection test.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"identity": "core-1", "version": "7.16.2 (stable)",
    "uptime": "2w3d4h5m6s", "board_name": "CCR2004-1G-12S+2XS"}))]
pub struct RouterTestView {
    /// `/system/identity`.
    pub identity: String,
    /// The RouterOS version.
    pub version: String,
    /// As RouterOS writes durations.
    pub uptime: String,
    pub board_name: Option<String>,
}

impl From<RouterProbe> for RouterTestView {
    fn from(p: RouterProbe) -> Self {
        Self {
            identity: p.identity,
            version: p.version,
            uptime: p.uptime,
            board_name: p.board_name,
        }
    }
}

/// A PPP secret ispd keeps on a router. Its password is never part of it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 3, "router_id": 1, "network_user_id": null,
    "username": "alice", "service": "pppoe", "profile": "home-20m",
    "local_address": null, "remote_address": "100.64.0.10", "router_item_id": "*1A",
    "status": "active", "last_synced_at": "2026-12-01T10:00:00Z",
    "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct PppoeUserView {
    #[schema(example = 3)]
    pub id: i32,
    #[schema(example = 1)]
    pub router_id: i32,
    /// The network user whose secret this is (its name, password, package
    /// profile and status follow that user).
    pub network_user_id: Option<i32>,
    #[schema(example = "alice")]
    pub username: String,
    /// `any`, `pppoe`, `pptp`, `l2tp`, `ovpn` or `sstp`.
    #[schema(example = "pppoe")]
    pub service: String,
    /// The router's PPP profile; null means `default`.
    pub profile: Option<String>,
    pub local_address: Option<String>,
    pub remote_address: Option<String>,
    /// The router's id for the secret.
    #[schema(example = "*1A")]
    pub router_item_id: Option<String>,
    /// `active`, or `disabled` (`disabled=yes` on the router).
    #[schema(example = "active")]
    pub status: String,
    /// When ispd last wrote the secret to the router.
    pub last_synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<mikrotik_pppoe_user::Model> for PppoeUserView {
    fn from(p: mikrotik_pppoe_user::Model) -> Self {
        Self {
            id: p.id,
            router_id: p.router_id,
            network_user_id: p.network_user_id,
            username: p.username,
            service: p.service,
            profile: p.profile,
            local_address: p.local_address,
            remote_address: p.remote_address,
            router_item_id: p.router_item_id,
            status: p.status,
            last_synced_at: p.last_synced_at.map(|t| t.to_utc()),
            created_at: p.created_at.to_utc(),
            updated_at: p.updated_at.to_utc(),
        }
    }
}

// -------------------------------------------------------------- routers

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
    caller: ApiCaller,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<RouterQuery>,
) -> Result<Paged<RouterView>, AppError> {
    caller.require(Role::Viewer)?;
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let q = filters::text("q", query.q.as_deref(), 200, &mut errors);
    let status = filters::text("status", query.status.as_deref(), 16, &mut errors);
    if let Some(s) = &status {
        if ![
            service::ROUTER_STATUS_UNKNOWN,
            service::ROUTER_STATUS_ONLINE,
            service::ROUTER_STATUS_OFFLINE,
        ]
        .contains(&s.as_str())
        {
            errors.insert("status".into(), "must be unknown, online or offline".into());
        }
    }
    let sort = Sort::parse(query.sort.as_deref(), ROUTER_SORTS, "name", &mut errors);
    check(errors)?;
    let filter = RouterFilter { q, status };
    let (rows, total) = service::list_routers(&state.db.main, &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(|r| RouterView::for_role(r, caller.role)))
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RouterBody>,
) -> Result<Response, AppError> {
    caller.require(Role::Operator)?;
    let router =
        service::create_router(&state.db.main, &state.app_key, &caller.actor, &body.into()).await?;
    let location = format!("/api/v1/mikrotik/routers/{}", router.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(RouterView::from(router)),
    )
        .into_response())
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<RouterView>, AppError> {
    caller.require(Role::Viewer)?;
    let router = service::get_router(&state.db.main, id).await?;
    Ok(Json(RouterView::for_role(router, caller.role)))
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<RouterBody>,
) -> Result<Json<RouterView>, AppError> {
    caller.require(Role::Operator)?;
    let router = service::update_router(
        &state.db.main,
        &state.app_key,
        &caller.actor,
        id,
        &body.into(),
    )
    .await?;
    // New address or credentials: no old connection or back-off is reused.
    state.router_pool.forget(id);
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    caller.require(Role::Operator)?;
    service::delete_router(&state.db.main, &caller.actor, id).await?;
    state.router_pool.forget(id);
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<RouterTestView>, AppError> {
    caller.require(Role::Operator)?;
    let probe = service::test_router(&state.db.main, &state.router_pool, &caller.actor, id).await?;
    Ok(Json(probe.into()))
}

// ---------------------------------------------------------- PPPoE users

/// Filters and order of `GET /mikrotik/pppoe-users`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PppoeQuery {
    /// Only this router's.
    #[param(value_type = Option<i32>)]
    pub router_id: Option<String>,
    /// Only this network user's.
    #[param(value_type = Option<i32>)]
    pub network_user_id: Option<String>,
    /// Part of the username, profile or addresses, any case.
    pub q: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    /// `id`, `username`, `router_id`, `service`, `profile`, `status`,
    /// `created_at` or `updated_at`; `-` in front for descending. Default
    /// `username`.
    pub sort: Option<String>,
}

/// The body of `POST /mikrotik/pppoe-users` and `PUT .../{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"router_id": 1, "username": "alice", "password": "ppp secret",
    "service": "pppoe", "profile": "home-20m", "remote_address": "100.64.0.10",
    "disabled": false}))]
pub struct PppoeUserBody {
    /// The router; cannot change on `PUT`.
    pub router_id: i32,
    /// 1 to 64 letters, digits and `. _ - @ +`; unique per router. Not
    /// needed with `network_user_id` (the user's name is used).
    pub username: Option<String>,
    /// Write-only, never returned. 1 to 128 characters, no control
    /// characters, quotes or backslashes. Required on `POST` (unless
    /// `network_user_id`); on `PUT`, omitted keeps the current one.
    #[schema(write_only, max_length = 128)]
    pub password: Option<String>,
    /// `any`, `pppoe` (default), `pptp`, `l2tp`, `ovpn` or `sstp`.
    pub service: Option<String>,
    /// A PPP profile that exists on the router; omitted means `default`.
    /// With `network_user_id`, the user's package's profile is used.
    pub profile: Option<String>,
    /// IPv4.
    pub local_address: Option<String>,
    /// IPv4.
    pub remote_address: Option<String>,
    /// `disabled=yes` on the router. With `network_user_id`, follows the
    /// user's status.
    pub disabled: Option<bool>,
    /// Links the secret to a network user of service type `pppoe`: its
    /// name, password, package profile and status are used, and kept in
    /// step when the user changes or is deleted.
    pub network_user_id: Option<i32>,
}

impl From<PppoeUserBody> for PppoeInput {
    fn from(b: PppoeUserBody) -> Self {
        Self {
            router_id: b.router_id,
            username: b.username.unwrap_or_default(),
            password: b.password.map(Secret::new),
            service: b.service,
            profile: b.profile,
            local_address: b.local_address,
            remote_address: b.remote_address,
            disabled: b.disabled.unwrap_or(false),
            network_user_id: b.network_user_id,
        }
    }
}

/// List PPPoE users.
#[utoipa::path(
    get,
    path = "/mikrotik/pppoe-users",
    tag = "mikrotik",
    operation_id = "list_pppoe_users",
    params(PageParams, PppoeQuery),
    responses(
        (status = 200, description = "One page of PPPoE users (never their passwords).", body = Page<PppoeUserView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 3, "router_id": 1, "network_user_id": null, "username": "alice",
                "service": "pppoe", "profile": "home-20m", "local_address": null, "remote_address": "100.64.0.10",
                "router_item_id": "*1A", "status": "active", "last_synced_at": "2026-12-01T10:00:00Z",
                "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_pppoe_users(
    caller: ApiCaller,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<PppoeQuery>,
) -> Result<Paged<PppoeUserView>, AppError> {
    caller.require(Role::Viewer)?;
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = pppoe_filter(&query, &mut errors);
    let sort = Sort::parse(query.sort.as_deref(), PPPOE_SORTS, "username", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_pppoe_users(&state.db.main, &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(PppoeUserView::from))
}

fn pppoe_filter(query: &PppoeQuery, errors: &mut FieldErrors) -> PppoeFilter {
    let status = filters::text("status", query.status.as_deref(), 16, errors);
    if let Some(s) = &status {
        if ![service::PPPOE_STATUS_ACTIVE, service::PPPOE_STATUS_DISABLED].contains(&s.as_str()) {
            errors.insert("status".into(), "must be active or disabled".into());
        }
    }
    PppoeFilter {
        router_id: id_filter("router_id", query.router_id.as_deref(), errors),
        network_user_id: id_filter("network_user_id", query.network_user_id.as_deref(), errors),
        q: filters::text("q", query.q.as_deref(), 200, errors),
        status,
    }
}

/// Create a PPPoE user: the secret is added to the router, then recorded.
/// If the router cannot be reached, nothing is saved.
#[utoipa::path(
    post,
    path = "/mikrotik/pppoe-users",
    tag = "mikrotik",
    operation_id = "create_pppoe_user",
    request_body = PppoeUserBody,
    responses(
        (status = 201, description = "Created on the router and here; `Location` names it.", body = PppoeUserView,
            headers(("Location" = String, description = "The new PPPoE user's URL."))),
        (status = 409, description = "The name is taken on the router (its own message) or here (`pppoe_user_taken`).",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "pppoe_user_taken",
                "message": "router core-1: failure: secret with the same name already exists"}})),
        (status = 422, description = "A field is not valid, including a profile or service the router does not have.",
            body = crate::api::docs::ErrorBody),
        (status = 502, response = RouterFailed),
        (status = 504, response = RouterTimeout),
    ),
)]
pub async fn create_pppoe_user(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PppoeUserBody>,
) -> Result<Response, AppError> {
    caller.require(Role::Operator)?;
    let row = service::create_pppoe_user(
        &state.db.main,
        &state.router_pool,
        &caller.actor,
        &body.into(),
    )
    .await?;
    let location = format!("/api/v1/mikrotik/pppoe-users/{}", row.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(PppoeUserView::from(row)),
    )
        .into_response())
}

/// Show one PPPoE user (never its password).
#[utoipa::path(
    get,
    path = "/mikrotik/pppoe-users/{id}",
    tag = "mikrotik",
    operation_id = "get_pppoe_user",
    params(("id" = i32, Path, description = "The PPPoE user's id.")),
    responses(
        (status = 200, description = "The PPPoE user.", body = PppoeUserView),
    ),
)]
pub async fn get_pppoe_user(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<PppoeUserView>, AppError> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        service::get_pppoe_user(&state.db.main, id).await?.into(),
    ))
}

/// Replace a PPPoE user's settings: the router first, then here. If the
/// database write fails, the router's old values are set back.
#[utoipa::path(
    put,
    path = "/mikrotik/pppoe-users/{id}",
    tag = "mikrotik",
    operation_id = "update_pppoe_user",
    params(("id" = i32, Path, description = "The PPPoE user's id.")),
    request_body = PppoeUserBody,
    responses(
        (status = 200, description = "Changed on the router and here.", body = PppoeUserView),
        (status = 409, description = "The new name is taken (`pppoe_user_taken`), or the secret is gone from the router (`pppoe_secret_missing`).",
            body = crate::api::docs::ErrorBody),
        (status = 502, response = RouterFailed),
        (status = 504, response = RouterTimeout),
    ),
)]
pub async fn update_pppoe_user(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<PppoeUserBody>,
) -> Result<Json<PppoeUserView>, AppError> {
    caller.require(Role::Operator)?;
    let row = service::update_pppoe_user(
        &state.db.main,
        &state.router_pool,
        &caller.actor,
        id,
        &body.into(),
    )
    .await?;
    Ok(Json(row.into()))
}

/// Delete a PPPoE user: the secret is removed from the router, then here.
/// A secret already gone from the router is not an error.
#[utoipa::path(
    delete,
    path = "/mikrotik/pppoe-users/{id}",
    tag = "mikrotik",
    operation_id = "delete_pppoe_user",
    params(("id" = i32, Path, description = "The PPPoE user's id.")),
    responses(
        (status = 204, description = "Deleted on the router and here."),
        (status = 502, response = RouterFailed),
        (status = 504, response = RouterTimeout),
    ),
)]
pub async fn delete_pppoe_user(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    caller.require(Role::Operator)?;
    service::delete_pppoe_user(&state.db.main, &state.router_pool, &caller.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
