//! The staff side of enforcement: the "Network enforcement" panel of a
//! subscriber's page, and its Suspend and Resume buttons.
//!
//! The subscriber page belongs to `users`, which sits below this room, so
//! the panel is its own route: the user page loads it with htmx
//! (`hx-get="/users/{id}/enforcement"`, `hx-trigger="load"`) and keeps a
//! plain link to it for a browser without JavaScript, which gets the panel
//! as a page of its own (the same template, `templates/enforcement/
//! user.html`; its `panel` block is the fragment).
//!
//! Suspend and Resume are normal form posts (operators and up, with the
//! CSRF token, after a confirmation) that call
//! [`service::change_status`], as `POST /api/v1/users/{id}/suspend` does,
//! then go back to the user page with a flash message saying what each
//! live session's NAS answered.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::entities::enforcement_action;
use super::service::{
    self, enforcement_status, overdue, status_reason, Enforced, EnforcementStatus, MAX_REASON_CHARS,
};
use super::Reach;
use crate::app::AppState;
use crate::error::AppError;
use crate::staff::{Operator, Role, Viewer};
use crate::users::domain::UserStatus;
use crate::web::flash;
use crate::web::forms::{is_htmx, path_id, render_fragment, see_other, with_vary, Staff};
use crate::web::layout::Chrome;
use crate::web::listing::{when, when_opt};

/// The panel and its buttons; merged into the pages by `app::pages`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/{id}/enforcement", get(show_enforcement))
        .route("/users/{id}/suspend", post(suspend_user))
        .route("/users/{id}/resume", post(resume_user))
}

/// The session changes the panel lists, newest first.
pub const CHANGES_SHOWN: u64 = 20;

const NOT_FOUND: &str = "There is no such network user.";

/// The policy that applies to the subscriber when it is not active.
pub struct PolicyLink {
    pub id: i32,
    pub name: String,
    pub action: String,
}

/// One live session's change, as the table shows it.
pub struct ChangeRow {
    pub session: String,
    pub radacctid: String,
    pub nas: String,
    /// "suspended → walled garden".
    pub change: String,
    /// CoA or Disconnect.
    pub request: &'static str,
    /// pending, sent, confirmed, not_applied, superseded.
    pub status: String,
    pub status_label: String,
    /// The last answer in words; "—" before the first.
    pub answer: String,
    /// What came with it (a NAK's error cause, why it was not sent).
    pub detail: String,
    pub attempts: i32,
    pub created: String,
    pub sent: String,
    pub confirmed: String,
    pub overdue: bool,
}

/// The "Network enforcement" panel.
pub struct Panel {
    pub user_id: i32,
    pub username: String,
    /// The stored status: active, suspended or disabled.
    pub status: String,
    /// The effective state: the status, or expired.
    pub state: &'static str,
    /// What that state gives, in words: "full package (Home 20M)", ...
    pub service: String,
    /// active, reject, walled_garden or throttle.
    pub target: &'static str,
    pub policy: Option<PolicyLink>,
    /// The state last carried to the network; "—" before the first time.
    pub enforced_state: String,
    pub confirmed: bool,
    /// Whether it is confirmed, in a sentence.
    pub confirmation: String,
    /// ok, waiting or failed: the colour of `confirmation`.
    pub confirmation_level: &'static str,
    pub can_change: bool,
    pub can_suspend: bool,
    pub can_resume: bool,
    pub csrf_token: String,
    pub max_reason: usize,
    pub changes: Vec<ChangeRow>,
}

/// The name of a service target in words.
fn target_label(target: &str) -> &str {
    match target {
        "active" => "full package",
        "reject" => "refused",
        "walled_garden" => "walled garden",
        other => other,
    }
}

fn answer_label(outcome: Option<&str>) -> String {
    match outcome {
        None => "—".into(),
        Some("ack") => "ACK".into(),
        Some("nak") => "NAK".into(),
        Some("no_answer") => "no answer".into(),
        Some("session_closed") => "session ended".into(),
        Some("nas_not_registered") => "NAS not registered".into(),
        Some(other) => other.replace('_', " "),
    }
}

fn request_label(request: &str) -> &'static str {
    if request == "coa" {
        "CoA"
    } else {
        "Disconnect"
    }
}

