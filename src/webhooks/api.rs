//! `/api/v1/webhooks`: endpoints (CRUD), their deliveries, and replaying
//! a delivery. Admins only: the URL can be a credential of the receiver's,
//! and the secret signs what receivers trust.

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::Subscription;
use super::entities::{webhook_delivery, webhook_endpoint};
use super::service::{self, EndpointInput};
use crate::api::auth::Api;
use crate::api::check;
use crate::api::created;
use crate::api::docs::Forbidden;
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::staff::Admin;
use crate::web::pagination::{Page, PageParams, Paged};

/// The webhook routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_webhook_deliveries))
        .routes(routes!(replay_webhook_delivery))
}

/// Where events are pushed. The secret is never shown.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "billing", "url": "https://billing.example.net/hooks/ispd",
    "events": ["subscriber.state_changed", "enforcement.not_applied"], "active": true,
    "has_secret": true, "created_at": "2026-12-08T10:00:00Z", "updated_at": "2026-12-08T10:00:00Z"}))]
pub struct WebhookView {
    pub id: i32,
    pub name: String,
    pub url: String,
    /// The event types it takes; `["*"]` for all.
    pub events: Vec<String>,
    /// Inactive endpoints get no new events; their pending deliveries wait.
    pub active: bool,
    /// Whether a signing secret is stored (it is write-only).
    pub has_secret: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<webhook_endpoint::Model> for WebhookView {
    fn from(e: webhook_endpoint::Model) -> Self {
        Self {
            id: e.id,
            events: Subscription::from_column(&e.event_types).names(),
            has_secret: !e.secret_encrypted.is_empty(),
            name: e.name,
            url: e.url,
            active: e.active,
            created_at: e.created_at.into(),
            updated_at: e.updated_at.into(),
        }
    }
}

/// The body of `POST /webhooks` and `PUT /webhooks/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "billing", "url": "https://billing.example.net/hooks/ispd",
    "secret": "4f1c9a0e6b2d47a8b3e5c7d9f0a1b2c3", "events": ["subscriber.state_changed",
    "enforcement.not_applied"], "active": true}))]
pub struct WebhookBody {
    /// 1 to 64 characters, unique.
    pub name: String,
    /// An absolute `http` or `https` URL, without a user name or password.
    pub url: String,
    /// The HMAC-SHA256 key that signs each request: 16 to 256 characters.
    /// Write-only, never returned. Required on `POST`; on `PUT`, omitted or
    /// empty keeps the current one.
    #[schema(write_only, min_length = 16, max_length = 256)]
    pub secret: Option<String>,
    /// Event type names: `subscriber.state_changed`,
    /// `enforcement.confirmed`, `enforcement.not_applied`, and (not sent
    /// yet) `quota.tier_crossed`, `session.started`, `session.stopped`; or
    /// `["*"]` for every event. Omitted: every event.
    pub events: Option<Vec<String>>,
    /// Default true.
    pub active: Option<bool>,
}

impl From<WebhookBody> for EndpointInput {
    fn from(b: WebhookBody) -> Self {
        Self {
            name: b.name,
            url: b.url,
            secret: b.secret.map(Secret::new),
            events: b.events,
            active: b.active.unwrap_or(true),
        }
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "endpoint_id": 1, "event_id": "evt_Qm9tYXJrZXQgZXZlbnQ",
    "event_type": "subscriber.state_changed", "status": "delivered", "attempts": 3,
    "next_attempt_at": null, "last_status_code": 200, "last_error": null,
    "delivered_at": "2026-12-08T10:01:35Z", "created_at": "2026-12-08T10:00:00Z",
    "updated_at": "2026-12-08T10:01:35Z",
    "payload": {"id": "evt_Qm9tYXJrZXQgZXZlbnQ", "type": "subscriber.state_changed",
        "created_at": "2026-12-08T10:00:00Z", "data": {"user_id": 12, "username": "alice",
        "from": "active", "to": "suspended", "target": "walled_garden", "reason": "suspended",
        "changed_at": "2026-12-08T10:00:00Z"}}}))]
pub struct DeliveryView {
    pub id: i64,
    pub endpoint_id: i32,
    /// The event's id: the same on every retry and replay.
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts since it was queued or last replayed.
    pub attempts: i32,
    /// When a pending delivery is next tried.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last answer's HTTP status, if one came.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The body sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<webhook_delivery::Model> for DeliveryView {
    fn from(d: webhook_delivery::Model) -> Self {
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(Into::into),
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            delivered_at: d.delivered_at.map(Into::into),
            created_at: d.created_at.into(),
            updated_at: d.updated_at.into(),
        }
    }
}

