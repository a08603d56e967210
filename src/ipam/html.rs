//! IPAM staff pages: pools, subnets, allocations, the CSV export and the
//! address history. Every handler parses the form, calls one service
//! function and builds a view; the rules live in [`super::service`].
//!
//! Forms post normally (redirect with a flash message on success, the same
//! page with inline messages and 422/409 otherwise). On the subnet page the
//! allocate and release forms also carry `hx-post`: htmx then swaps the
//! allocations section (the `allocations` block of `ipam/subnet.html`).

use std::collections::HashMap;
use std::net::IpAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use sea_orm::Order;
use serde::Deserialize;
use tower_sessions::Session;

use super::domain::{parse_ip, MacAddress};
use super::entities::{ip_allocation, ip_pool, ip_subnet};
use super::service::{self, IpamError, IpamSettings, Utilization};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, Sort, MAX_PAGE, MAX_PER_PAGE};
use crate::staff::Role;
use crate::web::account::RequestParts;
use crate::web::auth::SignedIn;
use crate::web::flash;
use crate::web::forms::{
    dash, is_htmx, optional_string, path_id, see_other, with_vary, Errors, Notice,
};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, when_opt, Pager};

/// The IPAM pages; merged into the staff router (behind its auth, CSRF and
/// error layers) by `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ipam/pools", get(list_pools).post(create_pool))
        .route("/ipam/pools/{id}", get(show_pool).post(update_pool))
        .route("/ipam/pools/{id}/delete", post(delete_pool))
        .route("/ipam/pools/{id}/subnets", post(create_subnet))
        .route("/ipam/subnets", get(list_subnets))
        .route("/ipam/subnets/{id}", get(show_subnet).post(update_subnet))
        .route("/ipam/subnets/{id}/delete", post(delete_subnet))
        .route("/ipam/subnets/{id}/allocations", post(allocate_ip))
        .route("/ipam/allocations", get(list_allocations))
        .route("/ipam/allocations.csv", get(export_allocations))
        .route("/ipam/allocations/{id}/release", post(release_ip))
        .route("/ipam/history", get(address_history))
}

const ALLOCATION_STATUSES: [&str; 3] = ["active", "released", "expired"];
/// The 404 message of a bad id in the path.
const NOT_FOUND: &str = "There is no such IPAM record.";
/// Free addresses shown on the subnet page.
const AVAILABLE_SHOWN: usize = 16;
/// Holdings shown on the history page.
const TIMELINE_LIMIT: u64 = 200;

// ------------------------------------------------------------ view helpers

/// The status choices of a pool or subnet form, with the current one marked.
fn status_options(current: &str) -> Vec<(&'static str, bool)> {
    ["active", "reserved", "deprecated"]
        .into_iter()
        .map(|s| (s, s == current))
        .collect()
}

/// A utilization bar: an SVG drawing plus the same figure as text.
#[derive(Default)]
pub struct Bar {
    pub percent: f64,
    pub text: String,
}

impl Bar {
    fn new(u: &Utilization) -> Self {
        Self {
            percent: u.percent,
            text: format!("{:.1}% used ({} of {})", u.percent, u.allocated, u.total),
        }
    }

    pub fn width(&self) -> String {
        format!("{:.2}", self.percent.clamp(0.0, 100.0))
    }

    pub fn color(&self) -> &'static str {
        match self.percent {
            p if p >= 90.0 => "#b91c1c",
            p if p >= 75.0 => "#d97706",
            _ => "#0369a1",
        }
    }
}

fn search_text(raw: &Option<String>) -> String {
    raw.as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(100)
        .collect()
}

/// "" -> None; a number -> Some; anything else -> a field message.
fn optional_number(field: &str, text: &str, errors: &mut FieldErrors) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match text.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.insert(
                field.into(),
                format!("\"{text}\" is not a VLAN id (1 to 4094)"),
            );
            None
        }
    }
}

/// A `datetime-local` value (or RFC 3339), read as UTC.
fn parse_utc(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(at.and_utc());
        }
    }
    Err(format!(
        "\"{text}\" is not a date and time such as 2025-01-31T14:30 (UTC)"
    ))
}

fn render_fragment(status: StatusCode, fragment: impl Template) -> Result<Response, AppError> {
    let html = fragment
        .render()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering a fragment: {e}")))?;
    Ok(with_vary((status, Html(html)).into_response()))
}

// ------------------------------------------------------------------ pools

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PoolForm {
    pub name: String,
    pub description: String,
    pub start_ip: String,
    pub end_ip: String,
    pub gateway: String,
    /// Comma, space or newline separated.
    pub dns_servers: String,
    pub vlan_id: String,
    pub status: String,
}

const POOL_FIELDS: &[&str] = &[
    "name",
    "description",
    "start_ip",
    "end_ip",
    "gateway",
    "dns_servers",
    "vlan_id",
    "status",
];

impl PoolForm {
    pub fn status_options(&self) -> Vec<(&'static str, bool)> {
        status_options(&self.status)
    }

    fn of(pool: &ip_pool::Model) -> Self {
        Self {
            name: pool.name.clone(),
            description: pool.description.clone().unwrap_or_default(),
            start_ip: pool.start_ip.clone(),
            end_ip: pool.end_ip.clone(),
            gateway: pool.gateway.clone().unwrap_or_default(),
            dns_servers: service::dns_servers(pool).join(", "),
            vlan_id: pool.vlan_id.map(|v| v.to_string()).unwrap_or_default(),
            status: pool.status.clone(),
        }
    }

