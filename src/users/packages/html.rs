//! The package pages: the list, the new form and the page of one package.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use sea_orm::Order;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, Sort};
use crate::staff::{Operator, Role, Viewer};
use crate::users::domain::{mikrotik_rate_limit, Rate, RateLimit};
use crate::users::entities::{network_user, service_package, service_policy};
use crate::users::html::{merged, problems};
use crate::users::policies::html::{policy_choices, policy_label};
use crate::users::policies::service::all_policies;
use crate::users::quota::{human_bytes, AnchorDay, ByteSize, Direction, Tier, Tiers};
use crate::users::service::{self, PackageFilter, PackageInput, TierInput, UsersError};
use crate::web::forms::{
    again, dash, optional_number, optional_string, path_id, search_text, Choice, Errors, Notice,
    Staff,
};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, Pager};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PackageForm {
    pub name: String,
    pub description: String,
    pub download_rate: String,
    pub upload_rate: String,
    pub burst_download_rate: String,
    pub burst_upload_rate: String,
    pub burst_threshold_download: String,
    pub burst_threshold_upload: String,
    pub burst_time_secs: String,
    pub session_timeout_secs: String,
    pub simultaneous_use: String,
    pub radius_group: String,
    pub mikrotik_profile: String,
    /// A policy's id, or empty for the default policy.
    pub policy_id: String,
    pub grace_days: String,
    pub quota: String,
    pub quota_direction: String,
    pub cycle_anchor_day: String,
    pub tier_percent_1: String,
    pub tier_policy_1: String,
    pub tier_percent_2: String,
    pub tier_policy_2: String,
    pub tier_percent_3: String,
    pub tier_policy_3: String,
}

/// The tier slots the form has.
const FORM_TIERS: usize = 3;

/// One tier slot of the form: its threshold and its policy choices.
pub struct TierRow {
    pub index: usize,
    pub percent: String,
    pub policies: Vec<Choice>,
}

const PACKAGE_FIELDS: &[&str] = &[
    "name",
    "description",
    "download_rate",
    "upload_rate",
    "burst_download_rate",
    "burst_upload_rate",
    "burst_threshold_download",
    "burst_threshold_upload",
    "burst_time_secs",
    "session_timeout_secs",
    "simultaneous_use",
    "radius_group",
    "mikrotik_profile",
    "policy_id",
    "grace_days",
    "quota",
    "quota_direction",
    "cycle_anchor_day",
    "quota_tiers",
];

fn rate_text(kbps: Option<i64>) -> String {
    kbps.and_then(Rate::from_column)
        .map(|r| r.to_string())
        .unwrap_or_default()
}

impl PackageForm {
    fn of(p: &service_package::Model) -> Self {
        let n = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_default();
        Self {
            name: p.name.clone(),
            description: p.description.clone().unwrap_or_default(),
            download_rate: rate_text(Some(p.download_rate_kbps)),
            upload_rate: rate_text(Some(p.upload_rate_kbps)),
            burst_download_rate: rate_text(p.burst_download_kbps),
            burst_upload_rate: rate_text(p.burst_upload_kbps),
            burst_threshold_download: rate_text(p.burst_threshold_download_kbps),
            burst_threshold_upload: rate_text(p.burst_threshold_upload_kbps),
            burst_time_secs: n(p.burst_time_secs),
            session_timeout_secs: n(p.session_timeout_secs),
            simultaneous_use: n(p.simultaneous_use),
            radius_group: p.radius_group.clone(),
            mikrotik_profile: p.mikrotik_profile.clone().unwrap_or_default(),
            policy_id: n(p.policy_id),
            grace_days: n(p.grace_days),
            quota: p
                .quota_bytes
                .filter(|b| *b > 0)
                .map(|b| ByteSize(b as u64).to_string())
                .unwrap_or_default(),
            quota_direction: p.quota_direction.clone().unwrap_or_default(),
            cycle_anchor_day: n(p.cycle_anchor_day),
            ..Self::default()
        }
        .with_tiers(Tiers::from_column(p.quota_tiers.as_deref()).as_slice())
    }

    fn with_tiers(mut self, tiers: &[Tier]) -> Self {
        for (index, tier) in tiers.iter().take(FORM_TIERS).enumerate() {
            let (percent, policy) = self.tier_slot(index);
            *percent = tier.threshold_percent.to_string();
            *policy = tier.policy_id.to_string();
        }
        self
    }

    fn tier_slot(&mut self, index: usize) -> (&mut String, &mut String) {
        match index {
            0 => (&mut self.tier_percent_1, &mut self.tier_policy_1),
            1 => (&mut self.tier_percent_2, &mut self.tier_policy_2),
            _ => (&mut self.tier_percent_3, &mut self.tier_policy_3),
        }
    }

