//! `/api/v1/ipam/subnets`: CRUD and available addresses.

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::Api;
use crate::api::check;
use crate::api::created;
use crate::api::docs::IpamBusy;
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::error::{AppError, FieldErrors};
use crate::ipam::api::{settings, SubnetDetail, SubnetView};
use crate::ipam::pools::api::{ip_filter, status_filter, version_filter};
use crate::ipam::service::{self, SubnetFilter, SubnetInput, SubnetUpdate, SUBNET_SORTS};
use crate::query::{filters, Sort};
use crate::staff::{Operator, Viewer};
use crate::web::pagination::{Page, PageParams, Paged};

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
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<SubnetQuery>,
) -> Result<Paged<SubnetView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = SubnetFilter {
        pool_id: filters::id("pool_id", query.pool_id.as_deref(), &mut errors),
        status: status_filter(query.status.as_deref(), &mut errors),
        ip_version: version_filter(query.ip_version.as_deref(), &mut errors),
        search: filters::text("q", query.q.as_deref(), 64, &mut errors),
        contains: ip_filter("contains", query.contains.as_deref(), &mut errors),
    };
    let sort = Sort::parse(query.sort.as_deref(), SUBNET_SORTS, "network", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_subnets(api.db(), &filter, &sort, page).await?;
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
    api: Api<Operator>,
    ApiJson(body): ApiJson<CreateSubnet>,
) -> Result<Response, AppError> {
    let input = SubnetInput {
        pool_id: body.pool_id,
        network: body.network,
        gateway: body.gateway,
        vlan_id: body.vlan_id,
        status: body.status,
        description: body.description,
    };
    let subnet = service::create_subnet(api.db(), &api.actor, &input).await?;
    Ok(created(
        &format!("/ipam/subnets/{}", subnet.id),
        SubnetView::from(subnet),
    ))
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
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<SubnetDetail>, AppError> {
    let subnet = service::get_subnet(api.db(), id).await?;
    let utilization = service::subnet_utilization(api.db(), &subnet).await?;
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
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<UpdateSubnet>,
) -> Result<Json<SubnetView>, AppError> {
    let update = SubnetUpdate {
        gateway: body.gateway,
        vlan_id: body.vlan_id,
        status: body.status,
        description: body.description,
        // A string names a network by its text; any other JSON value never
        // matches one. A pool id is compared as the JSON number it is.
        network: body.network.map(|network| match network {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        }),
        pool_id: body.pool_id.map(|pool_id| pool_id.to_string()),
    };
    let subnet =
        service::update_subnet(api.db(), settings(&api.state), &api.actor, id, &update).await?;
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
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    service::delete_subnet(api.db(), settings(&api.state), &api.actor, id).await?;
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
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
    ApiQuery(query): ApiQuery<AvailableQuery>,
) -> Result<Json<AvailableIps>, AppError> {
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
    let subnet = service::get_subnet(api.db(), id).await?;
    // One more than asked: whether it exists says if there is a next page.
    let mut found = service::available_ips(api.db(), id, after, limit + 1).await?;
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
