//! The network user pages: the list, the new form, and the page of one user
//! with its RADIUS panels.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use sea_orm::Order;
use serde::Deserialize;

use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::ipam::service::IpamSettings;
use crate::query::{PageRequest, Sort, MAX_PER_PAGE};
use crate::radius::html::SessionActions;
use crate::staff::{Operator, Role, Viewer};
use crate::users::domain::mikrotik_rate_limit;
use crate::users::entities::network_user;
use crate::users::html::{
    merged, package_choices, package_names, problems, subnet_choices, SERVICE_TYPES, STATUSES,
};
use crate::users::provision;
use crate::users::service::{self, UserInput, UsersError};
use crate::web::csv;
use crate::web::forms::{
    again, choices, dash, is_htmx, moment, optional_number, optional_string, path_id,
    render_fragment, search_text as text, with_vary, Choice, Errors, Notice, Staff,
};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, when_opt, Pager};

/// The user form; the same fields create and change a user. No `Debug`:
/// it holds a password.
#[derive(Default, Clone, Deserialize)]
#[serde(default)]
pub struct UserForm {
    pub username: String,
    /// Required to create; empty on the edit form keeps the current one.
    /// Never sent back to the browser.
    pub password: String,
    pub service_type: String,
    pub package_id: String,
    pub status: String,
    pub mac_address: String,
    pub expires_at: String,
    pub static_subnet_id: String,
    pub static_ip: String,
    pub full_name: String,
    pub notes: String,
    pub cycle_anchor_day: String,
}

const USER_FIELDS: &[&str] = &[
    "username",
    "password",
    "service_type",
    "package_id",
    "status",
    "mac_address",
    "expires_at",
    "static_subnet_id",
    "static_ip",
    "full_name",
    "notes",
    "cycle_anchor_day",
];

impl UserForm {
    fn blank() -> Self {
        Self {
            service_type: "pppoe".into(),
            status: "active".into(),
            ..Default::default()
        }
    }

