//! MikroTik routers and PPPoE users: the staff pages. Every handler parses
//! the form, calls one function of [`super::service`] and builds a view.
//!
//! Forms post normally: a redirect with a flash message on success, the
//! same page with inline messages (422), a notice naming the conflict (409)
//! or the router's error (502/504) otherwise. Passwords never appear in a
//! page, not even in a form sent back with errors.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use sea_orm::{ColumnTrait, EntityTrait, Order, QueryFilter};
use serde::Deserialize;
use tower_sessions::Session;

use super::entities::{mikrotik_pppoe_user, mikrotik_router};
use super::service::{
    self, MikrotikError, PppoeFilter, PppoeInput, RouterFilter, RouterInput, PPP_SERVICES,
};
use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, Sort, MAX_PER_PAGE};
use crate::staff::Role;
use crate::users::entities::network_user;
use crate::web::account::RequestParts;
use crate::web::auth::SignedIn;
use crate::web::flash;
use crate::web::forms::{dash, optional_string, path_id, see_other, Errors, Notice};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, when_opt, Pager};

/// The MikroTik pages; merged into the staff router (behind its auth, CSRF
/// and error layers) by `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mikrotik/routers", get(list_routers).post(create_router))
        .route("/mikrotik/routers/new", get(new_router))
        .route(
            "/mikrotik/routers/{id}",
            get(show_router).post(update_router),
        )
        .route("/mikrotik/routers/{id}/test", post(test_router))
        .route("/mikrotik/routers/{id}/delete", post(delete_router))
        .route("/mikrotik/pppoe", get(list_pppoe).post(create_pppoe))
        .route("/mikrotik/pppoe.csv", get(export_pppoe))
        .route("/mikrotik/pppoe/new", get(new_pppoe))
        .route("/mikrotik/pppoe/{id}", get(show_pppoe).post(update_pppoe))
        .route("/mikrotik/pppoe/{id}/delete", post(delete_pppoe))
}

const ROUTER_STATUSES: [&str; 3] = [
    service::ROUTER_STATUS_UNKNOWN,
    service::ROUTER_STATUS_ONLINE,
    service::ROUTER_STATUS_OFFLINE,
];
const PPPOE_STATUSES: [&str; 2] = [service::PPPOE_STATUS_ACTIVE, service::PPPOE_STATUS_DISABLED];

// ------------------------------------------------------------ view helpers

/// One `<option>`: value, label, selected.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(values: &[&str], current: &str) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice {
            value: v.to_string(),
            label: v.to_string(),
            selected: *v == current,
        })
        .collect()
}

fn text(raw: &Option<String>) -> String {
    raw.as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(100)
        .collect()
}

/// What a failed form submission shows: the HTTP status, inline field
/// messages, and a notice above the form. Other errors become error pages.
fn form_failure(
    err: MikrotikError,
    known: &[&str],
    conflict_field: &str,
) -> Result<(StatusCode, Errors, Option<Notice>), AppError> {
    match err {
        MikrotikError::Invalid(fields) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Errors::from_fields(fields, known),
            None,
        )),
        MikrotikError::Conflict { message, code } => {
            let status = StatusCode::CONFLICT;
            if code == "pppoe_secret_missing" {
                return Ok((status, Errors::default(), Some(Notice::error(message))));
            }
            Ok((
                status,
                Errors::from_fields(
                    FieldErrors::from([(conflict_field.to_string(), message)]),
                    known,
                ),
                None,
            ))
        }
        err if err.is_router_error() => {
            let app = AppError::from(err);
            let message = app.to_string();
            Ok((
                app.status(),
                Errors::default(),
                Some(Notice::error(format!("Nothing was saved: {message}"))),
            ))
        }
        other => Err(other.into()),
    }
}

// -------------------------------------------------------------- routers

/// The router form; the same fields create and change a router. No
/// `Debug`: it holds a password.
#[derive(Default, Clone, Deserialize)]
#[serde(default)]
pub struct RouterForm {
    pub name: String,
    pub ip_address: String,
    pub api_port: String,
    /// A checkbox: present ("on") when ticked.
    pub use_tls: Option<String>,
    pub tls_fingerprint: String,
    pub username: String,
    /// Required to create; empty on the edit form keeps the current one.
    /// Never sent back to the browser.
    pub password: String,
}

