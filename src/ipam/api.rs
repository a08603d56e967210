//! `/api/v1/ipam/...`: pools, subnets, allocations and address history.
//!
//! Thin handlers: each reads its input, checks the caller's role, calls one
//! function of [`super::service`] (which validates, locks and audits) and
//! builds a view. Views never show the 16-byte address keys.
//!
//! Roles: any signed-in caller (viewer and up) reads; operators and admins
//! allocate and release addresses and create, change and delete pools and
//! subnets, the day-to-day work of an ISP's NOC. Deleting is safe to leave
//! to operators: the service refuses while addresses are allocated.

use std::net::IpAddr;

use axum::extract::{OriginalUri, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::{parse_ip, IpVersion, MacAddress, RangeStatus};
use super::entities::{ip_allocation, ip_allocation_history, ip_pool, ip_subnet};
use super::history::{AddressHolding, HoldingSource};
use super::service::{
    self, AllocationFilter, AllocationInput, IpamSettings, PoolFilter, PoolInput, PoolUtilization,
    SubnetFilter, SubnetInput, SubnetUpdate, Utilization,
};
use crate::api::auth::ApiCaller;
use crate::api::docs::{IpamBusy, IpamConflict, NotFound};
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::query::{filters, Sort};
use crate::staff::Role;
use crate::web::pagination::{Page, PageParams, Paged};

/// The IPAM routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pools, create_pool))
        .routes(routes!(get_pool, update_pool, delete_pool))
        .routes(routes!(pool_utilization))
        .routes(routes!(list_subnets, create_subnet))
        .routes(routes!(get_subnet, update_subnet, delete_subnet))
        .routes(routes!(available_ips))
        .routes(routes!(allocate_ip))
        .routes(routes!(release_ip))
        .routes(routes!(list_allocations))
        .routes(routes!(get_allocation))
        .routes(routes!(address_history))
}

fn settings(state: &AppState) -> IpamSettings {
    IpamSettings::from_config(&state.config)
}

// ---------------------------------------------------------------- views

/// An address pool: a range subnets are carved from.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "cgnat-east", "description": "CGNAT customers, east",
    "ip_version": 4, "start_ip": "100.64.0.0", "end_ip": "100.64.255.255", "gateway": null,
    "dns_servers": ["192.0.2.53"], "vlan_id": 100, "status": "active",
    "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct PoolView {
    #[schema(example = 1)]
    pub id: i32,
    #[schema(example = "cgnat-east")]
    pub name: String,
    pub description: Option<String>,
    /// 4 or 6.
    #[schema(example = 4)]
    pub ip_version: i16,
    #[schema(example = "100.64.0.0")]
    pub start_ip: String,
    #[schema(example = "100.64.255.255")]
    pub end_ip: String,
    pub gateway: Option<String>,
    pub dns_servers: Vec<String>,
    #[schema(example = 100)]
    pub vlan_id: Option<i32>,
    /// `active`, `reserved` or `deprecated`.
    #[schema(example = "active")]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ip_pool::Model> for PoolView {
    fn from(pool: ip_pool::Model) -> Self {
        let dns_servers = service::dns_servers(&pool);
        Self {
            id: pool.id,
            name: pool.name,
            description: pool.description,
            ip_version: pool.ip_version,
            start_ip: pool.start_ip,
            end_ip: pool.end_ip,
            gateway: pool.gateway,
            dns_servers,
            vlan_id: pool.vlan_id,
            status: pool.status,
            created_at: pool.created_at.to_utc(),
            updated_at: pool.updated_at.to_utc(),
        }
    }
}

/// A subnet of a pool.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "pool_id": 1, "ip_version": 4, "network": "100.64.0.0/24",
    "prefix_length": 24, "gateway": "100.64.0.1", "vlan_id": 100, "status": "active",
    "description": "OLT 1", "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct SubnetView {
    #[schema(example = 1)]
    pub id: i32,
    #[schema(example = 1)]
    pub pool_id: i32,
    /// 4 or 6.
    #[schema(example = 4)]
    pub ip_version: i16,
    /// In CIDR notation.
    #[schema(example = "100.64.0.0/24")]
    pub network: String,
    #[schema(example = 24)]
    pub prefix_length: i16,
    #[schema(example = "100.64.0.1")]
    pub gateway: Option<String>,
    #[schema(example = 100)]
    pub vlan_id: Option<i32>,
    /// `active`, `reserved` or `deprecated`.
    #[schema(example = "active")]
    pub status: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ip_subnet::Model> for SubnetView {
    fn from(subnet: ip_subnet::Model) -> Self {
        Self {
            id: subnet.id,
            pool_id: subnet.pool_id,
            ip_version: subnet.ip_version,
            network: service::subnet_label(&subnet),
            prefix_length: subnet.prefix_length,
            gateway: subnet.gateway,
            vlan_id: subnet.vlan_id,
            status: subnet.status,
            description: subnet.description,
            created_at: subnet.created_at.to_utc(),
            updated_at: subnet.updated_at.to_utc(),
        }
    }
}

