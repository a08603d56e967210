//! `/api/v1/ipam/pools`: CRUD and utilization.

use std::net::IpAddr;

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::Api;
use crate::api::check;
use crate::api::created;
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::error::{AppError, FieldErrors};
use crate::ipam::api::PoolView;
use crate::ipam::domain::{parse_ip, IpVersion, RangeStatus};
use crate::ipam::service::{self, PoolFilter, PoolInput, PoolUtilization, POOL_SORTS};
use crate::query::{filters, Sort};
use crate::staff::{Operator, Viewer};
use crate::web::pagination::{Page, PageParams, Paged};

/// Filters and order of `GET /ipam/pools`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PoolQuery {
    /// Part of the pool's name, any case.
    pub q: Option<String>,
    /// `active`, `reserved` or `deprecated`.
    #[param(example = "active")]
    pub status: Option<String>,
    /// `4` or `6`.
    #[param(value_type = Option<i16>, example = 4)]
    pub ip_version: Option<String>,
    /// `name`, `vlan`, `status`, `created_at` or `id`; `-` in front for
    /// descending; comma-separated for several. Default `name`.
    #[param(example = "-created_at")]
    pub sort: Option<String>,
}

pub(crate) fn status_filter(raw: Option<&str>, errors: &mut FieldErrors) -> Option<RangeStatus> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    text.parse()
        .map_err(|problem| errors.insert("status".into(), problem))
        .ok()
}

pub(crate) fn version_filter(raw: Option<&str>, errors: &mut FieldErrors) -> Option<IpVersion> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    let version = text.parse::<i16>().ok().and_then(IpVersion::from_number);
    if version.is_none() {
        errors.insert("ip_version".into(), "must be 4 or 6".into());
    }
    version
}

pub(crate) fn ip_filter(
    field: &str,
    raw: Option<&str>,
    errors: &mut FieldErrors,
) -> Option<IpAddr> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    parse_ip(text)
        .map_err(|problem| errors.insert(field.into(), problem))
        .ok()
}

/// List address pools.
#[utoipa::path(
    get,
    path = "/ipam/pools",
    tag = "ipam",
    operation_id = "list_pools",
    params(PageParams, PoolQuery),
    responses(
        (status = 200, description = "One page of pools.", body = Page<PoolView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 1, "name": "cgnat-east", "description": null,
                "ip_version": 4, "start_ip": "100.64.0.0", "end_ip": "100.64.255.255",
                "gateway": null, "dns_servers": ["192.0.2.53"], "vlan_id": null, "status": "active",
                "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_pools(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<PoolQuery>,
) -> Result<Paged<PoolView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = PoolFilter {
        search: filters::text("q", query.q.as_deref(), 100, &mut errors),
        status: status_filter(query.status.as_deref(), &mut errors),
        ip_version: version_filter(query.ip_version.as_deref(), &mut errors),
    };
    let sort = Sort::parse(query.sort.as_deref(), POOL_SORTS, "name", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_pools(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(PoolView::from))
}

/// The body of `POST /ipam/pools` and `PUT /ipam/pools/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "cgnat-east", "description": "CGNAT customers, east",
    "start_ip": "100.64.0.0", "end_ip": "100.64.255.255", "dns_servers": ["192.0.2.53"],
    "vlan_id": 100, "status": "active"}))]
pub struct PoolBody {
    /// 1 to 100 characters, unique.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// At most 1000 characters.
    pub description: Option<String>,
    /// The first address of the range.
    #[schema(example = "100.64.0.0")]
    pub start_ip: String,
    /// The last address; the same family as `start_ip`, not before it.
    #[schema(example = "100.64.255.255")]
    pub end_ip: String,
    /// Inside the range.
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// 1 to 4094.
    #[schema(minimum = 1, maximum = 4094)]
    pub vlan_id: Option<i64>,
    /// `active` (default), `reserved` or `deprecated`.
    pub status: Option<String>,
}

