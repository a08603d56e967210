//! The policy pages: the list with its new form, and the page of one
//! policy with its edit form. Every handler reads the form, calls one
//! function of [`super::service`] and builds a view; the rules (which
//! fields an action takes, one default, unique names and groups) live in
//! the service.
//!
//! Forms post normally: a redirect with a flash message on success, the
//! same page with inline messages (422) or a notice (409, a policy that a
//! package still names) otherwise.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use sea_orm::Order;
use serde::Deserialize;

use super::service::{self, PolicyFilter, PolicyInput};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::query::Sort;
use crate::staff::{Operator, Role, Viewer};
use crate::users::domain::Rate;
use crate::users::entities::service_policy;
use crate::users::html::{merged, problems};
use crate::users::service::UsersError;
use crate::users::state::{policy_rate_limit, PolicyAction};
use crate::web::forms::{
    again, dash, optional_string, path_id, search_text, Choice, Errors, Notice, Staff,
};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, Pager};

/// The policy pages; merged into the staff router (behind its auth, CSRF
/// and error layers) by `app::pages`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/policies", get(list_policies).post(create_policy))
        .route("/policies/{id}", get(show_policy).post(update_policy))
        .route("/policies/{id}/delete", post(delete_policy))
}

/// The policy form; the same fields create and change a policy.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PolicyForm {
    pub name: String,
    /// reject, walled_garden or throttle; empty until chosen.
    pub action: String,
    pub download_rate: String,
    pub upload_rate: String,
    pub framed_pool: String,
    pub address_list: String,
    pub radius_group: String,
    pub mikrotik_profile: String,
    /// The "Default policy" checkbox: sent (as "on") only when ticked.
    pub is_default: Option<String>,
}

const POLICY_FIELDS: &[&str] = &[
    "name",
    "action",
    "download_rate",
    "upload_rate",
    "framed_pool",
    "address_list",
    "radius_group",
    "mikrotik_profile",
];

fn rate_text(kbps: Option<i64>) -> String {
    kbps.and_then(Rate::from_column)
        .map(|r| r.to_string())
        .unwrap_or_default()
}

/// "Walled garden" for walled_garden; a stored value no action reads as
/// is shown as it is.
fn action_label(action: &str) -> String {
    action
        .parse::<PolicyAction>()
        .map(|a| a.label().to_string())
        .unwrap_or_else(|_| action.to_string())
}

/// How a policy is named in a package's select and details: its name and
/// what it does.
pub(crate) fn policy_label(p: &service_policy::Model) -> String {
    format!("{} ({})", p.name, action_label(&p.action))
}

/// The options of a package's policy select, `current` (a policy id, or
/// empty for the default policy) selected. The default policy's own empty
/// option is the template's.
pub(crate) fn policy_choices(policies: &[service_policy::Model], current: &str) -> Vec<Choice> {
    policies
        .iter()
        .map(|p| Choice::new(p.id.to_string(), policy_label(p), current.trim()))
        .collect()
}

impl PolicyForm {
    fn of(p: &service_policy::Model) -> Self {
        Self {
            name: p.name.clone(),
            action: p.action.clone(),
            download_rate: rate_text(p.download_rate_kbps),
            upload_rate: rate_text(p.upload_rate_kbps),
            framed_pool: p.framed_pool.clone().unwrap_or_default(),
            address_list: p.address_list.clone().unwrap_or_default(),
            radius_group: p.radius_group.clone(),
            mikrotik_profile: p.mikrotik_profile.clone().unwrap_or_default(),
            is_default: p.default_marker.map(|_| "on".to_string()),
        }
    }

    /// Whether the "Default policy" box is ticked.
    pub fn default_ticked(&self) -> bool {
        self.is_default.is_some()
    }

    pub fn action_options(&self) -> Vec<Choice> {
        PolicyAction::ALL
            .iter()
            .map(|a| Choice::new(a.as_str(), a.label(), self.action.trim()))
            .collect()
    }

    fn input(&self) -> PolicyInput {
        PolicyInput {
            name: self.name.clone(),
            action: self.action.clone(),
            download_rate: optional_string(&self.download_rate),
            upload_rate: optional_string(&self.upload_rate),
            framed_pool: optional_string(&self.framed_pool),
            address_list: optional_string(&self.address_list),
            radius_group: self.radius_group.clone(),
            mikrotik_profile: optional_string(&self.mikrotik_profile),
            is_default: self.default_ticked(),
        }
    }