    /// The service's input, and what could not even be read as its type.
    fn input(&self) -> (service::PoolInput, FieldErrors) {
        let mut errors = FieldErrors::new();
        let input = service::PoolInput {
            name: self.name.clone(),
            description: optional_string(&self.description),
            start_ip: self.start_ip.clone(),
            end_ip: self.end_ip.clone(),
            gateway: optional_string(&self.gateway),
            dns_servers: self
                .dns_servers
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            vlan_id: optional_number("vlan_id", &self.vlan_id, &mut errors),
            status: optional_string(&self.status),
        };
        (input, errors)
    }
}

/// The service's messages plus the ones found reading the form.
fn merged(mut early: FieldErrors, later: Result<(), IpamError>) -> IpamError {
    if let Err(IpamError::Invalid(fields)) = later {
        for (k, v) in fields {
            early.entry(k).or_insert(v);
        }
    }
    IpamError::Invalid(early)
}

#[derive(Debug, Default, Deserialize)]
pub struct PoolListQuery {
    page: Option<String>,
    q: Option<String>,
    sort: Option<String>,
}

pub struct PoolRow {
    pub id: i32,
    pub name: String,
    pub range: String,
    pub vlan: String,
    pub status: String,
    pub subnets: usize,
    pub bar: Bar,
}

#[derive(Template, WebTemplate)]
#[template(path = "ipam/pools.html")]
pub struct PoolsPage {
    chrome: Chrome,
    can_edit: bool,
    rows: Vec<PoolRow>,
    pager: Pager,
    q: String,
    sort: String,
    form: PoolForm,
    errors: Errors,
}

const POOL_SORTS: [(&str, &str); 6] = [
    ("name", "Name (A–Z)"),
    ("-name", "Name (Z–A)"),
    ("vlan", "VLAN"),
    ("status", "Status"),
    ("-created", "Newest first"),
    ("created", "Oldest first"),
];

impl PoolsPage {
    fn sorts(&self) -> &'static [(&'static str, &'static str)] {
        &POOL_SORTS
    }
}

async fn pools_page(
    state: &AppState,
    chrome: Chrome,
    query: &PoolListQuery,
    form: PoolForm,
    errors: Errors,
) -> Result<PoolsPage, AppError> {
    let db = &state.db.main;
    let q = search_text(&query.q);
    let sort_key = query
        .sort
        .as_deref()
        .filter(|s| POOL_SORTS.iter().any(|(k, _)| k == s))
        .unwrap_or("name")
        .to_string();
    let mut ignored = FieldErrors::new();
    let sort = Sort::parse(
        Some(&sort_key),
        &[
            ("name", ip_pool::Column::Name),
            ("vlan", ip_pool::Column::VlanId),
            ("status", ip_pool::Column::Status),
            ("created", ip_pool::Column::CreatedAt),
        ],
        "name",
        &mut ignored,
    );
    let filter = service::PoolFilter {
        search: Some(q.clone()).filter(|q| !q.is_empty()),
        ..Default::default()
    };
    let page = page_request(&query.page);
    let (pools, total) = service::list_pools(db, &filter, &sort, page).await?;
    let ids: Vec<i32> = pools.iter().map(|p| p.id).collect();
    let mut usages = service::pools_utilization(db, &ids).await?;
    let mut rows = Vec::with_capacity(pools.len());
    for pool in pools {
        let usage = usages
            .remove(&pool.id)
            .expect("every pool asked for has an entry");
        rows.push(PoolRow {
            id: pool.id,
            range: format!("{} – {}", pool.start_ip, pool.end_ip),
            vlan: dash(&pool.vlan_id),
            status: pool.status,
            subnets: usage.subnets.len(),
            bar: Bar::new(&usage.utilization),
            name: pool.name,
        });
    }
    let pager = Pager::new(
        "/ipam/pools",
        vec![
            ("q", q.clone()),
            (
                "sort",
                if sort_key == "name" {
                    String::new()
                } else {
                    sort_key.clone()
                },
            ),
        ],
        page.page,
        total,
        rows.len(),
    );
    Ok(PoolsPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("pools", "IP Pools"),
        rows,
        pager,
        q,
        sort: sort_key,
        form,
        errors,
    })
}

pub async fn list_pools(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<PoolListQuery>,
) -> Result<PoolsPage, AppError> {
    let form = PoolForm {
        status: "active".into(),
        ..Default::default()
    };
    pools_page(&state, chrome, &query, form, Errors::default()).await
}