/// A subnet with its utilization (`GET /ipam/subnets/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubnetDetail {
    #[serde(flatten)]
    pub subnet: SubnetView,
    pub utilization: Utilization,
}

/// An address held (or once held) by a subscriber.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "subnet_id": 1, "ip_version": 4, "ip_address": "100.64.0.2",
    "mac_address": "aa:bb:cc:dd:ee:ff", "username": "alice@isp.example", "status": "active",
    "allocated_at": "2026-12-01T10:05:00Z", "released_at": null, "expires_at": null,
    "updated_at": "2026-12-01T10:05:00Z"}))]
pub struct AllocationView {
    #[schema(example = 7)]
    pub id: i64,
    #[schema(example = 1)]
    pub subnet_id: i32,
    /// 4 or 6.
    #[schema(example = 4)]
    pub ip_version: i16,
    #[schema(example = "100.64.0.2")]
    pub ip_address: String,
    /// Lower-case, colon-separated.
    #[schema(example = "aa:bb:cc:dd:ee:ff")]
    pub mac_address: Option<String>,
    #[schema(example = "alice@isp.example")]
    pub username: Option<String>,
    /// `active`, `released` or `expired`.
    #[schema(example = "active")]
    pub status: String,
    pub allocated_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

fn version_of(text: &str) -> i16 {
    text.parse::<IpAddr>()
        .map(|ip| IpVersion::of(ip).number())
        .unwrap_or(4)
}

impl From<ip_allocation::Model> for AllocationView {
    fn from(row: ip_allocation::Model) -> Self {
        Self {
            id: row.id,
            subnet_id: row.subnet_id,
            ip_version: version_of(&row.ip_address),
            ip_address: row.ip_address,
            mac_address: row.mac_address,
            username: row.username,
            status: row.status,
            allocated_at: row.allocated_at.to_utc(),
            released_at: row.released_at.map(|t| t.to_utc()),
            expires_at: row.expires_at.map(|t| t.to_utc()),
            updated_at: row.updated_at.to_utc(),
        }
    }
}

// ---------------------------------------------------------------- pools

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
    /// `name`, `created_at` or `id`; `-` in front for descending;
    /// comma-separated for several. Default `name`.
    #[param(example = "-created_at")]
    pub sort: Option<String>,
}

const POOL_SORTS: &[(&str, ip_pool::Column)] = &[
    ("name", ip_pool::Column::Name),
    ("created_at", ip_pool::Column::CreatedAt),
    ("id", ip_pool::Column::Id),
];

fn status_filter(raw: Option<&str>, errors: &mut FieldErrors) -> Option<RangeStatus> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    text.parse()
        .map_err(|problem| errors.insert("status".into(), problem))
        .ok()
}

fn version_filter(raw: Option<&str>, errors: &mut FieldErrors) -> Option<IpVersion> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    let version = text.parse::<i16>().ok().and_then(IpVersion::from_number);
    if version.is_none() {
        errors.insert("ip_version".into(), "must be 4 or 6".into());
    }
    version
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

fn ip_filter(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<IpAddr> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    parse_ip(text)
        .map_err(|problem| errors.insert(field.into(), problem))
        .ok()
}

