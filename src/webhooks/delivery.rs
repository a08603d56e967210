//! Sending the queued deliveries, and retrying them until the receiver
//! takes them.
//!
//! A delivery row moves through these states:
//!
//! - `pending`: to be sent at `next_attempt_at`. An answer other than 2xx,
//!   or none within [`TIMEOUT`], counts as a failed attempt and moves
//!   `next_attempt_at` on by [`backoff`] (30 s, doubling, at most an hour).
//! - `delivered`: the receiver answered 2xx. Only that marks a row
//!   delivered, so a crash between sending and recording sends the event
//!   again later: delivery is **at least once**, and receivers deduplicate
//!   by the event id.
//! - `failed`: [`MAX_ATTEMPTS`] attempts failed (about five hours of
//!   retries). An operator can replay it (`service::replay_delivery`).
//!
//! **Claiming.** Before sending a row, a worker claims it with one
//! conditional UPDATE: `next_attempt_at = now + LEASE` where the row is
//! still `pending` and due. Whoever's UPDATE changes the row sends it; a
//! second worker (or a second pass started by hand while the scheduled
//! one runs) finds it no longer due and leaves it. The job scheduler
//! already runs one `webhook-delivery` at a time, but the claim does not
//! rely on it: it holds for any number of callers on any of the three
//! databases, with no lock held across the HTTP request. A worker that
//! dies after claiming leaves the row pending with a lease that runs out
//! after [`LEASE_SECS`], and the next pass sends it again. The lease is
//! far longer than [`TIMEOUT`] and than a pass takes ([`BATCH`] rows,
//! [`PARALLEL_SENDS`] at a time), so a row is never sent twice at once.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::task::JoinSet;

use super::client::{self, Answer};
use super::entities::{webhook_delivery, webhook_endpoint};
use super::signature::{self, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::WebhookError;
use crate::crypto::AppKey;

/// The longest a receiver may take to answer (connection included).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts before a delivery counts as failed.
pub const MAX_ATTEMPTS: i32 = 12;
/// How long a claimed row is left to the worker sending it.
pub const LEASE_SECS: i64 = 120;
/// Rows taken by one pass.
pub const BATCH: u64 = 100;
/// Requests in flight at once in one pass.
pub const PARALLEL_SENDS: usize = 16;

/// The wait after the `attempts`-th failed attempt: 30 s, doubling each
/// time, at most an hour.
pub fn backoff(attempts: i32) -> chrono::Duration {
    let doublings = (attempts - 1).clamp(0, 7);
    chrono::Duration::seconds((30i64 << doublings).min(3600))
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    /// Failed attempts that will be retried.
    pub retrying: u64,
    /// Failed for good (the last attempt).
    pub failed: u64,
    /// Due rows another worker claimed first.
    pub taken_elsewhere: u64,
}

enum Outcome {
    Delivered,
    Retrying,
    Failed,
}

/// Sends the pending deliveries of active endpoints that are due at `now`
/// (at most [`BATCH`]), and records what each receiver answered. The
/// deliveries of an inactive endpoint wait until it is active again.
#[tracing::instrument(skip_all)]
pub async fn deliver_due(
    db: &DatabaseConnection,
    key: &AppKey,
    now: DateTime<Utc>,
) -> Result<DeliveryReport, WebhookError> {
    let endpoints: BTreeMap<i32, webhook_endpoint::Model> = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Active.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let mut report = DeliveryReport::default();
    if endpoints.is_empty() {
        return Ok(report);
    }
    let due = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq("pending"))
        .filter(
            Condition::any()
                .add(webhook_delivery::Column::NextAttemptAt.is_null())
                .add(webhook_delivery::Column::NextAttemptAt.lte(now)),
        )
        .filter(webhook_delivery::Column::EndpointId.is_in(endpoints.keys().copied()))
        .order_by_asc(webhook_delivery::Column::NextAttemptAt)
        .order_by_asc(webhook_delivery::Column::Id)
        .limit(BATCH)
        .all(db)
        .await?;

    let mut queue = due.into_iter();
    let mut running = JoinSet::new();
    loop {
        while running.len() < PARALLEL_SENDS {
            let Some(delivery) = queue.next() else {
                break;
            };
            let Some(endpoint) = endpoints.get(&delivery.endpoint_id).cloned() else {
                continue;
            };
            let (db, key) = (db.clone(), key.clone());
            running.spawn(async move { attempt(&db, &key, &endpoint, delivery, now).await });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let outcome = joined.map_err(|e| WebhookError::Internal(e.into()))?;
        match outcome? {
            Some(Outcome::Delivered) => report.delivered += 1,
            Some(Outcome::Retrying) => report.retrying += 1,
            Some(Outcome::Failed) => report.failed += 1,
            None => report.taken_elsewhere += 1,
        }
    }
    Ok(report)
}

/// Takes the row if it is still pending and due (see the module's
/// documentation); true when this caller may send it.
async fn claim(
    db: &DatabaseConnection,
    delivery: &webhook_delivery::Model,
    now: DateTime<Utc>,
) -> Result<bool, WebhookError> {
    let lease_until = now + chrono::Duration::seconds(LEASE_SECS);
    let claimed = webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(lease_until.fixed_offset()),
        )
        .filter(webhook_delivery::Column::Id.eq(delivery.id))
        .filter(webhook_delivery::Column::Status.eq("pending"))
        .filter(
            Condition::any()
                .add(webhook_delivery::Column::NextAttemptAt.is_null())
                .add(webhook_delivery::Column::NextAttemptAt.lte(now)),
        )
        .exec(db)
        .await?;
    Ok(claimed.rows_affected == 1)
}

