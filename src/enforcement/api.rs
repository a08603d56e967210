//! `/api/v1/users/{id}/suspend`, `/resume`, their bulk forms and
//! `/users/{id}/enforcement`: the billing-facing side of enforcement.

use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::entities::enforcement_action;
use super::service::{self, enforcement_status, overdue, status_reason, Enforced};
use super::Reach;
use crate::api::auth::Api;
use crate::api::extract::{ApiJson, ApiPath};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::staff::{Operator, Viewer};
use crate::users::domain::UserStatus;
use crate::users::entities::network_user;

/// The enforcement routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(suspend_user))
        .routes(routes!(resume_user))
        .routes(routes!(suspend_users))
        .routes(routes!(resume_users))
        .routes(routes!(get_user_enforcement))
}

/// One live session's change and what came of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionChangeView {
    pub id: i64,
    /// The accounting session (radacct).
    pub radacctid: Option<i64>,
    pub acct_session_id: String,
    /// The NAS the request went to.
    pub nas: String,
    /// `suspended`, `resumed`, `disabled`, `expired` or `changed`.
    pub reason: String,
    /// The service the session must get: `active`, `reject`,
    /// `walled_garden` or `throttle`.
    pub target: String,
    /// `coa` (changed in place) or `disconnect`.
    pub request: String,
    /// `pending` (to be sent, or sent again after no answer), `sent`
    /// (acknowledged, waiting for the session to show it), `confirmed`,
    /// `not_applied` or `superseded`.
    pub status: String,
    /// The last answer: `ack`, `nak`, `no_answer`, `unreachable`,
    /// `session_closed`, or what stopped it (`nas_not_registered`).
    pub outcome: Option<String>,
    pub detail: Option<String>,
    pub attempts: i32,
    /// Still not confirmed five minutes after the change.
    pub overdue: bool,
    pub sent_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<enforcement_action::Model> for SessionChangeView {
    fn from(a: enforcement_action::Model) -> Self {
        Self {
            overdue: overdue(&a),
            id: a.id,
            radacctid: a.radacctid,
            acct_session_id: a.acct_session_id,
            nas: a.nas,
            reason: a.reason,
            target: a.target,
            request: a.request,
            status: a.status,
            outcome: a.outcome,
            detail: a.detail,
            attempts: a.attempts,
            sent_at: a.sent_at.map(|t| t.to_utc()),
            confirmed_at: a.confirmed_at.map(|t| t.to_utc()),
            created_at: a.created_at.to_utc(),
        }
    }
}

/// What a suspend or resume did to one subscriber.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": 7, "username": "alice", "status": "suspended",
    "state": "suspended", "target": "walled_garden", "radius_written": true,
    "sessions": [{"id": 1, "radacctid": 42, "acct_session_id": "81a00001", "nas": "192.0.2.1",
        "reason": "suspended", "target": "walled_garden", "request": "coa", "status": "sent",
        "outcome": "ack", "detail": null, "attempts": 1, "overdue": false,
        "sent_at": "2026-12-08T09:00:00Z", "confirmed_at": null,
        "created_at": "2026-12-08T09:00:00Z"}]}))]
pub struct EnforcedView {
    pub user_id: i32,
    pub username: String,
    /// The stored status: `active`, `suspended` or `disabled`.
    pub status: String,
    /// The effective state: the status, or `expired`.
    pub state: String,
    /// The service it now gets: `active`, `reject`, `walled_garden` or
    /// `throttle`.
    pub target: String,
    /// False when the RADIUS database refused the rows: the user stays
    /// flagged and the radius-retry job writes them.
    pub radius_written: bool,
    /// One per open session at the time of the change.
    pub sessions: Vec<SessionChangeView>,
}

impl From<Enforced> for EnforcedView {
    fn from(e: Enforced) -> Self {
        Self {
            user_id: e.user.id,
            username: e.user.username,
            status: e.user.status,
            state: e.state.as_str().into(),
            target: e.target.into(),
            radius_written: e.radius_written,
            sessions: e.actions.into_iter().map(Into::into).collect(),
        }
    }
}

/// The body of a suspend or resume; optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "invoice 117 unpaid"}))]
#[serde(deny_unknown_fields)]
pub struct StatusChangeBody {
    /// Why, for the audit log (e.g. "invoice 2026-117 unpaid"); at most 500
    /// characters.
    pub reason: Option<String>,
}

fn reason_of(reason: Option<String>, errors: &mut FieldErrors) -> Option<String> {
    status_reason(reason.as_deref()).unwrap_or_else(|message| {
        errors.insert("reason".into(), message);
        None
    })
}

