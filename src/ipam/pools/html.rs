//! The pool pages: the list with its filters and CSV-free table, the pool
//! page with its subnets, and the pool and subnet forms on them.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::ipam::entities::{ip_pool, ip_subnet};
use crate::ipam::html::{optional_vlan, status_options, Bar, NOT_FOUND};
use crate::ipam::service::{self, IpamError, Utilization, POOL_SORTS};
use crate::query::{PageRequest, Sort, MAX_PER_PAGE};
use crate::staff::{Operator, Role};
use crate::web::forms::{
    again, dash, merged, optional_string, path_id, search_text, Choice, Errors, Notice, Staff,
};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, Pager};

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

pub(crate) const POOL_FIELDS: &[&str] = &[
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
    pub fn status_options(&self) -> Vec<Choice> {
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
            vlan_id: optional_vlan("vlan_id", &self.vlan_id, &mut errors),
            status: optional_string(&self.status),
        };
        (input, errors)
    }

    /// The service's input when the form reads as one, else every message
    /// the form and the service's own check have for it.
    fn parsed(&self) -> Result<service::PoolInput, IpamError> {
        let (input, early) = self.input();
        if early.is_empty() {
            return Ok(input);
        }
        let later = match input.validate() {
            Err(IpamError::Invalid(fields)) => fields,
            _ => FieldErrors::new(),
        };
        Err(IpamError::Invalid(merged(early, later)))
    }
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

/// The orders the page's sort select offers: keys of [`POOL_SORTS`].
const SORT_CHOICES: [(&str, &str); 6] = [
    ("name", "Name (A–Z)"),
    ("-name", "Name (Z–A)"),
    ("vlan", "VLAN"),
    ("status", "Status"),
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
];

impl PoolsPage {
    fn sorts(&self) -> &'static [(&'static str, &'static str)] {
        &SORT_CHOICES
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
        .filter(|s| SORT_CHOICES.iter().any(|(k, _)| k == s))
        .unwrap_or("name")
        .to_string();
    let mut ignored = FieldErrors::new();
    let sort = Sort::parse(Some(&sort_key), POOL_SORTS, "name", &mut ignored);
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
    staff: Staff,
    Query(query): Query<PoolListQuery>,
) -> Result<PoolsPage, AppError> {
    let form = PoolForm {
        status: "active".into(),
        ..Default::default()
    };
    let chrome = staff.chrome().await?;
    pools_page(&staff.state, chrome, &query, form, Errors::default()).await
}

pub async fn create_pool(
    staff: Staff<Operator>,
    Form(form): Form<PoolForm>,
) -> Result<Response, AppError> {
    let created = match form.parsed() {
        Ok(input) => service::create_pool(staff.db(), &staff.actor, &input).await,
        Err(early) => Err(early),
    };
    match created {
        Ok(pool) => {
            let created = format!("Pool “{}” created.", pool.name);
            Ok(staff
                .done(created, format!("/ipam/pools/{}", pool.id))
                .await)
        }
        Err(IpamError::Invalid(fields)) => {
            let errors = Errors::from_indexed_fields(fields, POOL_FIELDS);
            let chrome = staff.chrome().await?;
            let query = PoolListQuery::default();
            let page = pools_page(&staff.state, chrome, &query, form, errors).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
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

pub(crate) const SUBNET_FIELDS: &[&str] =
    &["network", "gateway", "vlan_id", "status", "description"];

impl SubnetForm {
    pub fn status_options(&self) -> Vec<Choice> {
        status_options(&self.status)
    }

    pub(crate) fn of(subnet: &ip_subnet::Model) -> Self {
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
        &service::by_network(),
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

pub async fn show_pool(staff: Staff, Path(id): Path<String>) -> Result<PoolPage, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let chrome = staff.chrome().await?;
    pool_page(&staff.state, chrome, id, PoolPageState::default()).await
}

pub async fn update_pool(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<PoolForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let updated = match form.parsed() {
        Ok(input) => service::update_pool(staff.db(), &staff.actor, id, &input).await,
        Err(early) => Err(early),
    };
    match updated {
        Ok(pool) => {
            let saved = format!("Pool “{}” saved.", pool.name);
            Ok(staff.done(saved, format!("/ipam/pools/{id}")).await)
        }
        Err(IpamError::Invalid(fields)) => {
            let extra = PoolPageState {
                edit: Some(form),
                edit_errors: Errors::from_indexed_fields(fields, POOL_FIELDS),
                ..Default::default()
            };
            let page = pool_page(&staff.state, staff.chrome().await?, id, extra).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_pool(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let name = service::get_pool(staff.db(), id).await?.name;
    match service::delete_pool(staff.db(), &staff.actor, id).await {
        Ok(()) => Ok(staff
            .done(format!("Pool “{name}” deleted."), "/ipam/pools")
            .await),
        Err(IpamError::Conflict(message)) => {
            let extra = PoolPageState {
                notice: Some(Notice::error(message)),
                ..Default::default()
            };
            let page = pool_page(&staff.state, staff.chrome().await?, id, extra).await?;
            again(StatusCode::CONFLICT, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn create_subnet(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<SubnetForm>,
) -> Result<Response, AppError> {
    let pool_id = path_id(&id, NOT_FOUND)?;
    let pool = service::get_pool(staff.db(), pool_id).await?;
    let mut early = FieldErrors::new();
    let input = service::SubnetInput {
        pool_id,
        network: form.network.clone(),
        gateway: optional_string(&form.gateway),
        vlan_id: optional_vlan("vlan_id", &form.vlan_id, &mut early),
        status: optional_string(&form.status),
        description: optional_string(&form.description),
    };
    let created = if early.is_empty() {
        service::create_subnet(staff.db(), &staff.actor, &input).await
    } else {
        Err(IpamError::Invalid(early))
    };
    match created {
        Ok(subnet) => {
            let label = service::subnet_label(&subnet);
            let added = format!("Subnet {label} added to pool “{}”.", pool.name);
            Ok(staff
                .done(added, format!("/ipam/subnets/{}", subnet.id))
                .await)
        }
        Err(IpamError::Invalid(fields)) => {
            let extra = PoolPageState {
                subnet_form: Some(form),
                subnet_errors: Errors::from_indexed_fields(fields, SUBNET_FIELDS),
                ..Default::default()
            };
            let page = pool_page(&staff.state, staff.chrome().await?, pool_id, extra).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}
