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

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use tracing::instrument;

use super::entities::{mikrotik_pppoe_user, mikrotik_router};
use super::pool::{self, PooledClient, RouterPool};
use super::routeros::{self, Client, ConnectOptions, Fingerprint, Row};
use crate::audit::{self, Actor};
use crate::crypto::{AppKey, CryptoError, Secret};
use crate::db::begin_write;
use crate::error::{AppError, FieldErrors};
use crate::ipam::domain::NetUsername;
use crate::query::{contains, fetch_page, PageRequest, Sort};
use crate::text::{has_control, optional_text};
use crate::users::entities::{network_user, service_package};

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
    fn is_ambiguous(&self) -> bool {
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

// -------------------------------------------------------------- routers

/// A router's status: never tested, answered the last test or check, or
/// did not.
pub const ROUTER_STATUS_UNKNOWN: &str = "unknown";
pub const ROUTER_STATUS_ONLINE: &str = "online";
pub const ROUTER_STATUS_OFFLINE: &str = "offline";

pub const DEFAULT_API_PORT: u16 = 8728;
pub const DEFAULT_API_SSL_PORT: u16 = 8729;

/// A router as the caller gives it; [`RouterInput::validate`] checks it.
#[derive(Debug, Clone, Default)]
pub struct RouterInput {
    pub name: String,
    /// An IP address or a host name.
    pub ip_address: String,
    /// Default 8728, or 8729 with TLS.
    pub api_port: Option<i64>,
    pub use_tls: bool,
    /// SHA-256 of the router's certificate: 64 hex digits, with or without
    /// colons. Required with TLS.
    pub tls_fingerprint: Option<String>,
    pub username: String,
    /// Required on create; on update, absent or blank keeps the current one.
    pub password: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct RouterSpec {
    pub name: String,
    pub ip_address: String,
    pub api_port: u16,
    pub use_tls: bool,
    /// Normalised: upper-case hex pairs joined by `:`.
    pub tls_fingerprint: Option<String>,
    pub username: String,
    pub password: Option<Secret>,
}

/// An IP address, or a host name as RFC 1123 allows it.
pub fn check_host(text: &str) -> Result<String, String> {
    let host = text.trim();
    if host.is_empty() {
        return Err("is required: an IP address or a host name".into());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let host = host.trim_end_matches('.');
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let all_numeric = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    if host.is_empty() || host.len() > 253 || all_numeric || !host.split('.').all(label_ok) {
        return Err(format!(
            "\"{}\" is not an IP address or a host name",
            text.trim()
        ));
    }
    Ok(host.to_ascii_lowercase())
}

impl RouterInput {
    /// Checks every field; all problems are reported together.
    pub fn validate(&self, creating: bool) -> Result<RouterSpec, MikrotikError> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 64 {
            errors.insert("name".into(), "must be 1 to 64 characters long".into());
        } else if has_control(&name) {
            errors.insert("name".into(), "must not contain control characters".into());
        }
        let ip_address = match check_host(&self.ip_address) {
            Ok(host) => host,
            Err(e) => {
                errors.insert("ip_address".into(), e);
                String::new()
            }
        };
        let default_port = if self.use_tls {
            DEFAULT_API_SSL_PORT
        } else {
            DEFAULT_API_PORT
        };
        let api_port = match self.api_port {
            None => default_port,
            Some(port) => match u16::try_from(port).ok().filter(|p| *p >= 1) {
                Some(port) => port,
                None => {
                    errors.insert("api_port".into(), "must be a port from 1 to 65535".into());
                    default_port
                }
            },
        };
        let tls_fingerprint = match optional_text(&self.tls_fingerprint) {
            Some(text) => match Fingerprint::parse(text) {
                Ok(pin) => Some(pin.to_string()),
                Err(e) => {
                    errors.insert("tls_fingerprint".into(), e);
                    None
                }
            },
            None => {
                if self.use_tls {
                    errors.insert(
                        "tls_fingerprint".into(),
                        "is required with TLS: the SHA-256 fingerprint of the router's certificate (openssl x509 -fingerprint -sha256)".into(),
                    );
                }
                None
            }
        };
        let username = self.username.trim().to_string();
        if username.is_empty() || username.chars().count() > 64 {
            errors.insert("username".into(), "must be 1 to 64 characters long".into());
        } else if has_control(&username) {
            errors.insert(
                "username".into(),
                "must not contain control characters".into(),
            );
        }
        let password = self
            .password
            .as_ref()
            .filter(|p| !p.expose().is_empty())
            .cloned();
        match &password {
            None if creating => {
                errors.insert("password".into(), "is required".into());
            }
            Some(p) if p.expose().chars().count() > 128 => {
                errors.insert(
                    "password".into(),
                    "must be at most 128 characters long".into(),
                );
            }
            Some(p) if has_control(p.expose()) => {
                errors.insert(
                    "password".into(),
                    "must not contain control characters".into(),
                );
            }
            _ => {}
        }
        if !errors.is_empty() {
            return Err(MikrotikError::Invalid(errors));
        }
        Ok(RouterSpec {
            name,
            ip_address,
            api_port,
            use_tls: self.use_tls,
            tls_fingerprint,
            username,
            password,
        })
    }
}

/// Sort fields of the router list (`?sort=`).
pub const ROUTER_SORTS: &[(&str, mikrotik_router::Column)] = &[
    ("id", mikrotik_router::Column::Id),
    ("name", mikrotik_router::Column::Name),
    ("ip_address", mikrotik_router::Column::IpAddress),
    ("status", mikrotik_router::Column::Status),
    ("last_seen_at", mikrotik_router::Column::LastSeenAt),
    ("created_at", mikrotik_router::Column::CreatedAt),
];

async fn find_router(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<mikrotik_router::Model, MikrotikError> {
    mikrotik_router::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| MikrotikError::NotFound(format!("no router with id {id}")))
}

pub async fn get_router(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<mikrotik_router::Model, MikrotikError> {
    find_router(db, id).await
}

fn router_name_taken(name: &str) -> MikrotikError {
    MikrotikError::Conflict {
        code: "router_name_taken",
        message: format!("a router named \"{name}\" exists already"),
    }
}

async fn check_router_name(
    db: &impl ConnectionTrait,
    name: &str,
    except: Option<i32>,
) -> Result<(), MikrotikError> {
    let mut query = mikrotik_router::Entity::find().filter(mikrotik_router::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(mikrotik_router::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(router_name_taken(name));
    }
    Ok(())
}

fn router_details(r: &mikrotik_router::Model) -> serde_json::Value {
    // Never the password, not even its ciphertext.
    serde_json::json!({
        "name": r.name,
        "ip_address": r.ip_address,
        "api_port": r.api_port,
        "use_tls": r.use_tls,
        "tls_fingerprint": r.tls_fingerprint,
        "username": r.username,
    })
}

#[instrument(skip_all)]
pub async fn create_router(
    db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    input: &RouterInput,
) -> Result<mikrotik_router::Model, MikrotikError> {
    let spec = input.validate(true)?;
    let password = spec
        .password
        .as_ref()
        .ok_or_else(|| MikrotikError::invalid("password", "is required"))?;
    let txn = begin_write(db).await?;
    check_router_name(&txn, &spec.name, None).await?;
    let now = Utc::now().fixed_offset();
    let router = mikrotik_router::ActiveModel {
        name: Set(spec.name.clone()),
        ip_address: Set(spec.ip_address.clone()),
        api_port: Set(i32::from(spec.api_port)),
        use_tls: Set(spec.use_tls),
        tls_fingerprint: Set(spec.tls_fingerprint.clone()),
        username: Set(spec.username.clone()),
        password_encrypted: Set(key.encrypt(password.expose())),
        status: Set(ROUTER_STATUS_UNKNOWN.into()),
        identity: Set(None),
        version: Set(None),
        last_seen_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|err| {
        if crate::db::unique_violation(&err).is_some() {
            router_name_taken(&spec.name)
        } else {
            err.into()
        }
    })?;
    audit::record(
        &txn,
        actor,
        "mikrotik_router.create",
        "mikrotik_router",
        Some(router.id.to_string()),
        router_details(&router),
    )
    .await?;
    txn.commit().await?;
    Ok(router)
}

/// What a viewer sees of a router's last error: that there was one, not
/// its text (addresses, user names and RouterOS messages are for the staff
/// who manage routers, and for the log).
pub const ROUTER_ERROR_FOR_VIEWERS: &str =
    "the last connection attempt failed (operators and admins see why)";

/// A router's last error as `role` may see it.
pub fn router_error_for(role: crate::staff::Role, error: Option<String>) -> Option<String> {
    match error {
        Some(_) if role < crate::staff::Role::Operator => Some(ROUTER_ERROR_FOR_VIEWERS.into()),
        other => other,
    }
}

/// What of a router's endpoint (where its password goes, and as whom) an
/// update changes, as the form's field labels.
fn endpoint_changes(existing: &mikrotik_router::Model, spec: &RouterSpec) -> Vec<&'static str> {
    [
        (existing.ip_address != spec.ip_address, "address"),
        (existing.api_port != i32::from(spec.api_port), "API port"),
        (existing.use_tls != spec.use_tls, "TLS setting"),
        (
            existing.tls_fingerprint != spec.tls_fingerprint,
            "certificate fingerprint",
        ),
        (existing.username != spec.username, "API user name"),
    ]
    .into_iter()
    .filter_map(|(changed, what)| changed.then_some(what))
    .collect()
}

/// Why the password must be typed again when the endpoint changes.
pub(crate) fn password_needed_again(changed: &[&str]) -> String {
    format!(
        "is required again because the {} changed: a stored password is only ever \
         sent to the router it was stored for",
        changed.join(", ")
    )
}

/// Replaces a router's settings; a blank password keeps the current one,
/// but only while the endpoint stays the same: a new address, port, TLS
/// setting, fingerprint or API user name needs the password again, so that
/// a stored password never goes anywhere it was not stored for (a 422 on
/// `password` otherwise). A change of endpoint or credentials makes its
/// status unknown until the next test.
#[instrument(skip_all, fields(mikrotik_router.id = id))]
pub async fn update_router(
    db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    id: i32,
    input: &RouterInput,
) -> Result<mikrotik_router::Model, MikrotikError> {
    let spec = input.validate(false)?;
    let txn = begin_write(db).await?;
    let existing = find_router(&txn, id).await?;
    check_router_name(&txn, &spec.name, Some(id)).await?;
    let changed = endpoint_changes(&existing, &spec);
    if !changed.is_empty() && spec.password.is_none() {
        return Err(MikrotikError::invalid(
            "password",
            password_needed_again(&changed),
        ));
    }
    let reaches_differently = !changed.is_empty() || spec.password.is_some();
    let mut row: mikrotik_router::ActiveModel = existing.into();
    row.name = Set(spec.name.clone());
    row.ip_address = Set(spec.ip_address.clone());
    row.api_port = Set(i32::from(spec.api_port));
    row.use_tls = Set(spec.use_tls);
    row.tls_fingerprint = Set(spec.tls_fingerprint.clone());
    row.username = Set(spec.username.clone());
    if let Some(password) = &spec.password {
        row.password_encrypted = Set(key.encrypt(password.expose()));
    }
    if reaches_differently {
        row.status = Set(ROUTER_STATUS_UNKNOWN.into());
        row.last_error = Set(None);
    }
    row.updated_at = Set(Utc::now().fixed_offset());
    let router = row.update(&txn).await.map_err(|err| {
        if crate::db::unique_violation(&err).is_some() {
            router_name_taken(&spec.name)
        } else {
            err.into()
        }
    })?;
    let mut details = router_details(&router);
    details["password_changed"] = serde_json::Value::Bool(spec.password.is_some());
    audit::record(
        &txn,
        actor,
        "mikrotik_router.update",
        "mikrotik_router",
        Some(id.to_string()),
        details,
    )
    .await?;
    txn.commit().await?;
    Ok(router)
}

/// Deletes a router and forgets its PPPoE users here. Their secrets stay on
/// the router: a router that is gone for good must still be removable.
#[instrument(skip_all, fields(mikrotik_router.id = id))]
pub async fn delete_router(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
) -> Result<mikrotik_router::Model, MikrotikError> {
    let txn = begin_write(db).await?;
    let router = find_router(&txn, id).await?;
    // The foreign key cascades too; deleting first keeps MariaDB and
    // SQLite (foreign keys off in some setups) the same.
    let forgotten = mikrotik_pppoe_user::Entity::delete_many()
        .filter(mikrotik_pppoe_user::Column::RouterId.eq(id))
        .exec(&txn)
        .await?
        .rows_affected;
    mikrotik_router::Entity::delete_by_id(id).exec(&txn).await?;
    let mut details = router_details(&router);
    details["pppoe_users_forgotten"] = serde_json::json!(forgotten);
    audit::record(
        &txn,
        actor,
        "mikrotik_router.delete",
        "mikrotik_router",
        Some(id.to_string()),
        details,
    )
    .await?;
    txn.commit().await?;
    Ok(router)
}

/// The number of PPPoE users ispd keeps on a router.
pub async fn count_pppoe_users(
    db: &impl ConnectionTrait,
    router_id: i32,
) -> Result<u64, MikrotikError> {
    Ok(mikrotik_pppoe_user::Entity::find()
        .filter(mikrotik_pppoe_user::Column::RouterId.eq(router_id))
        .count(db)
        .await?)
}

#[derive(Debug, Default, Clone)]
pub struct RouterFilter {
    /// Part of the name, address or identity, any case.
    pub q: Option<String>,
    pub status: Option<String>,
}

pub async fn list_routers(
    db: &impl ConnectionTrait,
    filter: &RouterFilter,
    sort: &Sort<mikrotik_router::Column>,
    page: PageRequest,
) -> Result<(Vec<mikrotik_router::Model>, u64), MikrotikError> {
    let mut select = mikrotik_router::Entity::find();
    if let Some(q) = optional_text(&filter.q) {
        select = select.filter(
            Condition::any()
                .add(contains(mikrotik_router::Column::Name, q))
                .add(contains(mikrotik_router::Column::IpAddress, q))
                .add(contains(mikrotik_router::Column::Identity, q)),
        );
    }
    if let Some(status) = optional_text(&filter.status) {
        select = select.filter(mikrotik_router::Column::Status.eq(status));
    }
    Ok(fetch_page(db, sort.apply(select, mikrotik_router::Column::Id), page).await?)
}

/// Every router, by name (for choosers).
pub async fn all_routers(
    db: &impl ConnectionTrait,
) -> Result<Vec<mikrotik_router::Model>, MikrotikError> {
    use sea_orm::QueryOrder;
    Ok(mikrotik_router::Entity::find()
        .order_by_asc(mikrotik_router::Column::Name)
        .all(db)
        .await?)
}

/// What a successful connection test learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterProbe {
    pub identity: String,
    /// Such as `7.16.2 (stable)`.
    pub version: String,
    /// RouterOS duration, such as `2w3d4h`.
    pub uptime: String,
    pub board_name: Option<String>,
}

async fn probe(client: &Client, router: &str) -> Result<RouterProbe, MikrotikError> {
    let call = |err| MikrotikError::from_client(router, err);
    let identity = client
        .print("/system/identity", &["name"], &[])
        .await
        .map_err(call)?
        .into_iter()
        .next()
        .and_then(|mut row| row.remove("name"))
        .unwrap_or_default();
    let mut resource = client
        .print(
            "/system/resource",
            &["version", "uptime", "board-name"],
            &[],
        )
        .await
        .map_err(call)?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(RouterProbe {
        identity,
        version: resource.remove("version").unwrap_or_default(),
        uptime: resource.remove("uptime").unwrap_or_default(),
        board_name: resource.remove("board-name"),
    })
}

/// Connects to a router (a new login, bounded by the pool's timeout),
/// reads its identity, RouterOS version and uptime,
/// and records the outcome on its row (status, identity, version,
/// last_seen_at, or last_error). A failure is recorded, then returned.
#[instrument(skip_all, fields(mikrotik_router.id = id))]
pub async fn test_router(
    db: &DatabaseConnection,
    routers: &RouterPool,
    actor: &Actor,
    id: i32,
) -> Result<RouterProbe, MikrotikError> {
    let router = find_router(db, id).await?;
    let outcome = async {
        // A new login, not a pooled connection: the test proves that one
        // works now, with the row as it is.
        let client = connect(&router, routers.key(), routers.settings().timeout).await?;
        let probed = probe(&client, &router.name).await;
        client.close().await;
        probed
    }
    .await;
    if outcome.is_ok() {
        // The router answers again: end any back-off at once, so that an
        // operator who fixed it is not told "not tried again" afterwards.
        routers.forget(id);
    }
    // Re-read: the row may have changed while the router was asked.
    let Some(current) = mikrotik_router::Entity::find_by_id(id).one(db).await? else {
        return outcome;
    };
    let now = Utc::now().fixed_offset();
    let mut row: mikrotik_router::ActiveModel = current.into();
    match &outcome {
        Ok(probe) => {
            row.status = Set(ROUTER_STATUS_ONLINE.into());
            row.identity = Set(Some(probe.identity.chars().take(128).collect()));
            row.version = Set(Some(probe.version.chars().take(64).collect()));
            row.last_seen_at = Set(Some(now));
            row.last_error = Set(None);
        }
        Err(err) => {
            row.status = Set(ROUTER_STATUS_OFFLINE.into());
            row.last_error = Set(Some(err.to_string()));
        }
    }
    row.updated_at = Set(now);
    row.update(db).await?;
    audit::record(
        db,
        actor,
        "mikrotik_router.test",
        "mikrotik_router",
        Some(id.to_string()),
        match &outcome {
            Ok(probe) => serde_json::json!({
                "name": router.name, "ok": true,
                "identity": probe.identity, "version": probe.version,
            }),
            Err(err) => serde_json::json!({
                "name": router.name, "ok": false, "error": err.to_string(),
            }),
        },
    )
    .await?;
    outcome
}

// -------------------------------------------------------- PPPoE secrets

/// The services a PPP secret may be for.
pub const PPP_SERVICES: &[&str] = &["any", "pppoe", "pptp", "l2tp", "ovpn", "sstp"];

/// A PPPoE user's row status: the secret is enabled, or disabled
/// (`disabled=yes` on the router).
pub const PPPOE_STATUS_ACTIVE: &str = "active";
pub const PPPOE_STATUS_DISABLED: &str = "disabled";

/// The fields of a `/ppp/secret`, as ispd writes them. `Debug` redacts the
/// password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretValues {
    pub name: String,
    pub password: Secret,
    pub service: String,
    /// None: the router's `default` profile.
    pub profile: Option<String>,
    pub local_address: Option<Ipv4Addr>,
    pub remote_address: Option<Ipv4Addr>,
    pub disabled: bool,
}

impl SecretValues {
    /// Reads a `/ppp/secret` row.
    fn from_row(row: &Row) -> SecretValues {
        let text = |key: &str| row.get(key).map(String::as_str).unwrap_or_default();
        let address = |key: &str| text(key).parse::<Ipv4Addr>().ok();
        SecretValues {
            name: text("name").to_string(),
            password: Secret::new(text("password")),
            service: match text("service") {
                "" => "any".to_string(),
                other => other.to_string(),
            },
            profile: match text("profile") {
                "" | "default" => None,
                other => Some(other.to_string()),
            },
            local_address: address("local-address"),
            remote_address: address("remote-address"),
            disabled: matches!(text("disabled"), "true" | "yes"),
        }
    }

    /// `=key=value` pairs for `add` (`replacing` None: unset fields left
    /// out) or for a `set` over the `replacing` values (every field, so that
    /// the secret ends up exactly like this; an address is cleared only if
    /// it was set, so that a set and its undo leave the row as it was).
    fn args(&self, replacing: Option<&SecretValues>) -> Vec<(&'static str, String)> {
        let for_set = replacing.is_some();
        let mut args = vec![
            ("name", self.name.clone()),
            ("password", self.password.expose().to_string()),
            ("service", self.service.clone()),
        ];
        match (&self.profile, for_set) {
            (Some(profile), _) => args.push(("profile", profile.clone())),
            (None, true) => args.push(("profile", "default".into())),
            (None, false) => {}
        }
        for (key, value, current) in [
            (
                "local-address",
                self.local_address,
                replacing.and_then(|c| c.local_address),
            ),
            (
                "remote-address",
                self.remote_address,
                replacing.and_then(|c| c.remote_address),
            ),
        ] {
            match (value, current) {
                (Some(ip), _) => args.push((key, ip.to_string())),
                (None, Some(_)) => args.push((key, String::new())),
                (None, None) => {}
            }
        }
        args.push((
            "disabled",
            if self.disabled { "yes" } else { "no" }.to_string(),
        ));
        args
    }
}

/// One router, through a connection borrowed from the pool on first use
/// and kept while the link lives (a change's read, write and undo go over
/// one login). A failure that breaks the connection drops it and counts
/// towards the router's back-off, as [`RouterPool::run`] does; what follows
/// on the same link (the repair of an unclear write, an undo) then gets a
/// new connection even while the router is backed off.
struct RouterLink<'a> {
    router: &'a mikrotik_router::Model,
    pool: &'a RouterPool,
    pooled: Option<PooledClient>,
    /// Whether the router answered on `pooled`: a connection that did is
    /// not stale.
    answered: bool,
    /// Set by a failure (or from the start, for an undo): connect even
    /// while the router is backed off.
    setting_right: bool,
}