const ROUTER_FIELDS: &[&str] = &[
    "name",
    "ip_address",
    "api_port",
    "tls_fingerprint",
    "username",
    "password",
];

impl RouterForm {
    fn of(r: &mikrotik_router::Model) -> Self {
        Self {
            name: r.name.clone(),
            ip_address: r.ip_address.clone(),
            api_port: r.api_port.to_string(),
            use_tls: r.use_tls.then(|| "on".to_string()),
            tls_fingerprint: r.tls_fingerprint.clone().unwrap_or_default(),
            username: r.username.clone(),
            password: String::new(),
        }
    }

    fn without_password(mut self) -> Self {
        self.password = String::new();
        self
    }

    pub fn tls(&self) -> bool {
        self.use_tls.is_some()
    }

    fn input(&self) -> (RouterInput, FieldErrors) {
        let mut errors = FieldErrors::new();
        let api_port = match self.api_port.trim() {
            "" => None,
            port => match port.parse::<i64>() {
                Ok(port) => Some(port),
                Err(_) => {
                    errors.insert(
                        "api_port".into(),
                        format!("\"{port}\" is not a port from 1 to 65535"),
                    );
                    None
                }
            },
        };
        let input = RouterInput {
            name: self.name.clone(),
            ip_address: self.ip_address.clone(),
            api_port,
            use_tls: self.tls(),
            tls_fingerprint: optional_string(&self.tls_fingerprint),
            username: self.username.clone(),
            password: Some(self.password.clone())
                .filter(|p| !p.is_empty())
                .map(Secret::new),
        };
        (input, errors)
    }
}

/// Reading the form's numbers failed: those messages, plus the service's.
fn merged_router(early: FieldErrors, input: &RouterInput, creating: bool) -> MikrotikError {
    let mut fields = early;
    if let Err(MikrotikError::Invalid(more)) = input.validate(creating) {
        for (k, v) in more {
            fields.entry(k).or_insert(v);
        }
    }
    MikrotikError::Invalid(fields)
}

#[derive(Debug, Default, Deserialize)]
pub struct RouterListQuery {
    page: Option<String>,
    q: Option<String>,
    status: Option<String>,
}

