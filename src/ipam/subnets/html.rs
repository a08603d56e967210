//! The subnet pages: the list, and the subnet page with its allocations,
//! free addresses, and the allocate, release and edit forms.

use std::collections::HashMap;
use std::net::IpAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::ipam::domain::{parse_ip, MacAddress};
use crate::ipam::entities::{ip_allocation, ip_subnet};
use crate::ipam::html::{optional_vlan, Bar, ALLOCATION_STATUSES, AVAILABLE_SHOWN, NOT_FOUND};
use crate::ipam::pools::html::{SubnetForm, SUBNET_FIELDS};
use crate::ipam::service::{self, IpamError, IpamSettings};
use crate::staff::{AtLeast, Operator, Role};
use crate::web::forms::{
    again, dash, is_htmx, moment, optional_string, path_id, render_fragment, search_text,
    with_vary, Errors, Notice, Staff,
};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, when_opt, Pager};

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
    staff: Staff,
    Query(query): Query<SubnetListQuery>,
) -> Result<SubnetsPage, AppError> {
    let db = staff.db();
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
    let (subnets, total) = service::list_subnets(db, &filter, &service::by_network(), page).await?;
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
        chrome: staff.chrome().await?.at("subnets", "Subnets"),
        rows,
        pager,
        q,
    })
}

// ------------------------------------------------------------ subnet page

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AllocationQuery {
    pub(crate) page: Option<String>,
    pub(crate) q: Option<String>,
    pub(crate) status: Option<String>,
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
    pub(crate) fn of(a: ip_allocation::Model, subnet: String) -> Self {
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
pub(crate) fn allocation_filter(q: &str, status: &str) -> service::AllocationFilter {
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
        service::list_allocations(db, &filter, &service::newest_first(), page).await?;
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
        render_fragment(status, &AllocationsFragment { section })
    } else {
        let page = subnet_page(state, chrome, id, extra).await?;
        Ok(with_vary((status, page).into_response()))
    }
}

pub async fn show_subnet(
    staff: Staff,
    headers: HeaderMap,
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
        &staff.state,
        staff.chrome().await?,
        is_htmx(&headers),
        StatusCode::OK,
        path_id(&id, NOT_FOUND)?,
        extra,
    )
    .await
}

pub async fn update_subnet(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<SubnetForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let mut early = FieldErrors::new();
    let update = service::SubnetUpdate {
        gateway: optional_string(&form.gateway),
        vlan_id: optional_vlan("vlan_id", &form.vlan_id, &mut early),
        status: optional_string(&form.status),
        description: optional_string(&form.description),
        // The page's form edits neither the network nor the pool.
        network: None,
        pool_id: None,
    };
    let updated = if early.is_empty() {
        service::update_subnet(staff.db(), settings(&staff), &staff.actor, id, &update).await
    } else {
        Err(IpamError::Invalid(early))
    };
    match updated {
        Ok(subnet) => {
            let saved = format!("Subnet {} saved.", service::subnet_label(&subnet));
            Ok(staff.done(saved, format!("/ipam/subnets/{id}")).await)
        }
        Err(IpamError::Invalid(fields)) => {
            let extra = SubnetPageState {
                edit: Some(form),
                edit_errors: Errors::from_indexed_fields(fields, SUBNET_FIELDS),
                ..Default::default()
            };
            let page = subnet_page(&staff.state, staff.chrome().await?, id, extra).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_subnet(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let subnet = service::get_subnet(staff.db(), id).await?;
    match service::delete_subnet(staff.db(), settings(&staff), &staff.actor, id).await {
        Ok(()) => {
            let deleted = format!("Subnet {} deleted.", service::subnet_label(&subnet));
            Ok(staff
                .done(deleted, format!("/ipam/pools/{}", subnet.pool_id))
                .await)
        }
        Err(IpamError::Conflict(message)) => {
            let extra = SubnetPageState {
                notice: Some(Notice::error(message)),
                ..Default::default()
            };
            let page = subnet_page(&staff.state, staff.chrome().await?, id, extra).await?;
            again(StatusCode::CONFLICT, page)
        }
        Err(e) => Err(e.into()),
    }
}

/// The IPAM settings (the subnet lock's timeout) of the app.
fn settings<R: AtLeast>(staff: &Staff<R>) -> IpamSettings {
    IpamSettings::from_config(&staff.state.config)
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

pub async fn allocate_ip(
    staff: Staff<Operator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AllocateForm>,
) -> Result<Response, AppError> {
    let subnet_id = path_id(&id, NOT_FOUND)?;
    let htmx = is_htmx(&headers);
    let mut early = FieldErrors::new();
    let expires_at = match optional_string(&form.expires_at).map(|t| moment(&t)) {
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
        service::allocate_ip(staff.db(), settings(&staff), &staff.actor, &input).await
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
                return Ok(staff.done(text, format!("/ipam/subnets/{subnet_id}")).await);
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
    let chrome = staff.chrome().await?;
    subnet_response(&staff.state, chrome, htmx, status, subnet_id, extra).await
}

/// Where the release came from: the allocations view to show again.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReleaseForm {
    q: Option<String>,
    status: Option<String>,
    page: Option<String>,
}

pub async fn release_ip(
    staff: Staff<Operator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let released = service::release_ip(staff.db(), settings(&staff), &staff.actor, id).await?;
    let a = &released.allocation;
    let text = if released.already_released {
        format!("{} had been released already.", a.ip_address)
    } else {
        format!("Released {} from {}.", a.ip_address, holder(a))
    };
    let subnet_id = a.subnet_id;
    if !is_htmx(&headers) {
        return Ok(staff.done(text, format!("/ipam/subnets/{subnet_id}")).await);
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
    let chrome = staff.chrome().await?;
    subnet_response(&staff.state, chrome, true, StatusCode::OK, subnet_id, extra).await
}