    fn of(user: &network_user::Model) -> Self {
        Self {
            username: user.username.clone(),
            password: String::new(),
            service_type: user.service_type.clone(),
            package_id: user.package_id.map(|p| p.to_string()).unwrap_or_default(),
            status: user.status.clone(),
            mac_address: user.mac_address.clone().unwrap_or_default(),
            expires_at: user
                .expires_at
                .map(|at| at.format("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_default(),
            // The subnet is not stored on the user: the page shows the
            // address, and a static user keeps it unless a subnet is chosen.
            static_subnet_id: String::new(),
            static_ip: user.static_ip.clone().unwrap_or_default(),
            full_name: user.full_name.clone().unwrap_or_default(),
            notes: user.notes.clone().unwrap_or_default(),
            cycle_anchor_day: user
                .cycle_anchor_day
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }
    }

    /// The form as it goes back to the browser: without the password.
    fn without_password(mut self) -> Self {
        self.password = String::new();
        self
    }

    pub fn status_options(&self) -> Vec<Choice> {
        choices(&STATUSES, &self.status)
    }

    pub fn type_options(&self) -> Vec<Choice> {
        choices(&SERVICE_TYPES, &self.service_type)
    }

    /// The service's input, and what could not even be read as its type.
    fn input(&self) -> (UserInput, FieldErrors) {
        let mut errors = FieldErrors::new();
        let expires_at = match optional_string(&self.expires_at).map(|t| moment(&t)) {
            Some(Ok(at)) => Some(at),
            Some(Err(e)) => {
                errors.insert("expires_at".into(), e);
                None
            }
            None => None,
        };
        let input = UserInput {
            username: self.username.clone(),
            password: Some(self.password.clone())
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            service_type: self.service_type.clone(),
            package_id: optional_number("package_id", &self.package_id, &mut errors),
            status: optional_string(&self.status),
            mac_address: optional_string(&self.mac_address),
            expires_at,
            static_subnet_id: optional_number(
                "static_subnet_id",
                &self.static_subnet_id,
                &mut errors,
            ),
            static_ip: optional_string(&self.static_ip),
            full_name: optional_string(&self.full_name),
            notes: optional_string(&self.notes),
            cycle_anchor_day: optional_number(
                "cycle_anchor_day",
                &self.cycle_anchor_day,
                &mut errors,
            ),
        };
        (input, errors)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct UserListQuery {
    page: Option<String>,
    q: Option<String>,
    status: Option<String>,
    service_type: Option<String>,
    package_id: Option<String>,
}

pub struct UserRow {
    pub id: i32,
    pub username: String,
    pub full_name: String,
    pub service_type: String,
    pub package: String,
    pub status: String,
    pub static_ip: String,
    pub expires: String,
}

/// The users list and its filters.
pub struct UserResults {
    pub rows: Vec<UserRow>,
    pub pager: Pager,
    pub filtered: bool,
    pub csv_href: String,
    pub can_edit: bool,
    /// A filter that did not parse (shown, and ignored).
    pub problem: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/users.html")]
pub struct UsersPage {
    chrome: Chrome,
    q: String,
    status_options: Vec<Choice>,
    type_options: Vec<Choice>,
    package_options: Vec<Choice>,
    results: UserResults,
}

#[derive(Template)]
#[template(path = "users/users.html", block = "results")]
pub struct UserResultsFragment {
    results: UserResults,
}

fn list_params(query: &UserListQuery) -> Vec<(&'static str, String)> {
    vec![
        ("q", text(&query.q)),
        ("status", text(&query.status)),
        ("service_type", text(&query.service_type)),
        ("package_id", text(&query.package_id)),
    ]
}

fn list_filter(query: &UserListQuery) -> (service::UserFilter, Option<String>) {
    let mut errors = FieldErrors::new();
    let filter = service::UserFilter::parse(
        query.q.as_deref(),
        query.status.as_deref(),
        query.service_type.as_deref(),
        query.package_id.as_deref(),
        &mut errors,
    );
    let problem = (!errors.is_empty()).then(|| {
        errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    });
    (filter, problem)
}

async fn user_results(
    state: &AppState,
    chrome: &Chrome,
    query: &UserListQuery,
) -> Result<UserResults, AppError> {
    let (filter, problem) = list_filter(query);
    let page = page_request(&query.page);
    let sort = Sort::by(vec![(network_user::Column::Username, Order::Asc)]);
    let (users, total) = service::list_users(&state.db.main, &filter, &sort, page).await?;
    let packages = package_names(state).await?;
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|u| UserRow {
            id: u.id,
            package: u
                .package_id
                .and_then(|id| packages.get(&id).cloned())
                .unwrap_or_else(|| "—".into()),
            full_name: u.full_name.clone().unwrap_or_default(),
            service_type: u.service_type,
            status: u.status,
            static_ip: dash(&u.static_ip),
            expires: when_opt(&u.expires_at),
            username: u.username,
        })
        .collect();
    let params = list_params(query);
    let filtered = params.iter().any(|(_, v)| !v.is_empty());
    let csv_query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    Ok(UserResults {
        pager: Pager::new("/users", params, page.page, total, rows.len()),
        rows,
        filtered,
        csv_href: if csv_query.is_empty() {
            "/users.csv".into()
        } else {
            format!("/users.csv?{csv_query}")
        },
        can_edit: chrome.can(Role::Operator),
        problem,
    })
}

pub async fn list_users(
    staff: Staff<Viewer>,
    headers: HeaderMap,
    Query(query): Query<UserListQuery>,
) -> Result<Response, AppError> {
    let chrome = staff.chrome().await?;
    let state = &staff.state;
    let results = user_results(state, &chrome, &query).await?;
    if is_htmx(&headers) {
        return render_fragment(StatusCode::OK, &UserResultsFragment { results });
    }
    let page = UsersPage {
        chrome: chrome.at("users", "Network Users"),
        q: text(&query.q),
        status_options: choices(&STATUSES, &text(&query.status)),
        type_options: choices(&SERVICE_TYPES, &text(&query.service_type)),
        package_options: package_choices(state, &text(&query.package_id)).await?,
        results,
    };
    Ok(with_vary(page.into_response()))
}

/// The filtered users as CSV (never their passwords).
pub async fn export_users(
    staff: Staff<Viewer>,
    Query(query): Query<UserListQuery>,
) -> Result<Response, AppError> {
    let (filter, _) = list_filter(&query);
    let packages = package_names(&staff.state).await?;
    let sort = Sort::by(vec![(network_user::Column::Username, Order::Asc)]);
    let mut out = String::from(
        "id,username,full_name,service_type,package,status,static_ip,mac_address,expires_at,created_at\r\n",
    );
    let mut page = 1;
    loop {
        let request = PageRequest {
            page,
            per_page: MAX_PER_PAGE,
        };
        let (users, total) = service::list_users(staff.db(), &filter, &sort, request).await?;
        for u in &users {
            let package = u
                .package_id
                .and_then(|id| packages.get(&id).cloned())
                .unwrap_or_default();
            let fields = [
                u.id.to_string(),
                u.username.clone(),
                u.full_name.clone().unwrap_or_default(),
                u.service_type.clone(),
                package,
                u.status.clone(),
                u.static_ip.clone().unwrap_or_default(),
                u.mac_address.clone().unwrap_or_default(),
                u.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                u.created_at.to_rfc3339(),
            ];
            csv::line(&mut out, &fields);
        }
        if users.is_empty() || page * MAX_PER_PAGE >= total {
            break;
        }
        page += 1;
    }
    Ok(csv::download("network-users.csv", out))
}

#[derive(Template, WebTemplate)]
#[template(path = "users/user_new.html")]
pub struct NewUserPage {
    chrome: Chrome,
    form: UserForm,
    errors: Errors,
    package_options: Vec<Choice>,
    subnet_options: Vec<Choice>,
    creating: bool,
}

async fn new_user_page(
    state: &AppState,
    chrome: Chrome,
    form: UserForm,
    errors: Errors,
) -> Result<NewUserPage, AppError> {
    Ok(NewUserPage {
        chrome: chrome.at("users", "New network user"),
        package_options: package_choices(state, &form.package_id).await?,
        subnet_options: subnet_choices(state, &form.static_subnet_id).await?,
        form: form.without_password(),
        errors,
        creating: true,
    })
}

pub async fn new_user(staff: Staff<Operator>) -> Result<NewUserPage, AppError> {
    let chrome = staff.chrome().await?;
    new_user_page(&staff.state, chrome, UserForm::blank(), Errors::default()).await
}

pub async fn create_user(
    staff: Staff<Operator>,
    Form(form): Form<UserForm>,
) -> Result<Response, AppError> {
    let state = &staff.state;
    let (input, early) = form.input();
    let created = if early.is_empty() {
        let settings = IpamSettings::from_config(&state.config);
        provision::create_user(&state.db, &state.app_key, settings, &staff.actor, &input).await
    } else {
        Err(merged(early, problems(input.validate(true))))
    };
    let (status, fields) = match created {
        Ok(created) => {
            let created_text = format!("User “{}” created.", created.username);
            return Ok(staff
                .done(created_text, format!("/users/{}", created.id))
                .await);
        }
        Err(e) => failed(e)?,
    };
    let errors = Errors::from_fields(fields, USER_FIELDS);
    let page = new_user_page(state, staff.chrome().await?, form, errors).await?;
    again(status, page)
}

/// A create or update the service refused: its messages and their
/// status, 422 for fields, 409 (under the address) for a conflict.
fn failed(err: UsersError) -> Result<(StatusCode, FieldErrors), AppError> {
    match err {
        UsersError::Invalid(fields) => Ok((StatusCode::UNPROCESSABLE_ENTITY, fields)),
        UsersError::Conflict { message, .. } => Ok((
            StatusCode::CONFLICT,
            FieldErrors::from([("static_ip".to_string(), message)]),
        )),
        e => Err(e.into()),
    }
}

pub struct UserView {
    pub id: i32,
    pub username: String,
    pub full_name: String,
    pub service_type: String,
    pub status: String,
    pub package: String,
    pub package_id: Option<i32>,
    pub rate_limit: String,
    pub static_ip: String,
    pub mac_address: String,
    pub expires: String,
    pub notes: String,
    pub radius: String,
    pub created: String,
    pub updated: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/user.html")]
pub struct UserPage {
    chrome: Chrome,
    can_edit: bool,
    user: UserView,
    form: UserForm,
    errors: Errors,
    package_options: Vec<Choice>,
    subnet_options: Vec<Choice>,
    creating: bool,
    notice: Option<Notice>,
    /// Only on the answer to "Reveal password".
    revealed: Option<String>,
    /// RADIUS rows and sessions (templates/radius/_user_panels.html).
    /// None when the RADIUS database could not be read.
    radius: Option<crate::radius::html::UserRadiusPanels>,
}

#[derive(Default)]
struct UserPageState {
    form: Option<UserForm>,
    errors: Errors,
    notice: Option<Notice>,
    revealed: Option<String>,
}

async fn user_page(
    state: &AppState,
    chrome: Chrome,
    id: i32,
    extra: UserPageState,
) -> Result<UserPage, AppError> {
    let db = &state.db.main;
    let user = service::get_user(db, id).await?;
    let package = match user.package_id {
        Some(pid) => match service::get_package(db, pid).await {
            Ok(p) => Some(p),
            Err(UsersError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let form = extra
        .form
        .unwrap_or_else(|| UserForm::of(&user))
        .without_password();
    let view = UserView {
        id: user.id,
        username: user.username.clone(),
        full_name: dash(&user.full_name),
        service_type: user.service_type.clone(),
        status: user.status.clone(),
        package: package
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "—".into()),
        package_id: package.as_ref().map(|p| p.id),
        rate_limit: package
            .as_ref()
            .map(mikrotik_rate_limit)
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "—".into()),
        static_ip: dash(&user.static_ip),
        mac_address: dash(&user.mac_address),
        expires: when_opt(&user.expires_at),
        notes: user.notes.clone().unwrap_or_default(),
        radius: if user.radius_sync_pending {
            "waiting for the next RADIUS sync".into()
        } else {
            format!("synced {}", when_opt(&user.radius_synced_at))
        },
        created: when(&user.created_at),
        updated: when(&user.updated_at),
    };
    // The RADIUS database is a separate system: when it is down the page
    // still shows the user, with a notice instead of the panels.
    let radius = match crate::radius::html::user_panels(
        state,
        user.id,
        &user.username,
        package.as_ref().map(|p| p.radius_group.as_str()),
    )
    .await
    {
        Ok(mut panels) => {
            panels.actions = SessionActions::for_staff(&chrome, format!("/users/{}", user.id));
            Some(panels)
        }
        Err(err) => {
            tracing::warn!(network_user.id = user.id, error = %err, "the RADIUS panels could not be read");
            None
        }
    };
    Ok(UserPage {
        radius,
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("users", format!("User {}", user.username)),
        user: view,
        package_options: package_choices(state, &form.package_id).await?,
        subnet_options: subnet_choices(state, &form.static_subnet_id).await?,
        form,
        errors: extra.errors,
        creating: false,
        notice: extra.notice,
        revealed: extra.revealed,
    })
}

const NOT_FOUND: &str = "There is no such network user.";

pub async fn show_user(staff: Staff<Viewer>, Path(id): Path<String>) -> Result<UserPage, AppError> {
    let chrome = staff.chrome().await?;
    let extra = UserPageState::default();
    user_page(&staff.state, chrome, path_id(&id, NOT_FOUND)?, extra).await
}

pub async fn update_user(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<UserForm>,
) -> Result<Response, AppError> {
    let state = &staff.state;
    let id = path_id(&id, NOT_FOUND)?;
    let (input, early) = form.input();
    let updated = if early.is_empty() {
        let settings = IpamSettings::from_config(&state.config);
        let (key, routers) = (&state.app_key, &state.router_pool);
        provision::update_user(&state.db, key, routers, settings, &staff.actor, id, &input)
            .await
            .map(|w| w.user)
    } else {
        Err(merged(
            early,
            service::update_problems(staff.db(), id, &input).await?,
        ))
    };
    let (status, fields) = match updated {
        Ok(updated) => {
            let saved = format!("User “{}” saved.", updated.username);
            return Ok(staff.done(saved, format!("/users/{id}")).await);
        }
        Err(e) => failed(e)?,
    };
    let extra = UserPageState {
        form: Some(form),
        errors: Errors::from_fields(fields, USER_FIELDS),
        ..Default::default()
    };
    let page = user_page(state, staff.chrome().await?, id, extra).await?;
    again(status, page)
}

pub async fn delete_user(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let state = &staff.state;
    let id = path_id(&id, NOT_FOUND)?;
    let settings = IpamSettings::from_config(&state.config);
    let deleted =
        provision::delete_user(&state.db, &state.router_pool, settings, &staff.actor, id).await?;
    let mut message = format!("User “{}” deleted.", deleted.user.username);
    if let Some(allocation) = deleted.unreleased_allocation {
        message.push_str(&format!(
            " Its address (allocation {allocation}) could not be released; release it in IPAM."
        ));
    }
    Ok(staff.done(message, "/users").await)
}

/// Shows the password once, on this answer only; audited by the service.
pub async fn reveal_password(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let chrome = staff.chrome().await?;
    let password =
        service::reveal_password(staff.db(), &staff.state.app_key, &staff.actor, id).await?;
    let extra = UserPageState {
        revealed: Some(password.expose().to_string()),
        ..Default::default()
    };
    let page = user_page(&staff.state, chrome, id, extra).await?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        page,
    )
        .into_response())
}
