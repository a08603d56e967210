//! `/api/v1/users` and `/api/v1/packages`: network users (subscribers) and
//! service packages.
//!
//! Thin handlers: each reads its input, checks the caller's role, calls one
//! function of [`super::service`] (which validates, allocates static
//! addresses through IPAM and audits) and builds a view.
//!
//! Roles: any signed-in caller (viewer and up) reads; operators and admins
//! create, change and delete. A user's password is write-only: no view has
//! it. `POST /users/{id}/reveal-password` (operator and up) returns it, and
//! the audit log records every call.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::{mikrotik_rate_limit, Rate, RateLimit};
use super::entities::{network_user, service_package};
use super::quota::{ByteSize, Direction, Tiers};
use crate::app::AppState;
use crate::ipam::service::IpamSettings;

pub use crate::users::packages::api::*;
pub use crate::users::subscribers::api::*;

/// The users and packages routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_packages, create_package))
        .routes(routes!(get_package, update_package, delete_package))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, patch_user, delete_user))
        .routes(routes!(reveal_password))
        .routes(routes!(sync_radius))
}

pub(crate) fn settings(state: &AppState) -> IpamSettings {
    IpamSettings::from_config(&state.config)
}

// ---------------------------------------------------------------- views

/// A package's burst: for up to `time_secs`, while the average rate stays
/// below the thresholds, the subscriber may reach the burst rates.
#[derive(Debug, Serialize, ToSchema)]
pub struct BurstView {
    #[schema(example = "30M")]
    pub download_rate: String,
    #[schema(example = "8M")]
    pub upload_rate: String,
    #[schema(example = "15M")]
    pub threshold_download: String,
    #[schema(example = "4M")]
    pub threshold_upload: String,
    #[schema(example = 10)]
    pub time_secs: u32,
}

/// A service package.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "Home 20M", "description": "Residential fibre",
    "download_rate": "20M", "upload_rate": "5M", "download_rate_kbps": 20000,
    "upload_rate_kbps": 5000, "burst": null, "session_timeout_secs": 86400,
    "simultaneous_use": 1, "radius_group": "home-20m", "mikrotik_profile": "home-20m",
    "rate_limit": "5M/20M", "status": "active",
    "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct PackageView {
    #[schema(example = 1)]
    pub id: i32,
    #[schema(example = "Home 20M")]
    pub name: String,
    pub description: Option<String>,
    /// In RouterOS units (`M` when whole, else `k`).
    #[schema(example = "20M")]
    pub download_rate: String,
    #[schema(example = "5M")]
    pub upload_rate: String,
    #[schema(example = 20000)]
    pub download_rate_kbps: i64,
    #[schema(example = 5000)]
    pub upload_rate_kbps: i64,
    pub burst: Option<BurstView>,
    #[schema(example = 86400)]
    pub session_timeout_secs: Option<i32>,
    #[schema(example = 1)]
    pub simultaneous_use: Option<i32>,
    /// The FreeRADIUS group (radusergroup.groupname) of its users.
    #[schema(example = "home-20m")]
    pub radius_group: String,
    /// The RouterOS PPP profile.
    #[schema(example = "home-20m")]
    pub mikrotik_profile: Option<String>,
    /// The Mikrotik-Rate-Limit value sent to the router: `rx/tx` from the
    /// router's side, so upload first (`5M/20M` for 20M down, 5M up), then
    /// the burst settings when there is a burst.
    #[schema(example = "5M/20M")]
    pub rate_limit: String,
    /// The service policy of its subscribers while suspended or expired;
    /// null: the default policy.
    pub policy_id: Option<i32>,
    /// Days past a subscriber's `expires_at` before it counts as expired.
    pub grace_days: Option<i32>,
    /// The fair-usage quota per billing cycle; null: none.
    pub quota: Option<PackageQuotaView>,
    /// The day of the month (1 to 28) its subscribers' cycles start,
    /// unless a subscriber has its own; null: the 1st.
    pub cycle_anchor_day: Option<i32>,
    #[schema(example = "active")]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A package's quota.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"bytes": 100000000000i64, "size": "100G", "direction": "total",
    "tiers": [{"threshold_percent": 100, "policy_id": 2}]}))]
pub struct PackageQuotaView {
    pub bytes: i64,
    /// The same, as text (decimal units: 1G = 10^9 bytes).
    pub size: String,
    /// `total`, `download` or `upload`: what counts.
    pub direction: String,
    /// Lowest threshold first.
    pub tiers: Vec<QuotaTierView>,
}

/// One tier of a quota: from this share of the allowance (quota plus
/// top-ups) on, the policy's service applies.
#[derive(Debug, Serialize, Deserialize, ToSchema, Clone, Copy)]
pub struct QuotaTierView {
    /// 1 to 1000.
    #[schema(minimum = 1, maximum = 1000, example = 100)]
    pub threshold_percent: i64,
    #[schema(example = 2)]
    pub policy_id: i32,
}

