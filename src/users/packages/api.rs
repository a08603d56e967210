//! `/api/v1/packages`: CRUD of service packages.

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
use crate::query::{filters, Sort};
use crate::staff::{Operator, Viewer};
use crate::users::api::{PackageView, QuotaTierView};
use crate::users::service::{self, PackageFilter, PackageInput, TierInput, PACKAGE_SORTS};
use crate::web::pagination::{Page, PageParams, Paged};

/// Filters and order of `GET /packages`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackageQuery {
    /// Part of the name or RADIUS group, any case.
    pub q: Option<String>,
    /// `id`, `name`, `download_rate`, `upload_rate`, `radius_group` or
    /// `created_at`; `-` in front for descending; comma-separated for
    /// several. Default `name`.
    #[param(example = "-download_rate")]
    pub sort: Option<String>,
}

/// The body of `POST /packages` and `PUT /packages/{id}` (every field; an
/// omitted optional field is cleared). Rates are text such as `20M`,
/// `512k`, `1G` or a plain number of kbit/s.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Home 20M", "description": "Residential fibre",
    "download_rate": "20M", "upload_rate": "5M", "burst_download_rate": "30M",
    "burst_upload_rate": "8M", "burst_threshold_download": "15M", "burst_threshold_upload": "4M",
    "burst_time_secs": 10, "session_timeout_secs": 86400, "simultaneous_use": 1,
    "radius_group": "home-20m", "mikrotik_profile": "home-20m"}))]
pub struct PackageBody {
    /// 1 to 64 characters, unique.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// At most 1000 characters.
    pub description: Option<String>,
    /// Above zero, at most 100G.
    #[schema(example = "20M")]
    pub download_rate: String,
    #[schema(example = "5M")]
    pub upload_rate: String,
    /// A burst needs all five burst fields, or none. Above `download_rate`.
    pub burst_download_rate: Option<String>,
    /// Above `upload_rate`.
    pub burst_upload_rate: Option<String>,
    /// Not above `download_rate`.
    pub burst_threshold_download: Option<String>,
    /// Not above `upload_rate`.
    pub burst_threshold_upload: Option<String>,
    /// 1 to 3600.
    #[schema(minimum = 1, maximum = 3600)]
    pub burst_time_secs: Option<i64>,
    /// From 1.
    #[schema(minimum = 1)]
    pub session_timeout_secs: Option<i64>,
    /// From 1.
    #[schema(minimum = 1)]
    pub simultaneous_use: Option<i64>,
    /// 1 to 64 letters, digits and `. _ -`; unique.
    #[schema(example = "home-20m")]
    pub radius_group: String,
    /// 1 to 64 characters, no quotes or backslashes.
    pub mikrotik_profile: Option<String>,
    /// The service policy for its subscribers while suspended or expired;
    /// omitted or null: the default policy.
    pub policy_id: Option<i32>,
    /// 0 to 365: days past a subscriber's `expires_at` before it counts as
    /// expired.
    #[schema(minimum = 0, maximum = 365)]
    pub grace_days: Option<i64>,
    /// Bytes per billing cycle, as text (`100G`, `1.5T`, `500M`; decimal:
    /// 1G = 10^9 bytes) or a plain number of bytes; omitted or null: no
    /// quota.
    #[schema(example = "100G")]
    pub quota: Option<String>,
    /// What counts towards the quota: `total` (the default), `download`
    /// or `upload`.
    #[schema(example = "total")]
    pub quota_direction: Option<String>,
    /// 1 to 28: the day of the month its subscribers' cycles start,
    /// unless a subscriber has its own; omitted or null: the 1st.
    #[schema(minimum = 1, maximum = 28)]
    pub cycle_anchor_day: Option<i64>,
    /// At most 5, each threshold once; they need a quota.
    #[serde(default)]
    pub quota_tiers: Vec<QuotaTierView>,
}

