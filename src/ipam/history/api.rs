//! `/api/v1/ipam/history`: who had an address at a moment.

use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::auth::Api;
use crate::api::extract::ApiQuery;
use crate::error::{AppError, FieldErrors};
use crate::ipam::entities::ip_allocation_history;
use crate::ipam::history::{AddressHolding, HoldingSource};
use crate::ipam::pools::api::ip_filter;
use crate::ipam::service::{self};
use crate::staff::Viewer;

/// `?ip=&at=` of `GET /ipam/history`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The address.
    #[param(required = true, example = "100.64.0.2")]
    pub ip: Option<String>,
    /// The moment, RFC 3339 (`2026-12-01T10:30:00Z`); default now.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-12-01T10:30:00Z")]
    pub at: Option<String>,
}

/// One record of who held an address, from IPAM or from RADIUS accounting.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"source": "radius", "ip_address": "100.64.0.7",
    "username": "alice@isp.example", "mac_address": "AA:BB:CC:DD:EE:FF",
    "from": "2026-11-28T08:00:00Z", "until": "2026-11-28T10:00:00Z", "event": "session",
    "allocation_id": null, "subnet_id": null, "radacctid": 42, "acct_session_id": "81a00003",
    "nas_ip": "192.0.2.1", "terminate_cause": "User-Request"}))]
pub struct HoldingRecord {
    /// `ipam` (an allocation) or `radius` (an accounting session).
    #[schema(example = "radius")]
    pub source: String,
    pub ip_address: String,
    pub username: Option<String>,
    /// The allocation's MAC, or the session's Calling-Station-Id.
    pub mac_address: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Null while still held or open.
    pub until: Option<DateTime<Utc>>,
    /// IPAM: `allocate` or `release`; RADIUS: `session`.
    pub event: String,
    pub allocation_id: Option<i64>,
    pub subnet_id: Option<i32>,
    pub radacctid: Option<i64>,
    pub acct_session_id: Option<String>,
    pub nas_ip: Option<String>,
    pub terminate_cause: Option<String>,
}

impl From<AddressHolding> for HoldingRecord {
    fn from(h: AddressHolding) -> Self {
        Self {
            source: match h.source {
                HoldingSource::Ipam => "ipam".into(),
                HoldingSource::Radius => "radius".into(),
            },
            ip_address: h.ip_address,
            username: h.username,
            mac_address: h.mac_address,
            from: h.from,
            until: h.until,
            event: h.event,
            allocation_id: h.allocation_id,
            subnet_id: h.subnet_id,
            radacctid: h.radacctid,
            acct_session_id: h.acct_session_id,
            nas_ip: h.nas_ip,
            terminate_cause: h.terminate_cause,
        }
    }
}

/// Who held an address at a moment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressHistory {
    #[schema(example = "100.64.0.2")]
    pub ip: String,
    pub at: DateTime<Utc>,
    /// The IPAM holders at that moment: normally one, none if it was free.
    pub holders: Vec<Holding>,
    /// Both sources merged, newest first: the IPAM allocations above
    /// (`source` `ipam`) and the RADIUS accounting sessions whose
    /// Framed-IP-Address (Framed-IPv6-Address for IPv6) was this address
    /// at that moment (`source` `radius`).
    pub records: Vec<HoldingRecord>,
}

/// One holding of an address: from `allocated_at` until `released_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Holding {
    #[schema(example = 7)]
    pub allocation_id: Option<i64>,
    #[schema(example = 1)]
    pub subnet_id: Option<i32>,
    #[schema(example = "100.64.0.2")]
    pub ip_address: String,
    #[schema(example = "aa:bb:cc:dd:ee:ff")]
    pub mac_address: Option<String>,
    #[schema(example = "alice@isp.example")]
    pub username: Option<String>,
    pub allocated_at: DateTime<Utc>,
    /// Null while it is still held.
    pub released_at: Option<DateTime<Utc>>,
}

impl From<ip_allocation_history::Model> for Holding {
    fn from(row: ip_allocation_history::Model) -> Self {
        Self {
            allocation_id: row.allocation_id,
            subnet_id: row.subnet_id,
            ip_address: row.ip_address,
            mac_address: row.mac_address,
            username: row.username,
            allocated_at: row.allocated_at.to_utc(),
            released_at: row.released_at.map(|t| t.to_utc()),
        }
    }
}

/// Parses an RFC 3339 moment. A `+` offset that arrived unencoded in a
/// query string reads as a space: take it back.
fn parse_moment(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc3339(&text.replace(' ', "+")))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Who held an address at a moment (default now): for abuse reports and
/// lawful requests. `holders` are the IPAM allocations; `records` merges
/// them with the RADIUS accounting sessions that had the address then,
/// each labelled by `source`, newest first.
#[utoipa::path(
    get,
    path = "/ipam/history",
    tag = "ipam",
    operation_id = "address_history",
    params(HistoryQuery),
    responses(
        (status = 200, description = "The holders of the address at that moment.", body = AddressHistory,
            example = json!({"ip": "100.64.0.2", "at": "2026-12-01T10:30:00Z", "holders": [
                {"allocation_id": 7, "subnet_id": 1, "ip_address": "100.64.0.2",
                "mac_address": "aa:bb:cc:dd:ee:ff", "username": "alice@isp.example",
                "allocated_at": "2026-12-01T10:05:00Z", "released_at": "2026-12-02T09:00:00Z"}],
                "records": [
                {"source": "radius", "ip_address": "100.64.0.2", "username": "alice@isp.example",
                "mac_address": "AA:BB:CC:DD:EE:FF", "from": "2026-12-01T10:06:00Z",
                "until": "2026-12-01T12:00:00Z", "event": "session", "allocation_id": null,
                "subnet_id": null, "radacctid": 42, "acct_session_id": "81a00003",
                "nas_ip": "192.0.2.1", "terminate_cause": "User-Request"},
                {"source": "ipam", "ip_address": "100.64.0.2", "username": "alice@isp.example",
                "mac_address": "aa:bb:cc:dd:ee:ff", "from": "2026-12-01T10:05:00Z",
                "until": "2026-12-02T09:00:00Z", "event": "allocate", "allocation_id": 7,
                "subnet_id": 1, "radacctid": null, "acct_session_id": null, "nas_ip": null,
                "terminate_cause": null}]})),
    ),
)]
pub async fn address_history(
    api: Api<Viewer>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<AddressHistory>, AppError> {
    let mut errors = FieldErrors::new();
    let ip = match query.ip.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => {
            errors.insert("ip".into(), "is required".into());
            None
        }
        Some(_) => ip_filter("ip", query.ip.as_deref(), &mut errors),
    };
    let at = match query.at.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Some(Utc::now()),
        Some(text) => {
            let at = parse_moment(text);
            if at.is_none() {
                errors.insert(
                    "at".into(),
                    format!("\"{text}\" is not an RFC 3339 time such as 2026-12-01T10:30:00Z"),
                );
            }
            at
        }
    };
    let (Some(ip), Some(at), true) = (ip, at, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let holders = service::address_history(api.db(), ip, at).await?;
    let records =
        crate::ipam::history::who_had_address(api.db(), &api.state.db.radius, ip, at).await?;
    Ok(Json(AddressHistory {
        ip: ip.to_string(),
        at,
        holders: holders.into_iter().map(Holding::from).collect(),
        records: records.into_iter().map(Into::into).collect(),
    }))
}
