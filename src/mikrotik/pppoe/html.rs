//! The PPPoE pages: the list, the new form and the page of one secret.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::mikrotik::entities::mikrotik_pppoe_user;
use crate::mikrotik::html::form_failure;
use crate::mikrotik::service::{
    self, MikrotikError, PppoeFilter, PppoeInput, PPPOE_STATUSES, PPP_SERVICES,
};
use crate::query::{PageRequest, MAX_PER_PAGE};
use crate::staff::{Operator, Role, Viewer};
use crate::web::csv;
use crate::web::forms::{
    again, choices, dash, optional_string, path_id, search_text, Choice, Errors, Notice, Staff,
};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, when_opt, Pager};

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

/// What an id in the path that names no PPPoE user shows.
const NOT_FOUND: &str = "There is no such PPPoE user.";

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
            name => match service::network_user_id_named(&state.db.main, name).await? {
                Some(id) => Some(id),
                None => {
                    errors.insert(
                        "network_user".into(),
                        format!("there is no network user named \"{name}\""),
                    );
                    None
                }
            },
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
        .map(|r| Choice::new(r.id.to_string(), r.name, current))
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
        let status = search_text(&self.status);
        PppoeFilter {
            router_id: search_text(&self.router_id).parse().ok(),
            network_user_id: None,
            q: Some(search_text(&self.q)),
            status: PPPOE_STATUSES.contains(&status.as_str()).then_some(status),
        }
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("q", search_text(&self.q)),
            ("router_id", search_text(&self.router_id)),
            ("status", search_text(&self.status)),
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
    staff: Staff<Viewer>,
    Query(query): Query<PppoeListQuery>,
) -> Result<PppoeUsersPage, AppError> {
    let state = &staff.state;
    let filter = query.filter();
    let page = page_request(&query.page);
    let sort = service::pppoe_sort(None, &mut FieldErrors::new());
    let (users, total) = service::list_pppoe_users(staff.db(), &filter, &sort, page).await?;
    let routers = router_names(state).await?;
    let linked_ids = users.iter().filter_map(|u| u.network_user_id);
    let linked = service::network_user_names(staff.db(), linked_ids).await?;
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
    let router_filter = search_text(&query.router_id);
    Ok(PppoeUsersPage {
        can_edit: staff.can(Role::Operator),
        chrome: staff.chrome().await?.at("pppoe", "PPPoE Users"),
        q: search_text(&query.q),
        has_routers: !routers.is_empty(),
        router_options: router_choices(state, &router_filter).await?,
        status_options: choices(&PPPOE_STATUSES, &search_text(&query.status)),
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
    staff: Staff<Viewer>,
    Query(query): Query<PppoeListQuery>,
) -> Result<Response, AppError> {
    let filter = query.filter();
    let routers = router_names(&staff.state).await?;
    let sort = service::pppoe_sort(None, &mut FieldErrors::new());
    let mut out = String::from(
        "id,router,username,service,profile,local_address,remote_address,status,router_item_id,network_user_id,created_at\r\n",
    );
    let mut page = 1;
    loop {
        let request = PageRequest {
            page,
            per_page: MAX_PER_PAGE,
        };
        let (users, total) = service::list_pppoe_users(staff.db(), &filter, &sort, request).await?;
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
            csv::line(&mut out, &fields);
        }
        if users.is_empty() || page * MAX_PER_PAGE >= total {
            break;
        }
        page += 1;
    }
    Ok(csv::download("pppoe-users.csv", out))
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
    staff: Staff<Operator>,
    Query(query): Query<NewPppoeQuery>,
) -> Result<NewPppoePage, AppError> {
    let router_id = search_text(&query.router_id).parse().ok();
    let form = PppoeForm::blank(router_id);
    let chrome = staff.chrome().await?;
    new_pppoe_page(&staff.state, chrome, form, Errors::default(), None).await
}

pub async fn create_pppoe(
    staff: Staff<Operator>,
    Form(form): Form<PppoeForm>,
) -> Result<Response, AppError> {
    let (input, early) = form.input(&staff.state).await?;
    let created = if early.is_empty() {
        let routers = &staff.state.router_pool;
        service::create_pppoe_user(staff.db(), routers, &staff.actor, &input)
            .await
            .map_err(rename_network_user_field)
    } else {
        Err(MikrotikError::Invalid(early))
    };
    match created {
        Ok(row) => {
            let created = format!("PPPoE user “{}” created on the router.", row.username);
            Ok(staff
                .done(created, format!("/mikrotik/pppoe/{}", row.id))
                .await)
        }
        Err(err) => {
            let (status, errors, notice) = form_failure(err, PPPOE_FIELDS, "username")?;
            let chrome = staff.chrome().await?;
            let page = new_pppoe_page(&staff.state, chrome, form, errors, notice).await?;
            again(status, page)
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
    let linked = service::network_user_names(db, p.network_user_id.into_iter()).await?;
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
    staff: Staff<Viewer>,
    Path(id): Path<String>,
) -> Result<PppoePage, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let chrome = staff.chrome().await?;
    pppoe_page(&staff.state, chrome, id, None, Errors::default(), None).await
}

pub async fn update_pppoe(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<PppoeForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let (input, early) = form.input(&staff.state).await?;
    let updated = if early.is_empty() {
        let routers = &staff.state.router_pool;
        service::update_pppoe_user(staff.db(), routers, &staff.actor, id, &input)
            .await
            .map_err(rename_network_user_field)
    } else {
        Err(MikrotikError::Invalid(early))
    };
    match updated {
        Ok(row) => {
            let saved = format!("PPPoE user “{}” saved on the router.", row.username);
            Ok(staff.done(saved, format!("/mikrotik/pppoe/{id}")).await)
        }
        Err(err) => {
            let (status, errors, notice) = form_failure(err, PPPOE_FIELDS, "username")?;
            let chrome = staff.chrome().await?;
            let page = pppoe_page(&staff.state, chrome, id, Some(form), errors, notice).await?;
            again(status, page)
        }
    }
}

pub async fn delete_pppoe(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let routers = &staff.state.router_pool;
    let deleted = service::delete_pppoe_user(staff.db(), routers, &staff.actor, id).await;
    match deleted {
        Ok(row) => {
            let deleted = format!("PPPoE user “{}” deleted from the router.", row.username);
            Ok(staff.done(deleted, "/mikrotik/pppoe").await)
        }
        Err(err) if err.is_router_error() => {
            let app = AppError::from(err);
            let status = app.status();
            let notice = Notice::error(format!("Nothing was deleted: {app}"));
            let chrome = staff.chrome().await?;
            let page = pppoe_page(
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
        Err(err) => Err(err.into()),
    }
}
