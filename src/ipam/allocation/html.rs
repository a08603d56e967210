//! The allocations list and its CSV export.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Query;
use axum::response::Response;
use sea_orm::DatabaseConnection;

use crate::error::AppError;
use crate::ipam::html::ALLOCATION_STATUSES;
use crate::ipam::service::{self, IpamError};
use crate::ipam::subnets::html::{allocation_filter, AllocationQuery, AllocationRow};
use crate::query::{PageRequest, MAX_PAGE, MAX_PER_PAGE};
use crate::web::csv;
use crate::web::forms::{search_text, Staff};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, Pager};

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
    db: &DatabaseConnection,
    ids: &[i32],
    known: &mut HashMap<i32, String>,
) -> Result<(), AppError> {
    for &id in ids {
        if known.contains_key(&id) {
            continue;
        }
        let label = match service::get_subnet(db, id).await {
            Ok(subnet) => service::subnet_label(&subnet),
            Err(IpamError::NotFound(_)) => format!("#{id}"),
            Err(e) => return Err(e.into()),
        };
        known.insert(id, label);
    }
    Ok(())
}

pub async fn list_allocations(
    staff: Staff,
    Query(query): Query<AllocationQuery>,
) -> Result<AllocationsPage, AppError> {
    let q = search_text(&query.q);
    let status = query.status.clone().unwrap_or_default();
    let filter = allocation_filter(&q, &status);
    let page = page_request(&query.page);
    let (allocations, total) =
        service::list_allocations(staff.db(), &filter, &service::newest_first(), page).await?;
    let mut labels = HashMap::new();
    let ids: Vec<i32> = allocations.iter().map(|a| a.subnet_id).collect();
    subnet_labels(staff.db(), &ids, &mut labels).await?;
    let rows: Vec<AllocationRow> = allocations
        .into_iter()
        .map(|a| {
            let label = labels.get(&a.subnet_id).cloned().unwrap_or_default();
            AllocationRow::of(a, label)
        })
        .collect();
    let params = vec![("q", q.clone()), ("status", status.clone())];
    let csv_href = csv_href(&params);
    let pager = Pager::new("/ipam/allocations", params, page.page, total, rows.len());
    Ok(AllocationsPage {
        chrome: staff.chrome().await?.at("allocations", "Allocations"),
        rows,
        pager,
        q,
        status,
        csv_href,
    })
}

/// The CSV export of the list as filtered.
fn csv_href(params: &[(&str, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if query.is_empty() {
        "/ipam/allocations.csv".into()
    } else {
        format!("/ipam/allocations.csv?{query}")
    }
}

fn rfc3339(at: &Option<sea_orm::prelude::DateTimeWithTimeZone>) -> String {
    at.map(|t| t.to_utc().to_rfc3339()).unwrap_or_default()
}

pub async fn export_allocations(
    staff: Staff,
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
            service::list_allocations(staff.db(), &filter, &service::newest_first(), request)
                .await?;
        let ids: Vec<i32> = rows.iter().map(|a| a.subnet_id).collect();
        subnet_labels(staff.db(), &ids, &mut labels).await?;
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
            csv::line(&mut out, &cells);
        }
        if rows.is_empty() || page >= request.last_page(total) || page >= MAX_PAGE {
            break;
        }
        page += 1;
    }
    Ok(csv::download("allocations.csv", out))
}