impl From<PackageBody> for PackageInput {
    fn from(b: PackageBody) -> Self {
        Self {
            name: b.name,
            description: b.description,
            download_rate: b.download_rate,
            upload_rate: b.upload_rate,
            burst_download_rate: b.burst_download_rate,
            burst_upload_rate: b.burst_upload_rate,
            burst_threshold_download: b.burst_threshold_download,
            burst_threshold_upload: b.burst_threshold_upload,
            burst_time_secs: b.burst_time_secs,
            session_timeout_secs: b.session_timeout_secs,
            simultaneous_use: b.simultaneous_use,
            radius_group: b.radius_group,
            mikrotik_profile: b.mikrotik_profile,
            policy_id: b.policy_id,
            grace_days: b.grace_days,
            quota: b.quota,
            quota_direction: b.quota_direction,
            cycle_anchor_day: b.cycle_anchor_day,
            quota_tiers: b
                .quota_tiers
                .into_iter()
                .map(|t| TierInput {
                    threshold_percent: t.threshold_percent,
                    policy_id: t.policy_id,
                })
                .collect(),
        }
    }
}

/// List service packages.
#[utoipa::path(
    get,
    path = "/packages",
    tag = "packages",
    operation_id = "list_packages",
    params(PageParams, PackageQuery),
    responses(
        (status = 200, description = "One page of packages.", body = Page<PackageView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 1, "name": "Home 20M", "description": null,
                "download_rate": "20M", "upload_rate": "5M", "download_rate_kbps": 20000,
                "upload_rate_kbps": 5000, "burst": null, "session_timeout_secs": null,
                "simultaneous_use": 1, "radius_group": "home-20m", "mikrotik_profile": null,
                "rate_limit": "5M/20M", "status": "active",
                "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_packages(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<PackageQuery>,
) -> Result<Paged<PackageView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = PackageFilter {
        q: filters::text("q", query.q.as_deref(), 100, &mut errors),
    };
    let sort = Sort::parse(query.sort.as_deref(), PACKAGE_SORTS, "name", &mut errors);
    check(errors)?;
    let (rows, total) = service::list_packages(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(PackageView::from))
}

/// Create a service package.
#[utoipa::path(
    post,
    path = "/packages",
    tag = "packages",
    operation_id = "create_package",
    request_body = PackageBody,
    responses(
        (status = 201, description = "Created; `Location` names it.", body = PackageView,
            headers(("Location" = String, description = "The new package's URL."))),
        (status = 422, description = "A field is not valid: the name or RADIUS group is taken, a rate does not parse, a burst is incomplete, below its base rate or with a threshold above it.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "validation_failed",
                "message": "these fields are not valid: download_rate",
                "fields": {"download_rate": "\"20X\" is not a rate such as 20M, 512k, 1G or 2048 (kbit/s)"}}})),
    ),
)]
pub async fn create_package(
    api: Api<Operator>,
    ApiJson(body): ApiJson<PackageBody>,
) -> Result<Response, AppError> {
    let package = service::create_package(api.db(), &api.actor, &body.into()).await?;
    Ok(created(
        &format!("/packages/{}", package.id),
        PackageView::from(package),
    ))
}

/// Show one service package.
#[utoipa::path(
    get,
    path = "/packages/{id}",
    tag = "packages",
    operation_id = "get_package",
    params(("id" = i32, Path, description = "The package's id.")),
    responses(
        (status = 200, description = "The package.", body = PackageView),
    ),
)]
pub async fn get_package(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<PackageView>, AppError> {
    Ok(Json(service::get_package(api.db(), id).await?.into()))
}

/// Replace a package's settings (every field, as in `POST`). Its users are
/// marked for RADIUS sync.
#[utoipa::path(
    put,
    path = "/packages/{id}",
    tag = "packages",
    operation_id = "update_package",
    params(("id" = i32, Path, description = "The package's id.")),
    request_body = PackageBody,
    responses(
        (status = 200, description = "The package, changed.", body = PackageView),
    ),
)]
pub async fn update_package(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<PackageBody>,
) -> Result<Json<PackageView>, AppError> {
    let package = service::update_package(api.db(), &api.actor, id, &body.into()).await?;
    Ok(Json(package.into()))
}

/// Delete a service package. Refused (409 `package_in_use`) while any user
/// is on it.
#[utoipa::path(
    delete,
    path = "/packages/{id}",
    tag = "packages",
    operation_id = "delete_package",
    params(("id" = i32, Path, description = "The package's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "Users are still on the package.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "package_in_use",
                "message": "package \"Home 20M\" still has 3 user(s); move them to another package first"}})),
    ),
)]
pub async fn delete_package(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    service::delete_package(api.db(), &api.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