impl ChangeRow {
    fn of(a: enforcement_action::Model) -> Self {
        Self {
            overdue: overdue(&a),
            session: a.acct_session_id.clone(),
            radacctid: a.radacctid.map(|id| id.to_string()).unwrap_or_default(),
            change: format!("{} → {}", a.reason, target_label(&a.target)),
            request: request_label(&a.request),
            status_label: a.status.replace('_', " "),
            answer: answer_label(a.outcome.as_deref()),
            detail: a.detail.clone().unwrap_or_default(),
            attempts: a.attempts,
            created: when(&a.created_at),
            sent: when_opt(&a.sent_at),
            confirmed: when_opt(&a.confirmed_at),
            nas: a.nas,
            status: a.status,
        }
    }
}

impl Panel {
    fn of(status: EnforcementStatus, can_change: bool, csrf_token: String) -> Self {
        let confirmed = status.confirmed();
        let EnforcementStatus {
            subject,
            state,
            target,
            actions,
        } = status;
        let service = match (target, &subject.package) {
            ("active", Some(package)) => format!("full package ({})", package.name),
            ("reject", None) => "refused: no package".into(),
            (target, _) => target_label(target).into(),
        };
        let enforced = subject.user.enforced_state.clone();
        let open = actions
            .iter()
            .filter(|a| matches!(a.status.as_str(), "pending" | "sent"))
            .count();
        let failed = actions.iter().filter(|a| a.status == "not_applied").count();
        let (confirmation_level, confirmation) = if confirmed {
            (
                "ok",
                format!("Confirmed: the network shows the {state} state."),
            )
        } else if enforced.as_deref() != Some(state.as_str()) {
            (
                "waiting",
                format!(
                    "Not carried to the network yet: the enforcement job applies the {state} state within a minute."
                ),
            )
        } else if failed > 0 {
            (
                "failed",
                format!(
                    "Not confirmed: {failed} session change(s) below were not applied{}.",
                    if open > 0 {
                        format!(" and {open} still wait for their session")
                    } else {
                        String::new()
                    }
                ),
            )
        } else {
            (
                "waiting",
                format!(
                    "Not confirmed yet: {open} session change(s) wait for their session to show them."
                ),
            )
        };
        let user = subject.user;
        Self {
            user_id: user.id,
            can_suspend: can_change && user.status != UserStatus::Suspended.as_str(),
            can_resume: can_change && user.status != UserStatus::Active.as_str(),
            can_change,
            username: user.username,
            status: user.status,
            state: state.as_str(),
            service,
            target,
            policy: subject.policy.map(|p| PolicyLink {
                id: p.id,
                name: p.name,
                action: target_label(&p.action).to_string(),
            }),
            enforced_state: enforced.unwrap_or_else(|| "—".into()),
            confirmed,
            confirmation,
            confirmation_level,
            csrf_token,
            max_reason: MAX_REASON_CHARS,
            changes: actions.into_iter().map(ChangeRow::of).collect(),
        }
    }

    /// Whether the stored status alone is not the whole story (expired).
    pub fn state_differs(&self) -> bool {
        self.state != self.status
    }
}

/// The panel as a page of its own (without JavaScript).
#[derive(Template, WebTemplate)]
#[template(path = "enforcement/user.html")]
pub struct EnforcementPage {
    chrome: Chrome,
    panel: Panel,
}

/// The panel alone, for the user page's htmx request.
#[derive(Template)]
#[template(path = "enforcement/user.html", block = "panel")]
pub struct PanelFragment {
    panel: Panel,
}

/// `GET /users/{id}/enforcement`: the panel (with `HX-Request`), else the
/// page around it.
pub async fn show_enforcement(
    staff: Staff<Viewer>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let status = enforcement_status(&staff.state.db, id, CHANGES_SHOWN).await?;
    if is_htmx(&headers) {
        // Not the whole frame: building it would take the flash messages
        // that the user page around the panel has just shown.
        let csrf_token = crate::web::csrf::token_for(&staff.session).await?;
        let panel = Panel::of(status, staff.can(Role::Operator), csrf_token);
        return render_fragment(StatusCode::OK, &PanelFragment { panel });
    }
    let chrome = staff.chrome().await?;
    let panel = Panel::of(
        status,
        chrome.can(Role::Operator),
        chrome.csrf_token.clone(),
    );
    let title = format!("Network enforcement of {}", panel.username);
    let page = EnforcementPage {
        chrome: chrome.at("users", title),
        panel,
    };
    Ok(with_vary(page.into_response()))
}

