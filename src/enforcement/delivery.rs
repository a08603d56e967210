//! Sending each session's request, recording the answer, and counting the
//! change applied only when the session shows it.
//!
//! An action row moves through these states:
//!
//! - `pending`: to be sent at `next_attempt_at`. A NAS that does not answer
//!   or cannot be reached leaves it pending, with a back-off (30 s doubling
//!   to 10 min), so a change made while the NAS is down reaches it when it
//!   comes back. The rows are the queue: a restart loses nothing.
//! - `sent`: the NAS acknowledged (or refused a Disconnect). Confirmed by
//!   the session itself: it stopped, or (for a CoA) an interim update
//!   arrived after the acknowledgement, which shows the session lived on
//!   with the change. A Disconnect whose session is still open after
//!   [`RESEND_AFTER_SECS`] goes back to `pending`.
//! - `confirmed`; `not_applied` (the NAS is not registered, or nothing was
//!   confirmed within [`GIVE_UP_AFTER_HOURS`]); `superseded` (a newer
//!   change of the same subscriber replaced it).
//!
//! A NAK of a CoA turns the action into a Disconnect at once: the new rows
//! then reach the session on its next login.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entities::enforcement_action;
use super::plan::SessionChange;
use super::EnforcementError;
use crate::audit::Actor;
use crate::db::Databases;
use crate::mikrotik::pool::RouterPool;
use crate::mikrotik::service::MikrotikError;
use crate::mikrotik::sessions::disconnect_username;
use crate::radius::accounting::{sessions_by_ids, Session};
use crate::radius::coa::{self, CoaError, CoaSettings};

/// How long a Disconnect's session may stay open before it is sent again.
pub const RESEND_AFTER_SECS: i64 = 60;
/// How long an action is retried before it counts as not applied.
pub const GIVE_UP_AFTER_HOURS: i64 = 24;
/// How long an action may wait for its confirmation before the dashboard
/// lists it as not applied yet.
pub const CONFIRM_WITHIN_SECS: i64 = 300;
/// Sessions changed at the same time.
const PARALLEL_SENDS: usize = 32;

fn backoff(attempts: i32) -> chrono::Duration {
    let secs = 30i64 << attempts.clamp(0, 5);
    chrono::Duration::seconds(secs.min(600))
}

/// Sends the action's request now and stores what came of it.
pub async fn send(
    db: &Databases,
    routers: &RouterPool,
    coa: CoaSettings,
    actor: &Actor,
    action: enforcement_action::Model,
) -> Result<enforcement_action::Model, EnforcementError> {
    if let Some(router_id) = action.router_id {
        return cut_on_router(db, routers, actor, action, router_id).await;
    }
    let Some(radacctid) = action.radacctid else {
        return Ok(action);
    };
    let change: SessionChange = action
        .attributes
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or_default();
    let result = match action.request.as_str() {
        "coa" => {
            coa::change_session(
                &db.main,
                &db.radius,
                coa,
                actor,
                radacctid,
                &change.to_coa(),
            )
            .await
        }
        _ => coa::disconnect_session(&db.main, &db.radius, coa, actor, radacctid).await,
    };
    let now = Utc::now();
    let attempts = action.attempts + 1;
    let is_coa = action.request == "coa";
    let mut row = action.into_active_model();
    row.attempts = Set(attempts);
    row.updated_at = Set(now.into());
    match result {
        Ok(answer) if answer.acknowledged() => {
            row.status = Set("sent".into());
            row.outcome = Set(Some("ack".into()));
            row.detail = Set(None);
            row.sent_at = Set(Some(now.into()));
            row.next_attempt_at = Set(None);
        }
        Ok(answer) if is_coa => {
            // The NAS cannot change the session in place: end it, so that
            // the next login reads the new rows.
            row.request = Set("disconnect".into());
            row.outcome = Set(Some("nak".into()));
            row.detail = Set(Some(answer.summary()));
            row.next_attempt_at = Set(Some(now.into()));
            let updated = row.update(&db.main).await?;
            return Box::pin(send(db, routers, coa, actor, updated)).await;
        }
        Ok(answer) => {
            row.status = Set("sent".into());
            row.outcome = Set(Some("nak".into()));
            row.detail = Set(Some(answer.summary()));
            row.sent_at = Set(Some(now.into()));
            row.next_attempt_at = Set(None);
        }
        Err(CoaError::NotFound(_))
        | Err(CoaError::Conflict {
            code: "session_closed",
            ..
        }) => {
            row.status = Set("confirmed".into());
            row.outcome = Set(Some("session_closed".into()));
            row.confirmed_at = Set(Some(now.into()));
            row.next_attempt_at = Set(None);
        }
        Err(CoaError::Conflict { code, message }) => {
            row.status = Set("not_applied".into());
            row.outcome = Set(Some(code.into()));
            row.detail = Set(Some(message));
            row.next_attempt_at = Set(None);
        }
        Err(err) => {
            let outcome = match err {
                CoaError::Timeout(_) => "no_answer",
                CoaError::Unreachable(_) => "unreachable",
                _ => "error",
            };
            row.status = Set("pending".into());
            row.outcome = Set(Some(outcome.into()));
            row.detail = Set(Some(err.to_string()));
            row.next_attempt_at = Set(Some((now + backoff(attempts)).into()));
        }
    }
    let action = row.update(&db.main).await?;
    super::events::settled(&db.main, &action).await;
    Ok(action)
}

