//! The package pages: the list, the new form and the page of one package.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use sea_orm::Order;
use serde::Deserialize;
use tower_sessions::Session;

use crate::access::SignedIn;
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, Sort};
use crate::staff::Role;
use crate::users::domain::{mikrotik_rate_limit, Rate, RateLimit};
use crate::users::entities::{network_user, service_package};
use crate::users::html::{merged, optional_number, text};
use crate::users::service::{self, PackageFilter, PackageInput, UsersError};
use crate::web::flash;
use crate::web::forms::RequestParts;
use crate::web::forms::{dash, optional_string, path_id, see_other, Errors, Notice};
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
        }
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
        };
        (input, errors)
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
    let q = text(&query.q);
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
        form,
        errors,
    })
}

pub async fn list_packages(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<PackageListQuery>,
) -> Result<PackagesPage, AppError> {
    packages_page(
        &state,
        chrome,
        &query,
        PackageForm::default(),
        Errors::default(),
    )
    .await
}

pub async fn create_package(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Form(form): Form<PackageForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let (input, early) = form.input();
    let created = if early.is_empty() {
        service::create_package(&state.db.main, &user.actor(parts.address), &input).await
    } else {
        Err(merged(early, input.validate().map(|_| ())))
    };
    match created {
        Ok(package) => {
            flash::success(&session, format!("Package “{}” created.", package.name)).await;
            Ok(see_other(format!("/packages/{}", package.id)))
        }
        Err(UsersError::Invalid(fields)) => {
            let errors = Errors::from_fields(fields, PACKAGE_FIELDS);
            let page =
                packages_page(&state, chrome, &PackageListQuery::default(), form, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
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
        status: p.status.clone(),
        users,
        created: when(&p.created_at),
        updated: when(&p.updated_at),
    };
    Ok(PackagePage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("packages", format!("Package {}", p.name)),
        form: extra.form.unwrap_or_else(|| PackageForm::of(&p)),
        package: view,
        errors: extra.errors,
        notice: extra.notice,
    })
}

pub async fn show_package(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<PackagePage, AppError> {
    package_page(
        &state,
        chrome,
        path_id(&id, "There is no such package.")?,
        PackagePageState::default(),
    )
    .await
}

pub async fn update_package(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<PackageForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, "There is no such package.")?;
    let (input, early) = form.input();
    let updated = if early.is_empty() {
        service::update_package(&state.db.main, &user.actor(parts.address), id, &input).await
    } else {
        Err(merged(early, input.validate().map(|_| ())))
    };
    match updated {
        Ok(package) => {
            flash::success(&session, format!("Package “{}” saved.", package.name)).await;
            Ok(see_other(format!("/packages/{id}")))
        }
        Err(UsersError::Invalid(fields)) => {
            let extra = PackagePageState {
                form: Some(form),
                errors: Errors::from_fields(fields, PACKAGE_FIELDS),
                ..Default::default()
            };
            let page = package_page(&state, chrome, id, extra).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_package(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, "There is no such package.")?;
    let name = service::get_package(&state.db.main, id).await?.name;
    match service::delete_package(&state.db.main, &user.actor(parts.address), id).await {
        Ok(()) => {
            flash::success(&session, format!("Package “{name}” deleted.")).await;
            Ok(see_other("/packages".into()))
        }
        Err(UsersError::Conflict { message, .. }) => {
            let extra = PackagePageState {
                notice: Some(Notice::error(message)),
                ..Default::default()
            };
            let page = package_page(&state, chrome, id, extra).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
