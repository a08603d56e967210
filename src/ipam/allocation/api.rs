//! `/api/v1/ipam/allocate`, `/release` and `/allocations`.

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::Api;
use crate::api::check;
use crate::api::created;
use crate::api::docs::{IpamBusy, IpamConflict, NotFound};
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::error::{AppError, FieldErrors};
use crate::ipam::api::{settings, AllocationView};
use crate::ipam::domain::MacAddress;
use crate::ipam::pools::api::ip_filter;
use crate::ipam::service::{self, AllocationFilter, AllocationInput, ALLOCATION_SORTS};
use crate::query::{filters, Sort};
use crate::staff::{Operator, Viewer};
use crate::web::pagination::{Page, PageParams, Paged};

/// The body of `POST /ipam/allocate`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"subnet_id": 1, "mac_address": "AA-BB-CC-DD-EE-FF",
    "username": "alice@isp.example"}))]
pub struct AllocateBody {
    #[schema(example = 1)]
    pub subnet_id: i32,
    /// Any common notation (`aa:bb:..`, `AA-BB-..`, `aabb.ccdd.eeff`);
    /// stored lower-case with colons.
    pub mac_address: Option<String>,
    /// 1 to 64 letters, digits and `. _ - @ +`. A MAC address, a username or
    /// both are required.
    pub username: Option<String>,
    /// This address exactly, if it is free; otherwise the lowest free one.
    pub ip_address: Option<String>,
    /// When the allocation lapses (RFC 3339, in the future); the expiry job
    /// releases it then.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Allocate an address: the lowest free one, or `ip_address`. Idempotent:
/// if the same MAC address and username already hold an address in this
/// subnet, that allocation is answered with 200 and nothing changes.
#[utoipa::path(
    post,
    path = "/ipam/allocate",
    tag = "ipam",
    operation_id = "allocate_ip",
    request_body = AllocateBody,
    responses(
        (status = 404, response = NotFound),
        (status = 201, description = "A new allocation; `Location` names it.", body = AllocationView,
            headers(("Location" = String, description = "The allocation's URL."))),
        (status = 200, description = "The same MAC address and username already held this allocation; nothing changed.",
            body = AllocationView),
        (status = 409, response = IpamConflict),
        (status = 422, description = "A field is not valid (a MAC address, a username, an address outside the subnet, an expiry in the past).",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "validation_failed",
                "message": "mac_address: \"aa:bb:cc\" is not a MAC address such as aa:bb:cc:dd:ee:ff",
                "fields": {"mac_address": "\"aa:bb:cc\" is not a MAC address such as aa:bb:cc:dd:ee:ff"}}})),
        (status = 503, response = IpamBusy),
    ),
)]
pub async fn allocate_ip(
    api: Api<Operator>,
    ApiJson(body): ApiJson<AllocateBody>,
) -> Result<Response, AppError> {
    let input = AllocationInput {
        subnet_id: body.subnet_id,
        mac_address: body.mac_address,
        username: body.username,
        ip_address: body.ip_address,
        expires_at: body.expires_at,
    };
    let outcome = service::allocate_ip(api.db(), settings(&api.state), &api.actor, &input).await?;
    let view = AllocationView::from(outcome.allocation);
    if outcome.created {
        Ok(created(&format!("/ipam/allocations/{}", view.id), view))
    } else {
        Ok((StatusCode::OK, Json(view)).into_response())
    }
}

/// The body of `POST /ipam/release`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"allocation_id": 7}))]
pub struct ReleaseBody {
    #[schema(example = 7)]
    pub allocation_id: i64,
}

/// The answer to `POST /ipam/release`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Released {
    /// True when the allocation had been released (or had expired) before:
    /// nothing changed.
    #[schema(example = false)]
    pub already_released: bool,
    pub allocation: AllocationView,
}