impl From<PoolBody> for PoolInput {
    fn from(body: PoolBody) -> Self {
        Self {
            name: body.name,
            description: body.description,
            start_ip: body.start_ip,
            end_ip: body.end_ip,
            gateway: body.gateway,
            dns_servers: body.dns_servers,
            vlan_id: body.vlan_id,
            status: body.status,
        }
    }
}

/// Create an address pool.
#[utoipa::path(
    post,
    path = "/ipam/pools",
    tag = "ipam",
    operation_id = "create_pool",
    request_body = PoolBody,
    responses(
        (status = 201, description = "Created; `Location` names it.", body = PoolView,
            headers(("Location" = String, description = "The new pool's URL."))),
        (status = 422, description = "A field is not valid: the name is taken, an address does not parse, `end_ip` comes before `start_ip`, the families differ, the gateway is outside the range, the VLAN is not 1 to 4094.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "validation_failed", "message": "end_ip: 100.64.0.0 comes before start_ip 100.64.255.255",
                "fields": {"end_ip": "100.64.0.0 comes before start_ip 100.64.255.255"}}})),
    ),
)]
pub async fn create_pool(
    api: Api<Operator>,
    ApiJson(body): ApiJson<PoolBody>,
) -> Result<Response, AppError> {
    let pool = service::create_pool(api.db(), &api.actor, &body.into()).await?;
    Ok(created(
        &format!("/ipam/pools/{}", pool.id),
        PoolView::from(pool),
    ))
}

/// Show one pool.
#[utoipa::path(
    get,
    path = "/ipam/pools/{id}",
    tag = "ipam",
    operation_id = "get_pool",
    params(("id" = i32, Path, description = "The pool's id.")),
    responses(
        (status = 200, description = "The pool.", body = PoolView),
    ),
)]
pub async fn get_pool(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<PoolView>, AppError> {
    Ok(Json(service::get_pool(api.db(), id).await?.into()))
}

/// Replace a pool's settings (every field, as in `POST`). Its subnets must
/// stay inside the new range.
#[utoipa::path(
    put,
    path = "/ipam/pools/{id}",
    tag = "ipam",
    operation_id = "update_pool",
    params(("id" = i32, Path, description = "The pool's id.")),
    request_body = PoolBody,
    responses(
        (status = 200, description = "The pool, changed.", body = PoolView),
    ),
)]
pub async fn update_pool(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<PoolBody>,
) -> Result<Json<PoolView>, AppError> {
    let pool = service::update_pool(api.db(), &api.actor, id, &body.into()).await?;
    Ok(Json(pool.into()))
}

/// Delete a pool and its subnets. Refused (409 `conflict`) while any
/// address in it is allocated. Address history stays.
#[utoipa::path(
    delete,
    path = "/ipam/pools/{id}",
    tag = "ipam",
    operation_id = "delete_pool",
    params(("id" = i32, Path, description = "The pool's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "The pool still has active allocations.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "conflict",
                "message": "pool \"cgnat-east\" still has 3 active allocation(s); release them first"}})),
    ),
)]
pub async fn delete_pool(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    service::delete_pool(api.db(), &api.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How full a pool and each of its subnets are.
#[utoipa::path(
    get,
    path = "/ipam/pools/{id}/utilization",
    tag = "ipam",
    operation_id = "pool_utilization",
    params(("id" = i32, Path, description = "The pool's id.")),
    responses(
        (status = 200, description = "Usable addresses (less network, broadcast and gateway), allocated and free, per pool and per subnet.",
            body = PoolUtilization,
            example = json!({"pool_id": 1, "total": 258, "allocated": 3, "free": 255, "percent": 1.16,
                "subnets": [{"subnet_id": 1, "network": "100.64.0.0/24", "total": 253, "allocated": 3,
                "free": 250, "percent": 1.19}, {"subnet_id": 2, "network": "100.64.1.0/29",
                "total": 5, "allocated": 0, "free": 5, "percent": 0.0}]})),
    ),
)]
pub async fn pool_utilization(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<PoolUtilization>, AppError> {
    Ok(Json(service::pool_utilization(api.db(), id).await?))
}
