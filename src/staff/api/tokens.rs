//! `/tokens`: list, create, show and revoke API tokens (admin only).

use axum::extract::OriginalUri;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::Api;
use crate::api::check;
use crate::api::created;
use crate::api::docs::Forbidden;
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::error::{AppError, FieldErrors};
use crate::query::{filters, Sort};
use crate::staff::entities::api_token;
use crate::staff::service::{self as staff, TokenFilter};
use crate::staff::{Admin, Role};
use crate::web::pagination::{Page, PageParams, Paged};

/// An API token as the API shows it: never its hash, and its plaintext only
/// in the answer that creates it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 3, "name": "billing", "prefix": "ispd_q3Xk9b2", "role": "operator",
    "created_by": 1, "created_at": "2026-11-28T07:20:15Z", "expires_at": "2027-02-26T07:20:15Z",
    "last_used_at": "2026-11-28T08:02:41Z", "revoked_at": null, "active": true}))]
pub struct TokenView {
    #[schema(example = 3)]
    pub id: i32,
    #[schema(example = "billing")]
    pub name: String,
    /// The token's first characters, to recognise it.
    #[schema(example = "ispd_q3Xk9b2")]
    pub prefix: String,
    #[schema(value_type = crate::api::RoleName, example = "operator")]
    pub role: String,
    /// The staff member who created it; null when made by the CLI or a token.
    #[schema(example = 1)]
    pub created_by: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Neither revoked nor expired.
    #[schema(example = true)]
    pub active: bool,
}

impl From<api_token::Model> for TokenView {
    fn from(token: api_token::Model) -> Self {
        let active = staff::is_active(&token, Utc::now());
        Self {
            id: token.id,
            name: token.name,
            prefix: token.token_prefix,
            role: token.role,
            created_by: token.created_by,
            created_at: token.created_at.to_utc(),
            expires_at: token.expires_at.map(|t| t.to_utc()),
            last_used_at: token.last_used_at.map(|t| t.to_utc()),
            revoked_at: token.revoked_at.map(|t| t.to_utc()),
            active,
        }
    }
}

/// Filters and order of `GET /tokens`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Part of the token's name, any case.
    pub name: Option<String>,
    /// Only tokens of this role.
    #[param(value_type = Option<crate::api::RoleName>)]
    pub role: Option<String>,
    /// `true`: tokens that work now; `false`: revoked or expired ones.
    #[param(value_type = Option<bool>)]
    pub active: Option<String>,
    /// `id`, `name`, `role`, `created_at`, `expires_at` or `last_used_at`;
    /// `-` in front for descending; comma-separated for several. Default `id`.
    #[param(example = "-created_at")]
    pub sort: Option<String>,
}

/// List API tokens.
#[utoipa::path(
    get,
    path = "/tokens",
    tag = "tokens",
    operation_id = "list_tokens",
    params(PageParams, TokenQuery),
    responses(
        (status = 403, response = Forbidden),
        (status = 200, description = "One page of tokens.", body = Page<TokenView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 3, "name": "billing", "prefix": "ispd_q3Xk9b2",
                "role": "operator", "created_by": 1, "created_at": "2026-12-01T10:00:00Z",
                "expires_at": null, "last_used_at": "2026-12-02T08:15:00Z", "revoked_at": null,
                "active": true}], "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_tokens(
    api: Api<Admin>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<TokenQuery>,
) -> Result<Paged<TokenView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = TokenFilter {
        name: filters::text("name", query.name.as_deref(), 100, &mut errors),
        role: filters::parsed("role", query.role.as_deref(), &mut errors),
        active: filters::boolean("active", query.active.as_deref(), &mut errors),
    };
    let sort = Sort::parse(query.sort.as_deref(), staff::TOKEN_SORTS, "id", &mut errors);
    check(errors)?;
    let (rows, total) = staff::list_tokens(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(TokenView::from))
}