/// List webhook endpoints, by name.
#[utoipa::path(
    get,
    path = "/webhooks",
    tag = "webhooks",
    params(PageParams),
    responses(
        (status = 403, response = Forbidden),
        (status = 200, description = "One page of endpoints (never their secrets).",
            body = Page<WebhookView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 1, "name": "billing",
                "url": "https://billing.example.net/hooks/ispd",
                "events": ["subscriber.state_changed", "enforcement.not_applied"],
                "active": true, "has_secret": true, "created_at": "2026-12-08T10:00:00Z",
                "updated_at": "2026-12-08T10:00:00Z"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_webhooks(
    api: Api<Admin>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Paged<WebhookView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    check(errors)?;
    let (rows, total) = service::list_endpoints(api.db(), page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(WebhookView::from))
}

/// Create a webhook endpoint.
#[utoipa::path(
    post,
    path = "/webhooks",
    tag = "webhooks",
    request_body = WebhookBody,
    responses(
        (status = 201, description = "Created; `Location` names it. No secret in it.",
            body = WebhookView,
            headers(("Location" = String, description = "The new endpoint's URL."))),
    ),
)]
pub async fn create_webhook(
    api: Api<Admin>,
    ApiJson(body): ApiJson<WebhookBody>,
) -> Result<Response, AppError> {
    let endpoint =
        service::create_endpoint(api.db(), &api.state.app_key, &api.actor, &body.into()).await?;
    Ok(created(
        &format!("/webhooks/{}", endpoint.id),
        WebhookView::from(endpoint),
    ))
}

/// Show one webhook endpoint (never its secret).
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i32, Path, description = "The endpoint's id.")),
    responses(
        (status = 403, response = Forbidden),
        (status = 200, description = "The endpoint.", body = WebhookView),
    ),
)]
pub async fn get_webhook(
    api: Api<Admin>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<WebhookView>, AppError> {
    Ok(Json(service::get_endpoint(api.db(), id).await?.into()))
}

/// Replace a webhook endpoint's settings; without `secret` the current one
/// stays. Pending deliveries go to the new URL.
#[utoipa::path(
    put,
    path = "/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i32, Path, description = "The endpoint's id.")),
    request_body = WebhookBody,
    responses((status = 200, description = "The endpoint, changed.", body = WebhookView)),
)]
pub async fn update_webhook(
    api: Api<Admin>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<WebhookBody>,
) -> Result<Json<WebhookView>, AppError> {
    let endpoint =
        service::update_endpoint(api.db(), &api.state.app_key, &api.actor, id, &body.into())
            .await?;
    Ok(Json(endpoint.into()))
}

/// Delete a webhook endpoint and its deliveries.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i32, Path, description = "The endpoint's id.")),
    responses((status = 204, description = "Deleted.")),
)]
pub async fn delete_webhook(
    api: Api<Admin>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    service::delete_endpoint(api.db(), &api.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List an endpoint's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = i32, Path, description = "The endpoint's id."), PageParams),
    responses(
        (status = 403, response = Forbidden),
        (status = 200, description = "One page of deliveries, newest first.",
            body = Page<DeliveryView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 7, "endpoint_id": 1,
                "event_id": "evt_Qm9tYXJrZXQgZXZlbnQ", "event_type": "subscriber.state_changed",
                "status": "pending", "attempts": 1, "next_attempt_at": "2026-12-08T10:00:40Z",
                "last_status_code": 500, "last_error": "answered 500: billing is restarting",
                "delivered_at": null, "created_at": "2026-12-08T10:00:00Z",
                "updated_at": "2026-12-08T10:00:10Z",
                "payload": {"id": "evt_Qm9tYXJrZXQgZXZlbnQ", "type": "subscriber.state_changed",
                    "created_at": "2026-12-08T10:00:00Z", "data": {"user_id": 12,
                    "username": "alice", "from": "active", "to": "suspended",
                    "target": "walled_garden", "reason": "suspended",
                    "changed_at": "2026-12-08T10:00:00Z"}}}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_webhook_deliveries(
    api: Api<Admin>,
    OriginalUri(uri): OriginalUri,
    ApiPath(id): ApiPath<i32>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Paged<DeliveryView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    check(errors)?;
    let (rows, total) = service::list_deliveries(api.db(), id, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(DeliveryView::from))
}

/// Send a delivery again: back to `pending`, due now, attempts counted
/// afresh, with the same event id and payload.
#[utoipa::path(
    post,
    path = "/webhooks/deliveries/{id}/replay",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The delivery's id.")),
    responses((status = 200, description = "The delivery, pending again.", body = DeliveryView)),
)]
pub async fn replay_webhook_delivery(
    api: Api<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<DeliveryView>, AppError> {
    let delivery = service::replay_delivery(api.db(), &api.actor, id).await?;
    Ok(Json(delivery.into()))
}