/// The Suspend and Resume forms: the CSRF token and, for Suspend, an
/// optional reason for the audit log.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StatusChangeForm {
    pub reason: String,
}

/// `POST /users/{id}/suspend` (operators and up).
pub async fn suspend_user(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<StatusChangeForm>,
) -> Result<Response, AppError> {
    change_status(staff, &id, UserStatus::Suspended, form).await
}

/// `POST /users/{id}/resume` (operators and up).
pub async fn resume_user(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<StatusChangeForm>,
) -> Result<Response, AppError> {
    change_status(staff, &id, UserStatus::Active, form).await
}

fn verb(status: UserStatus) -> (&'static str, &'static str) {
    match status {
        UserStatus::Active => ("Resumed", "Not resumed"),
        UserStatus::Suspended => ("Suspended", "Not suspended"),
        UserStatus::Disabled => ("Disabled", "Not disabled"),
    }
}

async fn change_status(
    staff: Staff<Operator>,
    id: &str,
    status: UserStatus,
    form: StatusChangeForm,
) -> Result<Response, AppError> {
    let id = path_id(id, NOT_FOUND)?;
    let back = format!("/users/{id}");
    let (done, refused) = verb(status);
    let reason = match status_reason(Some(&form.reason)) {
        Ok(reason) => reason,
        Err(message) => {
            let text = format!("{refused}: the reason {message}.");
            flash::push(&staff.session, "error", text).await;
            return Ok(see_other(back));
        }
    };
    let enforced = service::change_status(
        &Reach::from_app(&staff.state),
        &staff.actor,
        id,
        status,
        reason.as_deref(),
    )
    .await?;
    let (kind, message) = summary(done, &enforced);
    flash::push(&staff.session, kind, message).await;
    Ok(see_other(back))
}

/// How one session's change went, from good to bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Went {
    Done,
    Waiting,
    NotApplied,
}

/// What came of one session's change, to follow "1 session".
fn session_outcome(a: &enforcement_action::Model) -> (Went, String) {
    let nas = &a.nas;
    let changed = match a.request.as_str() {
        "coa" => "changed by CoA",
        _ => "disconnected",
    };
    match (a.status.as_str(), a.outcome.as_deref()) {
        ("sent", Some("ack")) => (Went::Done, format!("{changed}, acknowledged by {nas}")),
        ("sent", _) => (
            Went::Waiting,
            format!("not disconnected: {nas} refused it; sent again while the session stays open"),
        ),
        ("confirmed", Some("session_closed")) => (Went::Done, "already ended".into()),
        ("confirmed", _) => (Went::Done, format!("{changed}, confirmed")),
        ("pending", Some("no_answer")) => (
            Went::Waiting,
            format!("not answered by {nas} yet; the enforcement job sends it again"),
        ),
        ("pending", Some("unreachable")) => (
            Went::Waiting,
            format!("not changed: {nas} is unreachable; the enforcement job sends it again"),
        ),
        ("pending", _) => (Went::Waiting, format!("waiting to be sent to {nas}")),
        ("not_applied", Some("nas_not_registered")) => (
            Went::NotApplied,
            format!("not changed: NAS {nas} is not registered (add it under NAS)"),
        ),
        ("not_applied", Some(code)) => (
            Went::NotApplied,
            format!("not changed at {nas} ({})", code.replace('_', " ")),
        ),
        (other, _) => (Went::Done, other.replace('_', " ")),
    }
}