/// Removes the subscriber's sessions from a router's `/ppp/active`; the
/// router's read after the removal is the confirmation.
async fn cut_on_router(
    db: &Databases,
    routers: &RouterPool,
    actor: &Actor,
    action: enforcement_action::Model,
    router_id: i32,
) -> Result<enforcement_action::Model, EnforcementError> {
    let result = disconnect_username(&db.main, routers, actor, router_id, &action.username).await;
    let now = Utc::now();
    let attempts = action.attempts + 1;
    let mut row = action.into_active_model();
    row.attempts = Set(attempts);
    row.updated_at = Set(now.into());
    match result {
        Ok(cut) => {
            row.nas = Set(format!("router {}", cut.router_name));
            row.sent_at = Set(Some(now.into()));
            row.outcome = Set(Some(
                if cut.removed > 0 {
                    "removed"
                } else {
                    "no_session"
                }
                .into(),
            ));
            row.detail = Set(Some(format!(
                "{} session(s) removed, {} left",
                cut.removed, cut.remaining
            )));
            if cut.remaining == 0 {
                row.status = Set("confirmed".into());
                row.confirmed_at = Set(Some(now.into()));
                row.next_attempt_at = Set(None);
            } else {
                row.status = Set("pending".into());
                row.next_attempt_at = Set(Some((now + backoff(attempts)).into()));
            }
        }
        Err(MikrotikError::NotFound(message)) => {
            row.status = Set("not_applied".into());
            row.outcome = Set(Some("router_not_found".into()));
            row.detail = Set(Some(message));
            row.next_attempt_at = Set(None);
        }
        Err(err) => {
            row.status = Set("pending".into());
            row.outcome = Set(Some("router_failed".into()));
            row.detail = Set(Some(err.to_string()));
            row.next_attempt_at = Set(Some((now + backoff(attempts)).into()));
        }
    }
    let action = row.update(&db.main).await?;
    super::events::settled(&db.main, &action).await;
    Ok(action)
}

/// Sends these actions, [`PARALLEL_SENDS`] at a time; returns them as
/// they now are, in the order given.
pub async fn send_all(
    db: &Databases,
    routers: &RouterPool,
    coa: CoaSettings,
    actor: &Actor,
    actions: Vec<enforcement_action::Model>,
) -> Result<Vec<enforcement_action::Model>, EnforcementError> {
    let sent = super::in_parallel(actions, PARALLEL_SENDS, |action| {
        let (db, routers, actor) = (db.clone(), routers.clone(), actor.clone());
        async move { send(&db, &routers, coa, &actor, action).await }
    })
    .await
    .map_err(|e| EnforcementError::Internal(e.into()))?;
    sent.into_iter().collect()
}

/// What one pass over the queue did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u64,
    pub confirmed: u64,
    pub resent: u64,
    pub given_up: u64,
}