async fn change_one(
    api: &Api<Operator>,
    id: i32,
    status: UserStatus,
    body: Option<StatusChangeBody>,
) -> Result<Json<EnforcedView>, AppError> {
    let mut errors = FieldErrors::new();
    let reason = reason_of(body.unwrap_or_default().reason, &mut errors);
    crate::api::check(errors)?;
    let enforced = service::change_status(
        &Reach::from_app(&api.state),
        &api.actor,
        id,
        status,
        reason.as_deref(),
    )
    .await?;
    Ok(Json(enforced.into()))
}

/// Suspend a subscriber: its package's policy applies at once (walled
/// garden, throttle or reject), and every live session gets it by CoA or
/// Disconnect. The answer says what each session's NAS answered.
#[utoipa::path(
    post,
    path = "/users/{id}/suspend",
    tag = "users",
    params(("id" = i32, Path, description = "The user's id.")),
    request_body(content = Option<StatusChangeBody>, description = "Optional: the reason, for the audit log.",
        example = json!({"reason": "invoice 117 unpaid"})),
    responses((status = 200, description = "Suspended; each open session's change.", body = EnforcedView)),
)]
pub async fn suspend_user(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    body: Option<ApiJson<StatusChangeBody>>,
) -> Result<Json<EnforcedView>, AppError> {
    change_one(&api, id, UserStatus::Suspended, body.map(|b| b.0)).await
}

/// Resume a suspended subscriber: its package again, at once, on every
/// live session (a walled garden with an address list or pool ends the
/// session, so that it logs in again into the full service).
#[utoipa::path(
    post,
    path = "/users/{id}/resume",
    tag = "users",
    params(("id" = i32, Path, description = "The user's id.")),
    request_body(content = Option<StatusChangeBody>, description = "Optional: the reason, for the audit log.",
        example = json!({"reason": "invoice 117 unpaid"})),
    responses((status = 200, description = "Resumed; each open session's change.", body = EnforcedView)),
)]
pub async fn resume_user(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    body: Option<ApiJson<StatusChangeBody>>,
) -> Result<Json<EnforcedView>, AppError> {
    change_one(&api, id, UserStatus::Active, body.map(|b| b.0)).await
}

/// The most subscribers one bulk call takes.
pub const BULK_LIMIT: usize = 1000;
/// Subscribers a bulk call changes at the same time.
const BULK_PARALLEL: usize = 16;

/// The body of a bulk suspend or resume: subscribers by id and/or username.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"usernames": ["alice", "bob"], "reason": "unpaid in November"}))]
pub struct BulkStatusBody {
    #[serde(default)]
    pub ids: Vec<i32>,
    #[serde(default)]
    pub usernames: Vec<String>,
    pub reason: Option<String>,
}

/// One subscriber of a bulk call: what happened, or why not.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItemView {
    /// The id or username as given.
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<EnforcedView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<BulkItemError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItemError {
    /// `not_found` or the error code a single call would give.
    pub code: String,
    pub message: String,
}

/// The answer of a bulk call, one item per subscriber given, in order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"changed": 1, "failed": 1, "items": [
    {"key": "alice", "result": {"user_id": 7, "username": "alice", "status": "suspended",
        "state": "suspended", "target": "reject", "radius_written": true, "sessions": []}},
    {"key": "nobody", "error": {"code": "not_found", "message": "no network user named \"nobody\""}}]}))]
pub struct BulkView {
    pub changed: usize,
    pub failed: usize,
    pub items: Vec<BulkItemView>,
}