fn check(errors: FieldErrors) -> Result<(), AppError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::validation(errors))
    }
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
    caller: ApiCaller,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<PoolQuery>,
) -> Result<Paged<PoolView>, AppError> {
    caller.require(Role::Viewer)?;
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = PoolFilter {
        search: filters::text("q", query.q.as_deref(), 100, &mut errors),
        status: status_filter(query.status.as_deref(), &mut errors),
        ip_version: version_filter(query.ip_version.as_deref(), &mut errors),
    };
    let sort = Sort::parse(query.sort.as_deref(), POOL_SORTS, "name", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_pools(&state.db.main, &filter, &sort, page).await?;
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PoolBody>,
) -> Result<Response, AppError> {
    caller.require(Role::Operator)?;
    let pool = service::create_pool(&state.db.main, &caller.actor, &body.into()).await?;
    let location = format!("/api/v1/ipam/pools/{}", pool.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(PoolView::from(pool)),
    )
        .into_response())
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<PoolView>, AppError> {
    caller.require(Role::Viewer)?;
    Ok(Json(service::get_pool(&state.db.main, id).await?.into()))
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<PoolBody>,
) -> Result<Json<PoolView>, AppError> {
    caller.require(Role::Operator)?;
    let pool = service::update_pool(&state.db.main, &caller.actor, id, &body.into()).await?;
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    caller.require(Role::Operator)?;
    service::delete_pool(&state.db.main, &caller.actor, id).await?;
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<PoolUtilization>, AppError> {
    caller.require(Role::Viewer)?;
    Ok(Json(service::pool_utilization(&state.db.main, id).await?))
}

// -------------------------------------------------------------- subnets

/// Filters and order of `GET /ipam/subnets`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubnetQuery {
    /// Only subnets of this pool.
    #[param(value_type = Option<i32>, example = 1)]
    pub pool_id: Option<String>,
    /// `active`, `reserved` or `deprecated`.
    pub status: Option<String>,
    /// `4` or `6`.
    #[param(value_type = Option<i16>, example = 4)]
    pub ip_version: Option<String>,
    /// Part of the network address, e.g. `100.64.`.
    pub q: Option<String>,
    /// Only the subnet(s) containing this address.
    #[param(example = "100.64.0.17")]
    pub contains: Option<String>,
    /// `network`, `created_at`, `pool_id` or `id`; `-` in front for
    /// descending; comma-separated for several. Default `network`.
    #[param(example = "network")]
    pub sort: Option<String>,
}

const SUBNET_SORTS: &[(&str, ip_subnet::Column)] = &[
    ("network", ip_subnet::Column::NetworkKey),
    ("created_at", ip_subnet::Column::CreatedAt),
    ("pool_id", ip_subnet::Column::PoolId),
    ("id", ip_subnet::Column::Id),
];

/// List subnets.
#[utoipa::path(
    get,
    path = "/ipam/subnets",
    tag = "ipam",
    operation_id = "list_subnets",
    params(PageParams, SubnetQuery),
    responses(
        (status = 200, description = "One page of subnets.", body = Page<SubnetView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 1, "pool_id": 1, "ip_version": 4,
                "network": "100.64.0.0/24", "prefix_length": 24, "gateway": "100.64.0.1",
                "vlan_id": 100, "status": "active", "description": null,
                "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_subnets(
    caller: ApiCaller,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<SubnetQuery>,
) -> Result<Paged<SubnetView>, AppError> {
    caller.require(Role::Viewer)?;
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = SubnetFilter {
        pool_id: id_filter("pool_id", query.pool_id.as_deref(), &mut errors),
        status: status_filter(query.status.as_deref(), &mut errors),
        ip_version: version_filter(query.ip_version.as_deref(), &mut errors),
        search: filters::text("q", query.q.as_deref(), 64, &mut errors),
        contains: ip_filter("contains", query.contains.as_deref(), &mut errors),
    };
    let sort = Sort::parse(query.sort.as_deref(), SUBNET_SORTS, "network", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_subnets(&state.db.main, &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(SubnetView::from))
}

/// The body of `POST /ipam/subnets`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"pool_id": 1, "network": "100.64.0.0/24", "gateway": "100.64.0.1",
    "vlan_id": 100, "status": "active", "description": "OLT 1"}))]
pub struct CreateSubnet {
    #[schema(example = 1)]
    pub pool_id: i32,
    /// In CIDR notation with the host bits zero, inside the pool, and
    /// overlapping no other subnet.
    #[schema(example = "100.64.0.0/24")]
    pub network: String,
    /// A host address of the subnet (not its network or broadcast address);
    /// never allocated.
    pub gateway: Option<String>,
    /// 1 to 4094.
    #[schema(minimum = 1, maximum = 4094)]
    pub vlan_id: Option<i64>,
    /// `active` (default), `reserved` or `deprecated`.
    pub status: Option<String>,
    /// At most 1000 characters.
    pub description: Option<String>,
}