/// The body of `POST /tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "billing", "role": "operator", "expires_in_days": 90}))]
pub struct CreateToken {
    /// What the token is for: 1 to 100 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(required = true, value_type = crate::api::RoleName)]
    pub role: Option<String>,
    /// Days until the token stops working (1 to 3650). Omitted or null:
    /// never, except for an admin token, which lasts at most 90 days (and
    /// 90 when omitted).
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
}

/// The answer to `POST /tokens`: the token, and once only, its plaintext.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token to send as `Authorization: Bearer ...`. Shown only now.
    #[schema(example = "ispd_q3Xk9b2...")]
    pub token: String,
    #[serde(flatten)]
    pub details: TokenView,
}

/// Create an API token. Its plaintext is in this answer and nowhere else.
#[utoipa::path(
    post,
    path = "/tokens",
    tag = "tokens",
    operation_id = "create_token",
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created; `Location` names it.", body = CreatedToken,
            headers(("Location" = String, description = "The new token's URL.")),
            example = json!({"token": "ispd_q3Xk9b2...", "id": 3, "name": "billing",
                "prefix": "ispd_q3Xk9b2", "role": "operator", "created_by": 1,
                "created_at": "2026-12-01T10:00:00Z", "expires_at": "2027-03-01T10:00:00Z",
                "last_used_at": null, "revoked_at": null, "active": true})),
    ),
)]
pub async fn create_token(
    api: Api<Admin>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<impl IntoResponse, AppError> {
    let mut errors = FieldErrors::new();
    let name = body.name.as_deref().map(str::trim).unwrap_or("");
    if name.is_empty() || name.chars().count() > 100 {
        errors.insert("name".into(), "must be 1 to 100 characters long".into());
    }
    let role = match body.role.as_deref().map(str::trim) {
        None | Some("") => {
            errors.insert(
                "role".into(),
                "is required (admin, operator or viewer)".into(),
            );
            None
        }
        Some(text) => text
            .parse::<Role>()
            .map_err(|problem| errors.insert("role".into(), problem))
            .ok(),
    };
    let expires_at = match body.expires_in_days {
        None => None,
        Some(days) if (1..=3650).contains(&days) => Some(Utc::now() + chrono::Duration::days(days)),
        Some(_) => {
            errors.insert(
                "expires_in_days".into(),
                "must be a whole number of days from 1 to 3650".into(),
            );
            None
        }
    };
    if let Some(role) = role {
        if let Err(problem) = staff::token_expiry(role, expires_at, Utc::now()) {
            errors.insert("expires_in_days".into(), problem);
        }
    }
    let Some(role) = role.filter(|_| errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let issued = staff::create_token(api.db(), &api.actor, name, role, expires_at).await?;
    let path = format!("/tokens/{}", issued.token.id);
    let body = CreatedToken {
        token: issued.plaintext.expose().to_string(),
        details: issued.token.into(),
    };
    Ok(created(&path, body))
}

/// Show one API token.
#[utoipa::path(
    get,
    path = "/tokens/{id}",
    tag = "tokens",
    operation_id = "get_token",
    params(("id" = i32, Path, description = "The token's id.")),
    responses(
        (status = 403, response = Forbidden),
        (status = 200, description = "The token.", body = TokenView),
    ),
)]
pub async fn get_token(
    api: Api<Admin>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<TokenView>, AppError> {
    let token = staff::get_token(api.db(), id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no API token with id {id}")))?;
    Ok(Json(token.into()))
}

/// Revoke an API token: it stops working at once. Revoking a revoked token
/// changes nothing and answers the same.
#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    tag = "tokens",
    operation_id = "revoke_token",
    params(("id" = i32, Path, description = "The token's id.")),
    responses(
        (status = 200, description = "The token, now revoked.", body = TokenView),
    ),
)]
pub async fn revoke_token(
    api: Api<Admin>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<TokenView>, AppError> {
    let token = staff::revoke_token(api.db(), &api.actor, id).await?;
    Ok(Json(token.into()))
}