pub struct RouterRow {
    pub id: i32,
    pub name: String,
    pub address: String,
    pub tls: bool,
    pub status: String,
    pub identity: String,
    pub version: String,
    pub last_seen: String,
    pub last_error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mikrotik/routers.html")]
pub struct RoutersPage {
    chrome: Chrome,
    q: String,
    status_options: Vec<Choice>,
    rows: Vec<RouterRow>,
    pager: Pager,
    filtered: bool,
    can_edit: bool,
}

pub async fn list_routers(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<RouterListQuery>,
) -> Result<RoutersPage, AppError> {
    let status = text(&query.status);
    let filter = RouterFilter {
        q: Some(text(&query.q)),
        status: ROUTER_STATUSES
            .contains(&status.as_str())
            .then(|| status.clone()),
    };
    let page = page_request(&query.page);
    let sort = Sort::by(vec![(mikrotik_router::Column::Name, Order::Asc)]);
    let role = chrome.user.as_ref().map_or(Role::Viewer, |u| u.role);
    let (routers, total) = service::list_routers(&state.db.main, &filter, &sort, page).await?;
    let rows: Vec<RouterRow> = routers
        .into_iter()
        .map(|r| RouterRow {
            id: r.id,
            address: service::socket_address(&r.ip_address, r.api_port as u16),
            tls: r.use_tls,
            identity: dash(&r.identity),
            version: dash(&r.version),
            last_seen: when_opt(&r.last_seen_at),
            last_error: service::router_error_for(role, r.last_error).unwrap_or_default(),
            status: r.status,
            name: r.name,
        })
        .collect();
    let params = vec![("q", text(&query.q)), ("status", status.clone())];
    let filtered = params.iter().any(|(_, v)| !v.is_empty());
    Ok(RoutersPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("routers", "Routers"),
        q: text(&query.q),
        status_options: choices(&ROUTER_STATUSES, &status),
        pager: Pager::new("/mikrotik/routers", params, page.page, total, rows.len()),
        rows,
        filtered,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "mikrotik/router_new.html")]
pub struct NewRouterPage {
    chrome: Chrome,
    form: RouterForm,
    errors: Errors,
    creating: bool,
}

pub async fn new_router(
    SignedIn(user): SignedIn,
    chrome: Chrome,
) -> Result<NewRouterPage, AppError> {
    user.require(Role::Operator)?;
    Ok(NewRouterPage {
        chrome: chrome.at("routers", "New router"),
        form: RouterForm {
            username: "admin".into(),
            ..Default::default()
        },
        errors: Errors::default(),
        creating: true,
    })
}

pub async fn create_router(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Form(form): Form<RouterForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let (input, early) = form.input();
    let created = if early.is_empty() {
        service::create_router(
            &state.db.main,
            &state.app_key,
            &user.actor(parts.address),
            &input,
        )
        .await
    } else {
        Err(merged_router(early, &input, true))
    };
    match created {
        Ok(router) => {
            flash::success(
                &session,
                format!(
                    "Router “{}” added. Test the connection to check it.",
                    router.name
                ),
            )
            .await;
            Ok(see_other(format!("/mikrotik/routers/{}", router.id)))
        }
        Err(err) => {
            let (status, errors, _) = form_failure(err, ROUTER_FIELDS, "name")?;
            let page = NewRouterPage {
                chrome: chrome.at("routers", "New router"),
                form: form.without_password(),
                errors,
                creating: true,
            };
            Ok((status, page).into_response())
        }
    }
}

pub struct RouterView {
    pub id: i32,
    pub name: String,
    pub address: String,
    pub tls: String,
    pub username: String,
    pub status: String,
    pub identity: String,
    pub version: String,
    pub last_seen: String,
    pub last_error: String,
    pub pppoe_users: u64,
    pub created: String,
    pub updated: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mikrotik/router.html")]
pub struct RouterPage {
    chrome: Chrome,
    can_edit: bool,
    router: RouterView,
    form: RouterForm,
    errors: Errors,
    creating: bool,
    notice: Option<Notice>,
}

async fn router_page(
    state: &AppState,
    chrome: Chrome,
    id: i32,
    form: Option<RouterForm>,
    errors: Errors,
    notice: Option<Notice>,
) -> Result<RouterPage, AppError> {
    let db = &state.db.main;
    let role = chrome.user.as_ref().map_or(Role::Viewer, |u| u.role);
    let r = service::get_router(db, id).await?;
    let pppoe_users = service::count_pppoe_users(db, id).await?;
    let form = form
        .unwrap_or_else(|| RouterForm::of(&r))
        .without_password();
    let view = RouterView {
        id: r.id,
        name: r.name.clone(),
        address: service::socket_address(&r.ip_address, r.api_port as u16),
        tls: match (&r.use_tls, &r.tls_fingerprint) {
            (true, Some(pin)) => format!("API-SSL, certificate pinned to {pin}"),
            _ => "plain API (no TLS)".into(),
        },
        username: r.username.clone(),
        status: r.status.clone(),
        identity: dash(&r.identity),
        version: dash(&r.version),
        last_seen: when_opt(&r.last_seen_at),
        last_error: service::router_error_for(role, r.last_error.clone()).unwrap_or_default(),
        pppoe_users,
        created: when(&r.created_at),
        updated: when(&r.updated_at),
    };
    Ok(RouterPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("routers", format!("Router {}", r.name)),
        router: view,
        form,
        errors,
        creating: false,
        notice,
    })
}

pub async fn show_router(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<RouterPage, AppError> {
    let id = path_id(&id, "There is no such router.")?;
    router_page(&state, chrome, id, None, Errors::default(), None).await
}

pub async fn update_router(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<RouterForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, "There is no such router.")?;
    let (input, early) = form.input();
    let updated = if early.is_empty() {
        service::update_router(
            &state.db.main,
            &state.app_key,
            &user.actor(parts.address),
            id,
            &input,
        )
        .await
    } else {
        Err(merged_router(early, &input, false))
    };
    match updated {
        Ok(router) => {
            // New address or credentials: no old connection or back-off is reused.
            state.router_pool.forget(id);
            flash::success(&session, format!("Router “{}” saved.", router.name)).await;
            Ok(see_other(format!("/mikrotik/routers/{id}")))
        }
        Err(err) => {
            let (status, errors, notice) = form_failure(err, ROUTER_FIELDS, "name")?;
            let page = router_page(&state, chrome, id, Some(form), errors, notice).await?;
            Ok((status, page).into_response())
        }
    }
}

/// Tests the connection and shows the router page with what it answered
/// (identity, version, uptime) or the exact error; the service records
/// the outcome on the router.
pub async fn test_router(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, "There is no such router.")?;
    let tested = service::test_router(
        &state.db.main,
        &state.router_pool,
        &user.actor(parts.address),
        id,
    )
    .await;
    let (status, notice) = match tested {
        Ok(probe) => (
            StatusCode::OK,
            Notice::success(format!(
                "Connected. Identity: {}; RouterOS {}; up {}{}.",
                probe.identity,
                probe.version,
                probe.uptime,
                probe
                    .board_name
                    .map(|b| format!("; board {b}"))
                    .unwrap_or_default()
            )),
        ),
        Err(err) if err.is_router_error() => {
            let app = AppError::from(err);
            (
                app.status(),
                Notice::error(format!("Connection test failed: {app}")),
            )
        }
        Err(err) => return Err(err.into()),
    };
    let page = router_page(&state, chrome, id, None, Errors::default(), Some(notice)).await?;
    Ok((status, page).into_response())
}

