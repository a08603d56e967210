//! Carrying a subscriber's state to RADIUS and to its live sessions.
//!
//! [`enforce_user`] owns the saga, in this order:
//! 1. the effective state at this moment (status, expiry and grace) and
//!    the service it gives (package, policy's restricted group, refusal);
//! 2. the RADIUS rows, at once. A RADIUS failure does not stop the rest:
//!    the user stays flagged and the radius-retry job writes them later;
//! 3. every open session of the subscriber (radacct) gets one action row:
//!    a CoA with the new attributes or a Disconnect ([`super::plan`]);
//!    older actions of the subscriber still open are superseded;
//! 4. the state is recorded as enforced, then the actions are sent
//!    ([`super::delivery`]). The answer says what each session answered;
//!    the enforcement job retries and confirms what is left.

use chrono::Utc;
use sea_orm::sea_query::{BinOper, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use tracing::instrument;

use super::delivery::{send_all, CONFIRM_WITHIN_SECS};
use super::entities::enforcement_action;
use super::plan::{request_for, Request};
use super::EnforcementError;
use crate::audit::Actor;
use crate::crypto::AppKey;
use crate::db::Databases;
use crate::radius::accounting::open_sessions_of;
use crate::radius::coa::CoaSettings;
use crate::users::domain::UserStatus;
use crate::users::entities::{network_user, service_package, service_policy};
use crate::users::policies::service::policy_of_package;
use crate::users::state::{EffectiveState, Entitlement};
use crate::users::subscribers::status::set_status;

/// Why the service changed; written on each action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Suspended,
    Resumed,
    Disabled,
    Expired,
    /// Found changed by the enforcement job (an edit, a package change).
    Changed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Suspended => "suspended",
            Reason::Resumed => "resumed",
            Reason::Disabled => "disabled",
            Reason::Expired => "expired",
            Reason::Changed => "changed",
        }
    }
}

/// Everything that decides a subscriber's service.
#[derive(Debug, Clone)]
pub struct Subject {
    pub user: network_user::Model,
    pub package: Option<service_package::Model>,
    pub policy: Option<service_policy::Model>,
}

impl Subject {
    pub async fn load(db: &Databases, id: i32) -> Result<Self, EnforcementError> {
        let user = crate::users::service::get_user(&db.main, id).await?;
        let package = match user.package_id {
            Some(package_id) => {
                service_package::Entity::find_by_id(package_id)
                    .one(&db.main)
                    .await?
            }
            None => None,
        };
        let policy = match &package {
            Some(package) => policy_of_package(&db.main, package).await?,
            None => None,
        };
        Ok(Self {
            user,
            package,
            policy,
        })
    }

    pub fn entitlement(&self) -> Entitlement<'_> {
        Entitlement {
            package: self.package.as_ref(),
            policy: self.policy.as_ref(),
        }
    }

    pub fn state(&self) -> EffectiveState {
        EffectiveState::of(&self.user, self.package.as_ref(), Utc::now())
    }

    /// The state last carried to the network, if any.
    pub fn enforced_state(&self) -> Option<EffectiveState> {
        match self.user.enforced_state.as_deref()? {
            "active" => Some(EffectiveState::Active),
            "suspended" => Some(EffectiveState::Suspended),
            "disabled" => Some(EffectiveState::Disabled),
            "expired" => Some(EffectiveState::Expired),
            _ => None,
        }
    }
}

/// What [`enforce_user`] did.
#[derive(Debug, Clone)]
pub struct Enforced {
    pub user: network_user::Model,
    pub state: EffectiveState,
    /// active, reject, walled_garden or throttle.
    pub target: &'static str,
    /// Whether the RADIUS rows were written (else the user stays flagged).
    pub radius_written: bool,
    /// One per open session, as sent.
    pub actions: Vec<enforcement_action::Model>,
}

