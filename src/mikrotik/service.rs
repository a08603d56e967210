//! The MikroTik service: routers (their rows and a logged-in client for
//! each) and the PPPoE secrets ispd keeps on them. Pages, API, CLI and jobs
//! call these functions; none of them knows about HTTP.
//!
//! Secrets are changed over connections borrowed from the router's
//! [`RouterPool`]: logins are reused, a router that keeps failing is backed
//! off instead of hammered, and every call is bounded by the pool's timeout
//! (MIKROTIK_API_TIMEOUT).
//!
//! A router call cannot join a database transaction, so every change that
//! touches both sides is ordered and compensated:
//! 1. change the router first (add / set / remove the `/ppp/secret`);
//!    if the router refuses or cannot be reached, nothing is saved and the
//!    caller gets the router's error (502/504, or 409 for a duplicate);
//! 2. then write the database; if that fails, undo the router change
//!    (remove the added secret, set the old values back, add the removed
//!    one again) and return the database error. If the undo fails too, the
//!    disagreement is logged loudly and reported, never silent.

use std::time::Duration;

use sea_orm::DbErr;

use super::entities::mikrotik_router;
use super::routeros::{self, Client, ConnectOptions, Fingerprint};
use crate::crypto::{AppKey, CryptoError};
use crate::error::{AppError, FieldErrors};

pub use crate::mikrotik::pppoe::service::*;
pub use crate::mikrotik::routers::service::*;
pub use crate::mikrotik::user_secrets::*;

/// Why a MikroTik operation failed. The router variants name the router, so
/// that a message shown to an operator says which box is at fault.
#[derive(Debug, thiserror::Error)]
pub enum MikrotikError {
    /// No TCP connection (refused, no route, name not found, no answer).
    #[error("router {router} is unreachable: {detail}")]
    Unreachable { router: String, detail: String },
    /// The TLS handshake failed, including a certificate that is not the
    /// pinned one.
    #[error("TLS to router {router} failed: {detail}")]
    Tls { router: String, detail: String },
    /// The router refused the API user name or password.
    #[error("router {router} refused the login: {detail}")]
    LoginFailed { router: String, detail: String },
    /// The router refused a command (`!trap`), with its own message.
    #[error("router {router} refused the command: {message}")]
    Trap {
        router: String,
        category: Option<u32>,
        message: String,
    },
    /// The router ended the session (`!fatal`).
    #[error("router {router} closed the session: {reason}")]
    Fatal { router: String, reason: String },
    /// No complete answer within the timeout.
    #[error("router {router} did not answer within {}", humantime(*after))]
    Timeout { router: String, after: Duration },
    /// The router sent something unreadable, or the connection broke in
    /// the middle of an answer.
    #[error("router {router}: {detail}")]
    Protocol { router: String, detail: String },
    /// The database write failed after the router was changed, and undoing
    /// the router change failed too: the two now disagree, and this says how.
    #[error("router {router} and the database disagree: {detail}")]
    Diverged { router: String, detail: String },
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 422, one message per field.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// 409: a duplicate, on the router or here.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A stored password that does not decrypt: a changed APP_KEY.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn humantime(after: Duration) -> String {
    if after.subsec_millis() == 0 {
        format!("{} s", after.as_secs())
    } else {
        format!("{} ms", after.as_millis())
    }
}

