//! Registering, changing, testing and removing routers.

use std::net::IpAddr;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Set,
};
use tracing::instrument;

use crate::audit::{self, Actor};
use crate::crypto::{AppKey, Secret};
use crate::db::{begin_write, UniqueKey};
use crate::error::FieldErrors;
use crate::mikrotik::entities::{mikrotik_pppoe_user, mikrotik_router};
use crate::mikrotik::pool::RouterPool;
use crate::mikrotik::routeros::{Client, Fingerprint};
use crate::mikrotik::service::{connect, MikrotikError};
use crate::query::{contains, fetch_page, filters, PageRequest, Sort};
use crate::text::{has_control, optional_text};

/// A router's status: never tested, answered the last test or check, or
/// did not.
pub const ROUTER_STATUS_UNKNOWN: &str = "unknown";
pub const ROUTER_STATUS_ONLINE: &str = "online";
pub const ROUTER_STATUS_OFFLINE: &str = "offline";
/// Every router status, as the list filters offer them.
pub const ROUTER_STATUSES: [&str; 3] = [
    ROUTER_STATUS_UNKNOWN,
    ROUTER_STATUS_ONLINE,
    ROUTER_STATUS_OFFLINE,
];

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

/// The router list's order from `?sort=` ([`ROUTER_SORTS`]), by name when
/// none is asked for.
pub fn router_sort(raw: Option<&str>, errors: &mut FieldErrors) -> Sort<mikrotik_router::Column> {
    Sort::parse(raw, ROUTER_SORTS, "name", errors)
}

pub(crate) async fn find_router(
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

/// The unique key on router names: a race that [`check_router_name`] lost
/// ends on it.
const ROUTER_NAME_KEY: UniqueKey = UniqueKey::column("mikrotik_routers", &["name"]);

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
        if ROUTER_NAME_KEY.violated_by(&err) {
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
        if ROUTER_NAME_KEY.violated_by(&err) {
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

impl RouterFilter {
    /// The filter of a list request: a bad value is a message under its
    /// field in `errors`.
    pub fn parse(q: Option<&str>, status: Option<&str>, errors: &mut FieldErrors) -> Self {
        let q = filters::text("q", q, 200, errors);
        let status = filters::text("status", status, 16, errors);
        if let Some(s) = &status {
            if !ROUTER_STATUSES.contains(&s.as_str()) {
                errors.insert("status".into(), "must be unknown, online or offline".into());
            }
        }
        Self { q, status }
    }
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