/// Carries the subscriber's current state to RADIUS and its live sessions
/// (see the module's documentation).
#[instrument(skip_all, fields(network_user.id = id, reason = reason.as_str()))]
pub async fn enforce_user(
    db: &Databases,
    key: &AppKey,
    coa: CoaSettings,
    actor: &Actor,
    id: i32,
    reason: Reason,
) -> Result<Enforced, EnforcementError> {
    let subject = Subject::load(db, id).await?;
    let state = subject.state();
    let entitlement = subject.entitlement();
    let next = entitlement.service(state);
    let previous = subject
        .enforced_state()
        .map(|earlier| entitlement.service(earlier));

    let radius_written = match crate::radius::service::sync_user_by_id(
        &db.main, &db.radius, key, id,
    )
    .await
    {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(error = %err, "RADIUS write failed; the user stays flagged for the radius-retry job");
            false
        }
    };

    let now = Utc::now();
    // Explicit calls re-send even when the state looks unchanged: the
    // caller may be repairing a session that never got it.
    let request = request_for(previous.as_ref(), &next).or_else(|| {
        (reason != Reason::Changed)
            .then(|| request_for(None, &next))
            .flatten()
    });
    let mut actions = Vec::new();
    if let Some(request) = request {
        let sessions = open_sessions_of(&db.radius, &subject.user.username).await?;
        if !sessions.is_empty() {
            supersede_open_actions(db, id).await?;
        }
        for session in sessions {
            let attributes = match &request {
                Request::Change(change) => Some(serde_json::to_string(change).unwrap_or_default()),
                Request::Disconnect => None,
            };
            let row = enforcement_action::ActiveModel {
                user_id: Set(Some(id)),
                username: Set(subject.user.username.clone()),
                reason: Set(reason.as_str().into()),
                target: Set(next.target().into()),
                request: Set(request.name().into()),
                radacctid: Set(Some(session.radacctid)),
                acct_session_id: Set(session.acct_session_id.clone()),
                nas: Set(session.nas_ip.clone()),
                attributes: Set(attributes),
                status: Set("pending".into()),
                attempts: Set(0),
                next_attempt_at: Set(Some(now.into())),
                created_at: Set(now.into()),
                updated_at: Set(now.into()),
                ..Default::default()
            };
            actions.push(row.insert(&db.main).await?);
        }
    }
    network_user::Entity::update_many()
        .col_expr(
            network_user::Column::EnforcedState,
            Expr::value(state.as_str()),
        )
        .filter(network_user::Column::Id.eq(id))
        .exec(&db.main)
        .await?;
    let actions = send_all(db, coa, actor, actions).await?;
    let user = crate::users::service::get_user(&db.main, id).await?;
    Ok(Enforced {
        user,
        state,
        target: next.target(),
        radius_written,
        actions,
    })
}

async fn supersede_open_actions(db: &Databases, user_id: i32) -> Result<(), EnforcementError> {
    enforcement_action::Entity::update_many()
        .col_expr(
            enforcement_action::Column::Status,
            Expr::value("superseded"),
        )
        .col_expr(
            enforcement_action::Column::UpdatedAt,
            Expr::value(Utc::now().fixed_offset()),
        )
        .filter(enforcement_action::Column::UserId.eq(user_id))
        .filter(enforcement_action::Column::Status.is_in(["pending", "sent"]))
        .exec(&db.main)
        .await?;
    Ok(())
}

/// The most characters the reason of a suspend or resume may have.
pub const MAX_REASON_CHARS: usize = 500;

/// The reason given for a suspend or resume, for the audit log: trimmed,
/// `None` when empty, refused (with the message) when longer than
/// [`MAX_REASON_CHARS`]. The API and the page read it alike.
pub fn status_reason(raw: Option<&str>) -> Result<Option<String>, String> {
    let reason = raw.map(str::trim).filter(|r| !r.is_empty());
    match reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(format!(
            "must be at most {MAX_REASON_CHARS} characters long"
        )),
        reason => Ok(reason.map(str::to_string)),
    }
}

/// Sets the subscriber's status, then enforces it at once.
pub async fn change_status(
    db: &Databases,
    key: &AppKey,
    coa: CoaSettings,
    actor: &Actor,
    id: i32,
    status: UserStatus,
    note: Option<&str>,
) -> Result<Enforced, EnforcementError> {
    set_status(&db.main, actor, id, status, note).await?;
    let reason = match status {
        UserStatus::Active => Reason::Resumed,
        UserStatus::Suspended => Reason::Suspended,
        UserStatus::Disabled => Reason::Disabled,
    };
    enforce_user(db, key, coa, actor, id, reason).await
}

/// The subscriber's enforcement as the API and its page show it.
#[derive(Debug, Clone)]
pub struct EnforcementStatus {
    pub subject: Subject,
    pub state: EffectiveState,
    pub target: &'static str,
    /// The latest actions, newest first.
    pub actions: Vec<enforcement_action::Model>,
}

impl EnforcementStatus {
    /// True when the state is the one carried to the network and none of
    /// the latest session changes is waiting or was not applied.
    pub fn confirmed(&self) -> bool {
        let waiting = self
            .actions
            .iter()
            .any(|a| matches!(a.status.as_str(), "pending" | "sent" | "not_applied"));
        self.subject.user.enforced_state.as_deref() == Some(self.state.as_str()) && !waiting
    }
}