/// Claims, sends and records one delivery; None when another worker has
/// claimed it.
async fn attempt(
    db: &DatabaseConnection,
    key: &AppKey,
    endpoint: &webhook_endpoint::Model,
    delivery: webhook_delivery::Model,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, WebhookError> {
    if !claim(db, &delivery, now).await? {
        return Ok(None);
    }
    let result = match key.decrypt(&endpoint.secret_encrypted) {
        Ok(secret) => send(&endpoint.url, secret.expose().as_bytes(), &delivery)
            .await
            .map_err(|e| e.to_string()),
        Err(err) => Err(format!("not sent: the endpoint's secret: {err}")),
    };
    let outcome = record(db, &delivery, result, now).await?;
    Ok(Some(outcome))
}

/// POSTs the stored payload, signed now.
async fn send(
    url: &str,
    secret: &[u8],
    delivery: &webhook_delivery::Model,
) -> Result<Answer, client::SendError> {
    let timestamp = Utc::now().timestamp();
    let body = Bytes::from(delivery.payload.clone());
    let signature = signature::sign(secret, timestamp, &body);
    let text = |value: &str| {
        HeaderValue::from_str(value)
            .map_err(|_| client::SendError::Http(format!("\"{value}\" cannot be sent in a header")))
    };
    let headers = vec![
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (
            HeaderName::from_static(EVENT_HEADER),
            text(&delivery.event_type)?,
        ),
        (
            HeaderName::from_static(DELIVERY_HEADER),
            text(&delivery.event_id)?,
        ),
        (
            HeaderName::from_static(TIMESTAMP_HEADER),
            HeaderValue::from(timestamp),
        ),
        (HeaderName::from_static(SIGNATURE_HEADER), text(&signature)?),
    ];
    client::post(url, headers, body, TIMEOUT).await
}

/// Stores the attempt's result: delivered on a 2xx, else retried after
/// [`backoff`], or failed after [`MAX_ATTEMPTS`].
async fn record(
    db: &DatabaseConnection,
    delivery: &webhook_delivery::Model,
    result: Result<Answer, String>,
    now: DateTime<Utc>,
) -> Result<Outcome, WebhookError> {
    use webhook_delivery::Column;
    let attempts = delivery.attempts + 1;
    let at = |time: DateTime<Utc>| Expr::value(Some(time.fixed_offset()));
    let never = || Expr::value(Option::<DateTime<chrono::FixedOffset>>::None);
    let mut update = webhook_delivery::Entity::update_many()
        .col_expr(Column::Attempts, Expr::value(attempts))
        .col_expr(Column::UpdatedAt, Expr::value(now.fixed_offset()));
    let error = match result {
        Ok(answer) if answer.is_success() => {
            update = update
                .col_expr(Column::Status, Expr::value("delivered"))
                .col_expr(
                    Column::LastStatusCode,
                    Expr::value(Some(i32::from(answer.status))),
                )
                .col_expr(Column::LastError, Expr::value(Option::<String>::None))
                .col_expr(Column::DeliveredAt, at(now))
                .col_expr(Column::NextAttemptAt, never());
            update.filter(Column::Id.eq(delivery.id)).exec(db).await?;
            return Ok(Outcome::Delivered);
        }
        Ok(answer) => {
            update = update.col_expr(
                Column::LastStatusCode,
                Expr::value(Some(i32::from(answer.status))),
            );
            if answer.excerpt.is_empty() {
                format!("answered {}", answer.status)
            } else {
                format!("answered {}: {}", answer.status, answer.excerpt)
            }
        }
        Err(message) => {
            update = update.col_expr(Column::LastStatusCode, Expr::value(Option::<i32>::None));
            message
        }
    };
    let outcome = if attempts >= MAX_ATTEMPTS {
        tracing::warn!(
            webhook_delivery.id = delivery.id,
            event_id = %delivery.event_id,
            error = %error,
            "webhook delivery failed for good after {attempts} attempts"
        );
        update = update
            .col_expr(Column::Status, Expr::value("failed"))
            .col_expr(Column::NextAttemptAt, never());
        Outcome::Failed
    } else {
        tracing::info!(
            webhook_delivery.id = delivery.id,
            event_id = %delivery.event_id,
            error = %error,
            attempts,
            "webhook delivery failed; retried later"
        );
        update = update
            .col_expr(Column::Status, Expr::value("pending"))
            .col_expr(Column::NextAttemptAt, at(now + backoff(attempts)));
        Outcome::Retrying
    };
    update
        .col_expr(Column::LastError, Expr::value(Some(error)))
        .filter(Column::Id.eq(delivery.id))
        .exec(db)
        .await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_from_30_seconds_up_to_an_hour() {
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS)
            .map(|n| backoff(n).num_seconds())
            .collect();
        assert_eq!(
            waits,
            [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600, 3600]
        );
        assert_eq!(backoff(0).num_seconds(), 30);
        assert_eq!(backoff(i32::MAX).num_seconds(), 3600);
    }
}