    /// The tier slots with their policy choices, for the template.
    fn tier_rows(&self, policies: &[service_policy::Model]) -> Vec<TierRow> {
        let mut form = self.clone();
        (0..FORM_TIERS)
            .map(|index| {
                let (percent, policy) = form.tier_slot(index);
                TierRow {
                    index: index + 1,
                    percent: percent.clone(),
                    policies: policy_choices(policies, policy),
                }
            })
            .collect()
    }

    /// The filled tier slots; a slot with only one half is an error.
    fn tiers(&self, errors: &mut FieldErrors) -> Vec<TierInput> {
        let mut form = self.clone();
        let mut tiers = Vec::new();
        for index in 0..FORM_TIERS {
            let (percent, policy) = form.tier_slot(index);
            let (percent, policy) = (percent.trim(), policy.trim());
            match (percent.is_empty(), policy.is_empty()) {
                (true, true) => {}
                (false, false) => {
                    match (percent.trim_end_matches('%').trim().parse(), policy.parse()) {
                        (Ok(threshold_percent), Ok(policy_id)) => tiers.push(TierInput {
                            threshold_percent,
                            policy_id,
                        }),
                        _ => {
                            errors.insert(
                                "quota_tiers".into(),
                                format!(
                                    "tier {}: the threshold must be a whole percent",
                                    index + 1
                                ),
                            );
                        }
                    }
                }
                _ => {
                    errors.insert(
                        "quota_tiers".into(),
                        format!("tier {}: give both a threshold and a policy", index + 1),
                    );
                }
            }
        }
        tiers
    }

    fn input(&self) -> (PackageInput, FieldErrors) {
        let mut errors = FieldErrors::new();
        let input = PackageInput {
            name: self.name.clone(),
            description: optional_string(&self.description),
            download_rate: self.download_rate.clone(),
            upload_rate: self.upload_rate.clone(),
            burst_download_rate: optional_string(&self.burst_download_rate),
            burst_upload_rate: optional_string(&self.burst_upload_rate),
            burst_threshold_download: optional_string(&self.burst_threshold_download),
            burst_threshold_upload: optional_string(&self.burst_threshold_upload),
            burst_time_secs: optional_number("burst_time_secs", &self.burst_time_secs, &mut errors),
            session_timeout_secs: optional_number(
                "session_timeout_secs",
                &self.session_timeout_secs,
                &mut errors,
            ),
            simultaneous_use: optional_number(
                "simultaneous_use",
                &self.simultaneous_use,
                &mut errors,
            ),
            radius_group: self.radius_group.clone(),
            mikrotik_profile: optional_string(&self.mikrotik_profile),
            policy_id: optional_number::<i32>("policy_id", &self.policy_id, &mut errors),
            grace_days: optional_number("grace_days", &self.grace_days, &mut errors),
            quota: optional_string(&self.quota),
            quota_direction: optional_string(&self.quota_direction),
            cycle_anchor_day: optional_number(
                "cycle_anchor_day",
                &self.cycle_anchor_day,
                &mut errors,
            ),
            quota_tiers: Vec::new(),
        };
        let input = PackageInput {
            quota_tiers: self.tiers(&mut errors),
            ..input
        };
        (input, errors)
    }