pub async fn delete_router(
    SignedIn(user): SignedIn,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, "There is no such router.")?;
    let router = service::delete_router(&state.db.main, &user.actor(parts.address), id).await?;
    state.router_pool.forget(id);
    flash::success(&session, format!("Router “{}” deleted.", router.name)).await;
    Ok(see_other("/mikrotik/routers".into()))
}

// ---------------------------------------------------------- PPPoE users

/// The PPPoE user form. No `Debug`: it holds a password.
#[derive(Default, Clone, Deserialize)]
#[serde(default)]
pub struct PppoeForm {
    pub router_id: String,
    pub username: String,
    /// Required to create (unless linked to a network user); empty on the
    /// edit form keeps the current one. Never sent back to the browser.
    pub password: String,
    pub service: String,
    pub profile: String,
    pub local_address: String,
    pub remote_address: String,
    /// A checkbox: present when ticked.
    pub disabled: Option<String>,
    /// The username of a network user (service type pppoe) to link.
    pub network_user: String,
}

const PPPOE_FIELDS: &[&str] = &[
    "router_id",
    "username",
    "password",
    "service",
    "profile",
    "local_address",
    "remote_address",
    "network_user",
];

impl PppoeForm {
    fn blank(router_id: Option<i32>) -> Self {
        Self {
            router_id: router_id.map(|id| id.to_string()).unwrap_or_default(),
            service: "pppoe".into(),
            ..Default::default()
        }
    }

    fn of(p: &mikrotik_pppoe_user::Model, network_user: Option<String>) -> Self {
        Self {
            router_id: p.router_id.to_string(),
            username: p.username.clone(),
            password: String::new(),
            service: p.service.clone(),
            profile: p.profile.clone().unwrap_or_default(),
            local_address: p.local_address.clone().unwrap_or_default(),
            remote_address: p.remote_address.clone().unwrap_or_default(),
            disabled: (p.status == service::PPPOE_STATUS_DISABLED).then(|| "on".into()),
            network_user: network_user.unwrap_or_default(),
        }
    }

    fn without_password(mut self) -> Self {
        self.password = String::new();
        self
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled.is_some()
    }

    pub fn service_options(&self) -> Vec<Choice> {
        choices(PPP_SERVICES, &self.service)
    }

    /// The service's input; the linked user's name becomes its id here.
    async fn input(&self, state: &AppState) -> Result<(PppoeInput, FieldErrors), AppError> {
        let mut errors = FieldErrors::new();
        let router_id = match self.router_id.trim().parse::<i32>() {
            Ok(id) => id,
            Err(_) => {
                errors.insert("router_id".into(), "choose a router".into());
                0
            }
        };
        let network_user_id = match self.network_user.trim() {
            "" => None,
            name => {
                let found = network_user::Entity::find()
                    .filter(network_user::Column::Username.eq(name))
                    .one(&state.db.main)
                    .await?;
                match found {
                    Some(u) => Some(u.id),
                    None => {
                        errors.insert(
                            "network_user".into(),
                            format!("there is no network user named \"{name}\""),
                        );
                        None
                    }
                }
            }
        };
        let input = PppoeInput {
            router_id,
            username: self.username.clone(),
            password: Some(self.password.clone())
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            service: optional_string(&self.service),
            profile: optional_string(&self.profile),
            local_address: optional_string(&self.local_address),
            remote_address: optional_string(&self.remote_address),
            disabled: self.is_disabled(),
            network_user_id,
        };
        Ok((input, errors))
    }
}

