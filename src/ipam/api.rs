//! `/api/v1/ipam/...`: pools, subnets, allocations and address history.
//!
//! Thin handlers: each reads its input, checks the caller's role, calls one
//! function of [`super::service`] (which validates, locks and audits) and
//! builds a view. Views never show the 16-byte address keys.
//!
//! Roles: any signed-in caller (viewer and up) reads; operators and admins
//! allocate and release addresses and create, change and delete pools and
//! subnets, the day-to-day work of an ISP's NOC. Deleting is safe to leave
//! to operators: the service refuses while addresses are allocated.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::IpVersion;
use super::entities::{ip_allocation, ip_pool, ip_subnet};
use super::service::{self, IpamSettings, Utilization};
use crate::app::AppState;

pub use crate::ipam::allocation::api::*;
pub use crate::ipam::history::api::*;
pub use crate::ipam::pools::api::*;
pub use crate::ipam::subnets::api::*;

/// The IPAM routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pools, create_pool))
        .routes(routes!(get_pool, update_pool, delete_pool))
        .routes(routes!(pool_utilization))
        .routes(routes!(list_subnets, create_subnet))
        .routes(routes!(get_subnet, update_subnet, delete_subnet))
        .routes(routes!(available_ips))
        .routes(routes!(allocate_ip))
        .routes(routes!(release_ip))
        .routes(routes!(list_allocations))
        .routes(routes!(get_allocation))
        .routes(routes!(address_history))
}

pub(crate) fn settings(state: &AppState) -> IpamSettings {
    IpamSettings::from_config(&state.config)
}

// ---------------------------------------------------------------- views

/// An address pool: a range subnets are carved from.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "cgnat-east", "description": "CGNAT customers, east",
    "ip_version": 4, "start_ip": "100.64.0.0", "end_ip": "100.64.255.255", "gateway": null,
    "dns_servers": ["192.0.2.53"], "vlan_id": 100, "status": "active",
    "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct PoolView {
    #[schema(example = 1)]
    pub id: i32,
    #[schema(example = "cgnat-east")]
    pub name: String,
    pub description: Option<String>,
    /// 4 or 6.
    #[schema(example = 4)]
    pub ip_version: i16,
    #[schema(example = "100.64.0.0")]
    pub start_ip: String,
    #[schema(example = "100.64.255.255")]
    pub end_ip: String,
    pub gateway: Option<String>,
    pub dns_servers: Vec<String>,
    #[schema(example = 100)]
    pub vlan_id: Option<i32>,
    /// `active`, `reserved` or `deprecated`.
    #[schema(example = "active")]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ip_pool::Model> for PoolView {
    fn from(pool: ip_pool::Model) -> Self {
        let dns_servers = service::dns_servers(&pool);
        Self {
            id: pool.id,
            name: pool.name,
            description: pool.description,
            ip_version: pool.ip_version,
            start_ip: pool.start_ip,
            end_ip: pool.end_ip,
            gateway: pool.gateway,
            dns_servers,
            vlan_id: pool.vlan_id,
            status: pool.status,
            created_at: pool.created_at.to_utc(),
            updated_at: pool.updated_at.to_utc(),
        }
    }
}

/// A subnet of a pool.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "pool_id": 1, "ip_version": 4, "network": "100.64.0.0/24",
    "prefix_length": 24, "gateway": "100.64.0.1", "vlan_id": 100, "status": "active",
    "description": "OLT 1", "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct SubnetView {
    #[schema(example = 1)]
    pub id: i32,
    #[schema(example = 1)]
    pub pool_id: i32,
    /// 4 or 6.
    #[schema(example = 4)]
    pub ip_version: i16,
    /// In CIDR notation.
    #[schema(example = "100.64.0.0/24")]
    pub network: String,
    #[schema(example = 24)]
    pub prefix_length: i16,
    #[schema(example = "100.64.0.1")]
    pub gateway: Option<String>,
    #[schema(example = 100)]
    pub vlan_id: Option<i32>,
    /// `active`, `reserved` or `deprecated`.
    #[schema(example = "active")]
    pub status: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ip_subnet::Model> for SubnetView {
    fn from(subnet: ip_subnet::Model) -> Self {
        Self {
            id: subnet.id,
            pool_id: subnet.pool_id,
            ip_version: subnet.ip_version,
            network: service::subnet_label(&subnet),
            prefix_length: subnet.prefix_length,
            gateway: subnet.gateway,
            vlan_id: subnet.vlan_id,
            status: subnet.status,
            description: subnet.description,
            created_at: subnet.created_at.to_utc(),
            updated_at: subnet.updated_at.to_utc(),
        }
    }
}

/// A subnet with its utilization (`GET /ipam/subnets/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubnetDetail {
    #[serde(flatten)]
    pub subnet: SubnetView,
    pub utilization: Utilization,
}

/// An address held (or once held) by a subscriber.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "subnet_id": 1, "ip_version": 4, "ip_address": "100.64.0.2",
    "mac_address": "aa:bb:cc:dd:ee:ff", "username": "alice@isp.example", "status": "active",
    "allocated_at": "2026-12-01T10:05:00Z", "released_at": null, "expires_at": null,
    "updated_at": "2026-12-01T10:05:00Z"}))]
pub struct AllocationView {
    #[schema(example = 7)]
    pub id: i64,
    #[schema(example = 1)]
    pub subnet_id: i32,
    /// 4 or 6.
    #[schema(example = 4)]
    pub ip_version: i16,
    #[schema(example = "100.64.0.2")]
    pub ip_address: String,
    /// Lower-case, colon-separated.
    #[schema(example = "aa:bb:cc:dd:ee:ff")]
    pub mac_address: Option<String>,
    #[schema(example = "alice@isp.example")]
    pub username: Option<String>,
    /// `active`, `released` or `expired`.
    #[schema(example = "active")]
    pub status: String,
    pub allocated_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

fn version_of(text: &str) -> i16 {
    text.parse::<IpAddr>()
        .map(|ip| IpVersion::of(ip).number())
        .unwrap_or(4)
}

impl From<ip_allocation::Model> for AllocationView {
    fn from(row: ip_allocation::Model) -> Self {
        Self {
            id: row.id,
            subnet_id: row.subnet_id,
            ip_version: version_of(&row.ip_address),
            ip_address: row.ip_address,
            mac_address: row.mac_address,
            username: row.username,
            status: row.status,
            allocated_at: row.allocated_at.to_utc(),
            released_at: row.released_at.map(|t| t.to_utc()),
            expires_at: row.expires_at.map(|t| t.to_utc()),
            updated_at: row.updated_at.to_utc(),
        }
    }
}
