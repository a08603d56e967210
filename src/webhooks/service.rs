//! Endpoints (create, change, list, delete), events queued for them, their
//! deliveries, and replaying one.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde::Serialize;
use tracing::instrument;

use super::domain::{Subscription, WebhookEvent, WebhookUrl};
use super::entities::{webhook_delivery, webhook_endpoint};
use super::WebhookError;
use crate::audit::{self, Actor};
use crate::crypto::{random_token, AppKey, Secret};
use crate::db::{begin_write, UniqueKey};
use crate::error::FieldErrors;
use crate::query::{fetch_page, PageRequest};
use crate::text::has_control;

/// The shortest secret accepted: an HMAC key that can be guessed offline
/// from one captured signature protects nothing.
pub const MIN_SECRET_LEN: usize = 16;
pub const MAX_SECRET_LEN: usize = 256;

/// An endpoint as the caller gives it; [`EndpointInput::validate`] turns it
/// into an [`EndpointSpec`].
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub name: String,
    pub url: String,
    /// Required to create; to change, None (or blank) keeps the current one.
    pub secret: Option<Secret>,
    /// Event type names, or `*`; None takes every event.
    pub events: Option<Vec<String>>,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct EndpointSpec {
    pub name: String,
    pub url: WebhookUrl,
    /// None: keep the stored one.
    pub secret: Option<Secret>,
    pub subscription: Subscription,
    pub active: bool,
}

impl EndpointInput {
    /// Checks every field; all problems are reported together. `creating`:
    /// the secret is required.
    pub fn validate(&self, creating: bool) -> Result<EndpointSpec, WebhookError> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 64 || has_control(&name) {
            errors.insert(
                "name".into(),
                "must be 1 to 64 characters long, without control characters".into(),
            );
        }
        let url = WebhookUrl::parse(&self.url)
            .map_err(|e| errors.insert("url".into(), e))
            .ok();
        let secret = self
            .secret
            .as_ref()
            .filter(|s| !s.expose().trim().is_empty());
        match secret {
            None if creating => {
                errors.insert(
                    "secret".into(),
                    format!("is required: at least {MIN_SECRET_LEN} characters (e.g. `openssl rand -hex 32`)"),
                );
            }
            Some(secret) => {
                let len = secret.expose().chars().count();
                if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&len) || has_control(secret.expose())
                {
                    errors.insert(
                        "secret".into(),
                        format!("must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters long, without control characters"),
                    );
                }
            }
            None => {}
        }
        let subscription = match &self.events {
            None => Some(Subscription::All),
            Some(names) => Subscription::parse(names)
                .map_err(|e| errors.insert("events".into(), e))
                .ok(),
        };
        match (url, subscription, errors.is_empty()) {
            (Some(url), Some(subscription), true) => Ok(EndpointSpec {
                name,
                url,
                secret: secret.cloned(),
                subscription,
                active: self.active,
            }),
            _ => Err(WebhookError::Invalid(errors)),
        }
    }
}

const NAME_KEY: UniqueKey =
    UniqueKey::index("uq_webhook_endpoints_name", "webhook_endpoints", &["name"]);
const NAME_TAKEN: &str = "an endpoint with this name exists already";

fn name_taken_as_invalid(err: DbErr) -> WebhookError {
    if NAME_KEY.violated_by(&err) {
        WebhookError::invalid("name", NAME_TAKEN)
    } else {
        WebhookError::Db(err)
    }
}

