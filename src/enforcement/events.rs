//! What enforcement tells billing and CRM systems, as webhook events
//! (`crate::webhooks`): a subscriber's state carried to the network, and
//! each session change once it is confirmed or given up. Queuing an event
//! never fails the enforcement: an error is logged and the saga goes on.

use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::entities::enforcement_action;
use super::service::{Reason, Subject};
use crate::users::state::EffectiveState;
use crate::webhooks::service::emit_logged;
use crate::webhooks::{SessionChangeSettled, StateChanged, WebhookEvent};

/// `subscriber.state_changed`, when `state` is not the state last carried
/// to the network (a repeated suspend of a suspended subscriber is not a
/// change).
pub(super) async fn state_changed(
    db: &DatabaseConnection,
    subject: &Subject,
    state: EffectiveState,
    target: &str,
    reason: Reason,
) {
    let from = subject.enforced_state();
    if from == Some(state) {
        return;
    }
    let change = StateChanged {
        user_id: subject.user.id,
        username: subject.user.username.clone(),
        from: from.map(|s| s.as_str().to_string()),
        to: state.as_str().to_string(),
        target: target.to_string(),
        reason: reason.as_str().to_string(),
        changed_at: Utc::now(),
    };
    emit_logged(db, WebhookEvent::state_changed(change)).await;
}

/// `enforcement.confirmed` or `enforcement.not_applied`, when the action
/// has just become one of those (else nothing).
pub(super) async fn settled(db: &DatabaseConnection, action: &enforcement_action::Model) {
    let confirmed = match action.status.as_str() {
        "confirmed" => true,
        "not_applied" => false,
        _ => return,
    };
    let change = SessionChangeSettled {
        action_id: action.id,
        user_id: action.user_id,
        username: action.username.clone(),
        session_id: action.acct_session_id.clone(),
        radacctid: action.radacctid,
        nas: action.nas.clone(),
        request: action.request.clone(),
        outcome: action.outcome.clone(),
        reason: action.reason.clone(),
        target: action.target.clone(),
    };
    emit_logged(db, WebhookEvent::session_change(confirmed, change)).await;
}
