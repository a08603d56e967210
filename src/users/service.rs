//! The users service: service packages and network users (subscribers).
//! The pages, the API, the CLI and the RADIUS sync call these functions;
//! none of them knows about HTTP.
//!
//! Every change to a user, and every change to a package (for the users
//! on it), sets `radius_sync_pending`; the RADIUS sync clears it once
//! FreeRADIUS's tables say the same.
//!
//! Passwords are recoverable (CHAP and MS-CHAP need the cleartext at the
//! RADIUS server), so they are stored encrypted with APP_KEY. They are
//! never logged, never in audit details, and come out only through
//! [`reveal_password`], which is audited.
//!
//! Static addresses come from IPAM, whose functions commit on their own,
//! so they cannot share a transaction with the user's row. The order is
//! chosen so that a failure never leaves a user pointing at an address
//! IPAM could hand to someone else:
//! - taking an address: allocate first, then write the user in one
//!   transaction; if that fails, release the new allocation again;
//! - giving one up (delete, or no longer static): write the user first,
//!   then release. Should that release fail, the address stays allocated
//!   to nobody: it is logged, returned in [`UserWrite::unreleased_allocation`],
//!   and can be released in IPAM. An address held too long is harmless; one
//!   handed out twice is not.

use sea_orm::DbErr;

use crate::crypto::CryptoError;
use crate::error::{AppError, FieldErrors};
use crate::ipam::service::IpamError;
use crate::mikrotik::service::MikrotikError;

pub use crate::users::packages::service::*;
pub use crate::users::subscribers::service::*;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 422, one message per field.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// 409: the current state does not allow the change.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// From the static address's allocation or release.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// A stored password that does not decrypt: a changed APP_KEY.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// From pushing the user's PPP secrets to its routers.
    #[error(transparent)]
    Mikrotik(#[from] MikrotikError),
    /// The RADIUS database refused a write that must come first (a delete).
    #[error("the RADIUS database refused the change: {0}")]
    Radius(#[source] DbErr),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl UsersError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        UsersError::Invalid(FieldErrors::from([(field.to_string(), message.into())]))
    }
}

impl From<UsersError> for AppError {
    fn from(err: UsersError) -> Self {
        match err {
            UsersError::NotFound(what) => AppError::NotFound(what),
            UsersError::Invalid(fields) => AppError::validation(fields),
            UsersError::Conflict { code, message } => AppError::Conflict { code, message },
            UsersError::Ipam(ipam) => ipam.into(),
            UsersError::Crypto(crypto) => AppError::Internal(crypto.into()),
            UsersError::Mikrotik(mikrotik) => mikrotik.into(),
            UsersError::Radius(db) => {
                // Logged in full here; the client gets no database text.
                tracing::error!(error = %db, "RADIUS database write failed");
                AppError::BadGateway {
                    code: "radius_unavailable",
                    message: "the RADIUS database did not accept the change; nothing was changed, try again"
                        .into(),
                }
            }
            UsersError::Db(db) => db.into(),
        }
    }
}