fn rename_network_user_field(err: MikrotikError) -> MikrotikError {
    match err {
        MikrotikError::Invalid(fields) => MikrotikError::Invalid(
            fields
                .into_iter()
                .map(|(k, v)| {
                    if k == "network_user_id" {
                        ("network_user".to_string(), v)
                    } else {
                        (k, v)
                    }
                })
                .collect(),
        ),
        other => other,
    }
}

async fn router_names(state: &AppState) -> Result<HashMap<i32, String>, AppError> {
    Ok(service::all_routers(&state.db.main)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect())
}

async fn router_choices(state: &AppState, current: &str) -> Result<Vec<Choice>, AppError> {
    Ok(service::all_routers(&state.db.main)
        .await?
        .into_iter()
        .map(|r| {
            let value = r.id.to_string();
            Choice {
                selected: value == current,
                value,
                label: r.name,
            }
        })
        .collect())
}

async fn network_user_names(
    state: &AppState,
    ids: impl Iterator<Item = i32>,
) -> Result<HashMap<i32, String>, AppError> {
    let ids: Vec<i32> = ids.collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(network_user::Entity::find()
        .filter(network_user::Column::Id.is_in(ids))
        .all(&state.db.main)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}

#[derive(Debug, Default, Deserialize)]
pub struct PppoeListQuery {
    page: Option<String>,
    q: Option<String>,
    router_id: Option<String>,
    status: Option<String>,
}

impl PppoeListQuery {
    fn filter(&self) -> PppoeFilter {
        let status = text(&self.status);
        PppoeFilter {
            router_id: text(&self.router_id).parse().ok(),
            network_user_id: None,
            q: Some(text(&self.q)),
            status: PPPOE_STATUSES.contains(&status.as_str()).then_some(status),
        }
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("q", text(&self.q)),
            ("router_id", text(&self.router_id)),
            ("status", text(&self.status)),
        ]
    }
}

pub struct PppoeRow {
    pub id: i32,
    pub username: String,
    pub router: String,
    pub service: String,
    pub profile: String,
    pub remote_address: String,
    pub status: String,
    pub network_user: String,
    pub network_user_id: Option<i32>,
}

#[derive(Template, WebTemplate)]
#[template(path = "mikrotik/pppoe_users.html")]
pub struct PppoeUsersPage {
    chrome: Chrome,
    q: String,
    router_options: Vec<Choice>,
    status_options: Vec<Choice>,
    rows: Vec<PppoeRow>,
    pager: Pager,
    filtered: bool,
    can_edit: bool,
    has_routers: bool,
    csv_href: String,
    new_href: String,
}

pub async fn list_pppoe(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<PppoeListQuery>,
) -> Result<PppoeUsersPage, AppError> {
    let filter = query.filter();
    let page = page_request(&query.page);
    let sort = Sort::by(vec![(mikrotik_pppoe_user::Column::Username, Order::Asc)]);
    let (users, total) = service::list_pppoe_users(&state.db.main, &filter, &sort, page).await?;
    let routers = router_names(&state).await?;
    let linked = network_user_names(&state, users.iter().filter_map(|u| u.network_user_id)).await?;
    let rows: Vec<PppoeRow> = users
        .into_iter()
        .map(|u| PppoeRow {
            id: u.id,
            router: routers.get(&u.router_id).cloned().unwrap_or_default(),
            service: u.service,
            profile: u.profile.unwrap_or_else(|| "default".into()),
            remote_address: dash(&u.remote_address),
            status: u.status,
            network_user: u
                .network_user_id
                .and_then(|id| linked.get(&id).cloned())
                .unwrap_or_default(),
            network_user_id: u.network_user_id,
            username: u.username,
        })
        .collect();
    let params = query.params();
    let filtered = params.iter().any(|(_, v)| !v.is_empty());
    let query_string = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    let router_filter = text(&query.router_id);
    Ok(PppoeUsersPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("pppoe", "PPPoE Users"),
        q: text(&query.q),
        has_routers: !routers.is_empty(),
        router_options: router_choices(&state, &router_filter).await?,
        status_options: choices(&PPPOE_STATUSES, &text(&query.status)),
        pager: Pager::new("/mikrotik/pppoe", params, page.page, total, rows.len()),
        rows,
        filtered,
        csv_href: if query_string.is_empty() {
            "/mikrotik/pppoe.csv".into()
        } else {
            format!("/mikrotik/pppoe.csv?{query_string}")
        },
        new_href: if router_filter.is_empty() {
            "/mikrotik/pppoe/new".into()
        } else {
            format!("/mikrotik/pppoe/new?router_id={router_filter}")
        },
    })
}

