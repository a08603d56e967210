//! `/staff`: list and create staff accounts (admin only).

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::Api;
use crate::api::check;
use crate::api::docs::{Conflict, Forbidden};
use crate::api::extract::{ApiJson, ApiQuery};
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::query::{filters, Sort};
use crate::staff::entities::staff_user;
use crate::staff::service::{self as staff, StaffFilter};
use crate::staff::{validate_password, Admin, Role, StaffUsername};
use crate::web::pagination::{Page, PageParams, Paged};

/// A staff account as the API shows it (never its password hash).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 2, "username": "noc", "role": "operator", "is_active": true,
    "last_login_at": null, "created_at": "2026-11-28T09:00:00Z", "updated_at": "2026-11-28T09:00:00Z"}))]
pub struct StaffView {
    #[schema(example = 2)]
    pub id: i32,
    #[schema(example = "noc")]
    pub username: String,
    #[schema(value_type = crate::api::RoleName, example = "operator")]
    pub role: String,
    #[schema(example = true)]
    pub is_active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<staff_user::Model> for StaffView {
    fn from(user: staff_user::Model) -> Self {
        Self {
            id: user.id,
            username: user.username,
            role: user.role,
            is_active: user.is_active,
            last_login_at: user.last_login_at.map(|t| t.to_utc()),
            created_at: user.created_at.to_utc(),
            updated_at: user.updated_at.to_utc(),
        }
    }
}

/// Filters and order of `GET /staff`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StaffQuery {
    /// Only staff of this role.
    #[param(value_type = Option<crate::api::RoleName>)]
    pub role: Option<String>,
    /// Part of the username, any case.
    pub q: Option<String>,
    /// `true`: accounts that may sign in; `false`: deactivated ones.
    #[param(value_type = Option<bool>)]
    pub active: Option<String>,
    /// `id`, `username`, `role`, `created_at` or `last_login_at`; `-` in
    /// front for descending; comma-separated for several. Default `username`.
    #[param(example = "username")]
    pub sort: Option<String>,
}

/// List staff accounts.
#[utoipa::path(
    get,
    path = "/staff",
    tag = "staff",
    operation_id = "list_staff",
    params(PageParams, StaffQuery),
    responses(
        (status = 403, response = Forbidden),
        (status = 200, description = "One page of staff accounts.", body = Page<StaffView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 2, "username": "noc", "role": "operator",
                "is_active": true, "last_login_at": null, "created_at": "2026-12-01T10:00:00Z",
                "updated_at": "2026-12-01T10:00:00Z"}], "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_staff(
    api: Api<Admin>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<StaffQuery>,
) -> Result<Paged<StaffView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = StaffFilter {
        role: filters::parsed("role", query.role.as_deref(), &mut errors),
        search: filters::text("q", query.q.as_deref(), 64, &mut errors),
        active: filters::boolean("active", query.active.as_deref(), &mut errors),
    };
    let sort = Sort::parse(
        query.sort.as_deref(),
        staff::STAFF_SORTS,
        "username",
        &mut errors,
    );
    check(errors)?;
    let (rows, total) = staff::list_staff(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(StaffView::from))
}

/// The body of `POST /staff`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"username": "noc", "role": "operator", "password": "correct horse battery"}))]
pub struct CreateStaff {
    /// 3 to 64 letters, digits, `.`, `_` or `-`.
    #[schema(required = true, value_type = String, min_length = 3, max_length = 64, pattern = "^[A-Za-z0-9._-]+$")]
    pub username: Option<String>,
    #[schema(required = true, value_type = crate::api::RoleName)]
    pub role: Option<String>,
    /// At least 12 characters.
    #[schema(required = true, value_type = String, min_length = 12, format = Password)]
    pub password: Option<String>,
}

/// Create a staff account.
#[utoipa::path(
    post,
    path = "/staff",
    tag = "staff",
    operation_id = "create_staff",
    request_body = CreateStaff,
    responses(
        (status = 201, description = "Created.", body = StaffView),
        (status = 409, response = Conflict),
    ),
)]
pub async fn create_staff(
    api: Api<Admin>,
    ApiJson(body): ApiJson<CreateStaff>,
) -> Result<(StatusCode, Json<StaffView>), AppError> {
    let mut errors = FieldErrors::new();
    let username = StaffUsername::parse(body.username.as_deref().unwrap_or(""))
        .map_err(|problem| errors.insert("username".into(), problem))
        .ok();
    let role = body
        .role
        .as_deref()
        .unwrap_or("")
        .trim()
        .parse::<Role>()
        .map_err(|problem| errors.insert("role".into(), problem))
        .ok();
    let password = body.password.unwrap_or_default();
    if let Err(problem) = validate_password(&password) {
        errors.insert("password".into(), problem);
    }
    let (Some(username), Some(role), true) = (username, role, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let user = staff::create_staff(
        api.db(),
        &api.actor,
        &username,
        role,
        &Secret::new(password),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}