/// Whether a command may be sent again on a new connection when a pooled
/// one turns out to be stale: a read or a `set` of every field may; an
/// `add` or a `remove` could be applied twice.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    Never,
}

impl<'a> RouterLink<'a> {
    fn new(router: &'a mikrotik_router::Model, pool: &'a RouterPool) -> Self {
        RouterLink {
            router,
            pool,
            pooled: None,
            answered: false,
            setting_right: false,
        }
    }

    /// A link for undoing changes already made: tried even while the
    /// router is backed off.
    fn to_set_right(router: &'a mikrotik_router::Model, pool: &'a RouterPool) -> Self {
        RouterLink {
            setting_right: true,
            ..RouterLink::new(router, pool)
        }
    }

    /// What follows undoes a change already made: tried even if the
    /// router gets backed off meanwhile.
    fn undoing(&mut self) {
        self.setting_right = true;
    }

    async fn connection(&mut self) -> Result<PooledClient, MikrotikError> {
        if let Some(pooled) = self.pooled.take() {
            if !pooled.client().is_closed() {
                return Ok(pooled);
            }
        }
        self.answered = false;
        if self.setting_right {
            self.pool.get_despite_backoff(self.router).await
        } else {
            self.pool.get(self.router).await
        }
    }

    /// Runs one command on the link's connection and tells the pool how it
    /// went.
    async fn call<T, F, Fut>(&mut self, repeat: Repeat, command: F) -> Result<T, MikrotikError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, routeros::Error>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let pooled = self.connection().await?;
            let first_answer = !self.answered;
            match command(pooled.client().clone()).await {
                Ok(value) => {
                    self.pool.record_success(&pooled);
                    self.answered = true;
                    self.pooled = Some(pooled);
                    return Ok(value);
                }
                Err(err) if pool::breaks_connection(&err) => {
                    if attempt == 1
                        && first_answer
                        && repeat == Repeat::Safe
                        && pool::is_stale(&pooled, &err)
                    {
                        tracing::debug!(router = %self.router.name, error = %err, "a pooled connection had gone stale; reconnecting");
                        pooled.discard();
                        continue;
                    }
                    let err = self.fail(err);
                    self.pool.record_failure(pooled, &err);
                    self.setting_right = true;
                    return Err(err);
                }
                Err(err) => {
                    // A `!trap` is an answer: the connection stays.
                    self.answered = true;
                    self.pooled = Some(pooled);
                    return Err(self.fail(err));
                }
            }
        }
    }

    fn fail(&self, err: routeros::Error) -> MikrotikError {
        MikrotikError::from_client(&self.router.name, err)
    }

    async fn print_secrets(&mut self, query: &str) -> Result<Vec<Row>, MikrotikError> {
        self.call(Repeat::Safe, |client| async move {
            client.print("/ppp/secret", &[], &[query]).await
        })
        .await
    }

    /// The secret with this name, if any: its id and values.
    async fn find_secret(
        &mut self,
        name: &str,
    ) -> Result<Option<(String, SecretValues)>, MikrotikError> {
        let rows = self.print_secrets(&format!("?name={name}")).await?;
        Ok(rows.into_iter().find_map(|row| {
            let id = row.get(".id")?.clone();
            Some((id, SecretValues::from_row(&row)))
        }))
    }

    async fn find_secret_by_id(&mut self, id: &str) -> Result<Option<SecretValues>, MikrotikError> {
        let rows = self.print_secrets(&format!("?.id={id}")).await?;
        Ok(rows.first().map(SecretValues::from_row))
    }

    async fn add_secret(&mut self, values: &SecretValues) -> Result<String, MikrotikError> {
        let args = values.args(None);
        let args: &[(&str, &str)] = &args
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>();
        self.call(Repeat::Never, |client| async move {
            client.add("/ppp/secret", args).await
        })
        .await
    }

    /// Sets the secret `id`, which now holds `current`, to `values`.
    async fn set_secret(
        &mut self,
        id: &str,
        values: &SecretValues,
        current: &SecretValues,
    ) -> Result<(), MikrotikError> {
        let mut args = values.args(Some(current));
        args.insert(0, (".id", id.to_string()));
        let args: &[(&str, &str)] = &args
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>();
        self.call(Repeat::Safe, |client| async move {
            client
                .command("/ppp/secret/set", args, &[])
                .await
                .map(|_| ())
        })
        .await
    }

    async fn remove_secret(&mut self, id: &str) -> Result<(), MikrotikError> {
        self.call(Repeat::Never, |client| async move {
            client
                .command("/ppp/secret/remove", &[(".id", id)], &[])
                .await
                .map(|_| ())
        })
        .await
    }

    /// Adds a secret. An unclear failure (no answer, broken connection) is
    /// checked on the router: a secret that did arrive is removed again, so
    /// that a failed add leaves nothing behind.
    async fn add_or_nothing(&mut self, values: &SecretValues) -> Result<String, MikrotikError> {
        match self.add_secret(values).await {
            Ok(id) => Ok(id),
            Err(err) if err.is_ambiguous() => {
                let repaired = async {
                    // Only the secret this add made: another request's
                    // secret of the same name is left alone.
                    if let Some((id, found)) = self.find_secret(&values.name).await? {
                        if found == *values {
                            self.remove_secret(&id).await?;
                        }
                    }
                    Ok::<_, MikrotikError>(())
                }
                .await;
                self.report_repair("add", &values.name, repaired);
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Sets a secret to `new`; on an unclear failure, sets `old` back.
    async fn set_or_nothing(
        &mut self,
        id: &str,
        old: &SecretValues,
        new: &SecretValues,
    ) -> Result<(), MikrotikError> {
        match self.set_secret(id, new, old).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_ambiguous() => {
                let repaired = async {
                    let current = self.find_secret_by_id(id).await?;
                    if current.as_ref() != Some(old) {
                        self.set_secret(id, old, current.as_ref().unwrap_or(new))
                            .await?;
                    }
                    Ok::<_, MikrotikError>(())
                }
                .await;
                self.report_repair("set", &old.name, repaired);
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Removes a secret; on an unclear failure, adds it back if it is gone.
    async fn remove_or_nothing(
        &mut self,
        id: &str,
        old: &SecretValues,
    ) -> Result<(), MikrotikError> {
        match self.remove_secret(id).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_ambiguous() => {
                let repaired = async {
                    if self.find_secret(&old.name).await?.is_none() {
                        self.add_secret(old).await?;
                    }
                    Ok::<_, MikrotikError>(())
                }
                .await;
                self.report_repair("remove", &old.name, repaired);
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    fn report_repair(&self, verb: &str, secret: &str, repaired: Result<(), MikrotikError>) {
        if let Err(err) = repaired {
            tracing::error!(
                mikrotik_router.id = self.router.id,
                router = %self.router.name,
                secret,
                error = %err,
                "a {verb} of a PPP secret got no clear answer and the router could not be checked: \
                 it may differ from the database until the next change or sync"
            );
        }
    }
}

/// A PPPoE user as the caller gives it.
#[derive(Debug, Clone, Default)]
pub struct PppoeInput {
    pub router_id: i32,
    /// Ignored when `network_user_id` is set (the user's name is used).
    pub username: String,
    /// Required on create unless `network_user_id` is set; on update,
    /// absent keeps the current one.
    pub password: Option<Secret>,
    /// Default `pppoe`.
    pub service: Option<String>,
    /// The router's PPP profile; none means `default`. With
    /// `network_user_id`, the user's package's profile is used.
    pub profile: Option<String>,
    pub local_address: Option<String>,
    pub remote_address: Option<String>,
    pub disabled: bool,
    /// A network user of service type pppoe whose secret this is: its name,
    /// password, package profile and status then follow the user.
    pub network_user_id: Option<i32>,
}

#[derive(Debug, Clone)]
struct PppoeSpec {
    network_user_id: Option<i32>,
    values: SecretValues,
    /// False on an update that keeps the current password.
    password_given: bool,
}

fn ipv4_field(field: &str, value: &Option<String>, errors: &mut FieldErrors) -> Option<Ipv4Addr> {
    let text = optional_text(value)?;
    match text.parse::<Ipv4Addr>() {
        Ok(ip) if !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast() => Some(ip),
        Ok(_) => {
            errors.insert(field.into(), format!("{text} cannot be a PPP address"));
            None
        }
        Err(_) => {
            errors.insert(field.into(), format!("\"{text}\" is not an IPv4 address"));
            None
        }
    }
}

/// Checks a PPP password: 1 to 128 characters, no control characters, no
/// quotes or backslashes (RouterOS scripts and exports would mangle them).
fn check_ppp_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if !(1..=128).contains(&len) {
        return Err("must be 1 to 128 characters long".into());
    }
    if password
        .chars()
        .any(|c| c.is_control() || matches!(c, '"' | '\\'))
    {
        return Err("must not contain control characters, quotes or backslashes".into());
    }
    Ok(())
}

/// What a linked network user dictates for its secret.
#[derive(Debug, Clone)]
pub struct NetworkUserSecret {
    pub username: String,
    /// None keeps the password the router has.
    pub password: Option<Secret>,
    pub profile: Option<String>,
    /// Suspended or disabled users, and users that are no longer PPPoE
    /// users, get `disabled=yes`.
    pub disabled: bool,
}

impl NetworkUserSecret {
    /// From a network user's row (its current password) and its package.
    pub fn of_user(
        key: &AppKey,
        user: &network_user::Model,
        package: Option<&service_package::Model>,
    ) -> Result<NetworkUserSecret, MikrotikError> {
        Ok(NetworkUserSecret {
            username: user.username.clone(),
            password: Some(key.decrypt(&user.password_encrypted)?),
            profile: package.and_then(|p| p.mikrotik_profile.clone()),
            disabled: user.status != "active" || user.service_type != "pppoe",
        })
    }
}

async fn linked_user_secret(
    db: &impl ConnectionTrait,
    key: &AppKey,
    network_user_id: i32,
) -> Result<NetworkUserSecret, MikrotikError> {
    let user = network_user::Entity::find_by_id(network_user_id)
        .one(db)
        .await?
        .ok_or_else(|| {
            MikrotikError::invalid(
                "network_user_id",
                format!("there is no network user with id {network_user_id}"),
            )
        })?;
    if user.service_type != "pppoe" {
        return Err(MikrotikError::invalid(
            "network_user_id",
            format!(
                "network user \"{}\" is a {} user, not a PPPoE user",
                user.username, user.service_type
            ),
        ));
    }
    let package = match user.package_id {
        Some(id) => service_package::Entity::find_by_id(id).one(db).await?,
        None => None,
    };
    NetworkUserSecret::of_user(key, &user, package.as_ref())
}

impl PppoeInput {
    async fn validate(
        &self,
        db: &impl ConnectionTrait,
        key: &AppKey,
        creating: bool,
    ) -> Result<PppoeSpec, MikrotikError> {
        let mut errors = FieldErrors::new();
        let linked = match self.network_user_id {
            Some(id) => match linked_user_secret(db, key, id).await {
                Ok(secret) => Some(secret),
                Err(MikrotikError::Invalid(fields)) => {
                    errors.extend(fields);
                    None
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        let name = match &linked {
            Some(secret) => secret.username.clone(),
            None => match NetUsername::parse(&self.username) {
                Ok(name) => name.as_str().to_string(),
                Err(e) => {
                    errors.insert("username".into(), e);
                    String::new()
                }
            },
        };
        let password = match &linked {
            Some(secret) => secret.password.clone(),
            None => self.password.clone().filter(|p| !p.expose().is_empty()),
        };
        match &password {
            None if creating => {
                errors.insert("password".into(), "is required".into());
            }
            // A linked user's password was checked by the users service.
            Some(p) if linked.is_none() => {
                if let Err(e) = check_ppp_password(p.expose()) {
                    errors.insert("password".into(), e);
                }
            }
            Some(_) => {}
            None => {}
        }
        let service = optional_text(&self.service)
            .unwrap_or("pppoe")
            .to_ascii_lowercase();
        if !PPP_SERVICES.contains(&service.as_str()) {
            errors.insert(
                "service".into(),
                format!("must be one of {}", PPP_SERVICES.join(", ")),
            );
        }
        let profile = match &linked {
            Some(secret) => secret.profile.clone(),
            None => optional_text(&self.profile).map(str::to_string),
        };
        if let Some(profile) = &profile {
            if let Err(e) = crate::users::domain::MikrotikProfile::parse(profile) {
                errors.insert("profile".into(), e);
            }
        }
        let local_address = ipv4_field("local_address", &self.local_address, &mut errors);
        let remote_address = ipv4_field("remote_address", &self.remote_address, &mut errors);
        let disabled = linked.as_ref().map_or(self.disabled, |s| s.disabled);
        if !errors.is_empty() {
            return Err(MikrotikError::Invalid(errors));
        }
        Ok(PppoeSpec {
            network_user_id: self.network_user_id,
            password_given: password.is_some(),
            values: SecretValues {
                name,
                password: password.unwrap_or_else(|| Secret::new("")),
                service,
                profile: profile.map(|p| p.trim().to_string()),
                local_address,
                remote_address,
                disabled,
            },
        })
    }
}

fn pppoe_taken(name: &str, router: &str) -> MikrotikError {
    MikrotikError::Conflict {
        code: "pppoe_user_taken",
        message: format!("a PPPoE user named \"{name}\" exists already on router {router}"),
    }
}

/// The router's refusal in the caller's terms: a duplicate name is a 409
/// with the router's own message; a value the router does not accept
/// (category 1: no such profile, service...) a 422 on that field.
fn secret_refused(err: MikrotikError) -> MikrotikError {
    match err {
        MikrotikError::Trap {
            router, message, ..
        } if message.contains("already exists") => MikrotikError::Conflict {
            code: "pppoe_user_taken",
            message: format!("router {router}: {message}"),
        },
        MikrotikError::Trap {
            router,
            category: Some(1),
            message,
        } => {
            let field = ["profile", "service", "local-address", "remote-address"]
                .into_iter()
                .find(|f| message.contains(f))
                .map(|f| f.replace('-', "_"));
            match field {
                Some(field) => {
                    MikrotikError::invalid(&field, format!("router {router}: {message}"))
                }
                None => MikrotikError::Trap {
                    router,
                    category: Some(1),
                    message,
                },
            }
        }
        other => other,
    }
}

async fn check_pppoe_name(
    db: &impl ConnectionTrait,
    router: &mikrotik_router::Model,
    name: &str,
    except: Option<i32>,
) -> Result<(), MikrotikError> {
    let mut query = mikrotik_pppoe_user::Entity::find()
        .filter(mikrotik_pppoe_user::Column::RouterId.eq(router.id))
        .filter(mikrotik_pppoe_user::Column::Username.eq(name));
    if let Some(id) = except {
        query = query.filter(mikrotik_pppoe_user::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(pppoe_taken(name, &router.name));
    }
    Ok(())
}

fn pppoe_details(row: &mikrotik_pppoe_user::Model, router: &str) -> serde_json::Value {
    // Never the password, not even its ciphertext.
    serde_json::json!({
        "router_id": row.router_id,
        "router": router,
        "username": row.username,
        "service": row.service,
        "profile": row.profile,
        "local_address": row.local_address,
        "remote_address": row.remote_address,
        "status": row.status,
        "network_user_id": row.network_user_id,
        "router_item_id": row.router_item_id,
    })
}

fn status_of(values: &SecretValues) -> &'static str {
    if values.disabled {
        PPPOE_STATUS_DISABLED
    } else {
        PPPOE_STATUS_ACTIVE
    }
}

/// Writes a secret's values onto a row (not its id or timestamps of creation).
/// `sealed_password`: the new password, encrypted; None keeps the row's.
fn fill_row(
    row: &mut mikrotik_pppoe_user::ActiveModel,
    values: &SecretValues,
    item_id: &str,
    sealed_password: Option<String>,
) {
    let now = Utc::now().fixed_offset();
    row.username = Set(values.name.clone());
    if let Some(sealed) = sealed_password {
        row.password_encrypted = Set(sealed);
    }
    row.service = Set(values.service.clone());
    row.profile = Set(values.profile.clone());
    row.local_address = Set(values.local_address.map(|ip| ip.to_string()));
    row.remote_address = Set(values.remote_address.map(|ip| ip.to_string()));
    row.router_item_id = Set(Some(item_id.to_string()));
    row.status = Set(status_of(values).into());
    row.last_synced_at = Set(Some(now));
    row.updated_at = Set(now);
}

/// The error to return after the database write failed and the router
/// change was (or was not) undone.
fn after_failed_write(
    db_err: DbErr,
    undo: Result<(), MikrotikError>,
    router: &mikrotik_router::Model,
    name: &str,
    what_undo_meant: &str,
) -> MikrotikError {
    match undo {
        Ok(()) => {
            if crate::db::unique_violation(&db_err).is_some() {
                pppoe_taken(name, &router.name)
            } else {
                MikrotikError::Db(db_err)
            }
        }
        Err(undo_err) => {
            tracing::error!(
                mikrotik_router.id = router.id,
                router = %router.name,
                secret = name,
                db_error = %db_err,
                undo_error = %undo_err,
                "the database write failed and the router change could not be undone"
            );
            MikrotikError::Diverged {
                router: router.name.clone(),
                detail: format!(
                    "the database write for PPP secret \"{name}\" failed, and {what_undo_meant} failed too ({undo_err}); check the secret on the router"
                ),
            }
        }
    }
}

/// Creates a PPPoE user: the secret on the router first, then the row. If
/// the row cannot be written, the secret is removed again.
#[instrument(skip_all, fields(mikrotik_router.id = input.router_id))]
pub async fn create_pppoe_user(
    db: &DatabaseConnection,
    routers: &RouterPool,
    actor: &Actor,
    input: &PppoeInput,
) -> Result<mikrotik_pppoe_user::Model, MikrotikError> {
    let key = routers.key();
    let router = find_router(db, input.router_id)
        .await
        .map_err(|err| match err {
            MikrotikError::NotFound(_) => MikrotikError::invalid(
                "router_id",
                format!("there is no router with id {}", input.router_id),
            ),
            other => other,
        })?;
    let spec = input.validate(db, key, true).await?;
    check_pppoe_name(db, &router, &spec.values.name, None).await?;
    let mut link = RouterLink::new(&router, routers);
    async {
        // Read first: a router that cannot answer a read is not written to.
        let item_id = if link.find_secret(&spec.values.name).await?.is_some() {
            // Let the router refuse it in its own words. No repair here:
            // that secret is not ours to remove.
            let added = link
                .add_secret(&spec.values)
                .await
                .map_err(secret_refused)?;
            let _ = link.remove_secret(&added).await;
            return Err(pppoe_taken(&spec.values.name, &router.name));
        } else {
            link.add_or_nothing(&spec.values)
                .await
                .map_err(secret_refused)?
        };
        match insert_pppoe_row(db, key, actor, &router, &spec, &item_id).await {
            Ok(row) => Ok(row),
            Err(db_err) => {
                link.undoing();
                let undo = link.remove_secret(&item_id).await;
                Err(after_failed_write(
                    db_err,
                    undo,
                    &router,
                    &spec.values.name,
                    "removing the new secret from the router",
                ))
            }
        }
    }
    .await
}

async fn insert_pppoe_row(
    db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    router: &mikrotik_router::Model,
    spec: &PppoeSpec,
    item_id: &str,
) -> Result<mikrotik_pppoe_user::Model, DbErr> {
    let txn = begin_write(db).await?;
    let now = Utc::now().fixed_offset();
    let mut row = mikrotik_pppoe_user::ActiveModel {
        router_id: Set(router.id),
        network_user_id: Set(spec.network_user_id),
        created_at: Set(now),
        ..Default::default()
    };
    let sealed = key.encrypt(spec.values.password.expose());
    fill_row(&mut row, &spec.values, item_id, Some(sealed));
    let row = row.insert(&txn).await?;
    audit::record(
        &txn,
        actor,
        "mikrotik_pppoe_user.create",
        "mikrotik_pppoe_user",
        Some(row.id.to_string()),
        pppoe_details(&row, &router.name),
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

async fn find_pppoe(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<mikrotik_pppoe_user::Model, MikrotikError> {
    mikrotik_pppoe_user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| MikrotikError::NotFound(format!("no PPPoE user with id {id}")))
}

pub async fn get_pppoe_user(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<mikrotik_pppoe_user::Model, MikrotikError> {
    find_pppoe(db, id).await
}

/// The secret a row stands for on the router: by the stored id when it
/// still names this secret, else by name. None when it is gone.
async fn locate_secret(
    link: &mut RouterLink<'_>,
    row: &mikrotik_pppoe_user::Model,
) -> Result<Option<(String, SecretValues)>, MikrotikError> {
    if let Some(id) = &row.router_item_id {
        if let Some(values) = link.find_secret_by_id(id).await? {
            if values.name == row.username {
                return Ok(Some((id.clone(), values)));
            }
        }
    }
    link.find_secret(&row.username).await
}

fn secret_missing(row: &mikrotik_pppoe_user::Model, router: &str) -> MikrotikError {
    MikrotikError::Conflict {
        code: "pppoe_secret_missing",
        message: format!(
            "router {router} has no PPP secret \"{}\" (removed there by hand?); delete this PPPoE user and create it again",
            row.username
        ),
    }
}

/// Replaces a PPPoE user's settings: the router first, then the row; if
/// the row cannot be written, the secret's old values are set back. The
/// router cannot be changed (delete and create instead).
#[instrument(skip_all, fields(mikrotik_pppoe_user.id = id))]
pub async fn update_pppoe_user(
    db: &DatabaseConnection,
    routers: &RouterPool,
    actor: &Actor,
    id: i32,
    input: &PppoeInput,
) -> Result<mikrotik_pppoe_user::Model, MikrotikError> {
    let key = routers.key();
    let existing = find_pppoe(db, id).await?;
    if input.router_id != existing.router_id {
        return Err(MikrotikError::invalid(
            "router_id",
            "a PPPoE user cannot move to another router; delete it and create it there",
        ));
    }
    let router = find_router(db, existing.router_id).await?;
    let spec = input.validate(db, key, false).await?;
    check_pppoe_name(db, &router, &spec.values.name, Some(id)).await?;
    let mut link = RouterLink::new(&router, routers);
    async {
        let Some((item_id, old)) = locate_secret(&mut link, &existing).await? else {
            return Err(secret_missing(&existing, &router.name));
        };
        let mut new = spec.values.clone();
        if !spec.password_given {
            new.password = old.password.clone();
        }
        link.set_or_nothing(&item_id, &old, &new)
            .await
            .map_err(secret_refused)?;
        match write_pppoe_update(
            db,
            key,
            actor,
            &router,
            id,
            &new,
            &item_id,
            spec.password_given,
        )
        .await
        {
            Ok(row) => Ok(row),
            Err(db_err) => {
                link.undoing();
                let undo = link.set_secret(&item_id, &old, &new).await;
                Err(after_failed_write(
                    db_err,
                    undo,
                    &router,
                    &new.name,
                    "setting the secret's old values back on the router",
                ))
            }
        }
    }
    .await
}

#[allow(clippy::too_many_arguments)]
async fn write_pppoe_update(
    db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    router: &mikrotik_router::Model,
    id: i32,
    values: &SecretValues,
    item_id: &str,
    password_changed: bool,
) -> Result<mikrotik_pppoe_user::Model, DbErr> {
    let txn = begin_write(db).await?;
    let existing = mikrotik_pppoe_user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("mikrotik_pppoe_users {id}")))?;
    let mut row: mikrotik_pppoe_user::ActiveModel = existing.into();
    let sealed = password_changed.then(|| key.encrypt(values.password.expose()));
    fill_row(&mut row, values, item_id, sealed);
    let row = row.update(&txn).await?;
    let mut details = pppoe_details(&row, &router.name);
    details["password_changed"] = serde_json::Value::Bool(password_changed);
    audit::record(
        &txn,
        actor,
        "mikrotik_pppoe_user.update",
        "mikrotik_pppoe_user",
        Some(id.to_string()),
        details,
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// Deletes a PPPoE user: the secret on the router first, then the row; if
/// the row cannot be deleted, the secret is added back. A secret already
/// gone from the router is not an error.
#[instrument(skip_all, fields(mikrotik_pppoe_user.id = id))]
pub async fn delete_pppoe_user(
    db: &DatabaseConnection,
    routers: &RouterPool,
    actor: &Actor,
    id: i32,
) -> Result<mikrotik_pppoe_user::Model, MikrotikError> {
    let existing = find_pppoe(db, id).await?;
    let router = find_router(db, existing.router_id).await?;
    let mut link = RouterLink::new(&router, routers);
    async {
        let found = locate_secret(&mut link, &existing).await?;
        if let Some((item_id, old)) = &found {
            link.remove_or_nothing(item_id, old).await?;
        }
        match delete_pppoe_row(db, actor, &router, &existing).await {
            Ok(()) => Ok(existing.clone()),
            Err(db_err) => {
                link.undoing();
                let undo = match &found {
                    Some((_, old)) => link.add_secret(old).await.map(|_| ()),
                    None => Ok(()),
                };
                Err(after_failed_write(
                    db_err,
                    undo,
                    &router,
                    &existing.username,
                    "adding the secret back to the router",
                ))
            }
        }
    }
    .await
}

async fn delete_pppoe_row(
    db: &DatabaseConnection,
    actor: &Actor,
    router: &mikrotik_router::Model,
    row: &mikrotik_pppoe_user::Model,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    mikrotik_pppoe_user::Entity::delete_by_id(row.id)
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        "mikrotik_pppoe_user.delete",
        "mikrotik_pppoe_user",
        Some(row.id.to_string()),
        pppoe_details(row, &router.name),
    )
    .await?;
    txn.commit().await
}

/// Sort fields of the PPPoE user list (`?sort=`).
pub const PPPOE_SORTS: &[(&str, mikrotik_pppoe_user::Column)] = &[
    ("id", mikrotik_pppoe_user::Column::Id),
    ("username", mikrotik_pppoe_user::Column::Username),
    ("router_id", mikrotik_pppoe_user::Column::RouterId),
    ("service", mikrotik_pppoe_user::Column::Service),
    ("profile", mikrotik_pppoe_user::Column::Profile),
    ("status", mikrotik_pppoe_user::Column::Status),
    ("created_at", mikrotik_pppoe_user::Column::CreatedAt),
    ("updated_at", mikrotik_pppoe_user::Column::UpdatedAt),
];

#[derive(Debug, Default, Clone)]
pub struct PppoeFilter {
    pub router_id: Option<i32>,
    /// Part of the username, profile or addresses, any case.
    pub q: Option<String>,
    pub status: Option<String>,
    pub network_user_id: Option<i32>,
}

pub async fn list_pppoe_users(
    db: &impl ConnectionTrait,
    filter: &PppoeFilter,
    sort: &Sort<mikrotik_pppoe_user::Column>,
    page: PageRequest,
) -> Result<(Vec<mikrotik_pppoe_user::Model>, u64), MikrotikError> {
    let mut select = mikrotik_pppoe_user::Entity::find();
    if let Some(router_id) = filter.router_id {
        select = select.filter(mikrotik_pppoe_user::Column::RouterId.eq(router_id));
    }
    if let Some(user_id) = filter.network_user_id {
        select = select.filter(mikrotik_pppoe_user::Column::NetworkUserId.eq(user_id));
    }
    if let Some(status) = optional_text(&filter.status) {
        select = select.filter(mikrotik_pppoe_user::Column::Status.eq(status));
    }
    if let Some(q) = optional_text(&filter.q) {
        select = select.filter(
            Condition::any()
                .add(contains(mikrotik_pppoe_user::Column::Username, q))
                .add(contains(mikrotik_pppoe_user::Column::Profile, q))
                .add(contains(mikrotik_pppoe_user::Column::LocalAddress, q))
                .add(contains(mikrotik_pppoe_user::Column::RemoteAddress, q)),
        );
    }
    Ok(fetch_page(
        db,
        sort.apply(select, mikrotik_pppoe_user::Column::Id),
        page,
    )
    .await?)
}

// ------------------------------------------------- network users' secrets

/// One secret changed for a network user, remembered so that it can be
/// recorded with the user's write or undone if that write fails.
#[derive(Debug)]
struct LinkedChange {
    row: mikrotik_pppoe_user::Model,
    router: mikrotik_router::Model,
    item_id: String,
    old: SecretValues,
    /// None: the secret was removed.
    new: Option<SecretValues>,
    /// The new password, encrypted for the row.
    sealed_password: Option<String>,
}

/// The secrets a network user's change pushed to its routers. Pass it to
/// [`record_network_user_secrets`] inside the user's transaction, or to
/// [`undo_network_user_secrets`] if that transaction fails.
#[derive(Debug, Default)]
#[must_use]
pub struct PushedSecrets {
    changes: Vec<LinkedChange>,
}

impl PushedSecrets {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Brings the secrets of a network user on its routers (the PPPoE users
/// linked to it) in line with `desired`, or removes them when `desired` is
/// None (the user is being deleted). Routers first: if one fails, those
/// already changed are set back, and nothing is recorded. Secrets removed
/// from a router by hand are added back on an update.
#[instrument(skip_all, fields(network_user.id = network_user_id))]
pub async fn push_network_user_secrets(
    db: &impl ConnectionTrait,
    routers: &RouterPool,
    network_user_id: i32,
    desired: Option<&NetworkUserSecret>,
) -> Result<PushedSecrets, MikrotikError> {
    let key = routers.key();
    let rows = mikrotik_pppoe_user::Entity::find()
        .filter(mikrotik_pppoe_user::Column::NetworkUserId.eq(network_user_id))
        .all(db)
        .await?;
    let mut pushed = PushedSecrets::default();
    for row in rows {
        let router = find_router(db, row.router_id).await?;
        match push_one(routers, &router, &row, desired).await {
            Ok(Some(change)) => pushed.changes.push(LinkedChange {
                sealed_password: change
                    .2
                    .as_ref()
                    .map(|new| key.encrypt(new.password.expose())),
                row,
                router,
                item_id: change.0,
                old: change.1,
                new: change.2,
            }),
            Ok(None) => {}
            Err(err) => {
                undo_network_user_secrets(routers, pushed).await;
                return Err(secret_refused(err));
            }
        }
    }
    Ok(pushed)
}

type OneChange = (String, SecretValues, Option<SecretValues>);

async fn push_one(
    routers: &RouterPool,
    router: &mikrotik_router::Model,
    row: &mikrotik_pppoe_user::Model,
    desired: Option<&NetworkUserSecret>,
) -> Result<Option<OneChange>, MikrotikError> {
    let key = routers.key();
    let mut link = RouterLink::new(router, routers);
    async {
        let found = locate_secret(&mut link, row).await?;
        match (desired, found) {
            (None, None) => Ok(None),
            (None, Some((item_id, old))) => {
                link.remove_or_nothing(&item_id, &old).await?;
                Ok(Some((item_id, old, None)))
            }
            (Some(desired), found) => {
                let base = match &found {
                    Some((_, old)) => old.clone(),
                    None => SecretValues {
                        name: row.username.clone(),
                        password: key.decrypt(&row.password_encrypted)?,
                        service: row.service.clone(),
                        profile: row.profile.clone(),
                        local_address: row.local_address.as_deref().and_then(|a| a.parse().ok()),
                        remote_address: row.remote_address.as_deref().and_then(|a| a.parse().ok()),
                        disabled: row.status == PPPOE_STATUS_DISABLED,
                    },
                };
                let mut new = base.clone();
                new.name = desired.username.clone();
                if let Some(password) = &desired.password {
                    new.password = password.clone();
                }
                new.profile = desired.profile.clone();
                new.disabled = desired.disabled;
                match found {
                    Some((item_id, old)) => {
                        if old != new {
                            link.set_or_nothing(&item_id, &old, &new).await?;
                        }
                        Ok(Some((item_id, old, Some(new))))
                    }
                    None => {
                        // Gone from the router: put it back. Its undo is a
                        // removal, recorded as "old = new, item added".
                        let item_id = link.add_or_nothing(&new).await?;
                        Ok(Some((item_id, new.clone(), Some(new))))
                    }
                }
            }
        }
    }
    .await
}

/// Records the pushed secrets on their rows, inside the network user's
/// transaction (deletes the rows when the secrets were removed).
pub async fn record_network_user_secrets(
    txn: &impl ConnectionTrait,
    pushed: &PushedSecrets,
) -> Result<(), DbErr> {
    for change in &pushed.changes {
        match &change.new {
            None => {
                mikrotik_pppoe_user::Entity::delete_by_id(change.row.id)
                    .exec(txn)
                    .await?;
            }
            Some(new) => {
                let mut row: mikrotik_pppoe_user::ActiveModel = change.row.clone().into();
                fill_row(
                    &mut row,
                    new,
                    &change.item_id,
                    change.sealed_password.clone(),
                );
                row.update(txn).await?;
            }
        }
    }
    Ok(())
}

/// Sets every pushed secret back as it was (re-adds removed ones, removes
/// re-added ones), after the network user's write failed. Failures are
/// logged: there is no one left to return them to. Tried even on a router
/// that is backed off: the changes were made moments ago.
pub async fn undo_network_user_secrets(routers: &RouterPool, pushed: PushedSecrets) {
    for change in pushed.changes.into_iter().rev() {
        let mut link = RouterLink::to_set_right(&change.router, routers);
        let undone = match &change.new {
            None => link.add_secret(&change.old).await.map(|_| ()),
            Some(new) if *new == change.old => link.remove_secret(&change.item_id).await,
            Some(new) => link.set_secret(&change.item_id, &change.old, new).await,
        };
        drop(link);
        if let Err(err) = undone {
            tracing::error!(
                mikrotik_router.id = change.router.id,
                router = %change.router.name,
                secret = %change.old.name,
                error = %err,
                "a network user's write failed and its PPP secret could not be set back on the router"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