/// The flash message after a suspend or resume, and its kind: success
/// when every session took the change, info when some wait for a retry,
/// error when some could not be changed.
fn summary(done: &str, enforced: &Enforced) -> (&'static str, String) {
    let user = &enforced.user;
    let mut text = format!("{done} {}", user.username);
    let state = enforced.state;
    if state.as_str() != user.status {
        text.push_str(&format!(" (now {state})"));
    }
    text.push_str(": ");
    let mut worst = Went::Done;
    if enforced.actions.is_empty() {
        text.push_str("no live session.");
    } else {
        let mut groups: Vec<(String, usize)> = Vec::new();
        for action in &enforced.actions {
            let (went, phrase) = session_outcome(action);
            worst = worst.max(went);
            match groups.iter_mut().find(|(p, _)| *p == phrase) {
                Some((_, n)) => *n += 1,
                None => groups.push((phrase, 1)),
            }
        }
        let parts: Vec<String> = groups
            .into_iter()
            .map(|(phrase, n)| {
                let sessions = if n == 1 { "session" } else { "sessions" };
                format!("{n} {sessions} {phrase}")
            })
            .collect();
        text.push_str(&parts.join("; "));
        text.push('.');
    }
    if !enforced.radius_written {
        text.push_str(
            " The RADIUS rows could not be written yet: the radius-retry job writes them.",
        );
        worst = worst.max(Went::Waiting);
    }
    let kind = match worst {
        Went::Done => "success",
        Went::Waiting => "info",
        Went::NotApplied => "error",
    };
    (kind, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::entities::network_user;
    use crate::users::state::EffectiveState;

    fn user(status: &str) -> network_user::Model {
        network_user::Model {
            status: status.into(),
            enforced_state: Some(status.into()),
            ..crate::users::samples::user()
        }
    }

    fn action(
        nas: &str,
        request: &str,
        status: &str,
        outcome: Option<&str>,
    ) -> enforcement_action::Model {
        let now = chrono::Utc::now();
        enforcement_action::Model {
            id: 1,
            user_id: Some(7),
            username: "alice".into(),
            reason: "suspended".into(),
            target: "walled_garden".into(),
            request: request.into(),
            radacctid: Some(42),
            router_id: None,
            acct_session_id: "81a00001".into(),
            nas: nas.into(),
            attributes: None,
            status: status.into(),
            outcome: outcome.map(Into::into),
            detail: None,
            attempts: 1,
            next_attempt_at: None,
            sent_at: None,
            confirmed_at: None,
            created_at: now.into(),
            updated_at: now.into(),
        }
    }

    fn enforced(status: &str, actions: Vec<enforcement_action::Model>) -> Enforced {
        Enforced {
            user: user(status),
            state: match status {
                "active" => EffectiveState::Active,
                _ => EffectiveState::Suspended,
            },
            target: "walled_garden",
            radius_written: true,
            actions,
        }
    }

    #[test]
    fn the_message_says_what_each_sessions_nas_answered() {
        assert_eq!(
            summary("Suspended", &enforced("suspended", vec![])),
            ("success", "Suspended alice: no live session.".into())
        );
        let acked = action("127.0.0.1", "coa", "sent", Some("ack"));
        assert_eq!(
            summary("Suspended", &enforced("suspended", vec![acked.clone()])),
            (
                "success",
                "Suspended alice: 1 session changed by CoA, acknowledged by 127.0.0.1.".into()
            )
        );
        let (kind, text) = summary(
            "Resumed",
            &enforced(
                "active",
                vec![
                    acked.clone(),
                    acked,
                    action("10.0.0.1", "disconnect", "sent", Some("ack")),
                    action("10.0.0.2", "coa", "pending", Some("no_answer")),
                ],
            ),
        );
        assert_eq!(kind, "info");
        assert_eq!(
            text,
            "Resumed alice: 2 sessions changed by CoA, acknowledged by 127.0.0.1; \
             1 session disconnected, acknowledged by 10.0.0.1; \
             1 session not answered by 10.0.0.2 yet; the enforcement job sends it again."
        );
        let (kind, text) = summary(
            "Suspended",
            &enforced(
                "suspended",
                vec![
                    action("10.0.0.9", "coa", "not_applied", Some("nas_not_registered")),
                    action("10.0.0.1", "coa", "confirmed", Some("session_closed")),
                ],
            ),
        );
        assert_eq!(kind, "error");
        assert_eq!(
            text,
            "Suspended alice: 1 session not changed: NAS 10.0.0.9 is not registered \
             (add it under NAS); 1 session already ended."
        );
    }

    #[test]
    fn a_radius_write_that_failed_is_said_and_an_expired_state_named() {
        let mut e = enforced("active", vec![]);
        e.radius_written = false;
        e.state = EffectiveState::Expired;
        let (kind, text) = summary("Resumed", &e);
        assert_eq!(kind, "info");
        assert_eq!(
            text,
            "Resumed alice (now expired): no live session. The RADIUS rows could not be \
             written yet: the radius-retry job writes them."
        );
    }
}