async fn check_name_free(
    db: &impl ConnectionTrait,
    name: &str,
    except: Option<i32>,
) -> Result<(), WebhookError> {
    let mut query =
        webhook_endpoint::Entity::find().filter(webhook_endpoint::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(webhook_endpoint::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(WebhookError::invalid("name", NAME_TAKEN));
    }
    Ok(())
}

/// What the audit log keeps of an endpoint: never the secret, and of the
/// URL only its origin (a path or query may hold a token of the receiver's).
fn endpoint_details(e: &webhook_endpoint::Model) -> serde_json::Value {
    serde_json::json!({
        "name": e.name,
        "origin": super::domain::origin_of(&e.url),
        "events": Subscription::from_column(&e.event_types).names(),
        "active": e.active,
    })
}

pub async fn get_endpoint(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<webhook_endpoint::Model, WebhookError> {
    webhook_endpoint::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| WebhookError::NotFound(format!("no webhook endpoint with id {id}")))
}

/// Endpoints by name.
pub async fn list_endpoints(
    db: &impl ConnectionTrait,
    page: PageRequest,
) -> Result<(Vec<webhook_endpoint::Model>, u64), WebhookError> {
    let select = webhook_endpoint::Entity::find()
        .order_by_asc(webhook_endpoint::Column::Name)
        .order_by_asc(webhook_endpoint::Column::Id);
    Ok(fetch_page(db, select, page).await?)
}

#[instrument(skip_all)]
pub async fn create_endpoint(
    db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    input: &EndpointInput,
) -> Result<webhook_endpoint::Model, WebhookError> {
    let spec = input.validate(true)?;
    let Some(secret) = &spec.secret else {
        return Err(WebhookError::invalid("secret", "is required"));
    };
    let txn = begin_write(db).await?;
    check_name_free(&txn, &spec.name, None).await?;
    let now = Utc::now();
    let endpoint = webhook_endpoint::ActiveModel {
        name: Set(spec.name.clone()),
        url: Set(spec.url.as_str().to_string()),
        secret_encrypted: Set(key.encrypt(secret.expose())),
        event_types: Set(spec.subscription.to_column()),
        active: Set(spec.active),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(name_taken_as_invalid)?;
    audit::record(
        &txn,
        actor,
        "webhook_endpoint.create",
        "webhook_endpoint",
        Some(endpoint.id.to_string()),
        endpoint_details(&endpoint),
    )
    .await?;
    txn.commit().await?;
    Ok(endpoint)
}

/// Replaces an endpoint's settings; without a secret the current one
/// stays. Deliveries still pending go to the new URL, signed with the new
/// secret.
#[instrument(skip_all, fields(webhook_endpoint.id = id))]
pub async fn update_endpoint(
    db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    id: i32,
    input: &EndpointInput,
) -> Result<webhook_endpoint::Model, WebhookError> {
    let spec = input.validate(false)?;
    let txn = begin_write(db).await?;
    let existing = get_endpoint(&txn, id).await?;
    check_name_free(&txn, &spec.name, Some(id)).await?;
    let mut row: webhook_endpoint::ActiveModel = existing.into();
    row.name = Set(spec.name.clone());
    row.url = Set(spec.url.as_str().to_string());
    if let Some(secret) = &spec.secret {
        row.secret_encrypted = Set(key.encrypt(secret.expose()));
    }
    row.event_types = Set(spec.subscription.to_column());
    row.active = Set(spec.active);
    row.updated_at = Set(Utc::now().into());
    let endpoint = row.update(&txn).await.map_err(name_taken_as_invalid)?;
    let mut details = endpoint_details(&endpoint);
    details["secret_changed"] = spec.secret.is_some().into();
    audit::record(
        &txn,
        actor,
        "webhook_endpoint.update",
        "webhook_endpoint",
        Some(id.to_string()),
        details,
    )
    .await?;
    txn.commit().await?;
    Ok(endpoint)
}

/// Deletes an endpoint and its deliveries (sent or not).
#[instrument(skip_all, fields(webhook_endpoint.id = id))]
pub async fn delete_endpoint(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
) -> Result<(), WebhookError> {
    let txn = begin_write(db).await?;
    let endpoint = get_endpoint(&txn, id).await?;
    // The foreign key cascades too; deleting here does not depend on it.
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::EndpointId.eq(id))
        .exec(&txn)
        .await?;
    webhook_endpoint::Entity::delete_by_id(id)
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        "webhook_endpoint.delete",
        "webhook_endpoint",
        Some(id.to_string()),
        endpoint_details(&endpoint),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The body POSTed for an event, in this order.
#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    created_at: DateTime<Utc>,
    data: &'a serde_json::Value,
}

/// A new event id: `evt_` and 128 random bits.
fn new_event_id() -> String {
    format!("evt_{}", random_token(16))
}

/// Queues `event` for every active endpoint that takes its type: one
/// pending delivery each, all with the same event id and payload. Returns
/// how many were queued.
#[instrument(skip_all, fields(event_type = %event.event_type))]
pub async fn emit(db: &impl ConnectionTrait, event: &WebhookEvent) -> Result<u64, WebhookError> {
    let takers: Vec<webhook_endpoint::Model> = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Active.eq(true))
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter(|e| Subscription::from_column(&e.event_types).includes(event.event_type))
        .collect();
    if takers.is_empty() {
        return Ok(0);
    }
    let event_id = new_event_id();
    let payload = serde_json::to_string(&Payload {
        id: &event_id,
        event_type: event.event_type.as_str(),
        created_at: event.occurred_at,
        data: &event.data,
    })
    .map_err(|e| WebhookError::Internal(e.into()))?;
    let now = Utc::now();
    let rows = takers.iter().map(|endpoint| webhook_delivery::ActiveModel {
        endpoint_id: Set(endpoint.id),
        event_id: Set(event_id.clone()),
        event_type: Set(event.event_type.as_str().to_string()),
        payload: Set(payload.clone()),
        status: Set("pending".into()),
        attempts: Set(0),
        next_attempt_at: Set(Some(now.into())),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    });
    webhook_delivery::Entity::insert_many(rows).exec(db).await?;
    Ok(takers.len() as u64)
}