impl MikrotikError {
    /// The client's error, attributed to a router.
    pub fn from_client(router: &str, err: routeros::Error) -> Self {
        let router = router.to_owned();
        match err {
            routeros::Error::Unreachable(detail) => MikrotikError::Unreachable { router, detail },
            routeros::Error::Tls(detail) => MikrotikError::Tls { router, detail },
            routeros::Error::LoginFailed(detail) => MikrotikError::LoginFailed { router, detail },
            routeros::Error::Trap { category, message } => MikrotikError::Trap {
                router,
                category,
                message,
            },
            routeros::Error::Fatal(reason) => MikrotikError::Fatal { router, reason },
            routeros::Error::Timeout(after) => MikrotikError::Timeout { router, after },
            routeros::Error::Protocol(detail) => MikrotikError::Protocol { router, detail },
            routeros::Error::ConnectionLost(detail) => MikrotikError::Protocol {
                router,
                detail: format!("connection lost: {detail}"),
            },
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        MikrotikError::Invalid(FieldErrors::from([(field.to_string(), message.into())]))
    }

    /// True for the errors that come from talking to a router (as opposed
    /// to validation, the database or a missing row).
    pub fn is_router_error(&self) -> bool {
        matches!(
            self,
            MikrotikError::Unreachable { .. }
                | MikrotikError::Tls { .. }
                | MikrotikError::LoginFailed { .. }
                | MikrotikError::Trap { .. }
                | MikrotikError::Fatal { .. }
                | MikrotikError::Timeout { .. }
                | MikrotikError::Protocol { .. }
                | MikrotikError::Diverged { .. }
        )
    }

    /// True when the router may have applied a command whose answer never
    /// came (a timeout, a broken connection, `!fatal`): its state must be
    /// read again before anything is assumed.
    pub(crate) fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            MikrotikError::Timeout { .. }
                | MikrotikError::Protocol { .. }
                | MikrotikError::Fatal { .. }
        )
    }

    /// A stable, machine-readable code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            MikrotikError::Unreachable { .. } => "router_unreachable",
            MikrotikError::Tls { .. } => "router_tls_failed",
            MikrotikError::LoginFailed { .. } => "router_login_failed",
            MikrotikError::Trap { .. } => "router_error",
            MikrotikError::Fatal { .. } => "router_fatal",
            MikrotikError::Timeout { .. } => "router_timeout",
            MikrotikError::Protocol { .. } => "router_protocol_error",
            MikrotikError::Diverged { .. } => "router_out_of_step",
            MikrotikError::NotFound(_) => "not_found",
            MikrotikError::Invalid(_) => "validation_failed",
            MikrotikError::Conflict { code, .. } => code,
            MikrotikError::Crypto(_) | MikrotikError::Db(_) => "internal",
        }
    }
}

impl From<MikrotikError> for AppError {
    fn from(err: MikrotikError) -> Self {
        match err {
            MikrotikError::Timeout { .. } => AppError::GatewayTimeout {
                code: err.code(),
                message: err.to_string(),
            },
            MikrotikError::Unreachable { .. }
            | MikrotikError::Tls { .. }
            | MikrotikError::LoginFailed { .. }
            | MikrotikError::Trap { .. }
            | MikrotikError::Fatal { .. }
            | MikrotikError::Protocol { .. }
            | MikrotikError::Diverged { .. } => AppError::BadGateway {
                code: err.code(),
                message: err.to_string(),
            },
            MikrotikError::NotFound(what) => AppError::NotFound(what),
            MikrotikError::Invalid(fields) => AppError::validation(fields),
            MikrotikError::Conflict { code, message } => AppError::Conflict { code, message },
            MikrotikError::Crypto(crypto) => AppError::Internal(crypto.into()),
            MikrotikError::Db(db) => db.into(),
        }
    }
}

/// `host:port` for a router's address, with brackets around IPv6.
pub fn socket_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// How to reach a router row, with its password decrypted. The options'
/// `Debug` redacts the password.
pub fn connect_options(
    router: &mikrotik_router::Model,
    key: &AppKey,
    timeout: Duration,
) -> Result<ConnectOptions, MikrotikError> {
    let password = key.decrypt(&router.password_encrypted)?;
    let port = u16::try_from(router.api_port).map_err(|_| {
        MikrotikError::invalid("api_port", format!("{} is not a port", router.api_port))
    })?;
    let tls = if router.use_tls {
        let pin = router.tls_fingerprint.as_deref().ok_or_else(|| {
            MikrotikError::invalid(
                "tls_fingerprint",
                "API-SSL needs the router certificate's SHA-256 fingerprint",
            )
        })?;
        Some(Fingerprint::parse(pin).map_err(|e| MikrotikError::invalid("tls_fingerprint", e))?)
    } else {
        None
    };

    Ok(ConnectOptions {
        addr: socket_address(&router.ip_address, port),
        username: router.username.clone(),
        password: password.expose().to_owned(),
        timeout,
        tls,
    })
}

