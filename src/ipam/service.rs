//! IPAM service: pools, subnets, allocation, release, availability,
//! utilization, expiry and history. The pages, the API, the CLI and the
//! jobs all call these functions; none of them knows about HTTP.
//!
//! Concurrency: every change to a subnet's addresses runs in one
//! transaction that first takes the subnet's row lock (SELECT ... FOR
//! UPDATE on PostgreSQL and MariaDB; an IMMEDIATE transaction on SQLite,
//! which has one writer at a time). Allocations in different subnets
//! therefore never wait on each other on PostgreSQL and MariaDB. The lowest
//! free address comes from the subnet's free ranges (`ip_free_ranges`), one
//! index seek whatever the number of allocations; the unique index on
//! active (subnet_id, ip_key) stays the last line of defence.

use std::net::IpAddr;
use std::time::Duration;

use sea_orm::DbErr;

use crate::error::FieldErrors;

pub use crate::ipam::allocation::service::*;
pub use crate::ipam::history::allocations::*;
pub use crate::ipam::pools::service::*;
pub use crate::ipam::reports::service::*;
pub use crate::ipam::subnets::service::*;

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("{0}")]
    NotFound(String),
    /// 422, one message per field.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// 409: "subnet 10.0.0.0/29 is full: 5 of 5 usable addresses allocated".
    #[error("subnet {subnet} is full: {allocated} of {usable} usable addresses allocated")]
    SubnetFull {
        subnet: String,
        allocated: u128,
        usable: u128,
    },
    /// 409: the requested address is allocated already.
    #[error("{ip} is already allocated in {subnet}")]
    AddressTaken { ip: IpAddr, subnet: String },
    /// 409: a change that the current state does not allow.
    #[error("{0}")]
    Conflict(String),
    /// 503: the subnet's lock was not granted within IPAM_LOCK_TIMEOUT.
    #[error("the subnet is busy with other changes; try again in a moment")]
    Busy,
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl IpamError {
    pub(super) fn invalid(field: &str, message: impl Into<String>) -> Self {
        IpamError::Invalid(FieldErrors::from([(field.to_string(), message.into())]))
    }
}

impl From<IpamError> for crate::error::AppError {
    fn from(err: IpamError) -> Self {
        use crate::error::AppError;
        match err {
            IpamError::NotFound(what) => AppError::NotFound(what),
            IpamError::Invalid(fields) => AppError::validation(fields),
            IpamError::SubnetFull { .. } => AppError::Conflict {
                code: "subnet_full",
                message: err.to_string(),
            },
            IpamError::AddressTaken { .. } => AppError::Conflict {
                code: "address_in_use",
                message: err.to_string(),
            },
            IpamError::Conflict(message) => AppError::Conflict {
                code: "conflict",
                message,
            },
            IpamError::Busy => AppError::Unavailable {
                message: err.to_string(),
                retry_after_secs: 1,
            },
            IpamError::Db(db) => db.into(),
        }
    }
}

/// Settings the service needs (from `Config`).
#[derive(Debug, Clone, Copy)]
pub struct IpamSettings {
    /// How long to wait for a subnet's lock before answering Busy.
    pub lock_timeout: Duration,
}

impl IpamSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            lock_timeout: config.ipam_lock_timeout,
        }
    }
}
