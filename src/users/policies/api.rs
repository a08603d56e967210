//! `/api/v1/policies`: CRUD of service policies.

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, PolicyFilter, PolicyInput, POLICY_SORTS};
use crate::api::auth::Api;
use crate::api::check;
use crate::api::created;
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::query::{filters, Sort};
use crate::staff::{Operator, Viewer};
use crate::users::domain::Rate;
use crate::users::entities::service_policy;
use crate::users::state::policy_rate_limit;
use crate::web::pagination::{Page, PageParams, Paged};

/// The policy routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(get_policy, update_policy, delete_policy))
}

/// What a subscriber who is not active (suspended, or expired past its
/// package's grace days) gets.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "Unpaid", "action": "walled_garden",
    "download_rate": "1M", "upload_rate": "512k", "rate_limit": "512k/1M",
    "framed_pool": null, "address_list": "unpaid", "radius_group": "policy-unpaid",
    "is_default": true, "created_at": "2026-12-08T10:00:00Z", "updated_at": "2026-12-08T10:00:00Z"}))]
pub struct PolicyView {
    pub id: i32,
    pub name: String,
    /// `reject`, `walled_garden` or `throttle`.
    pub action: String,
    pub download_rate: Option<String>,
    pub upload_rate: Option<String>,
    /// The Mikrotik-Rate-Limit its group replies with.
    pub rate_limit: Option<String>,
    pub framed_pool: Option<String>,
    pub address_list: Option<String>,
    pub radius_group: String,
    /// The PPP profile a router that authenticates the subscriber locally
    /// puts its secret on.
    pub mikrotik_profile: Option<String>,
    /// The policy of packages that name none.
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<service_policy::Model> for PolicyView {
    fn from(p: service_policy::Model) -> Self {
        let rate = |kbps: Option<i64>| kbps.and_then(Rate::from_column).map(|r| r.to_string());
        Self {
            id: p.id,
            rate_limit: policy_rate_limit(&p),
            download_rate: rate(p.download_rate_kbps),
            upload_rate: rate(p.upload_rate_kbps),
            is_default: p.default_marker.is_some(),
            name: p.name,
            action: p.action,
            framed_pool: p.framed_pool,
            address_list: p.address_list,
            radius_group: p.radius_group,
            mikrotik_profile: p.mikrotik_profile,
            created_at: p.created_at.into(),
            updated_at: p.updated_at.into(),
        }
    }
}

/// Filters and order of `GET /policies`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyQuery {
    /// Part of the name or RADIUS group, any case.
    pub q: Option<String>,
    /// `id`, `name`, `action`, `radius_group` or `created_at`; `-` in front
    /// for descending. Default `name`.
    pub sort: Option<String>,
}

/// The body of `POST /policies` and `PUT /policies/{id}` (every field).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Unpaid", "action": "walled_garden",
    "download_rate": "1M", "upload_rate": "512k", "address_list": "unpaid",
    "radius_group": "policy-unpaid", "is_default": true}))]
pub struct PolicyBody {
    /// 1 to 64 characters, unique.
    pub name: String,
    /// `reject` (refuse the login, cut live sessions), `walled_garden`
    /// (stay online, restricted) or `throttle` (a reduced rate only).
    #[schema(example = "walled_garden")]
    pub action: String,
    /// Both rates or neither; required for `throttle`.
    pub download_rate: Option<String>,
    pub upload_rate: Option<String>,
    /// `walled_garden` only: the router's IP pool for restricted sessions
    /// (a change of pool needs a new login, so sessions are disconnected).
    pub framed_pool: Option<String>,
    /// `walled_garden` only: the router address list its firewall
    /// redirects to the payment page.
    pub address_list: Option<String>,
    /// 1 to 64 letters, digits and `. _ -`; unique, and not a package's.
    pub radius_group: String,
    /// `walled_garden` or `throttle`: the PPP profile (on the routers that
    /// keep a subscriber's PPP secret, without RADIUS) the secret is moved
    /// to; its session is ended so that it redials into it. Omitted: such a
    /// secret is disabled instead.
    pub mikrotik_profile: Option<String>,
    /// Makes this the default policy (the previous default loses it).
    #[serde(default)]
    pub is_default: bool,
}

impl From<PolicyBody> for PolicyInput {
    fn from(b: PolicyBody) -> Self {
        Self {
            name: b.name,
            action: b.action,
            download_rate: b.download_rate,
            upload_rate: b.upload_rate,
            framed_pool: b.framed_pool,
            address_list: b.address_list,
            radius_group: b.radius_group,
            mikrotik_profile: b.mikrotik_profile,
            is_default: b.is_default,
        }
    }
}

/// List service policies.
#[utoipa::path(
    get,
    path = "/policies",
    tag = "policies",
    params(PageParams, PolicyQuery),
    responses(
        (status = 200, description = "One page of policies.", body = Page<PolicyView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 1, "name": "Unpaid", "action": "walled_garden",
                "download_rate": "1M", "upload_rate": "512k", "rate_limit": "512k/1M",
                "framed_pool": null, "address_list": "unpaid", "radius_group": "policy-unpaid",
                "is_default": true, "created_at": "2026-12-08T10:00:00Z",
                "updated_at": "2026-12-08T10:00:00Z"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_policies(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<PolicyQuery>,
) -> Result<Paged<PolicyView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = PolicyFilter {
        q: filters::text("q", query.q.as_deref(), 100, &mut errors),
    };
    let sort = Sort::parse(query.sort.as_deref(), POLICY_SORTS, "name", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_policies(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(PolicyView::from))
}

/// Create a service policy.
#[utoipa::path(
    post,
    path = "/policies",
    tag = "policies",
    request_body = PolicyBody,
    responses(
        (status = 201, description = "Created; `Location` names it.", body = PolicyView,
            headers(("Location" = String, description = "The new policy's URL."))),
    ),
)]
pub async fn create_policy(
    api: Api<Operator>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Response, AppError> {
    let policy = service::create_policy(api.db(), &api.actor, &body.into()).await?;
    Ok(created(
        &format!("/policies/{}", policy.id),
        PolicyView::from(policy),
    ))
}

/// Show one service policy.
#[utoipa::path(
    get,
    path = "/policies/{id}",
    tag = "policies",
    params(("id" = i32, Path, description = "The policy's id.")),
    responses((status = 200, description = "The policy.", body = PolicyView)),
)]
pub async fn get_policy(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<PolicyView>, AppError> {
    Ok(Json(service::get_policy(api.db(), id).await?.into()))
}

/// Replace a policy's settings. The subscribers it shapes are marked for
/// RADIUS sync.
#[utoipa::path(
    put,
    path = "/policies/{id}",
    tag = "policies",
    params(("id" = i32, Path, description = "The policy's id.")),
    request_body = PolicyBody,
    responses((status = 200, description = "The policy, changed.", body = PolicyView)),
)]
pub async fn update_policy(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Json<PolicyView>, AppError> {
    let policy = service::update_policy(api.db(), &api.actor, id, &body.into()).await?;
    Ok(Json(policy.into()))
}

/// Delete a service policy. Refused (409 `policy_in_use`) while a package
/// names it.
#[utoipa::path(
    delete,
    path = "/policies/{id}",
    tag = "policies",
    params(("id" = i32, Path, description = "The policy's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "A package still names the policy.",
            body = crate::api::docs::ErrorBody),
    ),
)]
pub async fn delete_policy(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    service::delete_policy(api.db(), &api.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