/// Release an allocation: its address becomes free. Releasing a released
/// allocation changes nothing and says so (`already_released`).
#[utoipa::path(
    post,
    path = "/ipam/release",
    tag = "ipam",
    operation_id = "release_ip",
    request_body = ReleaseBody,
    responses(
        (status = 404, response = NotFound),
        (status = 200, description = "Released, or released before.", body = Released,
            example = json!({"already_released": false, "allocation": {"id": 7, "subnet_id": 1,
                "ip_version": 4, "ip_address": "100.64.0.2", "mac_address": "aa:bb:cc:dd:ee:ff",
                "username": "alice@isp.example", "status": "released",
                "allocated_at": "2026-12-01T10:05:00Z", "released_at": "2026-12-02T09:00:00Z",
                "expires_at": null, "updated_at": "2026-12-02T09:00:00Z"}})),
        (status = 503, response = IpamBusy),
    ),
)]
pub async fn release_ip(
    api: Api<Operator>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Json<Released>, AppError> {
    let outcome = service::release_ip(
        api.db(),
        settings(&api.state),
        &api.actor,
        body.allocation_id,
    )
    .await?;
    Ok(Json(Released {
        already_released: outcome.already_released,
        allocation: outcome.allocation.into(),
    }))
}

/// Filters and order of `GET /ipam/allocations`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AllocationQuery {
    #[param(value_type = Option<i32>)]
    pub subnet_id: Option<String>,
    #[param(value_type = Option<i32>)]
    pub pool_id: Option<String>,
    /// Exactly this username.
    pub username: Option<String>,
    /// Any notation; compared normalised.
    #[param(example = "aabb.ccdd.eeff")]
    pub mac_address: Option<String>,
    /// Allocations of this address.
    #[param(example = "100.64.0.2")]
    pub ip: Option<String>,
    /// `active`, `released` or `expired`.
    pub status: Option<String>,
    /// `id`, `ip`, `allocated_at`, `released_at`, `expires_at` or
    /// `username`; `-` in front for descending; comma-separated for
    /// several. Default `id`.
    #[param(example = "-allocated_at")]
    pub sort: Option<String>,
}

/// List allocations, current and past.
#[utoipa::path(
    get,
    path = "/ipam/allocations",
    tag = "ipam",
    operation_id = "list_allocations",
    params(PageParams, AllocationQuery),
    responses(
        (status = 200, description = "One page of allocations.", body = Page<AllocationView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 7, "subnet_id": 1, "ip_version": 4,
                "ip_address": "100.64.0.2", "mac_address": "aa:bb:cc:dd:ee:ff",
                "username": "alice@isp.example", "status": "active",
                "allocated_at": "2026-12-01T10:05:00Z", "released_at": null, "expires_at": null,
                "updated_at": "2026-12-01T10:05:00Z"}], "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_allocations(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<AllocationQuery>,
) -> Result<Paged<AllocationView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let mac_address = query
        .mac_address
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .and_then(|text| {
            MacAddress::parse(text)
                .map_err(|problem| errors.insert("mac_address".into(), problem))
                .ok()
        });
    let status = filters::text("status", query.status.as_deref(), 20, &mut errors);
    if let Some(s) = status.as_deref() {
        if !matches!(s, "active" | "released" | "expired") {
            errors.insert(
                "status".into(),
                format!("\"{s}\" is not a status (active, released or expired)"),
            );
        }
    }
    let filter = AllocationFilter {
        subnet_id: filters::id("subnet_id", query.subnet_id.as_deref(), &mut errors),
        pool_id: filters::id("pool_id", query.pool_id.as_deref(), &mut errors),
        username: filters::text("username", query.username.as_deref(), 64, &mut errors),
        mac_address,
        ip: ip_filter("ip", query.ip.as_deref(), &mut errors),
        status,
    };
    let sort = Sort::parse(query.sort.as_deref(), ALLOCATION_SORTS, "id", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_allocations(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(AllocationView::from))
}

/// Show one allocation.
#[utoipa::path(
    get,
    path = "/ipam/allocations/{id}",
    tag = "ipam",
    operation_id = "get_allocation",
    params(("id" = i64, Path, description = "The allocation's id.")),
    responses(
        (status = 200, description = "The allocation.", body = AllocationView),
    ),
)]
pub async fn get_allocation(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AllocationView>, AppError> {
    Ok(Json(service::get_allocation(api.db(), id).await?.into()))
}