/// The filtered PPPoE users as CSV (never their passwords).
pub async fn export_pppoe(
    _user: SignedIn,
    State(state): State<AppState>,
    Query(query): Query<PppoeListQuery>,
) -> Result<Response, AppError> {
    let filter = query.filter();
    let routers = router_names(&state).await?;
    let sort = Sort::by(vec![(mikrotik_pppoe_user::Column::Username, Order::Asc)]);
    let mut out = String::from(
        "id,router,username,service,profile,local_address,remote_address,status,router_item_id,network_user_id,created_at\r\n",
    );
    let mut page = 1;
    loop {
        let request = PageRequest {
            page,
            per_page: MAX_PER_PAGE,
        };
        let (users, total) =
            service::list_pppoe_users(&state.db.main, &filter, &sort, request).await?;
        for u in &users {
            let fields = [
                u.id.to_string(),
                routers.get(&u.router_id).cloned().unwrap_or_default(),
                u.username.clone(),
                u.service.clone(),
                u.profile.clone().unwrap_or_default(),
                u.local_address.clone().unwrap_or_default(),
                u.remote_address.clone().unwrap_or_default(),
                u.status.clone(),
                u.router_item_id.clone().unwrap_or_default(),
                u.network_user_id.map(|i| i.to_string()).unwrap_or_default(),
                u.created_at.to_rfc3339(),
            ];
            let line: Vec<String> = fields.iter().map(|f| crate::web::csv::cell(f)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        if users.is_empty() || page * MAX_PER_PAGE >= total {
            break;
        }
        page += 1;
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"pppoe-users.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "mikrotik/pppoe_new.html")]
pub struct NewPppoePage {
    chrome: Chrome,
    form: PppoeForm,
    errors: Errors,
    notice: Option<Notice>,
    router_options: Vec<Choice>,
    creating: bool,
}

async fn new_pppoe_page(
    state: &AppState,
    chrome: Chrome,
    form: PppoeForm,
    errors: Errors,
    notice: Option<Notice>,
) -> Result<NewPppoePage, AppError> {
    Ok(NewPppoePage {
        chrome: chrome.at("pppoe", "New PPPoE user"),
        router_options: router_choices(state, &form.router_id).await?,
        form: form.without_password(),
        errors,
        notice,
        creating: true,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct NewPppoeQuery {
    router_id: Option<String>,
}

pub async fn new_pppoe(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<NewPppoeQuery>,
) -> Result<NewPppoePage, AppError> {
    user.require(Role::Operator)?;
    let router_id = text(&query.router_id).parse().ok();
    new_pppoe_page(
        &state,
        chrome,
        PppoeForm::blank(router_id),
        Errors::default(),
        None,
    )
    .await
}

pub async fn create_pppoe(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Form(form): Form<PppoeForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let (input, early) = form.input(&state).await?;
    let created = if early.is_empty() {
        service::create_pppoe_user(
            &state.db.main,
            &state.router_pool,
            &user.actor(parts.address),
            &input,
        )
        .await
        .map_err(rename_network_user_field)
    } else {
        Err(MikrotikError::Invalid(early))
    };
    match created {
        Ok(row) => {
            flash::success(
                &session,
                format!("PPPoE user “{}” created on the router.", row.username),
            )
            .await;
            Ok(see_other(format!("/mikrotik/pppoe/{}", row.id)))
        }
        Err(err) => {
            let (status, errors, notice) = form_failure(err, PPPOE_FIELDS, "username")?;
            let page = new_pppoe_page(&state, chrome, form, errors, notice).await?;
            Ok((status, page).into_response())
        }
    }
}

pub struct PppoeView {
    pub id: i32,
    pub username: String,
    pub router: String,
    pub router_id: i32,
    pub service: String,
    pub profile: String,
    pub local_address: String,
    pub remote_address: String,
    pub status: String,
    pub router_item_id: String,
    pub network_user: String,
    pub network_user_id: Option<i32>,
    pub last_synced: String,
    pub created: String,
    pub updated: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mikrotik/pppoe_user.html")]
pub struct PppoePage {
    chrome: Chrome,
    can_edit: bool,
    pppoe: PppoeView,
    form: PppoeForm,
    errors: Errors,
    notice: Option<Notice>,
    router_options: Vec<Choice>,
    creating: bool,
}

async fn pppoe_page(
    state: &AppState,
    chrome: Chrome,
    id: i32,
    form: Option<PppoeForm>,
    errors: Errors,
    notice: Option<Notice>,
) -> Result<PppoePage, AppError> {
    let db = &state.db.main;
    let p = service::get_pppoe_user(db, id).await?;
    let router = service::get_router(db, p.router_id).await?;
    let linked = network_user_names(state, p.network_user_id.into_iter()).await?;
    let network_user = p.network_user_id.and_then(|id| linked.get(&id).cloned());
    let form = form
        .unwrap_or_else(|| PppoeForm::of(&p, network_user.clone()))
        .without_password();
    let view = PppoeView {
        id: p.id,
        username: p.username.clone(),
        router: router.name.clone(),
        router_id: router.id,
        service: p.service.clone(),
        profile: p.profile.clone().unwrap_or_else(|| "default".into()),
        local_address: dash(&p.local_address),
        remote_address: dash(&p.remote_address),
        status: p.status.clone(),
        router_item_id: dash(&p.router_item_id),
        network_user: network_user.unwrap_or_default(),
        network_user_id: p.network_user_id,
        last_synced: when_opt(&p.last_synced_at),
        created: when(&p.created_at),
        updated: when(&p.updated_at),
    };
    Ok(PppoePage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("pppoe", format!("PPPoE user {}", p.username)),
        router_options: router_choices(state, &form.router_id).await?,
        pppoe: view,
        form,
        errors,
        notice,
        creating: false,
    })
}

pub async fn show_pppoe(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<PppoePage, AppError> {
    let id = path_id(&id, "There is no such PPPoE user.")?;
    pppoe_page(&state, chrome, id, None, Errors::default(), None).await
}

pub async fn update_pppoe(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<PppoeForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, "There is no such PPPoE user.")?;
    let (input, early) = form.input(&state).await?;
    let updated = if early.is_empty() {
        service::update_pppoe_user(
            &state.db.main,
            &state.router_pool,
            &user.actor(parts.address),
            id,
            &input,
        )
        .await
        .map_err(rename_network_user_field)
    } else {
        Err(MikrotikError::Invalid(early))
    };
    match updated {
        Ok(row) => {
            flash::success(
                &session,
                format!("PPPoE user “{}” saved on the router.", row.username),
            )
            .await;
            Ok(see_other(format!("/mikrotik/pppoe/{id}")))
        }
        Err(err) => {
            let (status, errors, notice) = form_failure(err, PPPOE_FIELDS, "username")?;
            let page = pppoe_page(&state, chrome, id, Some(form), errors, notice).await?;
            Ok((status, page).into_response())
        }
    }
}

pub async fn delete_pppoe(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, "There is no such PPPoE user.")?;
    let deleted = service::delete_pppoe_user(
        &state.db.main,
        &state.router_pool,
        &user.actor(parts.address),
        id,
    )
    .await;
    match deleted {
        Ok(row) => {
            flash::success(
                &session,
                format!("PPPoE user “{}” deleted from the router.", row.username),
            )
            .await;
            Ok(see_other("/mikrotik/pppoe".into()))
        }
        Err(err) if err.is_router_error() => {
            let app = AppError::from(err);
            let status = app.status();
            let notice = Notice::error(format!("Nothing was deleted: {app}"));
            let page =
                pppoe_page(&state, chrome, id, None, Errors::default(), Some(notice)).await?;
            Ok((status, page).into_response())
        }
        Err(err) => Err(err.into()),
    }
}