/// Create a subnet in a pool.
#[utoipa::path(
    post,
    path = "/ipam/subnets",
    tag = "ipam",
    operation_id = "create_subnet",
    request_body = CreateSubnet,
    responses(
        (status = 201, description = "Created; `Location` names it.", body = SubnetView,
            headers(("Location" = String, description = "The new subnet's URL."))),
        (status = 422, description = "A field is not valid: the network has host bits set, lies outside the pool or overlaps another subnet; the gateway is outside the subnet or is its network or broadcast address; no such pool.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "validation_failed",
                "message": "network: 100.64.0.5/24 is not a network address: did you mean 100.64.0.0/24?",
                "fields": {"network": "100.64.0.5/24 is not a network address: did you mean 100.64.0.0/24?"}}})),
    ),
)]
pub async fn create_subnet(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateSubnet>,
) -> Result<Response, AppError> {
    caller.require(Role::Operator)?;
    let input = SubnetInput {
        pool_id: body.pool_id,
        network: body.network,
        gateway: body.gateway,
        vlan_id: body.vlan_id,
        status: body.status,
        description: body.description,
    };
    let subnet = service::create_subnet(&state.db.main, &caller.actor, &input).await?;
    let location = format!("/api/v1/ipam/subnets/{}", subnet.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(SubnetView::from(subnet)),
    )
        .into_response())
}

/// Show one subnet, with its utilization.
#[utoipa::path(
    get,
    path = "/ipam/subnets/{id}",
    tag = "ipam",
    operation_id = "get_subnet",
    params(("id" = i32, Path, description = "The subnet's id.")),
    responses(
        (status = 200, description = "The subnet.", body = SubnetDetail,
            example = json!({"id": 1, "pool_id": 1, "ip_version": 4, "network": "100.64.0.0/24",
                "prefix_length": 24, "gateway": "100.64.0.1", "vlan_id": 100, "status": "active",
                "description": "OLT 1", "created_at": "2026-12-01T10:00:00Z",
                "updated_at": "2026-12-01T10:00:00Z",
                "utilization": {"total": 253, "allocated": 3, "free": 250, "percent": 1.19}})),
    ),
)]
pub async fn get_subnet(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<SubnetDetail>, AppError> {
    caller.require(Role::Viewer)?;
    let subnet = service::get_subnet(&state.db.main, id).await?;
    let utilization = service::subnet_utilization(&state.db.main, &subnet).await?;
    Ok(Json(SubnetDetail {
        subnet: subnet.into(),
        utilization,
    }))
}

/// The body of `PUT /ipam/subnets/{id}`: every changeable field. An omitted
/// field is cleared (`status` goes back to `active`). The network and the
/// pool cannot change: delete the subnet and create another.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"gateway": "100.64.0.1", "vlan_id": 200, "status": "deprecated",
    "description": "OLT 1, moving to OLT 3"}))]
pub struct UpdateSubnet {
    pub gateway: Option<String>,
    /// 1 to 4094.
    #[schema(minimum = 1, maximum = 4094)]
    pub vlan_id: Option<i64>,
    /// `active` (default), `reserved` or `deprecated`.
    pub status: Option<String>,
    pub description: Option<String>,
    /// Accepted only unchanged; any other value is a 422.
    #[schema(value_type = Option<String>)]
    pub network: Option<serde_json::Value>,
    /// Accepted only unchanged; any other value is a 422.
    #[schema(value_type = Option<i32>)]
    pub pool_id: Option<serde_json::Value>,
}

/// Change a subnet's gateway, VLAN, status and description.
#[utoipa::path(
    put,
    path = "/ipam/subnets/{id}",
    tag = "ipam",
    operation_id = "update_subnet",
    params(("id" = i32, Path, description = "The subnet's id.")),
    request_body = UpdateSubnet,
    responses(
        (status = 200, description = "The subnet, changed.", body = SubnetView),
        (status = 503, response = IpamBusy),
    ),
)]
pub async fn update_subnet(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<UpdateSubnet>,
) -> Result<Json<SubnetView>, AppError> {
    caller.require(Role::Operator)?;
    if body.network.is_some() || body.pool_id.is_some() {
        let current = service::get_subnet(&state.db.main, id).await?;
        let mut errors = FieldErrors::new();
        if let Some(network) = &body.network {
            if network.as_str() != Some(service::subnet_label(&current).as_str()) {
                errors.insert(
                    "network".into(),
                    "cannot be changed; delete the subnet and create another".into(),
                );
            }
        }
        if let Some(pool_id) = &body.pool_id {
            if pool_id.as_i64() != Some(i64::from(current.pool_id)) {
                errors.insert(
                    "pool_id".into(),
                    "cannot be changed; delete the subnet and create another".into(),
                );
            }
        }
        check(errors)?;
    }
    let update = SubnetUpdate {
        gateway: body.gateway,
        vlan_id: body.vlan_id,
        status: body.status,
        description: body.description,
    };
    let subnet =
        service::update_subnet(&state.db.main, settings(&state), &caller.actor, id, &update)
            .await?;
    Ok(Json(subnet.into()))
}

