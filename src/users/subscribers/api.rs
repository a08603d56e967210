//! `/api/v1/users`: CRUD of network users, password reveal, accounting and
//! RADIUS resync.

use axum::extract::OriginalUri;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::Api;
use crate::api::check;
use crate::api::created;
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::api::merge_patch;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::query::Sort;
use crate::staff::{Operator, Viewer};
use crate::users::api::{settings, RevealedPassword, UserView};

use crate::users::provision;
use crate::users::service::{self, UserChanges, UserFilter, UserInput, USER_SORTS};
use crate::web::pagination::{Page, PageParams, Paged};

/// Filters and order of `GET /users`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Part of the username, full name, MAC address or static IP, any case.
    pub q: Option<String>,
    /// `active`, `suspended` or `disabled`.
    #[param(example = "active")]
    pub status: Option<String>,
    /// `pppoe`, `hotspot` or `static`.
    #[param(example = "pppoe")]
    pub service_type: Option<String>,
    /// Only users on this package.
    #[param(value_type = Option<i32>, example = 1)]
    pub package_id: Option<String>,
    /// `id`, `username`, `status`, `service_type`, `package_id`,
    /// `expires_at`, `created_at` or `updated_at`; `-` in front for
    /// descending; comma-separated for several. Default `username`.
    #[param(example = "username")]
    pub sort: Option<String>,
}

/// The body of `POST /users` and `PUT /users/{id}` (every field; an
/// omitted optional field is cleared).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"username": "alice@isp.example", "password": "Sup3r-secret pass",
    "service_type": "static", "package_id": 1, "status": "active",
    "mac_address": "aa:bb:cc:dd:ee:ff", "expires_at": "2027-12-31T23:59:59Z",
    "static_subnet_id": 1, "static_ip": null, "full_name": "Alice Example", "notes": null}))]
pub struct UserBody {
    /// RADIUS-safe and unique.
    #[schema(example = "alice@isp.example")]
    pub username: String,
    /// Write-only, never returned. 8 to 128 characters, no control
    /// characters. Required on `POST`; on `PUT`, omitted keeps the current
    /// password.
    #[schema(write_only, min_length = 8, max_length = 128)]
    pub password: Option<String>,
    /// `pppoe`, `hotspot` or `static`.
    #[schema(example = "pppoe")]
    pub service_type: String,
    /// The service package.
    #[schema(example = 1)]
    pub package_id: Option<i32>,
    /// `active` (default), `suspended` or `disabled`.
    pub status: Option<String>,
    /// Binds the user to this MAC address.
    pub mac_address: Option<String>,
    /// RFC 3339; in the future when the user is created.
    pub expires_at: Option<DateTime<Utc>>,
    /// For `static` only (and then required): the IPAM subnet the address
    /// comes from.
    pub static_subnet_id: Option<i32>,
    /// For `static` only: this address, else the lowest free one.
    pub static_ip: Option<String>,
    /// At most 128 characters.
    pub full_name: Option<String>,
    /// At most 10 000 characters.
    pub notes: Option<String>,
    /// 1 to 28: the day of the month its billing cycle (for its package's
    /// quota) starts; omitted or null: its package's.
    #[schema(minimum = 1, maximum = 28)]
    pub cycle_anchor_day: Option<i64>,
}

impl From<UserBody> for UserInput {
    fn from(b: UserBody) -> Self {
        Self {
            username: b.username,
            password: b.password.map(Secret::new),
            service_type: b.service_type,
            package_id: b.package_id,
            status: b.status,
            mac_address: b.mac_address,
            expires_at: b.expires_at,
            static_subnet_id: b.static_subnet_id,
            static_ip: b.static_ip,
            full_name: b.full_name,
            notes: b.notes,
            cycle_anchor_day: b.cycle_anchor_day,
        }
    }
}

/// The body of `PATCH /users/{id}`: a JSON merge patch (RFC 7396) over the
/// fields of `PUT`. A field left out keeps its value; `null` clears it, as
/// leaving it out of `PUT` would (so `package_id`, `username` and
/// `service_type` cannot be null, and a null `status` is `active`); a value
/// sets it. A field not listed here is refused (422).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "suspended", "expires_at": null}))]
pub struct UserPatch {
    /// RADIUS-safe and unique.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<String>, example = "alice@isp.example")]
    pub username: Option<Option<String>>,
    /// Write-only, never returned. 8 to 128 characters, no control
    /// characters. Left out or `null`, the current password stays.
    #[schema(write_only, min_length = 8, max_length = 128)]
    pub password: Option<String>,
    /// `pppoe`, `hotspot` or `static`. Leaving `static` releases the
    /// address.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<String>, example = "pppoe")]
    pub service_type: Option<Option<String>>,
    /// The service package; required, so not `null`.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<i32>, example = 1)]
    pub package_id: Option<Option<i32>>,
    /// `active`, `suspended` or `disabled`; `null` is `active`.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<String>, example = "suspended")]
    pub status: Option<Option<String>>,
    /// Binds the user to this MAC address; `null` unbinds it.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<String>)]
    pub mac_address: Option<Option<String>>,
    /// RFC 3339; `null` removes the expiry.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// For `static` only: a new subnet takes a new address from it and
    /// releases the old one. Left out or `null`, a static user keeps its
    /// address.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<i32>)]
    pub static_subnet_id: Option<Option<i32>>,
    /// For `static` only: this address from the new subnet. Left out or
    /// `null`, a static user keeps its address.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<String>)]
    pub static_ip: Option<Option<String>>,
    /// At most 128 characters; `null` clears it.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<String>)]
    pub full_name: Option<Option<String>>,
    /// At most 10 000 characters; `null` clears them.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// 1 to 28; `null`: its package's.
    #[serde(default, deserialize_with = "merge_patch::present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 28)]
    pub cycle_anchor_day: Option<Option<i64>>,
}