/// Opens a logged-in client for a router row: decrypts its password, and
/// connects over TCP, or over TLS accepting only the pinned certificate.
/// `timeout` bounds the connection, the login and then every command.
pub async fn connect(
    router: &mikrotik_router::Model,
    key: &AppKey,
    timeout: Duration,
) -> Result<Client, MikrotikError> {
    let options = connect_options(router, key, timeout)?;
    Client::connect_with(options)
        .await
        .map_err(|err| MikrotikError::from_client(&router.name, err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    use crate::crypto::Secret;
    use crate::mikrotik::pppoe::service::{secret_refused, SecretValues};
    use crate::mikrotik::routeros::Row;
    use crate::mikrotik::routers::service::{check_host, RouterInput};

    fn input() -> RouterInput {
        RouterInput {
            name: "core-1".into(),
            ip_address: "192.0.2.1".into(),
            api_port: None,
            use_tls: false,
            tls_fingerprint: None,
            username: "api".into(),
            password: Some(Secret::new("s3cret")),
        }
    }

    fn field_errors(err: MikrotikError) -> FieldErrors {
        match err {
            MikrotikError::Invalid(fields) => fields,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn hosts_are_ip_addresses_or_host_names() {
        assert_eq!(check_host(" 192.0.2.1 ").unwrap(), "192.0.2.1");
        assert_eq!(check_host("2001:db8::1").unwrap(), "2001:db8::1");
        assert_eq!(
            check_host("Core-1.Example.NET").unwrap(),
            "core-1.example.net"
        );
        for bad in [
            "",
            "-bad.example",
            "a..b",
            "under_score.example",
            "300.1.1.1",
            "1.2.3",
        ] {
            assert!(check_host(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_port_defaults_by_transport() {
        assert_eq!(input().validate(true).unwrap().api_port, 8728);
        let tls = RouterInput {
            use_tls: true,
            tls_fingerprint: Some("ab".repeat(32)),
            ..input()
        };
        let spec = tls.validate(true).unwrap();
        assert_eq!(spec.api_port, 8729);
        assert_eq!(spec.tls_fingerprint.unwrap(), vec!["AB"; 32].join(":"));
    }

    #[test]
    fn invalid_routers_name_every_bad_field() {
        let bad = RouterInput {
            name: " ".into(),
            ip_address: "not a host".into(),
            api_port: Some(70000),
            use_tls: true,
            tls_fingerprint: None,
            username: String::new(),
            password: None,
        };
        let fields = field_errors(bad.validate(true).unwrap_err());
        for field in [
            "name",
            "ip_address",
            "api_port",
            "tls_fingerprint",
            "username",
            "password",
        ] {
            assert!(fields.contains_key(field), "{field} missing in {fields:?}");
        }
        let zero = RouterInput {
            api_port: Some(0),
            ..input()
        };
        assert!(field_errors(zero.validate(true).unwrap_err()).contains_key("api_port"));
        let fingerprint = RouterInput {
            tls_fingerprint: Some("abcd".into()),
            ..input()
        };
        assert!(
            field_errors(fingerprint.validate(true).unwrap_err()).contains_key("tls_fingerprint")
        );
    }

    #[test]
    fn a_blank_password_keeps_the_current_one_on_update() {
        let blank = RouterInput {
            password: Some(Secret::new("")),
            ..input()
        };
        assert!(blank.validate(false).unwrap().password.is_none());
        assert!(field_errors(blank.validate(true).unwrap_err()).contains_key("password"));
    }

    #[test]
    fn secret_values_round_trip_through_a_router_row() {
        let values = SecretValues {
            name: "alice".into(),
            password: Secret::new("pw"),
            service: "pppoe".into(),
            profile: Some("home-20m".into()),
            local_address: Some(Ipv4Addr::new(10, 0, 0, 1)),
            remote_address: None,
            disabled: true,
        };
        let mut row = Row::new();
        for (key, value) in values.args(Some(&values)) {
            row.insert(key.to_string(), value);
        }
        row.insert("disabled".into(), "true".into());
        assert_eq!(SecretValues::from_row(&row), values);
        assert!(!values
            .args(None)
            .iter()
            .any(|(k, _)| *k == "remote-address"));
        assert!(!format!("{values:?}").contains("\"pw\""));
    }

    #[test]
    fn router_errors_map_to_gateway_statuses() {
        use axum::http::StatusCode;
        let unreachable =
            MikrotikError::from_client("core-1", routeros::Error::Unreachable("refused".into()));
        let app: AppError = unreachable.into();
        assert_eq!(app.status(), StatusCode::BAD_GATEWAY);
        assert!(app.to_string().contains("core-1"));
        let timeout =
            MikrotikError::from_client("core-1", routeros::Error::Timeout(Duration::from_secs(2)));
        assert_eq!(
            AppError::from(timeout).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        let duplicate = secret_refused(MikrotikError::Trap {
            router: "core-1".into(),
            category: None,
            message: "failure: secret with the same name already exists".into(),
        });
        assert_eq!(AppError::from(duplicate).status(), StatusCode::CONFLICT);
    }
}
