//! The address history page: who had an address at a moment, and its
//! timeline.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::error::{AppError, FieldErrors};
use crate::ipam::domain::parse_ip;
use crate::ipam::html::TIMELINE_LIMIT;
use crate::web::forms::{again, dash, moment, Errors, Staff};
use crate::web::layout::Chrome;
use crate::web::listing::when;

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
    fn of(h: crate::ipam::history::AddressHolding) -> Self {
        use crate::ipam::history::HoldingSource;
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
    staff: Staff,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, AppError> {
    let ip_text = query.ip.as_deref().unwrap_or("").trim().to_string();
    let at_text = query.at.as_deref().unwrap_or("").trim().to_string();
    let mut errors = FieldErrors::new();
    let mut page = HistoryPage {
        chrome: staff.chrome().await?.at("history", "Address history"),
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
        moment(&at_text)
            .map_err(|e| errors.insert("at".into(), e))
            .ok()
    };
    let (Some(ip), Some(at)) = (ip, at) else {
        page.errors = Errors::from_indexed_fields(errors, &["ip", "at"]);
        return again(StatusCode::UNPROCESSABLE_ENTITY, page);
    };
    let db = staff.db();
    page.searched = true;
    page.at_text = if at_text.is_empty() {
        format!("now ({})", when(&at))
    } else {
        at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    };
    // Both sources: IPAM allocations and RADIUS accounting sessions.
    let radius_db = &staff.state.db.radius;
    page.holders = crate::ipam::history::who_had_address(db, radius_db, ip, at)
        .await?
        .into_iter()
        .map(HistoryRow::of)
        .collect();
    page.timeline = crate::ipam::history::address_timeline(db, radius_db, ip, TIMELINE_LIMIT)
        .await?
        .into_iter()
        .map(HistoryRow::of)
        .collect();
    page.ip = ip.to_string();
    Ok(page.into_response())
}