/// [`emit`] for callers that must not fail because of webhooks (the
/// enforcement saga): an error is logged, and the caller goes on.
/// Deletes the deliveries that finished (delivered, or failed for good)
/// before `before`; the pending ones stay whatever their age.
pub async fn purge_finished_deliveries(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, sea_orm::DbErr> {
    let deleted = webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::Status.is_in(["delivered", "failed"]))
        .filter(webhook_delivery::Column::UpdatedAt.lt(before.fixed_offset()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

pub async fn emit_logged(db: &impl ConnectionTrait, event: WebhookEvent) {
    if let Err(err) = emit(db, &event).await {
        tracing::warn!(event_type = %event.event_type, error = %err, "the webhook event could not be queued");
    }
}

pub async fn get_delivery(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<webhook_delivery::Model, WebhookError> {
    webhook_delivery::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| WebhookError::NotFound(format!("no webhook delivery with id {id}")))
}

/// An endpoint's deliveries, newest first.
pub async fn list_deliveries(
    db: &impl ConnectionTrait,
    endpoint_id: i32,
    page: PageRequest,
) -> Result<(Vec<webhook_delivery::Model>, u64), WebhookError> {
    get_endpoint(db, endpoint_id).await?;
    let select = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
        .order_by_desc(webhook_delivery::Column::Id);
    Ok(fetch_page(db, select, page).await?)
}

/// Sends a delivery again, whatever became of it: back to `pending`, due
/// now, with its attempts counted afresh and the same event id and
/// payload (a receiver that has it already can tell by the id).
#[instrument(skip_all, fields(webhook_delivery.id = id))]
pub async fn replay_delivery(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i64,
) -> Result<webhook_delivery::Model, WebhookError> {
    let txn = begin_write(db).await?;
    let delivery = get_delivery(&txn, id).await?;
    let now = Utc::now();
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Status, Expr::value("pending"))
        .col_expr(webhook_delivery::Column::Attempts, Expr::value(0))
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(now.fixed_offset()),
        )
        .col_expr(
            webhook_delivery::Column::DeliveredAt,
            Expr::value(Option::<DateTime<chrono::FixedOffset>>::None),
        )
        .col_expr(
            webhook_delivery::Column::UpdatedAt,
            Expr::value(now.fixed_offset()),
        )
        .filter(webhook_delivery::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        "webhook_delivery.replay",
        "webhook_delivery",
        Some(id.to_string()),
        serde_json::json!({
            "endpoint_id": delivery.endpoint_id,
            "event_id": delivery.event_id,
            "event_type": delivery.event_type,
            "was": delivery.status,
            "attempts": delivery.attempts,
        }),
    )
    .await?;
    let replayed = get_delivery(&txn, id).await?;
    txn.commit().await?;
    Ok(replayed)
}
