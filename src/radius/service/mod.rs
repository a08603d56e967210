//! The RADIUS sync: writes service packages and network users into
//! FreeRADIUS's tables, on the RADIUS connection (`state.db.radius`).
//!
//! **What is written.**
//! - A package, as its `radius_group`: `radgroupreply` gets
//!   `Mikrotik-Rate-Limit := <rx/tx ...>`, `Session-Timeout := N` (when set)
//!   and `Acct-Interim-Interval := 300`; `radgroupcheck` gets
//!   `Simultaneous-Use := N` (when set).
//! - A user: `radcheck` gets `Cleartext-Password := ...` (decrypted with
//!   the APP_KEY), `Expiration := "Mon DD YYYY HH:MM:SS"` (when the user
//!   has an expiry), and `Auth-Type := Reject` while the user is not active
//!   or has expired; `radreply` gets `Framed-IP-Address := <ip>` for a static
//!   user; `radusergroup` gets the package's group with priority 1.
//!
//! **Exact and idempotent.** A sync compares the rows FreeRADIUS has with
//! the rows the model gives ([`user_rows`], [`package_rows`]). When they
//! are the same nothing is written ([`Outcome::Unchanged`]); otherwise the
//! user's (or group's) rows are deleted and the desired ones inserted, in
//! one transaction on the RADIUS DB, so FreeRADIUS never sees half a user
//! and no stale attribute survives. Running a sync twice gives the same
//! rows.
//!
//! **Ordering with the main DB.** The two databases cannot share a
//! transaction. Every change to a user or a package sets
//! `network_users.radius_sync_pending` in the main DB, in the same
//! transaction as the change. The sync then
//! 1. writes the RADIUS rows (one RADIUS transaction), and only after that
//!    commits
//! 2. clears `radius_sync_pending` and sets `radius_synced_at` in the main
//!    DB, and only if neither the user nor its package changed since they
//!    were read (the update is conditional on both `updated_at` values), so
//!    a change made while the sync ran keeps its flag.
//!
//! A failure between 1 and 2 leaves the flag set: the next `radius
//! sync-users` (or a retry) repeats the sync, which is idempotent. Nothing
//! is lost silently; at worst a sync is repeated.
//!
//! **Expiration** is written as FreeRADIUS's `rlm_expiration` parses it,
//! e.g. `Jan 05 2027 13:00:00`, from the UTC time; FreeRADIUS reads it in
//! its host's local time zone, so run FreeRADIUS in UTC. Independently of
//! that module, a user already expired at sync time gets `Auth-Type :=
//! Reject`.
//!
//! **Secrets.** The cleartext password exists only in memory, in the rows
//! written to `radcheck` (FreeRADIUS needs it for CHAP and MS-CHAP). It is
//! never logged: spans skip all arguments, and [`AttrRow`]'s `Debug` prints
//! a password's value as `[redacted]`.
//!
//! The queries use only the `username`/`groupname`, `attribute`, `op` and
//! `value` columns (never the `id`, which is `serial` on PostgreSQL and
//! `int unsigned` on MySQL), so they work the same on all three backends.

use sea_orm::DbErr;

use crate::crypto::CryptoError;
use crate::error::AppError;

mod model;
mod reading;
mod rows;
mod writing;
pub use model::*;
pub use reading::*;
pub use rows::*;
pub use writing::*;

/// `Acct-Interim-Interval` sent to every user, in seconds.
pub const ACCT_INTERIM_INTERVAL_SECS: u32 = 300;

/// Users read, compared and written per batch by [`sync_all`].
pub const BATCH_SIZE: u64 = 500;

/// Rows per multi-row `INSERT`: well under every backend's parameter limit.
pub(super) const INSERT_CHUNK: usize = 1000;

/// Usernames per `IN (...)` list when deleting orphans.
pub(super) const DELETE_CHUNK: usize = 500;

pub const CLEARTEXT_PASSWORD: &str = "Cleartext-Password";

#[derive(Debug, thiserror::Error)]
pub enum RadiusError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A stored password does not decrypt (wrong APP_KEY?).
    #[error("the password of user \"{username}\" cannot be decrypted: {source}")]
    Crypto {
        username: String,
        #[source]
        source: CryptoError,
    },
    #[error("{0}")]
    NotFound(String),
}

impl From<RadiusError> for AppError {
    fn from(err: RadiusError) -> Self {
        match err {
            RadiusError::Db(db) => db.into(),
            RadiusError::NotFound(what) => AppError::NotFound(what),
            err @ RadiusError::Crypto { .. } => AppError::Internal(err.into()),
        }
    }
}

#[cfg(test)]
mod tests;
