//! `/audit-log`: who changed what (any role).

use axum::extract::OriginalUri;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::Api;
use crate::api::check;
use crate::api::extract::ApiQuery;
use crate::app::AppState;
use crate::audit::entities::audit_log;
use crate::audit::{self, AuditFilter, AUDIT_SORTS};
use crate::error::{AppError, FieldErrors};
use crate::query::{filters, Sort};
use crate::staff::Viewer;
use crate::web::pagination::{Page, PageParams, Paged};

/// The audit log's endpoint; `app::api_routes` merges it.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_log))
}

/// One entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    #[schema(example = 42)]
    pub id: i64,
    pub actor: AuditActor,
    /// What was done, as `<entity>.<verb>`.
    #[schema(example = "token.create")]
    pub action: String,
    #[schema(example = "api_token")]
    pub entity_type: String,
    #[schema(example = "3")]
    pub entity_id: Option<String>,
    /// The change, as recorded; never a secret.
    #[schema(value_type = Object, example = json!({"name": "billing", "role": "operator"}))]
    pub details: serde_json::Value,
    #[schema(example = "192.0.2.10")]
    pub ip_address: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    /// `staff`, `token`, `cli` or `system`.
    #[schema(example = "staff")]
    pub kind: String,
    #[schema(example = 1)]
    pub id: Option<i32>,
    #[schema(example = "admin")]
    pub name: String,
}

impl From<audit_log::Model> for AuditEntry {
    fn from(row: audit_log::Model) -> Self {
        let details = row
            .details
            .as_deref()
            .map(|text| {
                serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.into()))
            })
            .unwrap_or(serde_json::Value::Null);
        Self {
            id: row.id,
            actor: AuditActor {
                kind: row.actor_kind,
                id: row.actor_id,
                name: row.actor_name,
            },
            action: row.action,
            entity_type: row.entity_type,
            entity_id: row.entity_id,
            details,
            ip_address: row.ip_address,
            created_at: row.created_at.to_utc(),
        }
    }
}

/// Filters and order of `GET /audit-log`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this action, e.g. `token.create`.
    pub action: Option<String>,
    /// Only entries about this kind of thing, e.g. `api_token`.
    pub entity_type: Option<String>,
    /// Only entries about the thing with this id (with `entity_type`).
    pub entity_id: Option<String>,
    /// Only entries by the staff member, token or user of this name.
    pub actor: Option<String>,
    /// `id`, `created_at` or `action`; `-` in front for descending;
    /// comma-separated for several. Default `-created_at` (newest first).
    #[param(example = "-created_at")]
    pub sort: Option<String>,
}

/// Read the audit log, newest first.
#[utoipa::path(
    get,
    path = "/audit-log",
    tag = "audit",
    operation_id = "list_audit_log",
    params(PageParams, AuditQuery),
    responses(
        (status = 200, description = "One page of entries.", body = Page<AuditEntry>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 42, "actor": {"kind": "staff", "id": 1, "name": "admin"},
                "action": "token.create", "entity_type": "api_token", "entity_id": "3",
                "details": {"name": "billing", "role": "operator", "expires_at": null},
                "ip_address": "192.0.2.10", "created_at": "2026-12-01T10:00:00Z"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_audit_log(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Paged<AuditEntry>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = AuditFilter {
        action: filters::text("action", query.action.as_deref(), 64, &mut errors),
        entity_type: filters::text("entity_type", query.entity_type.as_deref(), 64, &mut errors),
        entity_id: filters::text("entity_id", query.entity_id.as_deref(), 64, &mut errors),
        actor: filters::text("actor", query.actor.as_deref(), 100, &mut errors),
        search: None,
    };
    let sort = Sort::parse(
        query.sort.as_deref(),
        AUDIT_SORTS,
        "-created_at",
        &mut errors,
    );
    check(errors)?;
    let (rows, total) = audit::list_audit_log(api.db(), &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(AuditEntry::from))
}
