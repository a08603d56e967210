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

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use tracing::instrument;

use super::delivery::{send_all, CONFIRM_WITHIN_SECS};
use super::entities::enforcement_action;
use super::plan::{request_for, Request, ServiceMark};
use super::{EnforcementError, Reach};
use crate::audit::Actor;
use crate::db::begin_write;
use crate::db::Databases;
use crate::mikrotik::service::{
    push_network_user_secrets, record_network_user_secrets, routers_of_network_user,
    NetworkUserSecret,
};
use crate::radius::accounting::open_sessions_of;
use crate::users::domain::UserStatus;
use crate::users::entities::{network_user, service_package, service_policy};
use crate::users::policies::service::{policy_of_package, quota_policy_of_user};
use crate::users::provision::patch_user;
use crate::users::service::UserChanges;
use crate::users::service::UsersError;
use crate::users::state::{EffectiveState, Entitlement, Service};
use crate::users::subscribers::status::record_status_change;

/// Why the service changed; written on each action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Suspended,
    Resumed,
    Disabled,
    Expired,
    /// A quota tier was reached, or left (a top-up, a new cycle).
    Quota,
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
            Reason::Quota => "quota",
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
    /// The policy of the quota tier reached, if any.
    pub quota: Option<service_policy::Model>,
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
        let quota = quota_policy_of_user(&db.main, &user).await?;
        Ok(Self {
            user,
            package,
            policy,
            quota,
        })
    }

    pub fn entitlement(&self) -> Entitlement<'_> {
        Entitlement {
            package: self.package.as_ref(),
            policy: self.policy.as_ref(),
            quota: self.quota.as_ref(),
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
pub async fn enforce_user(
    reach: &Reach,
    actor: &Actor,
    id: i32,
    reason: Reason,
) -> Result<Enforced, EnforcementError> {
    enforce(reach, actor, id, reason, Written::No).await
}

/// Whether the subscriber's RADIUS rows and router secrets were already
/// written for this change, by the update that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    No,
    ByTheUpdate,
}