pub async fn create_pool(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Form(form): Form<PoolForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let (input, early) = form.input();
    let created = if early.is_empty() {
        service::create_pool(&state.db.main, &user.actor(parts.address), &input).await
    } else {
        Err(merged(early, input.validate().map(|_| ())))
    };
    match created {
        Ok(pool) => {
            flash::success(&session, format!("Pool “{}” created.", pool.name)).await;
            Ok(see_other(format!("/ipam/pools/{}", pool.id)))
        }
        Err(IpamError::Invalid(fields)) => {
            let errors = Errors::from_indexed_fields(fields, POOL_FIELDS);
            let page = pools_page(&state, chrome, &PoolListQuery::default(), form, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ------------------------------------------------------------- pool page

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SubnetForm {
    pub network: String,
    pub gateway: String,
    pub vlan_id: String,
    pub status: String,
    pub description: String,
}

const SUBNET_FIELDS: &[&str] = &["network", "gateway", "vlan_id", "status", "description"];

impl SubnetForm {
    pub fn status_options(&self) -> Vec<(&'static str, bool)> {
        status_options(&self.status)
    }

    fn of(subnet: &ip_subnet::Model) -> Self {
        Self {
            network: service::subnet_label(subnet),
            gateway: subnet.gateway.clone().unwrap_or_default(),
            vlan_id: subnet.vlan_id.map(|v| v.to_string()).unwrap_or_default(),
            status: subnet.status.clone(),
            description: subnet.description.clone().unwrap_or_default(),
        }
    }

    fn blank() -> Self {
        Self {
            status: "active".into(),
            ..Default::default()
        }
    }
}

pub struct PoolView {
    pub id: i32,
    pub name: String,
    pub description: String,
    pub range: String,
    pub version: String,
    pub gateway: String,
    pub dns: String,
    pub vlan: String,
    pub status: String,
    pub created: String,
    pub updated: String,
}

pub struct SubnetRow {
    pub id: i32,
    pub network: String,
    pub gateway: String,
    pub vlan: String,
    pub status: String,
    pub bar: Bar,
}

pub struct ChartRow {
    pub label: String,
    pub y: u32,
    pub text_y: u32,
    pub width: String,
    pub color: &'static str,
    pub text: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "ipam/pool.html")]
pub struct PoolPage {
    chrome: Chrome,
    can_edit: bool,
    pool: PoolView,
    bar: Bar,
    subnets: Vec<SubnetRow>,
    chart: Vec<ChartRow>,
    chart_height: u32,
    edit: PoolForm,
    edit_errors: Errors,
    subnet_form: SubnetForm,
    subnet_errors: Errors,
    notice: Option<Notice>,
}

/// What the pool page shows besides the pool: forms with their messages.
#[derive(Default)]
struct PoolPageState {
    edit: Option<PoolForm>,
    edit_errors: Errors,
    subnet_form: Option<SubnetForm>,
    subnet_errors: Errors,
    notice: Option<Notice>,
}

async fn pool_page(
    state: &AppState,
    chrome: Chrome,
    id: i32,
    extra: PoolPageState,
) -> Result<PoolPage, AppError> {
    let db = &state.db.main;
    let pool = service::get_pool(db, id).await?;
    let usage = service::pool_utilization(db, id).await?;
    let (subnets, _) = service::list_subnets(
        db,
        &service::SubnetFilter {
            pool_id: Some(id),
            ..Default::default()
        },
        &Sort::by(vec![(ip_subnet::Column::NetworkKey, Order::Asc)]),
        PageRequest {
            page: 1,
            per_page: MAX_PER_PAGE,
        },
    )
    .await?;
    let per_subnet: HashMap<i32, &Utilization> = usage
        .subnets
        .iter()
        .map(|s| (s.subnet_id, &s.utilization))
        .collect();
    let mut rows = Vec::with_capacity(subnets.len());
    let mut chart = Vec::with_capacity(subnets.len());
    for (i, subnet) in subnets.iter().enumerate() {
        let bar = match per_subnet.get(&subnet.id) {
            Some(u) => Bar::new(u),
            None => Bar::new(&service::subnet_utilization(db, subnet).await?),
        };
        let y = i as u32 * 24 + 4;
        chart.push(ChartRow {
            label: service::subnet_label(subnet),
            y,
            text_y: y + 12,
            width: format!("{:.1}", bar.percent.clamp(0.0, 100.0) * 2.6),
            color: bar.color(),
            text: format!("{:.1}%", bar.percent),
        });
        rows.push(SubnetRow {
            id: subnet.id,
            network: service::subnet_label(subnet),
            gateway: dash(&subnet.gateway),
            vlan: dash(&subnet.vlan_id),
            status: subnet.status.clone(),
            bar,
        });
    }
    let view = PoolView {
        id: pool.id,
        name: pool.name.clone(),
        description: pool.description.clone().unwrap_or_default(),
        range: format!("{} – {}", pool.start_ip, pool.end_ip),
        version: format!("IPv{}", pool.ip_version),
        gateway: dash(&pool.gateway),
        dns: {
            let dns = service::dns_servers(&pool);
            if dns.is_empty() {
                "—".into()
            } else {
                dns.join(", ")
            }
        },
        vlan: dash(&pool.vlan_id),
        status: pool.status.clone(),
        created: when(&pool.created_at),
        updated: when(&pool.updated_at),
    };
    Ok(PoolPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("pools", format!("Pool {}", pool.name)),
        pool: view,
        bar: Bar::new(&usage.utilization),
        chart_height: chart.len() as u32 * 24 + 8,
        subnets: rows,
        chart,
        edit: extra.edit.unwrap_or_else(|| PoolForm::of(&pool)),
        edit_errors: extra.edit_errors,
        subnet_form: extra.subnet_form.unwrap_or_else(SubnetForm::blank),
        subnet_errors: extra.subnet_errors,
        notice: extra.notice,
    })
}

pub async fn show_pool(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<PoolPage, AppError> {
    pool_page(
        &state,
        chrome,
        path_id(&id, NOT_FOUND)?,
        PoolPageState::default(),
    )
    .await
}

pub async fn update_pool(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<PoolForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, NOT_FOUND)?;
    let (input, early) = form.input();
    let updated = if early.is_empty() {
        service::update_pool(&state.db.main, &user.actor(parts.address), id, &input).await
    } else {
        Err(merged(early, input.validate().map(|_| ())))
    };
    match updated {
        Ok(pool) => {
            flash::success(&session, format!("Pool “{}” saved.", pool.name)).await;
            Ok(see_other(format!("/ipam/pools/{id}")))
        }
        Err(IpamError::Invalid(fields)) => {
            let extra = PoolPageState {
                edit: Some(form),
                edit_errors: Errors::from_indexed_fields(fields, POOL_FIELDS),
                ..Default::default()
            };
            let page = pool_page(&state, chrome, id, extra).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_pool(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, NOT_FOUND)?;
    let name = service::get_pool(&state.db.main, id).await?.name;
    match service::delete_pool(&state.db.main, &user.actor(parts.address), id).await {
        Ok(()) => {
            flash::success(&session, format!("Pool “{name}” deleted.")).await;
            Ok(see_other("/ipam/pools".into()))
        }
        Err(IpamError::Conflict(message)) => {
            let extra = PoolPageState {
                notice: Some(Notice::error(message)),
                ..Default::default()
            };
            let page = pool_page(&state, chrome, id, extra).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn create_subnet(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<SubnetForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let pool_id = path_id(&id, NOT_FOUND)?;
    let pool = service::get_pool(&state.db.main, pool_id).await?;
    let mut early = FieldErrors::new();
    let input = service::SubnetInput {
        pool_id,
        network: form.network.clone(),
        gateway: optional_string(&form.gateway),
        vlan_id: optional_number("vlan_id", &form.vlan_id, &mut early),
        status: optional_string(&form.status),
        description: optional_string(&form.description),
    };
    let created = if early.is_empty() {
        service::create_subnet(&state.db.main, &user.actor(parts.address), &input).await
    } else {
        Err(IpamError::Invalid(early))
    };
    match created {
        Ok(subnet) => {
            flash::success(
                &session,
                format!(
                    "Subnet {} added to pool “{}”.",
                    service::subnet_label(&subnet),
                    pool.name
                ),
            )
            .await;
            Ok(see_other(format!("/ipam/subnets/{}", subnet.id)))
        }
        Err(IpamError::Invalid(fields)) => {
            let extra = PoolPageState {
                subnet_form: Some(form),
                subnet_errors: Errors::from_indexed_fields(fields, SUBNET_FIELDS),
                ..Default::default()
            };
            let page = pool_page(&state, chrome, pool_id, extra).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- subnets

#[derive(Debug, Default, Deserialize)]
pub struct SubnetListQuery {
    page: Option<String>,
    q: Option<String>,
}

pub struct SubnetListRow {
    pub id: i32,
    pub network: String,
    pub pool_id: i32,
    pub pool: String,
    pub gateway: String,
    pub vlan: String,
    pub status: String,
    pub bar: Bar,
}

#[derive(Template, WebTemplate)]
#[template(path = "ipam/subnets.html")]
pub struct SubnetsPage {
    chrome: Chrome,
    rows: Vec<SubnetListRow>,
    pager: Pager,
    q: String,
}

pub async fn list_subnets(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<SubnetListQuery>,
) -> Result<SubnetsPage, AppError> {
    let db = &state.db.main;
    let q = search_text(&query.q);
    // An address finds the subnet that contains it; other text matches
    // part of the network.
    let filter = match q.parse::<IpAddr>() {
        Ok(addr) => service::SubnetFilter {
            contains: Some(addr),
            ..Default::default()
        },
        Err(_) => service::SubnetFilter {
            search: Some(q.clone()).filter(|q| !q.is_empty()),
            ..Default::default()
        },
    };
    let page = page_request(&query.page);
    let (subnets, total) = service::list_subnets(
        db,
        &filter,
        &Sort::by(vec![(ip_subnet::Column::NetworkKey, Order::Asc)]),
        page,
    )
    .await?;
    let mut pools: HashMap<i32, String> = HashMap::new();
    let usages = service::subnets_utilization(db, &subnets).await?;
    let mut rows = Vec::with_capacity(subnets.len());
    for subnet in subnets {
        if let std::collections::hash_map::Entry::Vacant(entry) = pools.entry(subnet.pool_id) {
            entry.insert(service::get_pool(db, subnet.pool_id).await?.name);
        }
        rows.push(SubnetListRow {
            id: subnet.id,
            network: service::subnet_label(&subnet),
            pool_id: subnet.pool_id,
            pool: pools.get(&subnet.pool_id).cloned().unwrap_or_default(),
            gateway: dash(&subnet.gateway),
            vlan: dash(&subnet.vlan_id),
            status: subnet.status,
            bar: usages.get(&subnet.id).map(Bar::new).unwrap_or_default(),
        });
    }
    let pager = Pager::new(
        "/ipam/subnets",
        vec![("q", q.clone())],
        page.page,
        total,
        rows.len(),
    );
    Ok(SubnetsPage {
        chrome: chrome.at("subnets", "Subnets"),
        rows,
        pager,
        q,
    })
}

// ------------------------------------------------------------ subnet page

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AllocationQuery {
    page: Option<String>,
    q: Option<String>,
    status: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AllocateForm {
    pub username: String,
    pub mac_address: String,
    pub ip_address: String,
    pub expires_at: String,
}

const ALLOCATE_FIELDS: &[&str] = &["username", "mac_address", "ip_address", "expires_at"];

pub struct AllocationRow {
    pub id: i64,
    pub ip: String,
    pub subnet_id: i32,
    pub subnet: String,
    pub username: String,
    pub mac: String,
    pub allocated: String,
    pub released: String,
    pub expires: String,
    pub status: String,
    pub active: bool,
}

impl AllocationRow {
    fn of(a: ip_allocation::Model, subnet: String) -> Self {
        Self {
            id: a.id,
            subnet_id: a.subnet_id,
            subnet,
            username: dash(&a.username),
            mac: dash(&a.mac_address),
            allocated: when(&a.allocated_at),
            released: when_opt(&a.released_at),
            expires: when_opt(&a.expires_at),
            active: a.active == Some(true),
            status: a.status,
            ip: a.ip_address,
        }
    }

    pub fn history_href(&self) -> String {
        let ip: String = form_urlencoded::byte_serialize(self.ip.as_bytes()).collect();
        format!("/ipam/history?ip={ip}")
    }
}

/// The allocations section of the subnet page: what htmx swaps.
pub struct AllocSection {
    pub subnet_id: i32,
    pub csrf_token: String,
    pub can_edit: bool,
    pub rows: Vec<AllocationRow>,
    pub pager: Pager,
    pub q: String,
    pub status: String,
    pub page: u64,
    pub form: AllocateForm,
    pub errors: Errors,
    pub message: Option<Notice>,
    pub available: Vec<String>,
    pub free_text: String,
    /// In this section (not in the details above it), so that htmx swaps
    /// after an allocation or release keep it current.
    pub bar: Bar,
}

impl AllocSection {
    pub fn statuses(&self) -> [&'static str; 3] {
        ALLOCATION_STATUSES
    }
}

/// Reads `q` as an address, a MAC address or a username, and `status`.
fn allocation_filter(q: &str, status: &str) -> service::AllocationFilter {
    let mut filter = service::AllocationFilter {
        status: ALLOCATION_STATUSES
            .contains(&status)
            .then(|| status.to_string()),
        ..Default::default()
    };
    if q.is_empty() {
        return filter;
    }
    if let Ok(ip) = parse_ip(q) {
        filter.ip = Some(ip);
    } else if let Ok(mac) = MacAddress::parse(q) {
        filter.mac_address = Some(mac);
    } else {
        filter.username = Some(q.to_string());
    }
    filter
}

fn newest_first() -> Sort<ip_allocation::Column> {
    Sort::by(vec![(ip_allocation::Column::AllocatedAt, Order::Desc)])
}

/// What the allocations section shows besides the allocations.
#[derive(Default)]
struct SectionState {
    query: AllocationQuery,
    form: AllocateForm,
    errors: Errors,
    message: Option<Notice>,
}

async fn alloc_section(
    state: &AppState,
    subnet: &ip_subnet::Model,
    chrome: &Chrome,
    extra: SectionState,
) -> Result<AllocSection, AppError> {
    let db = &state.db.main;
    let SectionState {
        query,
        form,
        errors,
        message,
    } = extra;
    let q = search_text(&query.q);
    let status = query.status.clone().unwrap_or_default();
    let mut filter = allocation_filter(&q, &status);
    filter.subnet_id = Some(subnet.id);
    let page = page_request(&query.page);
    let (allocations, total) =
        service::list_allocations(db, &filter, &newest_first(), page).await?;
    let label = service::subnet_label(subnet);
    let rows: Vec<AllocationRow> = allocations
        .into_iter()
        .map(|a| AllocationRow::of(a, label.clone()))
        .collect();
    let usage = service::subnet_utilization(db, subnet).await?;
    let available = service::available_ips(db, subnet.id, None, AVAILABLE_SHOWN)
        .await?
        .into_iter()
        .map(|ip| ip.to_string())
        .collect();
    let pager = Pager::new(
        format!("/ipam/subnets/{}", subnet.id),
        vec![("q", q.clone()), ("status", status.clone())],
        page.page,
        total,
        rows.len(),
    );
    Ok(AllocSection {
        subnet_id: subnet.id,
        csrf_token: chrome.csrf_token.clone(),
        can_edit: chrome.can(Role::Operator),
        rows,
        pager,
        q,
        status,
        page: page.page,
        form,
        errors,
        message,
        available,
        free_text: format!("{} of {} usable addresses free", usage.free, usage.total),
        bar: Bar::new(&usage),
    })
}

pub struct SubnetView {
    pub id: i32,
    pub network: String,
    pub pool_id: i32,
    pub pool: String,
    pub gateway: String,
    pub vlan: String,
    pub status: String,
    pub description: String,
    pub created: String,
    pub updated: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "ipam/subnet.html")]
pub struct SubnetPage {
    chrome: Chrome,
    can_edit: bool,
    subnet: SubnetView,
    edit: SubnetForm,
    edit_errors: Errors,
    notice: Option<Notice>,
    section: AllocSection,
}

#[derive(Template)]
#[template(path = "ipam/subnet.html", block = "allocations")]
pub struct AllocationsFragment {
    section: AllocSection,
}

#[derive(Default)]
struct SubnetPageState {
    edit: Option<SubnetForm>,
    edit_errors: Errors,
    notice: Option<Notice>,
    section: SectionState,
}

async fn subnet_page(
    state: &AppState,
    chrome: Chrome,
    id: i32,
    extra: SubnetPageState,
) -> Result<SubnetPage, AppError> {
    let db = &state.db.main;
    let subnet = service::get_subnet(db, id).await?;
    let pool = service::get_pool(db, subnet.pool_id).await?;
    let can_edit = chrome.can(Role::Operator);
    let section = alloc_section(state, &subnet, &chrome, extra.section).await?;
    let label = service::subnet_label(&subnet);
    Ok(SubnetPage {
        chrome: chrome.at("subnets", format!("Subnet {label}")),
        can_edit,
        edit: extra.edit.unwrap_or_else(|| SubnetForm::of(&subnet)),
        edit_errors: extra.edit_errors,
        notice: extra.notice,
        section,
        subnet: SubnetView {
            id: subnet.id,
            network: label,
            pool_id: pool.id,
            pool: pool.name,
            gateway: dash(&subnet.gateway),
            vlan: dash(&subnet.vlan_id),
            status: subnet.status.clone(),
            description: subnet.description.clone().unwrap_or_default(),
            created: when(&subnet.created_at),
            updated: when(&subnet.updated_at),
        },
    })
}

/// The whole subnet page, or (for htmx) only its allocations section.
async fn subnet_response(
    state: &AppState,
    chrome: Chrome,
    htmx: bool,
    status: StatusCode,
    id: i32,
    extra: SubnetPageState,
) -> Result<Response, AppError> {
    if htmx {
        let subnet = service::get_subnet(&state.db.main, id).await?;
        let section = alloc_section(state, &subnet, &chrome, extra.section).await?;
        render_fragment(status, AllocationsFragment { section })
    } else {
        let page = subnet_page(state, chrome, id, extra).await?;
        Ok(with_vary((status, page).into_response()))
    }
}

pub async fn show_subnet(
    _user: SignedIn,
    chrome: Chrome,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<AllocationQuery>,
) -> Result<Response, AppError> {
    let extra = SubnetPageState {
        section: SectionState {
            query,
            ..Default::default()
        },
        ..Default::default()
    };
    subnet_response(
        &state,
        chrome,
        is_htmx(&headers),
        StatusCode::OK,
        path_id(&id, NOT_FOUND)?,
        extra,
    )
    .await
}

pub async fn update_subnet(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<SubnetForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, NOT_FOUND)?;
    let mut early = FieldErrors::new();
    let update = service::SubnetUpdate {
        gateway: optional_string(&form.gateway),
        vlan_id: optional_number("vlan_id", &form.vlan_id, &mut early),
        status: optional_string(&form.status),
        description: optional_string(&form.description),
    };
    let updated = if early.is_empty() {
        service::update_subnet(
            &state.db.main,
            IpamSettings::from_config(&state.config),
            &user.actor(parts.address),
            id,
            &update,
        )
        .await
    } else {
        Err(IpamError::Invalid(early))
    };
    match updated {
        Ok(subnet) => {
            flash::success(
                &session,
                format!("Subnet {} saved.", service::subnet_label(&subnet)),
            )
            .await;
            Ok(see_other(format!("/ipam/subnets/{id}")))
        }
        Err(IpamError::Invalid(fields)) => {
            let extra = SubnetPageState {
                edit: Some(form),
                edit_errors: Errors::from_indexed_fields(fields, SUBNET_FIELDS),
                ..Default::default()
            };
            let page = subnet_page(&state, chrome, id, extra).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_subnet(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, NOT_FOUND)?;
    let subnet = service::get_subnet(&state.db.main, id).await?;
    match service::delete_subnet(
        &state.db.main,
        IpamSettings::from_config(&state.config),
        &user.actor(parts.address),
        id,
    )
    .await
    {
        Ok(()) => {
            flash::success(
                &session,
                format!("Subnet {} deleted.", service::subnet_label(&subnet)),
            )
            .await;
            Ok(see_other(format!("/ipam/pools/{}", subnet.pool_id)))
        }
        Err(IpamError::Conflict(message)) => {
            let extra = SubnetPageState {
                notice: Some(Notice::error(message)),
                ..Default::default()
            };
            let page = subnet_page(&state, chrome, id, extra).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Who an allocation is for, as staff read it.
fn holder(a: &ip_allocation::Model) -> String {
    match (&a.username, &a.mac_address) {
        (Some(u), Some(m)) => format!("{u} ({m})"),
        (Some(u), None) => u.clone(),
        (None, Some(m)) => m.clone(),
        (None, None) => "nobody".into(),
    }
}

#[allow(clippy::too_many_arguments)] // axum extractors
pub async fn allocate_ip(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<AllocateForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let subnet_id = path_id(&id, NOT_FOUND)?;
    let htmx = is_htmx(&headers);
    let mut early = FieldErrors::new();
    let expires_at = match optional_string(&form.expires_at).map(|t| parse_utc(&t)) {
        None => None,
        Some(Ok(at)) => Some(at),
        Some(Err(e)) => {
            early.insert("expires_at".into(), e);
            None
        }
    };
    let input = service::AllocationInput {
        subnet_id,
        mac_address: optional_string(&form.mac_address),
        username: optional_string(&form.username),
        ip_address: optional_string(&form.ip_address),
        expires_at,
    };
    let outcome = if early.is_empty() {
        service::allocate_ip(
            &state.db.main,
            IpamSettings::from_config(&state.config),
            &user.actor(parts.address),
            &input,
        )
        .await
    } else {
        Err(IpamError::Invalid(early))
    };
    let (status, section) = match outcome {
        Ok(done) => {
            let a = &done.allocation;
            let text = if done.created {
                format!("Allocated {} to {}.", a.ip_address, holder(a))
            } else {
                format!(
                    "{} already holds {}: nothing changed.",
                    holder(a),
                    a.ip_address
                )
            };
            if !htmx {
                flash::success(&session, text).await;
                return Ok(see_other(format!("/ipam/subnets/{subnet_id}")));
            }
            (
                StatusCode::OK,
                SectionState {
                    message: Some(Notice::success(text)),
                    ..Default::default()
                },
            )
        }
        Err(IpamError::Invalid(fields)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            SectionState {
                form,
                errors: Errors::from_indexed_fields(fields, ALLOCATE_FIELDS),
                ..Default::default()
            },
        ),
        Err(err @ IpamError::AddressTaken { .. }) => (
            StatusCode::CONFLICT,
            SectionState {
                form,
                errors: Errors::from_indexed_fields(
                    FieldErrors::from([("ip_address".to_string(), err.to_string())]),
                    ALLOCATE_FIELDS,
                ),
                message: Some(Notice::error(err.to_string())),
                ..Default::default()
            },
        ),
        Err(err @ (IpamError::SubnetFull { .. } | IpamError::Conflict(_))) => (
            StatusCode::CONFLICT,
            SectionState {
                form,
                message: Some(Notice::error(err.to_string())),
                ..Default::default()
            },
        ),
        Err(e) => return Err(e.into()),
    };
    let extra = SubnetPageState {
        section,
        ..Default::default()
    };
    subnet_response(&state, chrome, htmx, status, subnet_id, extra).await
}

/// Where the release came from: the allocations view to show again.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReleaseForm {
    q: Option<String>,
    status: Option<String>,
    page: Option<String>,
}

#[allow(clippy::too_many_arguments)] // axum extractors
pub async fn release_ip(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    session: Session,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, NOT_FOUND)?;
    let released = service::release_ip(
        &state.db.main,
        IpamSettings::from_config(&state.config),
        &user.actor(parts.address),
        id,
    )
    .await?;
    let a = &released.allocation;
    let text = if released.already_released {
        format!("{} had been released already.", a.ip_address)
    } else {
        format!("Released {} from {}.", a.ip_address, holder(a))
    };
    let subnet_id = a.subnet_id;
    if !is_htmx(&headers) {
        flash::success(&session, text).await;
        return Ok(see_other(format!("/ipam/subnets/{subnet_id}")));
    }
    let extra = SubnetPageState {
        section: SectionState {
            query: AllocationQuery {
                q: form.q,
                status: form.status,
                page: form.page,
            },
            message: Some(Notice::success(text)),
            ..Default::default()
        },
        ..Default::default()
    };
    subnet_response(&state, chrome, true, StatusCode::OK, subnet_id, extra).await
}

// ------------------------------------------------------------ allocations

#[derive(Template, WebTemplate)]
#[template(path = "ipam/allocations.html")]
pub struct AllocationsPage {
    chrome: Chrome,
    rows: Vec<AllocationRow>,
    pager: Pager,
    q: String,
    status: String,
    csv_href: String,
}

impl AllocationsPage {
    fn statuses(&self) -> [&'static str; 3] {
        ALLOCATION_STATUSES
    }
}

/// Subnet labels by id, looked up once each.
async fn subnet_labels(
    state: &AppState,
    ids: impl Iterator<Item = i32>,
    known: &mut HashMap<i32, String>,
) -> Result<(), AppError> {
    for id in ids {
        if known.contains_key(&id) {
            continue;
        }
        let label = match service::get_subnet(&state.db.main, id).await {
            Ok(subnet) => service::subnet_label(&subnet),
            Err(IpamError::NotFound(_)) => format!("#{id}"),
            Err(e) => return Err(e.into()),
        };
        known.insert(id, label);
    }
    Ok(())
}

pub async fn list_allocations(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<AllocationQuery>,
) -> Result<AllocationsPage, AppError> {
    let q = search_text(&query.q);
    let status = query.status.clone().unwrap_or_default();
    let filter = allocation_filter(&q, &status);
    let page = page_request(&query.page);
    let (allocations, total) =
        service::list_allocations(&state.db.main, &filter, &newest_first(), page).await?;
    let mut labels = HashMap::new();
    subnet_labels(&state, allocations.iter().map(|a| a.subnet_id), &mut labels).await?;
    let rows: Vec<AllocationRow> = allocations
        .into_iter()
        .map(|a| {
            let label = labels.get(&a.subnet_id).cloned().unwrap_or_default();
            AllocationRow::of(a, label)
        })
        .collect();
    let params = vec![("q", q.clone()), ("status", status.clone())];
    let mut csv_query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        csv_query.append_pair(k, v);
    }
    let csv_query = csv_query.finish();
    let pager = Pager::new("/ipam/allocations", params, page.page, total, rows.len());
    Ok(AllocationsPage {
        chrome: chrome.at("allocations", "Allocations"),
        rows,
        pager,
        q,
        status,
        csv_href: if csv_query.is_empty() {
            "/ipam/allocations.csv".into()
        } else {
            format!("/ipam/allocations.csv?{csv_query}")
        },
    })
}

fn rfc3339(at: &Option<sea_orm::prelude::DateTimeWithTimeZone>) -> String {
    at.map(|t| t.to_utc().to_rfc3339()).unwrap_or_default()
}

pub async fn export_allocations(
    _user: SignedIn,
    State(state): State<AppState>,
    Query(query): Query<AllocationQuery>,
) -> Result<Response, AppError> {
    let q = search_text(&query.q);
    let status = query.status.clone().unwrap_or_default();
    let filter = allocation_filter(&q, &status);
    let mut out = String::from(
        "id,ip_address,subnet,username,mac_address,status,allocated_at,released_at,expires_at\r\n",
    );
    let mut labels = HashMap::new();
    let mut page = 1;
    loop {
        let request = PageRequest {
            page,
            per_page: MAX_PER_PAGE,
        };
        let (rows, total) =
            service::list_allocations(&state.db.main, &filter, &newest_first(), request).await?;
        subnet_labels(&state, rows.iter().map(|a| a.subnet_id), &mut labels).await?;
        for a in &rows {
            let cells = [
                a.id.to_string(),
                a.ip_address.clone(),
                labels.get(&a.subnet_id).cloned().unwrap_or_default(),
                a.username.clone().unwrap_or_default(),
                a.mac_address.clone().unwrap_or_default(),
                a.status.clone(),
                a.allocated_at.to_rfc3339(),
                rfc3339(&a.released_at),
                rfc3339(&a.expires_at),
            ];
            let line: Vec<String> = cells.iter().map(|c| crate::web::csv::cell(c)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        if rows.is_empty() || page >= request.last_page(total) || page >= MAX_PAGE {
            break;
        }
        page += 1;
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"allocations.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response())
}

// ---------------------------------------------------------------- history

#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    ip: Option<String>,
    at: Option<String>,
}

/// One holding of the address, from IPAM or from RADIUS accounting.
pub struct HistoryRow {
    /// `IPAM` or `RADIUS`.
    pub source: &'static str,
    pub ip: String,
    pub subnet_id: Option<i32>,
    pub username: String,
    pub mac: String,
    pub action: String,
    pub allocated: String,
    pub released: String,
    /// RADIUS: the NAS and the terminate cause; empty for IPAM.
    pub detail: String,
}

impl HistoryRow {
    fn of(h: super::history::AddressHolding) -> Self {
        use super::history::HoldingSource;
        let open = match h.source {
            HoldingSource::Ipam => "still held",
            HoldingSource::Radius => "still online",
        };
        let detail = match h.source {
            HoldingSource::Ipam => String::new(),
            HoldingSource::Radius => format!(
                "NAS {}{}",
                dash(&h.nas_ip),
                h.terminate_cause
                    .as_deref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default()
            ),
        };
        Self {
            source: h.source.label(),
            ip: h.ip_address,
            subnet_id: h.subnet_id,
            username: dash(&h.username),
            mac: dash(&h.mac_address),
            action: h.event,
            allocated: h.from.as_ref().map(when).unwrap_or_else(|| "—".into()),
            released: h.until.as_ref().map(when).unwrap_or_else(|| open.into()),
            detail,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "ipam/history.html")]
pub struct HistoryPage {
    chrome: Chrome,
    ip: String,
    at: String,
    errors: Errors,
    /// The moment asked about, as shown; empty before a search.
    at_text: String,
    searched: bool,
    holders: Vec<HistoryRow>,
    timeline: Vec<HistoryRow>,
}

pub async fn address_history(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, AppError> {
    let ip_text = query.ip.as_deref().unwrap_or("").trim().to_string();
    let at_text = query.at.as_deref().unwrap_or("").trim().to_string();
    let mut errors = FieldErrors::new();
    let mut page = HistoryPage {
        chrome: chrome.at("history", "Address history"),
        ip: ip_text.clone(),
        at: at_text.clone(),
        errors: Errors::default(),
        at_text: String::new(),
        searched: false,
        holders: Vec::new(),
        timeline: Vec::new(),
    };
    if ip_text.is_empty() && at_text.is_empty() {
        return Ok(page.into_response());
    }
    let ip = match parse_ip(&ip_text) {
        Ok(ip) => Some(ip),
        Err(e) => {
            errors.insert(
                "ip".into(),
                if ip_text.is_empty() {
                    "give the address to look up".into()
                } else {
                    e
                },
            );
            None
        }
    };
    let at = if at_text.is_empty() {
        Some(Utc::now())
    } else {
        parse_utc(&at_text)
            .map_err(|e| errors.insert("at".into(), e))
            .ok()
    };
    let (Some(ip), Some(at)) = (ip, at) else {
        page.errors = Errors::from_indexed_fields(errors, &["ip", "at"]);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let db = &state.db.main;
    page.searched = true;
    page.at_text = if at_text.is_empty() {
        format!("now ({})", when(&at))
    } else {
        at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    };
    // Both sources: IPAM allocations and RADIUS accounting sessions.
    let radius_db = &state.db.radius;
    page.holders = super::history::who_had_address(db, radius_db, ip, at)
        .await?
        .into_iter()
        .map(HistoryRow::of)
        .collect();
    page.timeline = super::history::address_timeline(db, radius_db, ip, TIMELINE_LIMIT)
        .await?
        .into_iter()
        .map(HistoryRow::of)
        .collect();
    page.ip = ip.to_string();
    Ok(page.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_quoted_cells_escaped() {
        assert_eq!(crate::web::csv::cell("alice"), "alice");
        assert_eq!(
            crate::web::csv::cell("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(crate::web::csv::cell("+1"), "'+1");
        assert_eq!(crate::web::csv::cell("-1+2"), "'-1+2");
        assert_eq!(crate::web::csv::cell("@evil"), "'@evil");
        assert_eq!(crate::web::csv::cell("a,b"), "\"a,b\"");
        assert_eq!(crate::web::csv::cell("2001:db8::1"), "2001:db8::1");
        assert_eq!(crate::web::csv::cell(""), "");
    }

    #[test]
    fn datetime_local_values_are_read_as_utc() {
        let at = parse_utc("2025-01-31T14:30").unwrap();
        assert_eq!(at.to_rfc3339(), "2025-01-31T14:30:00+00:00");
        assert!(parse_utc("2025-01-31T14:30:15").is_ok());
        assert!(parse_utc("2025-01-31T14:30:00+02:00").is_ok());
        assert!(parse_utc("yesterday").unwrap_err().contains("not a date"));
    }

    #[test]
    fn search_text_picks_the_filter() {
        let f = allocation_filter("10.0.0.5", "active");
        assert!(f.ip.is_some() && f.status.as_deref() == Some("active"));
        let f = allocation_filter("AA-BB-CC-DD-EE-FF", "bogus");
        assert_eq!(f.mac_address.unwrap().as_str(), "aa:bb:cc:dd:ee:ff");
        assert!(f.status.is_none());
        let f = allocation_filter("alice", "");
        assert_eq!(f.username.as_deref(), Some("alice"));
    }

    #[test]
    fn dns_numbered_fields_fold_into_one_message() {
        let errors = Errors::from_indexed_fields(
            FieldErrors::from([
                ("dns_servers[0]".to_string(), "a".to_string()),
                ("dns_servers[2]".to_string(), "b".to_string()),
                ("pool_id".to_string(), "c".to_string()),
            ]),
            POOL_FIELDS,
        );
        assert_eq!(errors.get("dns_servers"), Some("a; b"));
        assert_eq!(errors.get("_form"), Some("c"));
    }
}