impl From<UserPatch> for UserChanges {
    fn from(p: UserPatch) -> Self {
        Self {
            username: p.username,
            password: p.password.map(Secret::new),
            service_type: p.service_type,
            package_id: p.package_id,
            status: p.status,
            mac_address: p.mac_address,
            expires_at: p.expires_at,
            static_subnet_id: p.static_subnet_id,
            static_ip: p.static_ip,
            full_name: p.full_name,
            notes: p.notes,
            cycle_anchor_day: p.cycle_anchor_day,
        }
    }
}

/// List network users.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    operation_id = "list_users",
    params(PageParams, UserQuery),
    responses(
        (status = 200, description = "One page of users (never their passwords).", body = Page<UserView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 7, "username": "alice@isp.example",
                "service_type": "pppoe", "package_id": 1, "status": "active", "static_ip": null,
                "static_allocation_id": null, "mac_address": null, "expires_at": null,
                "full_name": "Alice Example", "notes": null, "radius_sync_pending": false,
                "radius_synced_at": "2026-12-01T10:06:00Z",
                "created_at": "2026-12-01T10:05:00Z", "updated_at": "2026-12-01T10:05:00Z"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_users(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Paged<UserView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = UserFilter::parse(
        query.q.as_deref(),
        query.status.as_deref(),
        query.service_type.as_deref(),
        query.package_id.as_deref(),
        &mut errors,
    );
    let sort = Sort::parse(query.sort.as_deref(), USER_SORTS, "username", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_users(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(UserView::from))
}

/// Create a network user. A static user's address is allocated from the
/// IPAM subnet `static_subnet_id` (the lowest free one unless `static_ip`
/// names one).
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    operation_id = "create_user",
    request_body = UserBody,
    responses(
        (status = 201, description = "Created; `Location` names it. No password in it.", body = UserView,
            headers(("Location" = String, description = "The new user's URL."))),
        (status = 409, description = "The static address cannot be had: `subnet_full`, `address_in_use`, or `conflict` (a reserved subnet).",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "subnet_full",
                "message": "subnet 100.64.0.0/29 is full: 5 of 5 usable addresses allocated"}})),
        (status = 422, description = "A field is not valid: the username is taken or not RADIUS-safe, the password is too short, no such package or subnet, a static user without `static_subnet_id`, an address outside the subnet, an expiry in the past.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "validation_failed",
                "message": "these fields are not valid: password, static_subnet_id",
                "fields": {"password": "must be 8 to 128 characters long",
                    "static_subnet_id": "is required for a static user: the subnet its address comes from"}}})),
        (status = 503, response = crate::api::docs::IpamBusy),
    ),
)]
pub async fn create_user(
    api: Api<Operator>,
    ApiJson(body): ApiJson<UserBody>,
) -> Result<Response, AppError> {
    let user = provision::create_user(
        &api.state.db,
        &api.state.app_key,
        settings(&api.state),
        &api.actor,
        &body.into(),
    )
    .await?;
    Ok(created(
        &format!("/users/{}", user.id),
        UserView::from(user),
    ))
}

/// Show one network user (never its password).
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    operation_id = "get_user",
    params(("id" = i32, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "The user.", body = UserView),
    ),
)]
pub async fn get_user(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<UserView>, AppError> {
    Ok(Json(service::get_user(api.db(), id).await?.into()))
}

/// Replace a user's settings (every field, as in `POST`; without
/// `password` the current one stays). Leaving `static` service releases the
/// address; a new subnet takes a new address and releases the old one.
#[utoipa::path(
    put,
    path = "/users/{id}",
    tag = "users",
    operation_id = "update_user",
    params(("id" = i32, Path, description = "The user's id.")),
    request_body = UserBody,
    responses(
        (status = 200, description = "The user, changed.", body = UserView),
        (status = 409, description = "The new static address cannot be had: `subnet_full`, `address_in_use` or `conflict`.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "address_in_use",
                "message": "100.64.0.9 is the static address of user \"bob\""}})),
        (status = 502, response = crate::api::docs::RouterFailed),
        (status = 503, response = crate::api::docs::IpamBusy),
        (status = 504, response = crate::api::docs::RouterTimeout),
    ),
)]
pub async fn update_user(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<UserBody>,
) -> Result<Json<UserView>, AppError> {
    let written = provision::update_user(
        &api.state.db,
        &api.state.app_key,
        &api.state.router_pool,
        settings(&api.state),
        &api.actor,
        id,
        &body.into(),
    )
    .await?;
    Ok(Json(written.user.into()))
}