async fn change_many(
    api: &Api<Operator>,
    status: UserStatus,
    body: BulkStatusBody,
) -> Result<Json<BulkView>, AppError> {
    let mut errors = FieldErrors::new();
    let reason = reason_of(body.reason, &mut errors);
    let count = body.ids.len() + body.usernames.len();
    if count == 0 {
        errors.insert(
            "ids".into(),
            "name at least one subscriber in ids or usernames".into(),
        );
    } else if count > BULK_LIMIT {
        errors.insert(
            "ids".into(),
            format!("at most {BULK_LIMIT} subscribers per call ({count} given)"),
        );
    }
    crate::api::check(errors)?;

    let mut keys: Vec<(String, Option<i32>)> = body
        .ids
        .iter()
        .map(|id| (id.to_string(), Some(*id)))
        .collect();
    let ids_by_name =
        crate::users::service::ids_by_username(api.db(), body.usernames.clone()).await?;
    keys.extend(
        body.usernames
            .iter()
            .map(|name| (name.clone(), ids_by_name.get(name).copied())),
    );

    let reach = Reach::from_app(&api.state);
    let outcomes = super::in_parallel(keys, BULK_PARALLEL, |(key, id)| {
        let (reach, actor, reason) = (reach.clone(), api.actor.clone(), reason.clone());
        async move {
            let Some(id) = id else {
                let missing = AppError::NotFound(format!("no network user named \"{key}\""));
                return (key, Err(missing));
            };
            let outcome = service::change_status(&reach, &actor, id, status, reason.as_deref())
                .await
                .map_err(AppError::from);
            (key, outcome)
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    let items: Vec<BulkItemView> = outcomes
        .into_iter()
        .map(|(key, outcome)| match outcome {
            Ok(enforced) => BulkItemView {
                key,
                result: Some(enforced.into()),
                error: None,
            },
            Err(err) => {
                if let AppError::Internal(inner) = &err {
                    tracing::error!(
                        error = format!("{inner:#}"),
                        "bulk status change failed for one subscriber"
                    );
                }
                BulkItemView {
                    key,
                    result: None,
                    error: Some(BulkItemError {
                        code: err.code().into(),
                        message: err.to_string(),
                    }),
                }
            }
        })
        .collect();
    let failed = items.iter().filter(|i| i.error.is_some()).count();
    Ok(Json(BulkView {
        changed: items.len() - failed,
        failed,
        items,
    }))
}

/// Suspend many subscribers at once (at most 1000), by id and/or username.
/// Each is done as `POST /users/{id}/suspend` would; one that fails does not
/// stop the others.
#[utoipa::path(
    post,
    path = "/users/suspend",
    tag = "users",
    request_body = BulkStatusBody,
    responses((status = 200, description = "One item per subscriber given.", body = BulkView)),
)]
pub async fn suspend_users(
    api: Api<Operator>,
    ApiJson(body): ApiJson<BulkStatusBody>,
) -> Result<Json<BulkView>, AppError> {
    change_many(&api, UserStatus::Suspended, body).await
}

/// Resume many subscribers at once (at most 1000), by id and/or username.
#[utoipa::path(
    post,
    path = "/users/resume",
    tag = "users",
    request_body = BulkStatusBody,
    responses((status = 200, description = "One item per subscriber given.", body = BulkView)),
)]
pub async fn resume_users(
    api: Api<Operator>,
    ApiJson(body): ApiJson<BulkStatusBody>,
) -> Result<Json<BulkView>, AppError> {
    change_many(&api, UserStatus::Active, body).await
}

/// A subscriber's policy, in short.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyRefView {
    pub id: i32,
    pub name: String,
    pub action: String,
}

/// Where a subscriber stands on the network.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": 7, "username": "alice", "status": "suspended",
    "state": "suspended", "target": "walled_garden", "enforced_state": "suspended",
    "policy": {"id": 1, "name": "Unpaid", "action": "walled_garden"},
    "confirmed": false, "sessions": []}))]
pub struct EnforcementView {
    pub user_id: i32,
    pub username: String,
    pub status: String,
    /// The effective state now: the status, or `expired`.
    pub state: String,
    /// The service that state gives.
    pub target: String,
    /// The state last carried to RADIUS and the sessions.
    pub enforced_state: Option<String>,
    /// The policy that applies when not active (the package's or the
    /// default); null: refused.
    pub policy: Option<PolicyRefView>,
    /// True when the state is enforced and no session change is waiting.
    pub confirmed: bool,
    /// The latest session changes (at most 50), newest first.
    pub sessions: Vec<SessionChangeView>,
}

/// A subscriber's effective state, its policy, and each session change
/// with whether the session shows it yet.
#[utoipa::path(
    get,
    path = "/users/{id}/enforcement",
    tag = "users",
    params(("id" = i32, Path, description = "The user's id.")),
    responses((status = 200, description = "The subscriber's enforcement.", body = EnforcementView)),
)]
pub async fn get_user_enforcement(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<EnforcementView>, AppError> {
    let status = enforcement_status(&api.state.db, id, 50).await?;
    let confirmed = status.confirmed();
    let user: network_user::Model = status.subject.user;
    Ok(Json(EnforcementView {
        user_id: user.id,
        username: user.username,
        status: user.status,
        state: status.state.as_str().into(),
        target: status.target.into(),
        confirmed,
        enforced_state: user.enforced_state,
        policy: status.subject.policy.map(|p| PolicyRefView {
            id: p.id,
            name: p.name,
            action: p.action,
        }),
        sessions: status.actions.into_iter().map(Into::into).collect(),
    }))
}