impl PackageQuotaView {
    fn of(p: &service_package::Model) -> Option<Self> {
        let bytes = p.quota_bytes.filter(|b| *b > 0)?;
        Some(Self {
            bytes,
            size: ByteSize(bytes as u64).to_string(),
            direction: p
                .quota_direction
                .clone()
                .unwrap_or_else(|| Direction::Total.as_str().into()),
            tiers: Tiers::from_column(p.quota_tiers.as_deref())
                .as_slice()
                .iter()
                .map(|t| QuotaTierView {
                    threshold_percent: i64::from(t.threshold_percent),
                    policy_id: t.policy_id,
                })
                .collect(),
        })
    }
}

fn rate_text(kbps: i64) -> String {
    Rate::from_column(kbps)
        .map(|r| r.to_string())
        .unwrap_or_default()
}

impl From<service_package::Model> for PackageView {
    fn from(p: service_package::Model) -> Self {
        let rate_limit = mikrotik_rate_limit(&p);
        let burst = RateLimit::of_package(&p)
            .and_then(|l| l.burst)
            .map(|b| BurstView {
                download_rate: b.download.to_string(),
                upload_rate: b.upload.to_string(),
                threshold_download: b.threshold_download.to_string(),
                threshold_upload: b.threshold_upload.to_string(),
                time_secs: b.time_secs,
            });
        let quota = PackageQuotaView::of(&p);
        Self {
            id: p.id,
            download_rate: rate_text(p.download_rate_kbps),
            upload_rate: rate_text(p.upload_rate_kbps),
            name: p.name,
            description: p.description,
            download_rate_kbps: p.download_rate_kbps,
            upload_rate_kbps: p.upload_rate_kbps,
            burst,
            session_timeout_secs: p.session_timeout_secs,
            simultaneous_use: p.simultaneous_use,
            radius_group: p.radius_group,
            mikrotik_profile: p.mikrotik_profile,
            rate_limit,
            policy_id: p.policy_id,
            grace_days: p.grace_days,
            quota,
            cycle_anchor_day: p.cycle_anchor_day,
            status: p.status,
            created_at: p.created_at.to_utc(),
            updated_at: p.updated_at.to_utc(),
        }
    }
}

/// A network user (subscriber). The password is never part of it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "username": "alice@isp.example", "service_type": "static",
    "package_id": 1, "status": "active", "static_ip": "100.64.0.2", "static_allocation_id": 12,
    "mac_address": "aa:bb:cc:dd:ee:ff", "expires_at": null, "full_name": "Alice Example",
    "notes": null, "radius_sync_pending": true, "radius_synced_at": null,
    "created_at": "2026-12-01T10:05:00Z", "updated_at": "2026-12-01T10:05:00Z"}))]
pub struct UserView {
    #[schema(example = 7)]
    pub id: i32,
    #[schema(example = "alice@isp.example")]
    pub username: String,
    /// `pppoe`, `hotspot` or `static`.
    #[schema(example = "pppoe")]
    pub service_type: String,
    #[schema(example = 1)]
    pub package_id: Option<i32>,
    /// `active`, `suspended` or `disabled`.
    #[schema(example = "active")]
    pub status: String,
    /// A static user's address, allocated from IPAM.
    #[schema(example = "100.64.0.2")]
    pub static_ip: Option<String>,
    /// The IPAM allocation holding `static_ip`.
    pub static_allocation_id: Option<i64>,
    #[schema(example = "aa:bb:cc:dd:ee:ff")]
    pub mac_address: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub full_name: Option<String>,
    pub notes: Option<String>,
    /// The day of the month its billing cycle starts; null: its package's.
    pub cycle_anchor_day: Option<i32>,
    /// True until the RADIUS sync has written the user's current state.
    pub radius_sync_pending: bool,
    pub radius_synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<network_user::Model> for UserView {
    fn from(u: network_user::Model) -> Self {
        Self {
            id: u.id,
            username: u.username,
            service_type: u.service_type,
            package_id: u.package_id,
            status: u.status,
            static_ip: u.static_ip,
            static_allocation_id: u.static_allocation_id,
            mac_address: u.mac_address,
            expires_at: u.expires_at.map(|t| t.to_utc()),
            full_name: u.full_name,
            notes: u.notes,
            cycle_anchor_day: u.cycle_anchor_day,
            radius_sync_pending: u.radius_sync_pending,
            radius_synced_at: u.radius_synced_at.map(|t| t.to_utc()),
            created_at: u.created_at.to_utc(),
            updated_at: u.updated_at.to_utc(),
        }
    }
}

/// A user's password, in clear (`POST /users/{id}/reveal-password`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "username": "alice@isp.example", "password": "Sup3r-secret pass"}))]
pub struct RevealedPassword {
    pub id: i32,
    pub username: String,
    pub password: String,
}
