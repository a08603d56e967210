//! The router pages: the list, the new form, and the page of one router
//! with its connection test.

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
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::mikrotik::entities::mikrotik_router;
use crate::mikrotik::html::{choices, form_failure, text, Choice, ROUTER_STATUSES};
use crate::mikrotik::service::{self, MikrotikError, RouterFilter, RouterInput};
use crate::query::Sort;
use crate::staff::Role;
use crate::web::flash;
use crate::web::forms::RequestParts;
use crate::web::forms::{dash, optional_string, path_id, see_other, Errors, Notice};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, when_opt, Pager};

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