/// Change some of a user's settings (JSON merge patch, RFC 7396): a field
/// left out keeps its value, `null` clears it, a value sets it; without
/// `password` the current one stays. The result is checked and written as
/// a `PUT` of the whole user would be, with the same errors.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "users",
    operation_id = "patch_user",
    params(("id" = i32, Path, description = "The user's id.")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user, changed.", body = UserView),
        (status = 409, description = "The new static address cannot be had: `subnet_full`, `address_in_use` or `conflict`.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "address_in_use",
                "message": "100.64.0.9 is the static address of user \"bob\""}})),
        (status = 422, description = "A field is not valid (as in `PUT`), `null` given to a field that cannot be cleared, or a field that is not one of the user's.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "validation_failed",
                "message": "status: \"paused\" is not a status (active, suspended or disabled)",
                "fields": {"status": "\"paused\" is not a status (active, suspended or disabled)"}}})),
        (status = 502, response = crate::api::docs::RouterFailed),
        (status = 503, response = crate::api::docs::IpamBusy),
        (status = 504, response = crate::api::docs::RouterTimeout),
    ),
)]
pub async fn patch_user(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<UserView>, AppError> {
    let written = provision::patch_user(
        &api.state.db,
        &api.state.app_key,
        &api.state.router_pool,
        settings(&api.state),
        &api.actor,
        id,
        body.into(),
    )
    .await?;
    Ok(Json(written.user.into()))
}

/// Delete a network user: its RADIUS rows first (so it can no longer log
/// in), then its PPP secrets on its routers, then the user, releasing its
/// static address. If the RADIUS database refuses, nothing is deleted (502).
#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "users",
    operation_id = "delete_user",
    params(("id" = i32, Path, description = "The user's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 502, description = "The RADIUS database (`radius_unavailable`) or one of the user's routers (see `RouterFailed`) refused the change; nothing was deleted.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "radius_unavailable",
                "message": "the RADIUS database did not accept the change; nothing was changed, try again"}})),
        (status = 504, response = crate::api::docs::RouterTimeout),
    ),
)]
pub async fn delete_user(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    provision::delete_user(
        &api.state.db,
        &api.state.router_pool,
        settings(&api.state),
        &api.actor,
        id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reveal a user's password, for staff who must read it out (operators
/// and admins). Every call is recorded in the audit log
/// (`network_user.reveal_password`, without the password). The answer
/// carries `Cache-Control: no-store`.
#[utoipa::path(
    post,
    path = "/users/{id}/reveal-password",
    tag = "users",
    operation_id = "reveal_user_password",
    params(("id" = i32, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "The password, in clear.", body = RevealedPassword),
    ),
)]
pub async fn reveal_password(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Response, AppError> {
    let user = service::get_user(api.db(), id).await?;
    let password = service::reveal_password(api.db(), &api.state.app_key, &api.actor, id).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(RevealedPassword {
            id,
            username: user.username,
            password: password.expose().to_string(),
        }),
    )
        .into_response())
}

/// What `POST /users/{id}/sync-radius` did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "username": "alice@isp.example", "outcome": "updated",
    "radius_sync_pending": false, "radius_synced_at": "2026-12-01T10:06:00Z"}))]
pub struct RadiusSyncView {
    pub id: i32,
    pub username: String,
    /// `created` (the user had no RADIUS rows), `updated` (its radcheck,
    /// radreply and radusergroup rows were rewritten) or `unchanged`.
    #[schema(example = "updated")]
    pub outcome: String,
    /// False unless the user changed again while it was synced.
    pub radius_sync_pending: bool,
    pub radius_synced_at: Option<DateTime<Utc>>,
}

/// Sync a user into the RADIUS tables now (its package's group, then its
/// radcheck, radreply and radusergroup rows, in one RADIUS transaction).
/// If the RADIUS database fails, the answer is 502 and the user stays
/// flagged `radius_sync_pending` for the `radius-retry` job. Audited
/// (`network_user.sync_radius`).
#[utoipa::path(
    post,
    path = "/users/{id}/sync-radius",
    tag = "users",
    operation_id = "sync_user_radius",
    params(("id" = i32, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "Synced; `outcome` says what changed.", body = RadiusSyncView),
        (status = 502, description = "The RADIUS database did not take the write; the user stays flagged.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "radius_unavailable",
                "message": "the RADIUS database did not accept the write; the user stays flagged for sync and the radius-retry job will try again"}})),
    ),
)]
pub async fn sync_radius(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<RadiusSyncView>, AppError> {
    let (user, outcome) = crate::radius::resync::sync_user_now(
        api.db(),
        &api.state.db.radius,
        &api.state.app_key,
        &api.actor,
        id,
    )
    .await?;
    Ok(Json(RadiusSyncView {
        id: user.id,
        username: user.username,
        outcome: crate::radius::resync::outcome_name(outcome).into(),
        radius_sync_pending: user.radius_sync_pending,
        radius_synced_at: user.radius_synced_at.map(|at| at.to_utc()),
    }))
}