    /// The service's input when the form reads as one, else every message
    /// the form and the service's own check have for it.
    fn parsed(&self) -> Result<PackageInput, UsersError> {
        let (input, early) = self.input();
        if early.is_empty() {
            Ok(input)
        } else {
            Err(merged(early, problems(input.validate())))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PackageListQuery {
    page: Option<String>,
    q: Option<String>,
}

pub struct PackageRow {
    pub id: i32,
    pub name: String,
    pub rates: String,
    pub rate_limit: String,
    pub radius_group: String,
    pub profile: String,
    pub sessions: String,
    pub timeout: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/packages.html")]
pub struct PackagesPage {
    chrome: Chrome,
    can_edit: bool,
    rows: Vec<PackageRow>,
    pager: Pager,
    q: String,
    form: PackageForm,
    /// The policies the form offers (after its "Default policy").
    policy_options: Vec<Choice>,
    direction_options: Vec<Choice>,
    tier_rows: Vec<TierRow>,
    errors: Errors,
}

fn rates_of(p: &service_package::Model) -> String {
    format!(
        "{} down / {} up",
        rate_text(Some(p.download_rate_kbps)),
        rate_text(Some(p.upload_rate_kbps))
    )
}

async fn packages_page(
    state: &AppState,
    chrome: Chrome,
    query: &PackageListQuery,
    form: PackageForm,
    errors: Errors,
) -> Result<PackagesPage, AppError> {
    let q = search_text(&query.q);
    let page = page_request(&query.page);
    let (packages, total) = service::list_packages(
        &state.db.main,
        &PackageFilter {
            q: Some(q.clone()).filter(|q| !q.is_empty()),
        },
        &Sort::by(vec![(service_package::Column::Name, Order::Asc)]),
        page,
    )
    .await?;
    let policies = all_policies(&state.db.main).await?;
    let rows: Vec<PackageRow> = packages
        .iter()
        .map(|p| PackageRow {
            id: p.id,
            name: p.name.clone(),
            rates: rates_of(p),
            rate_limit: mikrotik_rate_limit(p),
            radius_group: p.radius_group.clone(),
            profile: dash(&p.mikrotik_profile),
            sessions: dash(&p.simultaneous_use),
            timeout: dash(&p.session_timeout_secs.map(|s| format!("{s} s"))),
        })
        .collect();
    Ok(PackagesPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("packages", "Packages"),
        pager: Pager::new(
            "/packages",
            vec![("q", q.clone())],
            page.page,
            total,
            rows.len(),
        ),
        rows,
        q,
        policy_options: policy_choices(&policies, &form.policy_id),
        direction_options: direction_choices(&form.quota_direction),
        tier_rows: form.tier_rows(&policies),
        form,
        errors,
    })
}

pub async fn list_packages(
    staff: Staff<Viewer>,
    Query(query): Query<PackageListQuery>,
) -> Result<PackagesPage, AppError> {
    let chrome = staff.chrome().await?;
    let (form, errors) = (PackageForm::default(), Errors::default());
    packages_page(&staff.state, chrome, &query, form, errors).await
}

pub async fn create_package(
    staff: Staff<Operator>,
    Form(form): Form<PackageForm>,
) -> Result<Response, AppError> {
    let created = match form.parsed() {
        Ok(input) => service::create_package(staff.db(), &staff.actor, &input).await,
        Err(early) => Err(early),
    };
    match created {
        Ok(package) => {
            let created = format!("Package “{}” created.", package.name);
            Ok(staff
                .done(created, format!("/packages/{}", package.id))
                .await)
        }
        Err(UsersError::Invalid(fields)) => {
            let errors = Errors::from_fields(fields, PACKAGE_FIELDS);
            let chrome = staff.chrome().await?;
            let query = PackageListQuery::default();
            let page = packages_page(&staff.state, chrome, &query, form, errors).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub struct PackageView {
    pub id: i32,
    pub name: String,
    pub description: String,
    pub rates: String,
    pub burst: String,
    pub rate_limit: String,
    pub timeout: String,
    pub sessions: String,
    pub radius_group: String,
    pub profile: String,
    /// The policy its suspended or expired subscribers get.
    pub policy: String,
    /// The policy's page, when there is one.
    pub policy_href: Option<String>,
    /// The quota, its direction, anchor and tiers.
    pub quota: String,
    pub grace: String,
    pub status: String,
    pub users: u64,
    pub created: String,
    pub updated: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/package.html")]
pub struct PackagePage {
    chrome: Chrome,
    can_edit: bool,
    package: PackageView,
    form: PackageForm,
    policy_options: Vec<Choice>,
    direction_options: Vec<Choice>,
    tier_rows: Vec<TierRow>,
    errors: Errors,
    notice: Option<Notice>,
}

#[derive(Default)]
struct PackagePageState {
    form: Option<PackageForm>,
    errors: Errors,
    notice: Option<Notice>,
}

async fn package_page(
    state: &AppState,
    chrome: Chrome,
    id: i32,
    extra: PackagePageState,
) -> Result<PackagePage, AppError> {
    let db = &state.db.main;
    let p = service::get_package(db, id).await?;
    let (_, users) = service::list_users(
        db,
        &service::UserFilter {
            package_id: Some(id),
            ..Default::default()
        },
        &Sort::by(vec![(network_user::Column::Id, Order::Asc)]),
        PageRequest {
            page: 1,
            per_page: 1,
        },
    )
    .await?;
    let burst = RateLimit::of_package(&p)
        .and_then(|l| l.burst)
        .map(|b| {
            format!(
                "{} down / {} up, while the average stays below {} / {}, for up to {} s",
                b.download, b.upload, b.threshold_download, b.threshold_upload, b.time_secs
            )
        })
        .unwrap_or_else(|| "—".into());
    let policies = all_policies(db).await?;
    let (policy, policy_href) = policy_of(&p, &policies);
    let view = PackageView {
        id: p.id,
        name: p.name.clone(),
        description: p.description.clone().unwrap_or_default(),
        rates: rates_of(&p),
        burst,
        rate_limit: mikrotik_rate_limit(&p),
        timeout: dash(&p.session_timeout_secs.map(|s| format!("{s} s"))),
        sessions: dash(&p.simultaneous_use),
        radius_group: p.radius_group.clone(),
        profile: dash(&p.mikrotik_profile),
        policy,
        policy_href,
        quota: quota_of(&p, &policies),
        grace: match p.grace_days {
            Some(days) if days > 0 => format!("{days} day(s) after expiry"),
            _ => "none: the policy applies once the subscriber expires".into(),
        },
        status: p.status.clone(),
        users,
        created: when(&p.created_at),
        updated: when(&p.updated_at),
    };
    let form = extra.form.unwrap_or_else(|| PackageForm::of(&p));
    Ok(PackagePage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("packages", format!("Package {}", p.name)),
        policy_options: policy_choices(&policies, &form.policy_id),
        direction_options: direction_choices(&form.quota_direction),
        tier_rows: form.tier_rows(&policies),
        form,
        package: view,
        errors: extra.errors,
        notice: extra.notice,
    })
}

fn direction_choices(current: &str) -> Vec<Choice> {
    Direction::ALL
        .iter()
        .map(|d| Choice::new(d.as_str(), d.label(), current.trim()))
        .collect()
}

/// The package's quota as its page says it.
fn quota_of(p: &service_package::Model, policies: &[service_policy::Model]) -> String {
    let Some(bytes) = p.quota_bytes.filter(|b| *b > 0) else {
        return "none".into();
    };
    let direction = p
        .quota_direction
        .as_deref()
        .and_then(|d| d.parse::<Direction>().ok())
        .unwrap_or_default();
    let tiers: Vec<String> = Tiers::from_column(p.quota_tiers.as_deref())
        .as_slice()
        .iter()
        .map(|t| {
            let policy = policies
                .iter()
                .find(|x| x.id == t.policy_id)
                .map(policy_label)
                .unwrap_or_else(|| format!("policy {}", t.policy_id));
            format!("at {}%: {policy}", t.threshold_percent)
        })
        .collect();
    let anchor = AnchorDay::from_column(p.cycle_anchor_day).unwrap_or(AnchorDay::FIRST);
    format!(
        "{} per cycle ({}), cycles from day {} of the month{}",
        human_bytes(bytes),
        direction.label().to_lowercase(),
        anchor.day(),
        if tiers.is_empty() {
            "; no tiers: usage is counted only".to_string()
        } else {
            format!("; {}", tiers.join(", "))
        }
    )
}

/// The package's policy as its page names it, and that policy's page: its
/// own, else the default one (named so), else none at all.
fn policy_of(
    package: &service_package::Model,
    policies: &[service_policy::Model],
) -> (String, Option<String>) {
    let href = |p: &service_policy::Model| Some(format!("/policies/{}", p.id));
    match package.policy_id {
        Some(id) => match policies.iter().find(|p| p.id == id) {
            Some(p) => (policy_label(p), href(p)),
            None => (format!("policy {id}"), None),
        },
        None => match policies.iter().find(|p| p.default_marker.is_some()) {
            Some(p) => (format!("Default policy: {}", policy_label(p)), href(p)),
            None => (
                "Default policy (none is set: suspended and expired subscribers are refused)"
                    .into(),
                None,
            ),
        },
    }
}

const NOT_FOUND: &str = "There is no such package.";

pub async fn show_package(
    staff: Staff<Viewer>,
    Path(id): Path<String>,
) -> Result<PackagePage, AppError> {
    let chrome = staff.chrome().await?;
    let extra = PackagePageState::default();
    package_page(&staff.state, chrome, path_id(&id, NOT_FOUND)?, extra).await
}

pub async fn update_package(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<PackageForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let updated = match form.parsed() {
        Ok(input) => service::update_package(staff.db(), &staff.actor, id, &input).await,
        Err(early) => Err(early),
    };
    match updated {
        Ok(package) => {
            let saved = format!("Package “{}” saved.", package.name);
            Ok(staff.done(saved, format!("/packages/{id}")).await)
        }
        Err(UsersError::Invalid(fields)) => {
            let extra = PackagePageState {
                form: Some(form),
                errors: Errors::from_fields(fields, PACKAGE_FIELDS),
                ..Default::default()
            };
            let page = package_page(&staff.state, staff.chrome().await?, id, extra).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_package(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let name = service::get_package(staff.db(), id).await?.name;
    match service::delete_package(staff.db(), &staff.actor, id).await {
        Ok(()) => Ok(staff
            .done(format!("Package “{name}” deleted."), "/packages")
            .await),
        Err(UsersError::Conflict { message, .. }) => {
            let extra = PackagePageState {
                notice: Some(Notice::error(message)),
                ..Default::default()
            };
            let page = package_page(&staff.state, staff.chrome().await?, id, extra).await?;
            again(StatusCode::CONFLICT, page)
        }
        Err(e) => Err(e.into()),
    }
}