/// Delete a subnet. Refused (409 `conflict`) while any of its addresses is
/// allocated. Address history stays.
#[utoipa::path(
    delete,
    path = "/ipam/subnets/{id}",
    tag = "ipam",
    operation_id = "delete_subnet",
    params(("id" = i32, Path, description = "The subnet's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "The subnet still has active allocations.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "conflict",
                "message": "subnet 100.64.0.0/24 still has 3 active allocation(s); release them first"}})),
        (status = 503, response = IpamBusy),
    ),
)]
pub async fn delete_subnet(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    caller.require(Role::Operator)?;
    service::delete_subnet(&state.db.main, settings(&state), &caller.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?after=&limit=` of `GET /ipam/subnets/{id}/available-ips`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailableQuery {
    /// Start after this address (the previous page's `next_after`).
    #[param(example = "100.64.0.9")]
    pub after: Option<String>,
    /// 1 to 1000, default 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, example = 100)]
    pub limit: Option<String>,
}

/// Free addresses of a subnet, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailableIps {
    #[schema(example = 1)]
    pub subnet_id: i32,
    #[schema(example = "100.64.0.0/24")]
    pub network: String,
    #[schema(example = json!(["100.64.0.2", "100.64.0.3"]))]
    pub addresses: Vec<String>,
    /// Pass as `after` for the next page; null when there is none.
    #[schema(example = "100.64.0.3")]
    pub next_after: Option<String>,
}

/// The free addresses of a subnet, lowest first, a page at a time. Its cost
/// depends on `limit`, not on the subnet's size (an IPv6 /64 is fine).
#[utoipa::path(
    get,
    path = "/ipam/subnets/{id}/available-ips",
    tag = "ipam",
    operation_id = "available_ips",
    params(("id" = i32, Path, description = "The subnet's id."), AvailableQuery),
    responses(
        (status = 200, description = "Up to `limit` free addresses.", body = AvailableIps,
            example = json!({"subnet_id": 1, "network": "100.64.0.0/24",
                "addresses": ["100.64.0.2", "100.64.0.3"], "next_after": "100.64.0.3"})),
    ),
)]
pub async fn available_ips(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiQuery(query): ApiQuery<AvailableQuery>,
) -> Result<Json<AvailableIps>, AppError> {
    caller.require(Role::Viewer)?;
    let mut errors = FieldErrors::new();
    let after = ip_filter("after", query.after.as_deref(), &mut errors);
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => 100,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.insert(
                    "limit".into(),
                    "must be a whole number from 1 to 1000".into(),
                );
                100
            }
        },
    };
    check(errors)?;
    let subnet = service::get_subnet(&state.db.main, id).await?;
    // One more than asked: whether it exists says if there is a next page.
    let mut found = service::available_ips(&state.db.main, id, after, limit + 1).await?;
    let more = found.len() > limit;
    found.truncate(limit);
    let next_after = more
        .then(|| found.last().map(ToString::to_string))
        .flatten();
    Ok(Json(AvailableIps {
        subnet_id: subnet.id,
        network: service::subnet_label(&subnet),
        addresses: found.iter().map(ToString::to_string).collect(),
        next_after,
    }))
}

// ---------------------------------------------------------- allocations

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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AllocateBody>,
) -> Result<Response, AppError> {
    caller.require(Role::Operator)?;
    let input = AllocationInput {
        subnet_id: body.subnet_id,
        mac_address: body.mac_address,
        username: body.username,
        ip_address: body.ip_address,
        expires_at: body.expires_at,
    };
    let outcome =
        service::allocate_ip(&state.db.main, settings(&state), &caller.actor, &input).await?;
    let view = AllocationView::from(outcome.allocation);
    if outcome.created {
        let location = format!("/api/v1/ipam/allocations/{}", view.id);
        Ok((
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(view),
        )
            .into_response())
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Json<Released>, AppError> {
    caller.require(Role::Operator)?;
    let outcome = service::release_ip(
        &state.db.main,
        settings(&state),
        &caller.actor,
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

const ALLOCATION_SORTS: &[(&str, ip_allocation::Column)] = &[
    ("id", ip_allocation::Column::Id),
    ("ip", ip_allocation::Column::IpKey),
    ("allocated_at", ip_allocation::Column::AllocatedAt),
    ("released_at", ip_allocation::Column::ReleasedAt),
    ("expires_at", ip_allocation::Column::ExpiresAt),
    ("username", ip_allocation::Column::Username),
];

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
    caller: ApiCaller,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<AllocationQuery>,
) -> Result<Paged<AllocationView>, AppError> {
    caller.require(Role::Viewer)?;
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
        subnet_id: id_filter("subnet_id", query.subnet_id.as_deref(), &mut errors),
        pool_id: id_filter("pool_id", query.pool_id.as_deref(), &mut errors),
        username: filters::text("username", query.username.as_deref(), 64, &mut errors),
        mac_address,
        ip: ip_filter("ip", query.ip.as_deref(), &mut errors),
        status,
    };
    let sort = Sort::parse(query.sort.as_deref(), ALLOCATION_SORTS, "id", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_allocations(&state.db.main, &filter, &sort, page).await?;
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
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AllocationView>, AppError> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        service::get_allocation(&state.db.main, id).await?.into(),
    ))
}

// -------------------------------------------------------------- history

/// `?ip=&at=` of `GET /ipam/history`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The address.
    #[param(required = true, example = "100.64.0.2")]
    pub ip: Option<String>,
    /// The moment, RFC 3339 (`2026-12-01T10:30:00Z`); default now.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-12-01T10:30:00Z")]
    pub at: Option<String>,
}

/// One record of who held an address, from IPAM or from RADIUS accounting.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"source": "radius", "ip_address": "100.64.0.7",
    "username": "alice@isp.example", "mac_address": "AA:BB:CC:DD:EE:FF",
    "from": "2026-11-28T08:00:00Z", "until": "2026-11-28T10:00:00Z", "event": "session",
    "allocation_id": null, "subnet_id": null, "radacctid": 42, "acct_session_id": "81a00003",
    "nas_ip": "192.0.2.1", "terminate_cause": "User-Request"}))]
pub struct HoldingRecord {
    /// `ipam` (an allocation) or `radius` (an accounting session).
    #[schema(example = "radius")]
    pub source: String,
    pub ip_address: String,
    pub username: Option<String>,
    /// The allocation's MAC, or the session's Calling-Station-Id.
    pub mac_address: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Null while still held or open.
    pub until: Option<DateTime<Utc>>,
    /// IPAM: `allocate` or `release`; RADIUS: `session`.
    pub event: String,
    pub allocation_id: Option<i64>,
    pub subnet_id: Option<i32>,
    pub radacctid: Option<i64>,
    pub acct_session_id: Option<String>,
    pub nas_ip: Option<String>,
    pub terminate_cause: Option<String>,
}

impl From<AddressHolding> for HoldingRecord {
    fn from(h: AddressHolding) -> Self {
        Self {
            source: match h.source {
                HoldingSource::Ipam => "ipam".into(),
                HoldingSource::Radius => "radius".into(),
            },
            ip_address: h.ip_address,
            username: h.username,
            mac_address: h.mac_address,
            from: h.from,
            until: h.until,
            event: h.event,
            allocation_id: h.allocation_id,
            subnet_id: h.subnet_id,
            radacctid: h.radacctid,
            acct_session_id: h.acct_session_id,
            nas_ip: h.nas_ip,
            terminate_cause: h.terminate_cause,
        }
    }
}

/// Who held an address at a moment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressHistory {
    #[schema(example = "100.64.0.2")]
    pub ip: String,
    pub at: DateTime<Utc>,
    /// The IPAM holders at that moment: normally one, none if it was free.
    pub holders: Vec<Holding>,
    /// Both sources merged, newest first: the IPAM allocations above
    /// (`source` `ipam`) and the RADIUS accounting sessions whose
    /// Framed-IP-Address (Framed-IPv6-Address for IPv6) was this address
    /// at that moment (`source` `radius`).
    pub records: Vec<HoldingRecord>,
}

/// One holding of an address: from `allocated_at` until `released_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Holding {
    #[schema(example = 7)]
    pub allocation_id: Option<i64>,
    #[schema(example = 1)]
    pub subnet_id: Option<i32>,
    #[schema(example = "100.64.0.2")]
    pub ip_address: String,
    #[schema(example = "aa:bb:cc:dd:ee:ff")]
    pub mac_address: Option<String>,
    #[schema(example = "alice@isp.example")]
    pub username: Option<String>,
    pub allocated_at: DateTime<Utc>,
    /// Null while it is still held.
    pub released_at: Option<DateTime<Utc>>,
}

impl From<ip_allocation_history::Model> for Holding {
    fn from(row: ip_allocation_history::Model) -> Self {
        Self {
            allocation_id: row.allocation_id,
            subnet_id: row.subnet_id,
            ip_address: row.ip_address,
            mac_address: row.mac_address,
            username: row.username,
            allocated_at: row.allocated_at.to_utc(),
            released_at: row.released_at.map(|t| t.to_utc()),
        }
    }
}

/// Parses an RFC 3339 moment. A `+` offset that arrived unencoded in a
/// query string reads as a space: take it back.
fn parse_moment(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc3339(&text.replace(' ', "+")))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Who held an address at a moment (default now): for abuse reports and
/// lawful requests. `holders` are the IPAM allocations; `records` merges
/// them with the RADIUS accounting sessions that had the address then,
/// each labelled by `source`, newest first.
#[utoipa::path(
    get,
    path = "/ipam/history",
    tag = "ipam",
    operation_id = "address_history",
    params(HistoryQuery),
    responses(
        (status = 200, description = "The holders of the address at that moment.", body = AddressHistory,
            example = json!({"ip": "100.64.0.2", "at": "2026-12-01T10:30:00Z", "holders": [
                {"allocation_id": 7, "subnet_id": 1, "ip_address": "100.64.0.2",
                "mac_address": "aa:bb:cc:dd:ee:ff", "username": "alice@isp.example",
                "allocated_at": "2026-12-01T10:05:00Z", "released_at": "2026-12-02T09:00:00Z"}],
                "records": [
                {"source": "radius", "ip_address": "100.64.0.2", "username": "alice@isp.example",
                "mac_address": "AA:BB:CC:DD:EE:FF", "from": "2026-12-01T10:06:00Z",
                "until": "2026-12-01T12:00:00Z", "event": "session", "allocation_id": null,
                "subnet_id": null, "radacctid": 42, "acct_session_id": "81a00003",
                "nas_ip": "192.0.2.1", "terminate_cause": "User-Request"},
                {"source": "ipam", "ip_address": "100.64.0.2", "username": "alice@isp.example",
                "mac_address": "aa:bb:cc:dd:ee:ff", "from": "2026-12-01T10:05:00Z",
                "until": "2026-12-02T09:00:00Z", "event": "allocate", "allocation_id": 7,
                "subnet_id": 1, "radacctid": null, "acct_session_id": null, "nas_ip": null,
                "terminate_cause": null}]})),
    ),
)]
pub async fn address_history(
    caller: ApiCaller,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<AddressHistory>, AppError> {
    caller.require(Role::Viewer)?;
    let mut errors = FieldErrors::new();
    let ip = match query.ip.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => {
            errors.insert("ip".into(), "is required".into());
            None
        }
        Some(_) => ip_filter("ip", query.ip.as_deref(), &mut errors),
    };
    let at = match query.at.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Some(Utc::now()),
        Some(text) => {
            let at = parse_moment(text);
            if at.is_none() {
                errors.insert(
                    "at".into(),
                    format!("\"{text}\" is not an RFC 3339 time such as 2026-12-01T10:30:00Z"),
                );
            }
            at
        }
    };
    let (Some(ip), Some(at), true) = (ip, at, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let holders = service::address_history(&state.db.main, ip, at).await?;
    let records = super::history::who_had_address(&state.db.main, &state.db.radius, ip, at).await?;
    Ok(Json(AddressHistory {
        ip: ip.to_string(),
        at,
        holders: holders.into_iter().map(Holding::from).collect(),
        records: records.into_iter().map(Into::into).collect(),
    }))
}
