//! Reading RADIUS accounting back: a user's sessions and usage, who is
//! online, closing stale sessions, and the sessions that held an address.
//!
//! FreeRADIUS writes `radacct` itself (Start, Interim-Update, Stop,
//! Accounting-On/Off); ispd reads it, and writes it only to close stale
//! sessions ([`close_stale_sessions`]).
//!
//! **What the columns hold** (FreeRADIUS 3.2.1's stock
//! `mods-config/sql/main/<dialect>/queries.conf`, as Debian ships it):
//!
//! - `acctinputoctets` / `acctoutputoctets` already hold the full 64-bit
//!   counts. Every stock query (interim-update, stop, and the inserts that
//!   stand in for a missing start) writes
//!   `(Acct-Input-Gigawords << 32) + Acct-Input-Octets` on PostgreSQL and
//!   `Acct-Input-Gigawords << 32 | Acct-Input-Octets` on MySQL and SQLite.
//!   So ispd reads the columns as they are and never adds gigawords again.
//!   *Input* is what the NAS received from the subscriber (upload), *output*
//!   what it sent to the subscriber (download).
//! - `acctsessiontime` is the NAS's Acct-Session-Time of the last packet.
//! - `acctupdatetime` is the time of the last packet (start, interim or
//!   stop); `acctinterval` the seconds between the last two interim
//!   updates on PostgreSQL and MySQL, and always 0 on SQLite.
//! - Timestamps are `timestamptz` on PostgreSQL, `datetime` (UTC, as
//!   `FROM_UNIXTIME` in a UTC session writes them) on MySQL, and **Unix
//!   seconds stored as integers** on SQLite (FreeRADIUS's SQLite queries
//!   write `event_timestamp_epoch`). Text timestamps on SQLite (from other
//!   writers) are read too.
//! - Addresses are `inet` on PostgreSQL (read through `host()`, compared
//!   after `CAST(.. AS inet)`), `varchar` elsewhere, where `''` means none.
//!
//! **Usage per day and month** counts each session on the UTC day its
//! start falls in, whole: radacct keeps only a session's cumulative
//! counters, not when within the session the bytes flowed.
//!
//! The queries are plain SQL with a variant per backend, because the three
//! schemas store times and addresses differently; [`Sql`] builds them with
//! bound values only.

mod by_address;
mod display;
mod online;
mod ranges;
mod sessions;
mod sql;
mod stale;
mod trend;
mod usage;
pub use by_address::*;
pub use display::*;
pub use online::*;
pub use ranges::*;
pub use sessions::*;
pub use stale::*;
pub use trend::*;
pub use usage::*;

/// An open session is stale after this many interim intervals without an
/// update.
pub const STALE_AFTER_INTERVALS: i64 = 3;

/// The shortest interval the stale rule uses, in seconds. A row's
/// `acctinterval` is the gap FreeRADIUS observed between its last two
/// updates; a NAS that sends an extra update (an address change) can make it
/// a second or two, which would close a live session within seconds.
pub const MIN_INTERVAL_SECS: i64 = 60;

/// The terminate cause written on sessions closed as stale.
pub const STALE_CAUSE: &str = "Stale-Session";

/// The widest date range a report may span.
pub const MAX_RANGE_DAYS: i64 = 3660;

#[cfg(test)]
mod tests;
