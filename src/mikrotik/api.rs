//! `/api/v1/mikrotik/routers` and `/api/v1/mikrotik/pppoe-users`: MikroTik
//! routers and the PPPoE secrets ispd keeps on them.
//!
//! Thin handlers over [`super::service`]. Roles: any signed-in caller
//! (viewer and up) reads; operators and admins create, change, delete and
//! test. Passwords (the router's API password, PPP passwords) are
//! write-only: no view has them.
//!
//! A PPPoE change goes to the router first, then to the database; a router
//! that cannot be reached answers 502 (504 when it does not answer in
//! time) and nothing is saved.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::entities::{mikrotik_pppoe_user, mikrotik_router};
use super::service::{self, RouterProbe};
use crate::app::AppState;
use crate::staff::Role;

pub use crate::mikrotik::pppoe::api::*;
pub use crate::mikrotik::routers::api::*;

/// The MikroTik routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_routers, create_router))
        .routes(routes!(get_router, update_router, delete_router))
        .routes(routes!(test_router))
        .routes(routes!(list_pppoe_users, create_pppoe_user))
        .routes(routes!(
            get_pppoe_user,
            update_pppoe_user,
            delete_pppoe_user
        ))
}

// ---------------------------------------------------------------- views

/// A MikroTik router. Its API password is never part of it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "core-1", "ip_address": "192.0.2.1",
    "api_port": 8729, "use_tls": true,
    "tls_fingerprint": "3A:...:9F", "username": "ispd-api", "status": "online",
    "identity": "core-1", "version": "7.16.2 (stable)",
    "last_seen_at": "2026-12-01T10:00:00Z", "last_error": null,
    "created_at": "2026-12-01T09:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct RouterView {
    #[schema(example = 1)]
    pub id: i32,
    #[schema(example = "core-1")]
    pub name: String,
    /// An IP address or a host name.
    #[schema(example = "192.0.2.1")]
    pub ip_address: String,
    #[schema(example = 8728)]
    pub api_port: i32,
    /// API-SSL, accepting only the certificate with `tls_fingerprint`.
    pub use_tls: bool,
    /// SHA-256 of the router's certificate, upper-case hex pairs and `:`.
    pub tls_fingerprint: Option<String>,
    /// The API user.
    #[schema(example = "ispd-api")]
    pub username: String,
    /// `unknown` (never tested since added or changed), `online` or
    /// `offline` (the last test or check failed: see `last_error`).
    #[schema(example = "online")]
    pub status: String,
    /// `/system/identity`, from the last successful test.
    pub identity: Option<String>,
    /// The RouterOS version, from the last successful test.
    #[schema(example = "7.16.2 (stable)")]
    pub version: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RouterView {
    /// The router as `role` may see it ([`service::router_error_for`]).
    pub(crate) fn for_role(r: mikrotik_router::Model, role: Role) -> Self {
        let last_error = service::router_error_for(role, r.last_error.clone());
        Self {
            last_error,
            ..r.into()
        }
    }
}

impl From<mikrotik_router::Model> for RouterView {
    fn from(r: mikrotik_router::Model) -> Self {
        Self {
            id: r.id,
            name: r.name,
            ip_address: r.ip_address,
            api_port: r.api_port,
            use_tls: r.use_tls,
            tls_fingerprint: r.tls_fingerprint,
            username: r.username,
            status: r.status,
            identity: r.identity,
            version: r.version,
            last_seen_at: r.last_seen_at.map(|t| t.to_utc()),
            last_error: r.last_error,
            created_at: r.created_at.to_utc(),
            updated_at: r.updated_at.to_utc(),
        }
    }
}

/// The answer of a successful connection test.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"identity": "core-1", "version": "7.16.2 (stable)",
    "uptime": "2w3d4h5m6s", "board_name": "CCR2004-1G-12S+2XS"}))]
pub struct RouterTestView {
    /// `/system/identity`.
    pub identity: String,
    /// The RouterOS version.
    pub version: String,
    /// As RouterOS writes durations.
    pub uptime: String,
    pub board_name: Option<String>,
}

impl From<RouterProbe> for RouterTestView {
    fn from(p: RouterProbe) -> Self {
        Self {
            identity: p.identity,
            version: p.version,
            uptime: p.uptime,
            board_name: p.board_name,
        }
    }
}

/// A PPP secret ispd keeps on a router. Its password is never part of it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 3, "router_id": 1, "network_user_id": null,
    "username": "alice", "service": "pppoe", "profile": "home-20m",
    "local_address": null, "remote_address": "100.64.0.10", "router_item_id": "*1A",
    "status": "active", "last_synced_at": "2026-12-01T10:00:00Z",
    "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct PppoeUserView {
    #[schema(example = 3)]
    pub id: i32,
    #[schema(example = 1)]
    pub router_id: i32,
    /// The network user whose secret this is (its name, password, package
    /// profile and status follow that user).
    pub network_user_id: Option<i32>,
    #[schema(example = "alice")]
    pub username: String,
    /// `any`, `pppoe`, `pptp`, `l2tp`, `ovpn` or `sstp`.
    #[schema(example = "pppoe")]
    pub service: String,
    /// The router's PPP profile; null means `default`.
    pub profile: Option<String>,
    pub local_address: Option<String>,
    pub remote_address: Option<String>,
    /// The router's id for the secret.
    #[schema(example = "*1A")]
    pub router_item_id: Option<String>,
    /// `active`, or `disabled` (`disabled=yes` on the router).
    #[schema(example = "active")]
    pub status: String,
    /// When ispd last wrote the secret to the router.
    pub last_synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<mikrotik_pppoe_user::Model> for PppoeUserView {
    fn from(p: mikrotik_pppoe_user::Model) -> Self {
        Self {
            id: p.id,
            router_id: p.router_id,
            network_user_id: p.network_user_id,
            username: p.username,
            service: p.service,
            profile: p.profile,
            local_address: p.local_address,
            remote_address: p.remote_address,
            router_item_id: p.router_item_id,
            status: p.status,
            last_synced_at: p.last_synced_at.map(|t| t.to_utc()),
            created_at: p.created_at.to_utc(),
            updated_at: p.updated_at.to_utc(),
        }
    }
}
