//! `/api/v1/mikrotik/pppoe-users`: CRUD of the PPPoE secrets on routers.

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
use crate::mikrotik::api::PppoeUserView;
use crate::mikrotik::service::{self, PppoeFilter, PppoeInput};
use crate::staff::{Operator, Viewer};
use crate::web::pagination::{Page, PageParams, Paged};

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
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<PppoeQuery>,
) -> Result<Paged<PppoeUserView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = PppoeFilter::parse(
        query.router_id.as_deref(),
        query.network_user_id.as_deref(),
        query.q.as_deref(),
        query.status.as_deref(),
        &mut errors,
    );
    let sort = service::pppoe_sort(query.sort.as_deref(), &mut errors);
    check(errors)?;
    let (rows, total) = service::list_pppoe_users(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(PppoeUserView::from))
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
    api: Api<Operator>,
    ApiJson(body): ApiJson<PppoeUserBody>,
) -> Result<Response, AppError> {
    let routers = &api.state.router_pool;
    let row = service::create_pppoe_user(api.db(), routers, &api.actor, &body.into()).await?;
    Ok(created(
        &format!("/mikrotik/pppoe-users/{}", row.id),
        PppoeUserView::from(row),
    ))
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
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<PppoeUserView>, AppError> {
    Ok(Json(service::get_pppoe_user(api.db(), id).await?.into()))
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
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<PppoeUserBody>,
) -> Result<Json<PppoeUserView>, AppError> {
    let routers = &api.state.router_pool;
    let row = service::update_pppoe_user(api.db(), routers, &api.actor, id, &body.into()).await?;
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
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    let routers = &api.state.router_pool;
    service::delete_pppoe_user(api.db(), routers, &api.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