/// Sends the pending actions that are due, confirms the sent ones the
/// sessions now show, and gives up on those past [`GIVE_UP_AFTER_HOURS`].
pub async fn deliver_and_confirm(
    db: &Databases,
    routers: &RouterPool,
    coa: CoaSettings,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<DeliveryReport, EnforcementError> {
    let mut report = DeliveryReport::default();
    let too_old = now - chrono::Duration::hours(GIVE_UP_AFTER_HOURS);
    // One by one, so that each action given up is told (a webhook event),
    // and only if it was still open when its turn came.
    let expired = enforcement_action::Entity::find()
        .filter(enforcement_action::Column::Status.is_in(["pending", "sent"]))
        .filter(enforcement_action::Column::CreatedAt.lt(too_old))
        .order_by_asc(enforcement_action::Column::Id)
        .limit(10_000)
        .all(&db.main)
        .await?;
    for action in expired {
        let given_up = enforcement_action::Entity::update_many()
            .col_expr(
                enforcement_action::Column::Status,
                sea_orm::sea_query::Expr::value("not_applied"),
            )
            .col_expr(
                enforcement_action::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now.fixed_offset()),
            )
            .filter(enforcement_action::Column::Id.eq(action.id))
            .filter(enforcement_action::Column::Status.is_in(["pending", "sent"]))
            .exec(&db.main)
            .await?
            .rows_affected;
        if given_up == 1 {
            let action = enforcement_action::Model {
                status: "not_applied".into(),
                updated_at: now.into(),
                ..action
            };
            super::events::settled(&db.main, &action).await;
            report.given_up += 1;
        }
    }

    // Confirm (or send again) what was sent.
    let sent = enforcement_action::Entity::find()
        .filter(enforcement_action::Column::Status.eq("sent"))
        .order_by_asc(enforcement_action::Column::Id)
        .limit(10_000)
        .all(&db.main)
        .await?;
    // The sessions in one read per 500, not one per action.
    let ids: Vec<i64> = sent.iter().filter_map(|a| a.radacctid).collect();
    let sessions: HashMap<i64, Session> = sessions_by_ids(&db.radius, &ids)
        .await?
        .into_iter()
        .map(|s| (s.radacctid, s))
        .collect();
    for action in sent {
        let Some(radacctid) = action.radacctid else {
            continue;
        };
        let session = sessions.get(&radacctid);
        let sent_at = action.sent_at.map(|t| t.to_utc());
        let stopped = session.as_ref().is_none_or(|s| !s.is_open());
        let updated_since = match (&session, sent_at) {
            (Some(s), Some(at)) => s.updated_at.is_some_and(|u| u > at),
            _ => false,
        };
        let mut row = action.clone().into_active_model();
        row.updated_at = Set(now.into());
        if stopped
            || (action.request == "coa"
                && action.outcome.as_deref() == Some("ack")
                && updated_since)
        {
            row.status = Set("confirmed".into());
            row.confirmed_at = Set(Some(now.into()));
            let action = row.update(&db.main).await?;
            super::events::settled(&db.main, &action).await;
            report.confirmed += 1;
        } else if action.request == "disconnect"
            && sent_at.is_some_and(|at| (now - at).num_seconds() >= RESEND_AFTER_SECS)
        {
            row.status = Set("pending".into());
            row.next_attempt_at = Set(Some(now.into()));
            row.update(&db.main).await?;
            report.resent += 1;
        }
    }

    let due = enforcement_action::Entity::find()
        .filter(enforcement_action::Column::Status.eq("pending"))
        .filter(
            Condition::any()
                .add(enforcement_action::Column::NextAttemptAt.is_null())
                .add(enforcement_action::Column::NextAttemptAt.lte(now)),
        )
        .order_by_asc(enforcement_action::Column::Id)
        .limit(10_000)
        .all(&db.main)
        .await?;
    report.sent = due.len() as u64;
    send_all(db, routers, coa, actor, due).await?;
    Ok(report)
}

/// Actions still waiting for their confirmation after
/// [`CONFIRM_WITHIN_SECS`], and those given up in the last day: the
/// dashboard's "not applied".
pub async fn unconfirmed_count(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::PaginatorTrait;
    let since = now - chrono::Duration::seconds(CONFIRM_WITHIN_SECS);
    enforcement_action::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(enforcement_action::Column::Status.is_in(["pending", "sent"]))
                        .add(enforcement_action::Column::CreatedAt.lt(since)),
                )
                .add(
                    Condition::all()
                        .add(enforcement_action::Column::Status.eq("not_applied"))
                        .add(
                            enforcement_action::Column::UpdatedAt
                                .gt(now - chrono::Duration::hours(GIVE_UP_AFTER_HOURS)),
                        ),
                ),
        )
        .count(db)
        .await
}
