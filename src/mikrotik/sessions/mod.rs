//! Active PPP sessions on the routers: read live through the connection
//! pool, synced into `network_user_sessions`, disconnected on request.
//!
//! Sources on a router (RouterOS 7):
//! - `/ppp/active` lists each session: `.id`, user `name`, `service`,
//!   `caller-id` (the MAC for PPPoE), `address`, `uptime`, `session-id`;
//! - each session has a dynamic interface `<SERVICE-NAME>` (`<pppoe-alice>`)
//!   whose `rx-byte` is what the subscriber sent (upload) and `tx-byte`
//!   what it received (download).
//!
//! Both prints run at once on one pooled connection (tagged commands).
//!
//! **Sync** (`ispd mikrotik sync-sessions`; a scheduled job can call the
//! same [`sync_sessions`]) reads
//! every router, a bounded number at a time, and per router, in one write
//! transaction: inserts the sessions not seen before (start = now - uptime),
//! updates the counters and addresses of the known ones (multi-row upserts
//! on the `(nas_ip, session_id)` unique index), and closes the
//! sessions that disappeared (`end_time` = now, status `closed`). It is
//! idempotent: running it twice changes only counters. A router that
//! cannot be read is marked `offline` with its error and its sessions are
//! left as they were (nothing is known about them); the others go on.
//!
//! A session's `session_id` is `ROUTER_ID:.ID:SESSION-ID` (the PPP session
//! id, or the user name when the router gives none), so that two routers
//! behind one address never collide; its `nas_ip` is the router's address.
//! Router item ids restart after a reboot: when a new session reuses the
//! key of a closed one, the closed one is renamed (`KEY~ROW_ID`) first.

pub mod api;
mod disconnect;
pub mod html;
mod live;
mod reading;
mod sync;
pub use disconnect::*;
pub use live::*;
pub use reading::*;
pub use sync::*;

/// `network_user_sessions.source` of the sessions read from routers.
pub const SOURCE: &str = "mikrotik";
/// Session and router statuses written here.
pub const SESSION_ACTIVE: &str = "active";
pub const SESSION_CLOSED: &str = "closed";
pub const ROUTER_ONLINE: &str = super::service::ROUTER_STATUS_ONLINE;
pub const ROUTER_OFFLINE: &str = super::service::ROUTER_STATUS_OFFLINE;

/// Routers read at once by default (sync and live list).
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Rows per multi-row statement: 14 columns each stays far below every
/// backend's limit on bound parameters.
pub(super) const CHUNK: usize = 500;

#[cfg(test)]
mod tests;