    /// The service's input when the form reads as one, else every message
    /// the form and the service's own check have for it.
    fn parsed(&self) -> Result<PolicyInput, UsersError> {
        let input = self.input();
        let mut early = FieldErrors::new();
        if self.action.trim().is_empty() {
            early.insert("action".into(), "choose what the policy does".into());
        }
        if early.is_empty() {
            Ok(input)
        } else {
            Err(merged(early, problems(input.validate())))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PolicyListQuery {
    page: Option<String>,
    q: Option<String>,
}

pub struct PolicyRow {
    pub id: i32,
    pub name: String,
    pub action: String,
    pub rate_limit: String,
    pub pool: String,
    pub address_list: String,
    pub radius_group: String,
    pub is_default: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/policies.html")]
pub struct PoliciesPage {
    chrome: Chrome,
    can_edit: bool,
    rows: Vec<PolicyRow>,
    pager: Pager,
    q: String,
    form: PolicyForm,
    errors: Errors,
}

async fn policies_page(
    state: &AppState,
    chrome: Chrome,
    query: &PolicyListQuery,
    form: PolicyForm,
    errors: Errors,
) -> Result<PoliciesPage, AppError> {
    let q = search_text(&query.q);
    let page = page_request(&query.page);
    let (policies, total) = service::list_policies(
        &state.db.main,
        &PolicyFilter {
            q: Some(q.clone()).filter(|q| !q.is_empty()),
        },
        &Sort::by(vec![(service_policy::Column::Name, Order::Asc)]),
        page,
    )
    .await?;
    let rows: Vec<PolicyRow> = policies
        .iter()
        .map(|p| PolicyRow {
            id: p.id,
            name: p.name.clone(),
            action: action_label(&p.action),
            rate_limit: dash(&policy_rate_limit(p)),
            pool: dash(&p.framed_pool),
            address_list: dash(&p.address_list),
            radius_group: p.radius_group.clone(),
            is_default: p.default_marker.is_some(),
        })
        .collect();
    Ok(PoliciesPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("policies", "Policies"),
        pager: Pager::new(
            "/policies",
            vec![("q", q.clone())],
            page.page,
            total,
            rows.len(),
        ),
        rows,
        q,
        form,
        errors,
    })
}

pub async fn list_policies(
    staff: Staff<Viewer>,
    Query(query): Query<PolicyListQuery>,
) -> Result<PoliciesPage, AppError> {
    let chrome = staff.chrome().await?;
    let (form, errors) = (PolicyForm::default(), Errors::default());
    policies_page(&staff.state, chrome, &query, form, errors).await
}

pub async fn create_policy(
    staff: Staff<Operator>,
    Form(form): Form<PolicyForm>,
) -> Result<Response, AppError> {
    let created = match form.parsed() {
        Ok(input) => service::create_policy(staff.db(), &staff.actor, &input).await,
        Err(early) => Err(early),
    };
    match created {
        Ok(policy) => {
            let created = format!("Policy “{}” created.", policy.name);
            Ok(staff
                .done(created, format!("/policies/{}", policy.id))
                .await)
        }
        Err(UsersError::Invalid(fields)) => {
            let errors = Errors::from_fields(fields, POLICY_FIELDS);
            let chrome = staff.chrome().await?;
            let query = PolicyListQuery::default();
            let page = policies_page(&staff.state, chrome, &query, form, errors).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub struct PolicyView {
    pub id: i32,
    pub name: String,
    pub action: String,
    pub rates: String,
    pub rate_limit: String,
    pub pool: String,
    pub address_list: String,
    /// The PPP profile for secrets kept on a router; "—" without one.
    pub mikrotik_profile: String,
    pub radius_group: String,
    pub is_default: bool,
    pub created: String,
    pub updated: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/policy.html")]
pub struct PolicyPage {
    chrome: Chrome,
    can_edit: bool,
    policy: PolicyView,
    form: PolicyForm,
    errors: Errors,
    notice: Option<Notice>,
}

#[derive(Default)]
struct PolicyPageState {
    form: Option<PolicyForm>,
    errors: Errors,
    notice: Option<Notice>,
}

async fn policy_page(
    state: &AppState,
    chrome: Chrome,
    id: i32,
    extra: PolicyPageState,
) -> Result<PolicyPage, AppError> {
    let p = service::get_policy(&state.db.main, id).await?;
    let rates = match (p.download_rate_kbps, p.upload_rate_kbps) {
        (Some(down), Some(up)) => format!(
            "{} down / {} up",
            rate_text(Some(down)),
            rate_text(Some(up))
        ),
        _ => "—".into(),
    };
    let view = PolicyView {
        id: p.id,
        name: p.name.clone(),
        action: action_label(&p.action),
        rates,
        rate_limit: dash(&policy_rate_limit(&p)),
        pool: dash(&p.framed_pool),
        address_list: dash(&p.address_list),
        mikrotik_profile: dash(&p.mikrotik_profile),
        radius_group: p.radius_group.clone(),
        is_default: p.default_marker.is_some(),
        created: when(&p.created_at),
        updated: when(&p.updated_at),
    };
    Ok(PolicyPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("policies", format!("Policy {}", p.name)),
        form: extra.form.unwrap_or_else(|| PolicyForm::of(&p)),
        policy: view,
        errors: extra.errors,
        notice: extra.notice,
    })
}

const NOT_FOUND: &str = "There is no such policy.";

pub async fn show_policy(
    staff: Staff<Viewer>,
    Path(id): Path<String>,
) -> Result<PolicyPage, AppError> {
    let chrome = staff.chrome().await?;
    let extra = PolicyPageState::default();
    policy_page(&staff.state, chrome, path_id(&id, NOT_FOUND)?, extra).await
}

pub async fn update_policy(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<PolicyForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let updated = match form.parsed() {
        Ok(input) => service::update_policy(staff.db(), &staff.actor, id, &input).await,
        Err(early) => Err(early),
    };
    match updated {
        Ok(policy) => {
            let saved = format!("Policy “{}” saved.", policy.name);
            Ok(staff.done(saved, format!("/policies/{id}")).await)
        }
        Err(UsersError::Invalid(fields)) => {
            let extra = PolicyPageState {
                form: Some(form),
                errors: Errors::from_fields(fields, POLICY_FIELDS),
                ..Default::default()
            };
            let page = policy_page(&staff.state, staff.chrome().await?, id, extra).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_policy(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let name = service::get_policy(staff.db(), id).await?.name;
    match service::delete_policy(staff.db(), &staff.actor, id).await {
        Ok(()) => Ok(staff
            .done(format!("Policy “{name}” deleted."), "/policies")
            .await),
        Err(UsersError::Conflict { message, .. }) => {
            let extra = PolicyPageState {
                notice: Some(Notice::error(message)),
                ..Default::default()
            };
            let page = policy_page(&staff.state, staff.chrome().await?, id, extra).await?;
            again(StatusCode::CONFLICT, page)
        }
        Err(e) => Err(e.into()),
    }
}
