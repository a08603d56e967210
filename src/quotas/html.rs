//! The "Usage and quota" panel of a subscriber's page, and its top-up
//! form. Like the enforcement panel, it is a route of its own that the
//! user page loads with htmx (`hx-get="/users/{id}/quota"`) and links to
//! for a browser without JavaScript (the same template,
//! `templates/quotas/user.html`; its `panel` block is the fragment).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::service::{self, QuotaStatus, Reassessed};
use crate::app::AppState;
use crate::enforcement::service::{status_reason, MAX_REASON_CHARS};
use crate::enforcement::{EnforcementError, Reach};
use crate::error::AppError;
use crate::staff::{Operator, Role, Viewer};
use crate::users::entities::service_policy;
use crate::users::policies::html::policy_label;
use crate::users::policies::service::all_policies;
use crate::users::quota::{human_bytes, ByteSize};
use crate::users::service::UsersError;
use crate::web::flash;
use crate::web::forms::{is_htmx, path_id, render_fragment, see_other, with_vary, Staff};
use crate::web::layout::Chrome;

/// The panel and its form; merged into the pages by `app::pages`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/{id}/quota", get(show_quota))
        .route("/users/{id}/quota/top-up", post(top_up))
}

const NOT_FOUND: &str = "There is no such network user.";

/// The "Usage and quota" panel.
pub struct Panel {
    pub user_id: i32,
    pub username: String,
    pub has_quota: bool,
    /// "12.35 GB of 100.00 GB (download and upload)".
    pub usage: String,
    /// Whole percent used, capped at 100 for the bar.
    pub percent: i64,
    pub bar_percent: i64,
    pub download: String,
    pub upload: String,
    pub topup: String,
    /// "at 100%: throttle (FUP 1M)", or "below every tier".
    pub tier: String,
    pub throttled: bool,
    pub cycle: String,
    pub resets: String,
    pub can_top_up: bool,
    pub csrf_token: String,
    pub max_reason: usize,
}

impl Panel {
    fn of(
        q: QuotaStatus,
        policies: &[service_policy::Model],
        can_top_up: bool,
        csrf_token: String,
    ) -> Self {
        let day = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        let direction = q
            .plan
            .as_ref()
            .map(|p| p.direction.label().to_lowercase())
            .unwrap_or_default();
        let usage = match q.allowance_bytes() {
            Some(allowance) => format!(
                "{} of {} ({direction})",
                human_bytes(q.used_bytes()),
                human_bytes(allowance)
            ),
            None => format!(
                "{} this cycle; the package has no quota",
                human_bytes(q.used_bytes())
            ),
        };
        let percent = q.percent().unwrap_or(0);
        let tier = match q.tier() {
            Some(t) => {
                let policy = policies
                    .iter()
                    .find(|p| p.id == t.policy_id)
                    .map(policy_label)
                    .unwrap_or_else(|| format!("policy {}", t.policy_id));
                format!("at {}%: {policy}", t.threshold_percent)
            }
            None if q.plan.as_ref().is_some_and(|p| p.tiers.is_empty()) => {
                "no tiers: usage is counted only".into()
            }
            None if q.plan.is_some() => "below every tier: full package".into(),
            None => "—".into(),
        };
        Self {
            user_id: q.user.id,
            username: q.user.username.clone(),
            has_quota: q.plan.is_some(),
            usage,
            percent,
            bar_percent: percent.clamp(0, 100),
            download: human_bytes(q.download_bytes),
            upload: human_bytes(q.upload_bytes),
            topup: human_bytes(q.topup_bytes),
            tier,
            throttled: q.user.quota_policy_id.is_some(),
            cycle: format!(
                "from {} (day {} of the month)",
                day(q.cycle_start),
                q.anchor.day()
            ),
            resets: day(q.resets_at),
            can_top_up: can_top_up && q.plan.is_some(),
            csrf_token,
            max_reason: MAX_REASON_CHARS,
        }
    }
}

/// The panel as a page of its own (without JavaScript).
#[derive(Template, WebTemplate)]
#[template(path = "quotas/user.html")]
pub struct QuotaPage {
    chrome: Chrome,
    panel: Panel,
}

/// The panel alone, for the user page's htmx request.
#[derive(Template)]
#[template(path = "quotas/user.html", block = "panel")]
pub struct PanelFragment {
    panel: Panel,
}

/// `GET /users/{id}/quota`: the panel (with `HX-Request`), else the page
/// around it.
pub async fn show_quota(
    staff: Staff<Viewer>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let db = &staff.state.db.main;
    let status = service::quota_status(db, id).await?;
    let policies = all_policies(db).await?;
    if is_htmx(&headers) {
        let csrf_token = crate::web::csrf::token_for(&staff.session).await?;
        let panel = Panel::of(status, &policies, staff.can(Role::Operator), csrf_token);
        return render_fragment(StatusCode::OK, &PanelFragment { panel });
    }
    let chrome = staff.chrome().await?;
    let panel = Panel::of(
        status,
        &policies,
        chrome.can(Role::Operator),
        chrome.csrf_token.clone(),
    );
    let title = format!("Usage and quota of {}", panel.username);
    let page = QuotaPage {
        chrome: chrome.at("users", title),
        panel,
    };
    Ok(with_vary(page.into_response()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TopUpForm {
    pub bytes: String,
    pub reason: String,
}

/// `POST /users/{id}/quota/top-up` (operators and up): adds to this
/// cycle's allowance, then back to the user page with what happened.
pub async fn top_up(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<TopUpForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let back = format!("/users/{id}");
    let parsed = ByteSize::parse(&form.bytes)
        .map_err(|m| format!("the size {m}"))
        .and_then(|size| {
            status_reason(Some(&form.reason))
                .map(|reason| (size, reason))
                .map_err(|m| format!("the reason {m}"))
        });
    let (size, reason) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            flash::push(
                &staff.session,
                "error",
                format!("Not topped up: {message}."),
            )
            .await;
            return Ok(see_other(back));
        }
    };
    let reach = Reach::from_app(&staff.state);
    match service::top_up(&reach, &staff.actor, id, size, reason.as_deref()).await {
        Ok((status, moved)) => {
            let mut text = format!(
                "Added {} to {}'s allowance this cycle: now {} of {}.",
                human_bytes(size.as_i64()),
                status.user.username,
                human_bytes(status.used_bytes()),
                human_bytes(status.allowance_bytes().unwrap_or(0)),
            );
            if moved != Reassessed::Unchanged && status.user.quota_policy_id.is_none() {
                text.push_str(" Its quota restriction is lifted: it gets its full package again.");
            }
            flash::push(&staff.session, "success", text).await;
        }
        Err(EnforcementError::Users(UsersError::Conflict { message, .. })) => {
            flash::push(
                &staff.session,
                "error",
                format!("Not topped up: {message}."),
            )
            .await;
        }
        Err(err) => return Err(err.into()),
    }
    Ok(see_other(back))
}