/// The subscriber's effective state, its policy and its latest actions.
pub async fn enforcement_status(
    db: &Databases,
    id: i32,
    limit: u64,
) -> Result<EnforcementStatus, EnforcementError> {
    let subject = Subject::load(db, id).await?;
    let state = subject.state();
    let target = subject.entitlement().service(state).target();
    let actions = enforcement_action::Entity::find()
        .filter(enforcement_action::Column::UserId.eq(id))
        .order_by_desc(enforcement_action::Column::Id)
        .limit(limit)
        .all(&db.main)
        .await?;
    Ok(EnforcementStatus {
        subject,
        state,
        target,
        actions,
    })
}

/// Whether an action still waits for its session to show the change past
/// the confirmation window.
pub fn overdue(action: &enforcement_action::Model) -> bool {
    matches!(action.status.as_str(), "pending" | "sent")
        && (Utc::now() - action.created_at.to_utc()).num_seconds() > CONFIRM_WITHIN_SECS
}

/// What the enforcement pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// Subscribers whose state had moved on (expiry, an edit) and was
    /// carried to the network.
    pub enforced: u64,
    pub failed: u64,
    pub delivery: super::delivery::DeliveryReport,
}

/// The candidates for [`enforce_changed`]: users whose stored status is not
/// the enforced one, or whose expiry has passed. The effective state (with
/// grace days) is then computed for each.
const CANDIDATES_PER_PASS: u64 = 5_000;

/// Finds subscribers whose effective state is not the enforced one (an
/// expiry passed, a status edited through the form or PUT) and enforces
/// them. A subscriber never enforced before is recorded without touching
/// its sessions when it is active: that is what it already has.
pub async fn enforce_changed(
    db: &Databases,
    key: &AppKey,
    coa: CoaSettings,
    actor: &Actor,
) -> Result<(u64, u64), EnforcementError> {
    let now = Utc::now();
    let candidates = network_user::Entity::find()
        .filter(
            Condition::any()
                .add(network_user::Column::EnforcedState.is_null())
                .add(
                    Expr::col(network_user::Column::EnforcedState)
                        .binary(BinOper::NotEqual, Expr::col(network_user::Column::Status)),
                )
                .add(network_user::Column::ExpiresAt.lte(now)),
        )
        .order_by_asc(network_user::Column::Id)
        .limit(CANDIDATES_PER_PASS)
        .all(&db.main)
        .await?;
    let (mut enforced, mut failed) = (0, 0);
    for user in candidates {
        let subject = Subject::load(db, user.id).await?;
        let state = subject.state();
        if subject.enforced_state() == Some(state) {
            continue;
        }
        if subject.enforced_state().is_none() && state == EffectiveState::Active {
            network_user::Entity::update_many()
                .col_expr(
                    network_user::Column::EnforcedState,
                    Expr::value(state.as_str()),
                )
                .filter(network_user::Column::Id.eq(user.id))
                .exec(&db.main)
                .await?;
            continue;
        }
        let reason = if state == EffectiveState::Expired {
            Reason::Expired
        } else {
            Reason::Changed
        };
        match enforce_user(db, key, coa, actor, user.id, reason).await {
            Ok(_) => enforced += 1,
            Err(err) => {
                failed += 1;
                tracing::warn!(network_user.id = user.id, error = %err, "enforcement failed; retried next pass");
            }
        }
    }
    Ok((enforced, failed))
}

/// One pass of the enforcement job: states that moved on by themselves,
/// then the queue of session changes.
pub async fn run_pass(
    db: &Databases,
    key: &AppKey,
    coa: CoaSettings,
    actor: &Actor,
) -> Result<PassReport, EnforcementError> {
    let (enforced, failed) = enforce_changed(db, key, coa, actor).await?;
    let delivery = super::delivery::deliver_and_confirm(db, coa, actor, Utc::now()).await?;
    Ok(PassReport {
        enforced,
        failed,
        delivery,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_optional_and_at_most_500_characters() {
        assert_eq!(status_reason(None), Ok(None));
        assert_eq!(status_reason(Some("  ")), Ok(None));
        assert_eq!(
            status_reason(Some(" invoice 117 unpaid ")),
            Ok(Some("invoice 117 unpaid".into()))
        );
        let longest = "é".repeat(MAX_REASON_CHARS);
        assert_eq!(status_reason(Some(&longest)), Ok(Some(longest.clone())));
        let message = status_reason(Some(&format!("{longest}x"))).unwrap_err();
        assert_eq!(message, "must be at most 500 characters long");
    }
}