#[instrument(skip_all, fields(network_user.id = id, reason = reason.as_str()))]
async fn enforce(
    reach: &Reach,
    actor: &Actor,
    id: i32,
    reason: Reason,
    written: Written,
) -> Result<Enforced, EnforcementError> {
    let (db, key, coa) = (&reach.db, &reach.key, reach.coa);
    // Edits after this moment are found by the next pass (`enforced_at`).
    let read_at = Utc::now();
    let subject = Subject::load(db, id).await?;
    let state = subject.state();
    let entitlement = subject.entitlement();
    let next = entitlement.service(state);
    let mark = ServiceMark::of(&next);
    let previous = ServiceMark::parse(subject.user.enforced_service.as_deref());

    let radius_written = match written {
        // The update wrote them; its flag says whether RADIUS took them.
        Written::ByTheUpdate => !subject.user.radius_sync_pending,
        Written::No => {
            match crate::radius::service::sync_user_by_id(&db.main, &db.radius, key, id).await {
                Ok(_) => true,
                Err(err) => {
                    tracing::warn!(error = %err, "RADIUS write failed; the user stays flagged for the radius-retry job");
                    false
                }
            }
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
    keep_router_secrets_in_step(reach, &subject, &next, written).await?;
    actions.extend(cut_router_sessions(reach, &subject, &next, previous.as_ref(), reason).await?);
    record_enforced(db, id, state, &mark, read_at).await?;
    super::events::state_changed(&db.main, &subject, state, next.target(), reason).await;
    let actions = send_all(db, &reach.routers, coa, actor, actions).await?;
    let user = crate::users::service::get_user(&db.main, id).await?;
    Ok(Enforced {
        user,
        state,
        target: next.target(),
        radius_written,
        actions,
    })
}

/// What the subscriber's PPP secrets on our routers (routers that
/// authenticate it locally, without RADIUS) must be for `service`: its
/// package's profile while it gets its package; the policy's PPP profile
/// for a restricted service that names one (the router-side walled garden
/// or throttle); else disabled, on the package's profile.
fn router_secret(subject: &Subject, service: &Service<'_>) -> NetworkUserSecret {
    let package_profile = subject
        .package
        .as_ref()
        .and_then(|p| p.mikrotik_profile.clone());
    let (profile, enabled) = match service {
        Service::Package(_) => (package_profile, true),
        Service::Restricted(policy) => match policy.mikrotik_profile.clone() {
            Some(profile) if !profile.is_empty() => (Some(profile), true),
            _ => (package_profile, false),
        },
        Service::Refused => (package_profile, false),
    };
    NetworkUserSecret {
        username: subject.user.username.clone(),
        password: None,
        profile,
        disabled: !enabled || subject.user.service_type != "pppoe",
    }
}

/// The subscriber's PPP secrets on our routers, as [`router_secret`] says.
/// `written`: the update that made the change pushed the secrets as its
/// status says (the package's profile, disabled unless active); they are
/// pushed again only when the service wants otherwise (a policy's
/// profile, an expiry, a quota tier). A router that refuses or does not
/// answer fails the enforcement (the job tries again next pass).
async fn keep_router_secrets_in_step(
    reach: &Reach,
    subject: &Subject,
    next: &Service<'_>,
    written: Written,
) -> Result<(), EnforcementError> {
    let db = &reach.db.main;
    if routers_of_network_user(db, subject.user.id)
        .await?
        .is_empty()
    {
        return Ok(());
    }
    let desired = router_secret(subject, next);
    if written == Written::ByTheUpdate {
        let package_profile = subject
            .package
            .as_ref()
            .and_then(|p| p.mikrotik_profile.as_ref());
        let disabled_by_status =
            subject.user.status != "active" || subject.user.service_type != "pppoe";
        if desired.profile.as_ref() == package_profile && desired.disabled == disabled_by_status {
            return Ok(());
        }
    }
    let pushed = push_network_user_secrets(db, &reach.routers, subject.user.id, Some(&desired))
        .await
        .map_err(UsersError::from)?;
    let txn = begin_write(db).await?;
    record_network_user_secrets(&txn, &pushed)
        .await
        .map_err(UsersError::from)?;
    txn.commit().await?;
    Ok(())
}

/// One `router_disconnect` action per router that keeps a PPP secret of
/// the subscriber, when it no longer gets its package (its sessions there
/// must go, or redial into the policy's profile), or when it leaves a
/// policy's profile (they redial into the package's).
async fn cut_router_sessions(
    reach: &Reach,
    subject: &Subject,
    next: &Service<'_>,
    previous: Option<&ServiceMark>,
    reason: Reason,
) -> Result<Vec<enforcement_action::Model>, EnforcementError> {
    let db = &reach.db.main;
    let on_policy_profile = previous.is_some_and(|m| m.mikrotik_profile.is_some());
    if matches!(next, Service::Package(_)) && !on_policy_profile {
        return Ok(Vec::new());
    }
    let routers = routers_of_network_user(db, subject.user.id).await?;
    let now = Utc::now();
    let mut actions = Vec::new();
    for router_id in routers {
        let row = enforcement_action::ActiveModel {
            user_id: Set(Some(subject.user.id)),
            username: Set(subject.user.username.clone()),
            reason: Set(reason.as_str().into()),
            target: Set(next.target().into()),
            request: Set("router_disconnect".into()),
            router_id: Set(Some(router_id)),
            acct_session_id: Set(String::new()),
            nas: Set(format!("router {router_id}")),
            status: Set("pending".into()),
            attempts: Set(0),
            next_attempt_at: Set(Some(now.into())),
            created_at: Set(now.into()),
            updated_at: Set(now.into()),
            ..Default::default()
        };
        actions.push(row.insert(db).await?);
    }
    Ok(actions)
}

/// Records the state and service carried to the network, as of `read_at`.
async fn record_enforced(
    db: &Databases,
    id: i32,
    state: EffectiveState,
    mark: &ServiceMark,
    read_at: DateTime<Utc>,
) -> Result<(), EnforcementError> {
    network_user::Entity::update_many()
        .col_expr(
            network_user::Column::EnforcedState,
            Expr::value(state.as_str()),
        )
        .col_expr(
            network_user::Column::EnforcedService,
            Expr::value(mark.stored()),
        )
        .col_expr(
            network_user::Column::EnforcedAt,
            Expr::value(read_at.fixed_offset()),
        )
        .filter(network_user::Column::Id.eq(id))
        .exec(&db.main)
        .await?;
    Ok(())
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

/// Sets the subscriber's status, then enforces it at once. The status is
/// written the way `PATCH /users/{id}` writes it (the same checks, and the
/// subscriber's PPP secrets on its routers disabled or enabled with it);
/// the audit log gets `network_user.suspend` (`.resume`, `.disable`) with
/// the reason beside the update.
pub async fn change_status(
    reach: &Reach,
    actor: &Actor,
    id: i32,
    status: UserStatus,
    note: Option<&str>,
) -> Result<Enforced, EnforcementError> {
    let changes = UserChanges {
        status: Some(Some(status.as_str().to_string())),
        ..Default::default()
    };
    patch_user(
        &reach.db,
        &reach.key,
        &reach.routers,
        reach.ipam,
        actor,
        id,
        changes,
    )
    .await?;
    record_status_change(&reach.db.main, actor, id, status, note).await?;
    let reason = match status {
        UserStatus::Active => Reason::Resumed,
        UserStatus::Suspended => Reason::Suspended,
        UserStatus::Disabled => Reason::Disabled,
    };
    // The patch wrote the RADIUS rows and the router secrets already.
    enforce(reach, actor, id, reason, Written::ByTheUpdate).await
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

/// Deletes the session changes settled (confirmed, not applied or
/// superseded) before `before`; those still waiting stay.
pub async fn purge_settled_actions(
    db: &impl sea_orm::ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, sea_orm::DbErr> {
    let deleted = enforcement_action::Entity::delete_many()
        .filter(enforcement_action::Column::Status.is_in([
            "confirmed",
            "not_applied",
            "superseded",
        ]))
        .filter(enforcement_action::Column::UpdatedAt.lt(before.fixed_offset()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
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

impl std::fmt::Display for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.delivery;
        write!(
            f,
            "{} subscriber(s) enforced, {} failed; session changes: {} sent, {} confirmed, {} sent again, {} given up",
            self.enforced, self.failed, d.sent, d.confirmed, d.resent, d.given_up
        )
    }
}

/// Subscribers looked at per pass; the rest wait for the next one.
const CANDIDATES_PER_PASS: u64 = 5_000;

/// Finds subscribers whose service may have moved on since it was last
/// carried to the network, and enforces those whose service did:
///
/// - never enforced (`enforced_at` is NULL);
/// - edited since (`updated_at` later: a status or package set by `PUT`,
///   `PATCH` or the form; a policy change touches its subscribers too);
/// - on a package edited since (a new rate);
/// - past their expiry (with grace days the state is computed here).
///
/// A subscriber never enforced before is recorded without touching its
/// sessions when it is active: that is what its sessions already have.
pub async fn enforce_changed(reach: &Reach, actor: &Actor) -> Result<(u64, u64), EnforcementError> {
    let db = &reach.db;
    let now = Utc::now();
    let package_changed = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(service_package::Entity)
            .and_where(
                Expr::col((service_package::Entity, service_package::Column::Id))
                    .equals((network_user::Entity, network_user::Column::PackageId)),
            )
            .and_where(
                Expr::col((service_package::Entity, service_package::Column::UpdatedAt)).gt(
                    Expr::col((network_user::Entity, network_user::Column::EnforcedAt)),
                ),
            )
            .to_owned(),
    );
    let candidates = network_user::Entity::find()
        .filter(
            Condition::any()
                .add(network_user::Column::EnforcedAt.is_null())
                .add(
                    Expr::col(network_user::Column::UpdatedAt)
                        .gt(Expr::col(network_user::Column::EnforcedAt)),
                )
                .add(package_changed)
                .add(
                    Condition::all()
                        .add(network_user::Column::ExpiresAt.lte(now))
                        .add(
                            Condition::any()
                                .add(network_user::Column::EnforcedState.is_null())
                                .add(network_user::Column::EnforcedState.ne("expired")),
                        ),
                ),
        )
        .order_by_asc(network_user::Column::Id)
        .limit(CANDIDATES_PER_PASS)
        .all(&db.main)
        .await?;
    let (mut enforced, mut failed) = (0, 0);
    for user in candidates {
        let read_at = Utc::now();
        let subject = Subject::load(db, user.id).await?;
        let state = subject.state();
        let mark = ServiceMark::of(&subject.entitlement().service(state));
        let previous = ServiceMark::parse(subject.user.enforced_service.as_deref());
        let unchanged = previous.as_ref() == Some(&mark) && subject.enforced_state() == Some(state);
        let first_look_at_active = previous.is_none() && state == EffectiveState::Active;
        if unchanged || first_look_at_active {
            record_enforced(db, user.id, state, &mark, read_at).await?;
            continue;
        }
        let reason = if state == EffectiveState::Expired {
            Reason::Expired
        } else {
            Reason::Changed
        };
        match enforce_user(reach, actor, user.id, reason).await {
            Ok(_) => enforced += 1,
            Err(err) => {
                failed += 1;
                tracing::warn!(network_user.id = user.id, error = %err, "enforcement failed; retried next pass");
            }
        }
    }
    Ok((enforced, failed))
}

/// One pass of the enforcement job (and of `ispd radius enforce`): states
/// that moved on by themselves, then the queue of session changes.
pub async fn run_pass(reach: &Reach, actor: &Actor) -> Result<PassReport, EnforcementError> {
    let (enforced, failed) = enforce_changed(reach, actor).await?;
    let delivery = super::delivery::deliver_and_confirm(
        &reach.db,
        &reach.routers,
        reach.coa,
        actor,
        Utc::now(),
    )
    .await?;
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
