//! The router pages: the list, the new form, and the page of one router
//! with its connection test.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::mikrotik::entities::mikrotik_router;
use crate::mikrotik::html::form_failure;
use crate::mikrotik::service::{self, MikrotikError, RouterFilter, RouterInput, ROUTER_STATUSES};
use crate::staff::{Operator, Role, Viewer};
use crate::web::forms::{
    again, choices, dash, merged, optional_parsed, optional_string, path_id, search_text, Choice,
    Errors, Notice, Staff,
};
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

/// What an id in the path that names no router shows.
const NOT_FOUND: &str = "There is no such router.";

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
        let api_port = optional_parsed("api_port", &self.api_port, &mut errors, |port| {
            format!("\"{port}\" is not a port from 1 to 65535")
        });
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

    /// The service's input when the form reads as one, else every message
    /// the form and the service's own check have for it.
    fn parsed(&self, creating: bool) -> Result<RouterInput, MikrotikError> {
        let (input, early) = self.input();
        if early.is_empty() {
            return Ok(input);
        }
        let later = match input.validate(creating) {
            Err(MikrotikError::Invalid(fields)) => fields,
            _ => FieldErrors::new(),
        };
        Err(MikrotikError::Invalid(merged(early, later)))
    }
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
    staff: Staff<Viewer>,
    Query(query): Query<RouterListQuery>,
) -> Result<RoutersPage, AppError> {
    let status = search_text(&query.status);
    let filter = RouterFilter {
        q: Some(search_text(&query.q)),
        status: ROUTER_STATUSES
            .contains(&status.as_str())
            .then(|| status.clone()),
    };
    let page = page_request(&query.page);
    let sort = service::router_sort(None, &mut FieldErrors::new());
    let role = staff.user.role;
    let (routers, total) = service::list_routers(staff.db(), &filter, &sort, page).await?;
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
    let params = vec![("q", search_text(&query.q)), ("status", status.clone())];
    let filtered = params.iter().any(|(_, v)| !v.is_empty());
    Ok(RoutersPage {
        can_edit: staff.can(Role::Operator),
        chrome: staff.chrome().await?.at("routers", "Routers"),
        q: search_text(&query.q),
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

pub async fn new_router(staff: Staff<Operator>) -> Result<NewRouterPage, AppError> {
    Ok(NewRouterPage {
        chrome: staff.chrome().await?.at("routers", "New router"),
        form: RouterForm {
            username: "admin".into(),
            ..Default::default()
        },
        errors: Errors::default(),
        creating: true,
    })
}

pub async fn create_router(
    staff: Staff<Operator>,
    Form(form): Form<RouterForm>,
) -> Result<Response, AppError> {
    let created = match form.parsed(true) {
        Ok(input) => {
            let key = &staff.state.app_key;
            service::create_router(staff.db(), key, &staff.actor, &input).await
        }
        Err(early) => Err(early),
    };
    match created {
        Ok(router) => {
            let added = format!(
                "Router “{}” added. Test the connection to check it.",
                router.name
            );
            Ok(staff
                .done(added, format!("/mikrotik/routers/{}", router.id))
                .await)
        }
        Err(err) => {
            let (status, errors, _) = form_failure(err, ROUTER_FIELDS, "name")?;
            let page = NewRouterPage {
                chrome: staff.chrome().await?.at("routers", "New router"),
                form: form.without_password(),
                errors,
                creating: true,
            };
            again(status, page)
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
    staff: Staff<Viewer>,
    Path(id): Path<String>,
) -> Result<RouterPage, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let chrome = staff.chrome().await?;
    router_page(&staff.state, chrome, id, None, Errors::default(), None).await
}

pub async fn update_router(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<RouterForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let updated = match form.parsed(false) {
        Ok(input) => {
            let key = &staff.state.app_key;
            service::update_router(staff.db(), key, &staff.actor, id, &input).await
        }
        Err(early) => Err(early),
    };
    match updated {
        Ok(router) => {
            // New address or credentials: no old connection or back-off is reused.
            staff.state.router_pool.forget(id);
            let saved = format!("Router “{}” saved.", router.name);
            Ok(staff.done(saved, format!("/mikrotik/routers/{id}")).await)
        }
        Err(err) => {
            let (status, errors, notice) = form_failure(err, ROUTER_FIELDS, "name")?;
            let chrome = staff.chrome().await?;
            let page = router_page(&staff.state, chrome, id, Some(form), errors, notice).await?;
            again(status, page)
        }
    }
}

/// Tests the connection and shows the router page with what it answered
/// (identity, version, uptime) or the exact error; the service records
/// the outcome on the router.
pub async fn test_router(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let routers = &staff.state.router_pool;
    let tested = service::test_router(staff.db(), routers, &staff.actor, id).await;
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
    let chrome = staff.chrome().await?;
    let page = router_page(
        &staff.state,
        chrome,
        id,
        None,
        Errors::default(),
        Some(notice),
    )
    .await?;
    again(status, page)
}

pub async fn delete_router(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let router = service::delete_router(staff.db(), &staff.actor, id).await?;
    staff.state.router_pool.forget(id);
    let deleted = format!("Router “{}” deleted.", router.name);
    Ok(staff.done(deleted, "/mikrotik/routers").await)
}
