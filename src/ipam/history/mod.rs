//! Who had an address: IPAM's allocation history and the RADIUS sessions
//! that held it, merged into one list labelled by source. IPAM owns the
//! question and asks RADIUS accounting for sessions; RADIUS knows nothing
//! of IPAM.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use tracing::instrument;

use super::entities::ip_allocation_history;
use super::service;
use crate::error::AppError;
use crate::radius::accounting::{self, Session};

pub mod allocations;
pub mod api;
pub mod html;

/// Where a record of an address's holder comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldingSource {
    /// An IPAM allocation (ip_allocation_history).
    Ipam,
    /// A RADIUS accounting session (radacct.framedipaddress).
    Radius,
}

impl HoldingSource {
    pub fn label(self) -> &'static str {
        match self {
            HoldingSource::Ipam => "IPAM",
            HoldingSource::Radius => "RADIUS",
        }
    }
}

/// One holder of an address over an interval, from either source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressHolding {
    pub source: HoldingSource,
    pub ip_address: String,
    pub username: Option<String>,
    /// The allocation's MAC address, or the session's Calling-Station-Id.
    pub mac_address: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// None while still held (allocation) or open (session).
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

impl AddressHolding {
    fn of_allocation(h: ip_allocation_history::Model) -> Self {
        Self {
            source: HoldingSource::Ipam,
            ip_address: h.ip_address,
            username: h.username,
            mac_address: h.mac_address,
            from: Some(h.allocated_at.to_utc()),
            until: h.released_at.map(|t| t.to_utc()),
            event: h.action,
            allocation_id: h.allocation_id,
            subnet_id: h.subnet_id,
            radacctid: None,
            acct_session_id: None,
            nas_ip: None,
            terminate_cause: None,
        }
    }

    fn of_session(s: Session, ip: IpAddr) -> Self {
        Self {
            source: HoldingSource::Radius,
            ip_address: s.framed_ip.unwrap_or_else(|| ip.to_string()),
            username: Some(s.username).filter(|u| !u.is_empty()),
            mac_address: s.calling_station_id,
            from: s.started_at,
            until: s.stopped_at,
            event: "session".into(),
            allocation_id: None,
            subnet_id: None,
            radacctid: Some(s.radacctid),
            acct_session_id: Some(s.acct_session_id),
            nas_ip: Some(s.nas_ip).filter(|n| !n.is_empty()),
            terminate_cause: s.terminate_cause,
        }
    }
}

/// Newest first: by start, then IPAM before RADIUS, then by id.
fn sort_holdings(holdings: &mut [AddressHolding]) {
    holdings.sort_by(|a, b| {
        b.from
            .cmp(&a.from)
            .then_with(|| (a.source as u8).cmp(&(b.source as u8)))
            .then_with(|| b.allocation_id.cmp(&a.allocation_id))
            .then_with(|| b.radacctid.cmp(&a.radacctid))
    });
}

/// Who had `ip` at `at`: IPAM allocations and RADIUS sessions whose
/// interval contains that moment, labelled by source, newest first.
#[instrument(skip_all)]
pub async fn who_had_address(
    main_db: &impl ConnectionTrait,
    radius_db: &impl ConnectionTrait,
    ip: IpAddr,
    at: DateTime<Utc>,
) -> Result<Vec<AddressHolding>, AppError> {
    let mut out: Vec<AddressHolding> = service::address_history(main_db, ip, at)
        .await?
        .into_iter()
        .map(AddressHolding::of_allocation)
        .collect();
    out.extend(
        accounting::sessions_with_address(radius_db, ip, Some(at), 100)
            .await?
            .into_iter()
            .map(|s| AddressHolding::of_session(s, ip)),
    );
    sort_holdings(&mut out);
    Ok(out)
}

/// The history of `ip` from both sources, newest first: the latest
/// `limit` IPAM events and the latest `limit` RADIUS sessions.
#[instrument(skip_all)]
pub async fn address_timeline(
    main_db: &impl ConnectionTrait,
    radius_db: &impl ConnectionTrait,
    ip: IpAddr,
    limit: u64,
) -> Result<Vec<AddressHolding>, AppError> {
    let mut out: Vec<AddressHolding> = service::address_timeline(main_db, ip, limit)
        .await?
        .into_iter()
        .map(AddressHolding::of_allocation)
        .collect();
    out.extend(
        accounting::sessions_with_address(radius_db, ip, None, limit)
            .await?
            .into_iter()
            .map(|s| AddressHolding::of_session(s, ip)),
    );
    sort_holdings(&mut out);
    Ok(out)
}
