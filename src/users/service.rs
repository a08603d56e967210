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

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use tracing::instrument;

use super::domain::{
    check_password, Burst, MacAddress, MikrotikProfile, NetUsername, RadiusGroup, Rate, RateLimit,
    ServiceType, UserStatus,
};
use super::entities::{network_user, service_package};
use crate::audit::{self, Actor};
use crate::crypto::{AppKey, CryptoError, Secret};
use crate::db::begin_write;
use crate::error::{AppError, FieldErrors};
use crate::ipam::service::{self as ipam, AllocationInput, IpamError, IpamSettings};
use crate::mikrotik::pool::RouterPool;
use crate::mikrotik::service::{self as mikrotik, MikrotikError, PushedSecrets};
use crate::query::{contains, fetch_page, PageRequest, Sort};
use crate::text::optional_text;

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
    fn invalid(field: &str, message: impl Into<String>) -> Self {
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

// ------------------------------------------------------------- packages

/// A package as the caller gives it; [`PackageInput::validate`] turns it
/// into a [`PackageSpec`]. Rates are text such as `20M`, `512k`, `1G` or a
/// plain number of kbit/s.
#[derive(Debug, Clone, Default)]
pub struct PackageInput {
    pub name: String,
    pub description: Option<String>,
    pub download_rate: String,
    pub upload_rate: String,
    /// A burst needs all five burst fields, or none.
    pub burst_download_rate: Option<String>,
    pub burst_upload_rate: Option<String>,
    pub burst_threshold_download: Option<String>,
    pub burst_threshold_upload: Option<String>,
    pub burst_time_secs: Option<i64>,
    pub session_timeout_secs: Option<i64>,
    pub simultaneous_use: Option<i64>,
    pub radius_group: String,
    pub mikrotik_profile: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PackageSpec {
    pub name: String,
    pub description: Option<String>,
    pub rates: RateLimit,
    pub session_timeout_secs: Option<i32>,
    pub simultaneous_use: Option<i32>,
    pub radius_group: RadiusGroup,
    pub mikrotik_profile: Option<MikrotikProfile>,
}

/// The longest burst time accepted, in seconds.
pub const MAX_BURST_TIME_SECS: i64 = 3600;

impl PackageInput {
    /// Checks every field; all problems are reported together.
    pub fn validate(&self) -> Result<PackageSpec, UsersError> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 64 {
            errors.insert("name".into(), "must be 1 to 64 characters long".into());
        }
        let description = optional_text(&self.description).map(str::to_string);
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 1000)
        {
            errors.insert(
                "description".into(),
                "must be at most 1000 characters long".into(),
            );
        }
        let mut rate = |field: &str, text: &str| match Rate::parse(text) {
            Ok(rate) => Some(rate),
            Err(e) => {
                errors.insert(field.into(), e);
                None
            }
        };
        let download = rate("download_rate", &self.download_rate);
        let upload = rate("upload_rate", &self.upload_rate);
        let burst_fields = [
            ("burst_download_rate", &self.burst_download_rate),
            ("burst_upload_rate", &self.burst_upload_rate),
            ("burst_threshold_download", &self.burst_threshold_download),
            ("burst_threshold_upload", &self.burst_threshold_upload),
        ];
        let burst_rates: Vec<Option<Rate>> = burst_fields
            .iter()
            .map(|(field, value)| optional_text(value).and_then(|text| rate(field, text)))
            .collect();
        let burst_time = match self.burst_time_secs {
            Some(t) if !(1..=MAX_BURST_TIME_SECS).contains(&t) => {
                errors.insert(
                    "burst_time_secs".into(),
                    format!("must be 1 to {MAX_BURST_TIME_SECS} seconds"),
                );
                None
            }
            other => other.map(|t| t as u32),
        };

        let given = burst_fields
            .iter()
            .any(|(_, value)| optional_text(value).is_some())
            || self.burst_time_secs.is_some();
        let mut burst = None;
        if given {
            for (field, value) in &burst_fields {
                if optional_text(value).is_none() {
                    errors.insert(
                        (*field).into(),
                        "is required with the other burst settings".into(),
                    );
                }
            }
            if self.burst_time_secs.is_none() {
                errors.insert(
                    "burst_time_secs".into(),
                    "is required with the other burst settings".into(),
                );
            }
            if let (Some(bd), Some(bu), Some(td), Some(tu), Some(time_secs)) = (
                burst_rates[0],
                burst_rates[1],
                burst_rates[2],
                burst_rates[3],
                burst_time,
            ) {
                burst = Some(Burst {
                    download: bd,
                    upload: bu,
                    threshold_download: td,
                    threshold_upload: tu,
                    time_secs,
                });
            }
        }
        // A burst above the rate, and a threshold not above it: RouterOS
        // bursts only while the average stays below the threshold, so a
        // threshold above max-limit would let the burst run for ever.
        if let (Some(b), Some(download), Some(upload)) = (&burst, download, upload) {
            for (field, value, base, base_field) in [
                ("burst_download_rate", b.download, download, "download_rate"),
                ("burst_upload_rate", b.upload, upload, "upload_rate"),
            ] {
                if value <= base {
                    errors.insert(field.into(), format!("must be above {base_field} ({base})"));
                }
            }
            for (field, value, base, base_field) in [
                (
                    "burst_threshold_download",
                    b.threshold_download,
                    download,
                    "download_rate",
                ),
                (
                    "burst_threshold_upload",
                    b.threshold_upload,
                    upload,
                    "upload_rate",
                ),
            ] {
                if value > base {
                    errors.insert(
                        field.into(),
                        format!("must not be above {base_field} ({base})"),
                    );
                }
            }
        }

        let mut at_least_one = |field: &str, value: Option<i64>| match value {
            Some(v) if v < 1 || v > i64::from(i32::MAX) => {
                errors.insert(field.into(), "must be a whole number from 1".into());
                None
            }
            other => other.map(|v| v as i32),
        };
        let session_timeout_secs = at_least_one("session_timeout_secs", self.session_timeout_secs);
        let simultaneous_use = at_least_one("simultaneous_use", self.simultaneous_use);

        let radius_group = match RadiusGroup::parse(&self.radius_group) {
            Ok(group) => Some(group),
            Err(e) => {
                errors.insert("radius_group".into(), e);
                None
            }
        };
        let mikrotik_profile =
            match optional_text(&self.mikrotik_profile).map(MikrotikProfile::parse) {
                Some(Err(e)) => {
                    errors.insert("mikrotik_profile".into(), e);
                    None
                }
                other => other.and_then(Result::ok),
            };

        match (download, upload, radius_group, errors.is_empty()) {
            (Some(download), Some(upload), Some(radius_group), true) => Ok(PackageSpec {
                name,
                description,
                rates: RateLimit {
                    download,
                    upload,
                    burst,
                },
                session_timeout_secs,
                simultaneous_use,
                radius_group,
                mikrotik_profile,
            }),
            _ => Err(UsersError::Invalid(errors)),
        }
    }
}

/// Sort fields of the package list (`?sort=`).
pub const PACKAGE_SORTS: &[(&str, service_package::Column)] = &[
    ("id", service_package::Column::Id),
    ("name", service_package::Column::Name),
    ("download_rate", service_package::Column::DownloadRateKbps),
    ("upload_rate", service_package::Column::UploadRateKbps),
    ("radius_group", service_package::Column::RadiusGroup),
    ("created_at", service_package::Column::CreatedAt),
];

async fn find_package(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<service_package::Model, UsersError> {
    service_package::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| UsersError::NotFound(format!("no service package with id {id}")))
}

pub async fn get_package(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<service_package::Model, UsersError> {
    find_package(db, id).await
}

/// Name and RADIUS group are unique; both are checked, so that one answer
/// names every taken field.
async fn check_package_unique(
    db: &impl ConnectionTrait,
    spec: &PackageSpec,
    except: Option<i32>,
) -> Result<(), UsersError> {
    let mut errors = FieldErrors::new();
    for (field, column, value) in [
        ("name", service_package::Column::Name, spec.name.as_str()),
        (
            "radius_group",
            service_package::Column::RadiusGroup,
            spec.radius_group.as_str(),
        ),
    ] {
        let mut query = service_package::Entity::find().filter(column.eq(value));
        if let Some(id) = except {
            query = query.filter(service_package::Column::Id.ne(id));
        }
        if query.count(db).await? > 0 {
            let what = if field == "name" {
                "name"
            } else {
                "RADIUS group"
            };
            errors.insert(
                field.into(),
                format!("a package with the {what} \"{value}\" exists already"),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(UsersError::Invalid(errors))
    }
}

/// A unique violation that raced past [`check_package_unique`]: the
/// message names the column on every backend (PostgreSQL's constraint
/// `service_packages_radius_group_key`, MariaDB's key `radius_group`,
/// SQLite's `service_packages.radius_group`).
fn package_taken_as_invalid(err: DbErr) -> UsersError {
    match crate::db::unique_violation(&err) {
        Some(text) if text.contains("radius_group") => UsersError::invalid(
            "radius_group",
            "a package with this RADIUS group exists already",
        ),
        Some(_) => UsersError::invalid("name", "a package with this name exists already"),
        None => UsersError::Db(err),
    }
}

fn package_model(spec: &PackageSpec, now: DateTime<Utc>) -> service_package::ActiveModel {
    let burst = spec.rates.burst;
    service_package::ActiveModel {
        name: Set(spec.name.clone()),
        description: Set(spec.description.clone()),
        download_rate_kbps: Set(spec.rates.download.kbps_i64()),
        upload_rate_kbps: Set(spec.rates.upload.kbps_i64()),
        burst_download_kbps: Set(burst.map(|b| b.download.kbps_i64())),
        burst_upload_kbps: Set(burst.map(|b| b.upload.kbps_i64())),
        burst_threshold_download_kbps: Set(burst.map(|b| b.threshold_download.kbps_i64())),
        burst_threshold_upload_kbps: Set(burst.map(|b| b.threshold_upload.kbps_i64())),
        burst_time_secs: Set(burst.map(|b| b.time_secs as i32)),
        session_timeout_secs: Set(spec.session_timeout_secs),
        simultaneous_use: Set(spec.simultaneous_use),
        radius_group: Set(spec.radius_group.as_str().to_string()),
        mikrotik_profile: Set(spec
            .mikrotik_profile
            .as_ref()
            .map(|p| p.as_str().to_string())),
        updated_at: Set(now.into()),
        ..Default::default()
    }
}

fn package_details(p: &service_package::Model) -> serde_json::Value {
    serde_json::json!({
        "name": p.name,
        "rate_limit": super::domain::mikrotik_rate_limit(p),
        "session_timeout_secs": p.session_timeout_secs,
        "simultaneous_use": p.simultaneous_use,
        "radius_group": p.radius_group,
        "mikrotik_profile": p.mikrotik_profile,
    })
}

#[instrument(skip_all)]
pub async fn create_package(
    db: &DatabaseConnection,
    actor: &Actor,
    input: &PackageInput,
) -> Result<service_package::Model, UsersError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    check_package_unique(&txn, &spec, None).await?;
    let now = Utc::now();
    let mut row = package_model(&spec, now);
    row.status = Set("active".into());
    row.created_at = Set(now.into());
    let package = row.insert(&txn).await.map_err(package_taken_as_invalid)?;
    audit::record(
        &txn,
        actor,
        "service_package.create",
        "service_package",
        Some(package.id.to_string()),
        package_details(&package),
    )
    .await?;
    txn.commit().await?;
    Ok(package)
}

/// Replaces a package's settings. Its users are marked for RADIUS sync:
/// their group, rates and limits come from it.
#[instrument(skip_all, fields(service_package.id = id))]
pub async fn update_package(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
    input: &PackageInput,
) -> Result<service_package::Model, UsersError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    let existing = find_package(&txn, id).await?;
    check_package_unique(&txn, &spec, Some(id)).await?;
    let mut row = package_model(&spec, Utc::now());
    row.id = Set(existing.id);
    let package = row.update(&txn).await.map_err(package_taken_as_invalid)?;
    network_user::Entity::update_many()
        .col_expr(network_user::Column::RadiusSyncPending, Expr::value(true))
        .filter(network_user::Column::PackageId.eq(id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        "service_package.update",
        "service_package",
        Some(id.to_string()),
        package_details(&package),
    )
    .await?;
    txn.commit().await?;
    Ok(package)
}

fn package_in_use(name: &str, users: u64) -> UsersError {
    UsersError::Conflict {
        code: "package_in_use",
        message: format!(
            "package \"{name}\" still has {users} user(s); move them to another package first"
        ),
    }
}

/// Deletes a package; refused (409) while any user is on it.
#[instrument(skip_all, fields(service_package.id = id))]
pub async fn delete_package(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
) -> Result<(), UsersError> {
    let txn = begin_write(db).await?;
    let package = find_package(&txn, id).await?;
    let users = network_user::Entity::find()
        .filter(network_user::Column::PackageId.eq(id))
        .count(&txn)
        .await?;
    if users > 0 {
        return Err(package_in_use(&package.name, users));
    }
    // A user added since the count is caught by the RESTRICT foreign key.
    service_package::Entity::delete_by_id(id)
        .exec(&txn)
        .await
        .map_err(|err| match err.sql_err() {
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => {
                package_in_use(&package.name, 1)
            }
            _ => UsersError::Db(err),
        })?;
    audit::record(
        &txn,
        actor,
        "service_package.delete",
        "service_package",
        Some(id.to_string()),
        package_details(&package),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct PackageFilter {
    /// Part of the name or RADIUS group, any case.
    pub q: Option<String>,
}

pub async fn list_packages(
    db: &impl ConnectionTrait,
    filter: &PackageFilter,
    sort: &Sort<service_package::Column>,
    page: PageRequest,
) -> Result<(Vec<service_package::Model>, u64), UsersError> {
    let mut select = service_package::Entity::find();
    if let Some(q) = optional_text(&filter.q) {
        select = select.filter(
            Condition::any()
                .add(contains(service_package::Column::Name, q))
                .add(contains(service_package::Column::RadiusGroup, q)),
        );
    }
    Ok(fetch_page(db, sort.apply(select, service_package::Column::Id), page).await?)
}

// ---------------------------------------------------------------- users

/// A network user as the caller gives it; the same shape creates and
/// replaces one.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub username: String,
    /// Required on create; on update `None` keeps the current password.
    pub password: Option<Secret>,
    /// pppoe, hotspot or static.
    pub service_type: String,
    pub package_id: Option<i32>,
    /// active (the default), suspended or disabled.
    pub status: Option<String>,
    pub mac_address: Option<String>,
    /// Must be in the future when the user is created.
    pub expires_at: Option<DateTime<Utc>>,
    /// For service_type static: the IPAM subnet the address comes from.
    pub static_subnet_id: Option<i32>,
    /// For service_type static: this address, else the lowest free one.
    pub static_ip: Option<String>,
    pub full_name: Option<String>,
    pub notes: Option<String>,
}

/// Where a static user's address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticTarget {
    pub subnet_id: i32,
    pub ip: Option<IpAddr>,
}

#[derive(Debug, Clone)]
pub struct UserSpec {
    pub username: NetUsername,
    pub password: Option<Secret>,
    pub service_type: ServiceType,
    pub package_id: i32,
    pub status: UserStatus,
    pub mac_address: Option<MacAddress>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Some exactly when the service type is static.
    pub static_target: Option<StaticTarget>,
    pub full_name: Option<String>,
    pub notes: Option<String>,
}

impl UserInput {
    /// Checks every field that needs no database; all problems together.
    /// `creating`: a password is required, and an expiry must lie ahead.
    pub fn validate(&self, creating: bool) -> Result<UserSpec, UsersError> {
        let mut errors = FieldErrors::new();
        let username = match NetUsername::parse(&self.username) {
            Ok(name) => Some(name),
            Err(e) => {
                errors.insert("username".into(), e);
                None
            }
        };
        match &self.password {
            None if creating => {
                errors.insert("password".into(), "is required".into());
            }
            Some(password) => {
                if let Err(e) = check_password(password.expose()) {
                    errors.insert("password".into(), e);
                }
            }
            None => {}
        }
        let service_type = match self.service_type.parse::<ServiceType>() {
            Ok(t) => Some(t),
            Err(e) => {
                errors.insert("service_type".into(), e);
                None
            }
        };
        if self.package_id.is_none() {
            errors.insert("package_id".into(), "is required".into());
        }
        let status = match optional_text(&self.status).map(str::parse::<UserStatus>) {
            None => Some(UserStatus::Active),
            Some(Ok(status)) => Some(status),
            Some(Err(e)) => {
                errors.insert("status".into(), e);
                None
            }
        };
        let mac_address = match optional_text(&self.mac_address).map(MacAddress::parse) {
            Some(Err(e)) => {
                errors.insert("mac_address".into(), e);
                None
            }
            other => other.and_then(Result::ok),
        };
        if creating && self.expires_at.is_some_and(|at| at <= Utc::now()) {
            errors.insert("expires_at".into(), "must be in the future".into());
        }
        let static_ip = match optional_text(&self.static_ip).map(crate::ipam::domain::parse_ip) {
            Some(Err(e)) => {
                errors.insert("static_ip".into(), e);
                None
            }
            other => other.and_then(Result::ok),
        };
        let static_target = match (service_type, self.static_subnet_id) {
            (Some(ServiceType::Static), Some(subnet_id)) => Some(StaticTarget {
                subnet_id,
                ip: static_ip,
            }),
            (Some(ServiceType::Static), None) => {
                errors.insert(
                    "static_subnet_id".into(),
                    "is required for a static user: the subnet its address comes from".into(),
                );
                None
            }
            (Some(_), subnet) => {
                if subnet.is_some() {
                    errors.insert(
                        "static_subnet_id".into(),
                        "is only for service_type static".into(),
                    );
                }
                if optional_text(&self.static_ip).is_some() {
                    errors.insert("static_ip".into(), "is only for service_type static".into());
                }
                None
            }
            (None, _) => None,
        };
        let full_name = optional_text(&self.full_name).map(str::to_string);
        if full_name.as_ref().is_some_and(|n| n.chars().count() > 128) {
            errors.insert(
                "full_name".into(),
                "must be at most 128 characters long".into(),
            );
        }
        let notes = optional_text(&self.notes).map(str::to_string);
        if notes.as_ref().is_some_and(|n| n.chars().count() > 10_000) {
            errors.insert(
                "notes".into(),
                "must be at most 10000 characters long".into(),
            );
        }
        match (username, service_type, self.package_id, status) {
            (Some(username), Some(service_type), Some(package_id), Some(status))
                if errors.is_empty() =>
            {
                Ok(UserSpec {
                    username,
                    password: self.password.clone(),
                    service_type,
                    package_id,
                    status,
                    mac_address,
                    expires_at: self.expires_at,
                    static_target,
                    full_name,
                    notes,
                })
            }
            _ => Err(UsersError::Invalid(errors)),
        }
    }
}

/// Sort fields of the user list (`?sort=`).
pub const USER_SORTS: &[(&str, network_user::Column)] = &[
    ("id", network_user::Column::Id),
    ("username", network_user::Column::Username),
    ("status", network_user::Column::Status),
    ("service_type", network_user::Column::ServiceType),
    ("package_id", network_user::Column::PackageId),
    ("expires_at", network_user::Column::ExpiresAt),
    ("created_at", network_user::Column::CreatedAt),
    ("updated_at", network_user::Column::UpdatedAt),
];

/// The result of a change that may give up a static address.
#[derive(Debug, Clone)]
pub struct UserWrite {
    /// The user as written (for a delete: as it was).
    pub user: network_user::Model,
    /// An allocation the user no longer holds that IPAM failed to release
    /// (the failure is logged); release it in IPAM. None normally.
    pub unreleased_allocation: Option<i64>,
}

async fn find_user(db: &impl ConnectionTrait, id: i32) -> Result<network_user::Model, UsersError> {
    network_user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| UsersError::NotFound(format!("no network user with id {id}")))
}

/// The user; never its password (the model holds only the ciphertext).
pub async fn get_user(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<network_user::Model, UsersError> {
    find_user(db, id).await
}

/// The checks that need the database: the username is free, the package
/// exists. Run before any address is allocated, and again in the writing
/// transaction.
async fn check_user_references(
    db: &impl ConnectionTrait,
    spec: &UserSpec,
    except: Option<i32>,
) -> Result<(), UsersError> {
    let mut errors = FieldErrors::new();
    let mut same_name = network_user::Entity::find()
        .filter(network_user::Column::Username.eq(spec.username.as_str()));
    if let Some(id) = except {
        same_name = same_name.filter(network_user::Column::Id.ne(id));
    }
    if same_name.count(db).await? > 0 {
        errors.insert(
            "username".into(),
            format!("a user named \"{}\" exists already", spec.username.as_str()),
        );
    }
    if service_package::Entity::find_by_id(spec.package_id)
        .one(db)
        .await?
        .is_none()
    {
        errors.insert(
            "package_id".into(),
            format!("there is no service package with id {}", spec.package_id),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(UsersError::Invalid(errors))
    }
}

/// Any unique violation on network_users is its username (its only
/// unique column). On MariaDB that includes names differing only in case.
fn username_taken_as_invalid(err: DbErr) -> UsersError {
    if crate::db::unique_violation(&err).is_some() {
        UsersError::invalid("username", "a user with this name exists already")
    } else {
        UsersError::Db(err)
    }
}

fn user_details(u: &network_user::Model) -> serde_json::Value {
    // Never the password, not even its ciphertext.
    serde_json::json!({
        "username": u.username,
        "service_type": u.service_type,
        "package_id": u.package_id,
        "status": u.status,
        "static_ip": u.static_ip,
        "mac_address": u.mac_address,
        "expires_at": u.expires_at,
    })
}

/// IPAM's answer in the user's terms: its fields renamed, a missing subnet
/// a field error rather than a 404.
fn allocation_error(err: IpamError, target: StaticTarget) -> UsersError {
    match err {
        IpamError::NotFound(_) => UsersError::invalid(
            "static_subnet_id",
            format!("there is no IPAM subnet with id {}", target.subnet_id),
        ),
        IpamError::Invalid(fields) => UsersError::Invalid(
            fields
                .into_iter()
                .map(|(field, message)| {
                    let field = match field.as_str() {
                        "ip_address" => "static_ip".to_string(),
                        "subnet_id" => "static_subnet_id".to_string(),
                        _ => field,
                    };
                    (field, message)
                })
                .collect(),
        ),
        other => UsersError::Ipam(other),
    }
}

/// An allocation this call made, which must be undone if the user's write
/// fails.
struct NewAllocation {
    id: i64,
    ip: String,
    /// False when IPAM returned an allocation this username and MAC held
    /// before (reserved by hand): adopted, and not ours to release.
    created: bool,
}

async fn allocate_static(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    spec: &UserSpec,
    target: StaticTarget,
) -> Result<NewAllocation, UsersError> {
    let allocated = ipam::allocate_ip(
        db,
        settings,
        actor,
        &AllocationInput {
            subnet_id: target.subnet_id,
            mac_address: spec.mac_address.as_ref().map(|m| m.as_str().to_string()),
            username: Some(spec.username.as_str().to_string()),
            ip_address: target.ip.map(|ip| ip.to_string()),
            expires_at: None,
        },
    )
    .await
    .map_err(|e| allocation_error(e, target))?;
    let allocation = NewAllocation {
        id: allocated.allocation.id,
        ip: allocated.allocation.ip_address.clone(),
        created: allocated.created,
    };
    if !allocation.created {
        // Adopting an existing allocation is fine unless another user holds it.
        let holder = network_user::Entity::find()
            .filter(network_user::Column::StaticAllocationId.eq(allocation.id))
            .one(db)
            .await?;
        if let Some(holder) = holder {
            return Err(UsersError::Conflict {
                code: "address_in_use",
                message: format!(
                    "{} is the static address of user \"{}\"",
                    allocation.ip, holder.username
                ),
            });
        }
    }
    Ok(allocation)
}

/// Gives back an allocation: the compensation of a failed write, or the
/// address of a user that is gone or no longer static. Returns the id when
/// IPAM could not release it (logged).
async fn release_static(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    allocation_id: i64,
) -> Option<i64> {
    match ipam::release_ip(db, settings, actor, allocation_id).await {
        Ok(_) | Err(IpamError::NotFound(_)) => None,
        Err(err) => {
            tracing::error!(
                ip_allocation.id = allocation_id,
                error = %err,
                "a static address could not be released; release it in IPAM"
            );
            Some(allocation_id)
        }
    }
}

/// Undoes a new allocation after the user's write failed, and passes the
/// write's error on.
async fn undo_allocation<T>(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    allocation: &Option<NewAllocation>,
    err: UsersError,
) -> Result<T, UsersError> {
    if let Some(allocation) = allocation.as_ref().filter(|a| a.created) {
        release_static(db, settings, actor, allocation.id).await;
    }
    Err(err)
}

/// Creates a user. A static user's address is allocated first, then the
/// user written; if that write fails the allocation is released again.
#[instrument(skip_all)]
pub async fn create_user(
    db: &DatabaseConnection,
    key: &AppKey,
    settings: IpamSettings,
    actor: &Actor,
    input: &UserInput,
) -> Result<network_user::Model, UsersError> {
    let spec = input.validate(true)?;
    let password = spec
        .password
        .as_ref()
        .ok_or_else(|| UsersError::invalid("password", "is required"))?;
    // Refuse what can be refused before an address is taken.
    check_user_references(db, &spec, None).await?;
    let allocation = match spec.static_target {
        Some(target) => Some(allocate_static(db, settings, actor, &spec, target).await?),
        None => None,
    };
    match write_new_user(db, key, actor, &spec, password, &allocation).await {
        Ok(user) => Ok(user),
        Err(err) => undo_allocation(db, settings, actor, &allocation, err).await,
    }
}

async fn write_new_user(
    db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    spec: &UserSpec,
    password: &Secret,
    allocation: &Option<NewAllocation>,
) -> Result<network_user::Model, UsersError> {
    let txn = begin_write(db).await?;
    check_user_references(&txn, spec, None).await?;
    let now = Utc::now();
    let user = network_user::ActiveModel {
        username: Set(spec.username.as_str().to_string()),
        password_encrypted: Set(key.encrypt(password.expose())),
        service_type: Set(spec.service_type.as_str().into()),
        package_id: Set(Some(spec.package_id)),
        status: Set(spec.status.as_str().into()),
        static_ip: Set(allocation.as_ref().map(|a| a.ip.clone())),
        static_allocation_id: Set(allocation.as_ref().map(|a| a.id)),
        mac_address: Set(spec.mac_address.as_ref().map(|m| m.as_str().to_string())),
        expires_at: Set(spec.expires_at.map(Into::into)),
        full_name: Set(spec.full_name.clone()),
        notes: Set(spec.notes.clone()),
        radius_sync_pending: Set(true),
        radius_synced_at: Set(None),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(username_taken_as_invalid)?;
    audit::record(
        &txn,
        actor,
        "network_user.create",
        "network_user",
        Some(user.id.to_string()),
        user_details(&user),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// What an update does with the static address.
enum StaticPlan {
    /// Keep what the user has (possibly nothing).
    Keep,
    /// Take a new address; give up the old allocation, if any, afterwards.
    Replace { old: Option<i64> },
    /// No longer static: give up this allocation afterwards.
    Drop { old: i64 },
}

async fn plan_static(
    db: &DatabaseConnection,
    existing: &network_user::Model,
    target: Option<StaticTarget>,
) -> Result<StaticPlan, UsersError> {
    // The current allocation, if IPAM still has it active (it may have been
    // released in IPAM directly).
    let current = match existing.static_allocation_id {
        Some(id) => match ipam::get_allocation(db, id).await {
            Ok(a) if a.active == Some(true) => Some(a),
            Ok(_) | Err(IpamError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    Ok(match (target, current) {
        (None, None) => StaticPlan::Keep,
        (None, Some(current)) => StaticPlan::Drop { old: current.id },
        (Some(_), None) => StaticPlan::Replace {
            old: existing.static_allocation_id,
        },
        (Some(target), Some(current)) if target.subnet_id == current.subnet_id => {
            let same_ip = target
                .ip
                .is_none_or(|ip| current.ip_address.parse::<IpAddr>().ok() == Some(ip));
            if !same_ip {
                // IPAM keeps one address per subscriber and subnet, so a new
                // one cannot be taken before the old one is given back, and
                // giving it back first could lose it. Not done in one step.
                return Err(UsersError::invalid(
                    "static_ip",
                    format!(
                        "the user holds {} in this subnet; to change it, make the user non-static first, or choose another subnet",
                        current.ip_address
                    ),
                ));
            }
            StaticPlan::Keep
        }
        (Some(_), Some(current)) => StaticPlan::Replace {
            old: Some(current.id),
        },
    })
}

/// Replaces a user's settings. The password changes only when one is
/// given. A new static address is taken before the write (and released if
/// the write fails); an address given up is released after it.
#[instrument(skip_all, fields(network_user.id = id))]
pub async fn update_user(
    db: &DatabaseConnection,
    key: &AppKey,
    routers: &RouterPool,
    settings: IpamSettings,
    actor: &Actor,
    id: i32,
    input: &UserInput,
) -> Result<UserWrite, UsersError> {
    let spec = input.validate(false)?;
    let existing = find_user(db, id).await?;
    check_user_references(db, &spec, Some(id)).await?;
    let plan = plan_static(db, &existing, spec.static_target).await?;
    // The user's PPP secrets on its routers (PPPoE users linked to it)
    // follow it. Routers first: if one cannot be reached nothing changes;
    // if anything after fails, the secrets are set back.
    let secrets = push_router_secrets(db, routers, id, &spec).await?;
    let allocation = match (&plan, spec.static_target) {
        (StaticPlan::Replace { .. }, Some(target)) => {
            match allocate_static(db, settings, actor, &spec, target).await {
                Ok(allocation) => Some(allocation),
                Err(err) => {
                    mikrotik::undo_network_user_secrets(routers, secrets).await;
                    return Err(err);
                }
            }
        }
        _ => None,
    };
    let written = write_user_update(db, key, actor, id, &spec, &plan, &allocation, &secrets);
    let user = match written.await {
        Ok(user) => user,
        Err(err) => {
            mikrotik::undo_network_user_secrets(routers, secrets).await;
            return undo_allocation(db, settings, actor, &allocation, err).await;
        }
    };
    let to_release = match plan {
        StaticPlan::Keep => None,
        StaticPlan::Replace { old } => old,
        StaticPlan::Drop { old } => Some(old),
    };
    let unreleased_allocation = match to_release {
        Some(old) => release_static(db, settings, actor, old).await,
        None => None,
    };
    Ok(UserWrite {
        user,
        unreleased_allocation,
    })
}

/// What the user's PPP secrets become: its name, its password when a new
/// one is given, its package's MikroTik profile, and `disabled=yes` unless
/// it is an active PPPoE user.
async fn push_router_secrets(
    db: &DatabaseConnection,
    routers: &RouterPool,
    id: i32,
    spec: &UserSpec,
) -> Result<PushedSecrets, UsersError> {
    let package = find_package(db, spec.package_id).await?;
    let desired = mikrotik::NetworkUserSecret {
        username: spec.username.as_str().to_string(),
        password: spec.password.clone(),
        profile: package.mikrotik_profile,
        disabled: spec.status != UserStatus::Active || spec.service_type != ServiceType::Pppoe,
    };
    Ok(mikrotik::push_network_user_secrets(db, routers, id, Some(&desired)).await?)
}

#[allow(clippy::too_many_arguments)]
async fn write_user_update(
    db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    id: i32,
    spec: &UserSpec,
    plan: &StaticPlan,
    allocation: &Option<NewAllocation>,
    secrets: &PushedSecrets,
) -> Result<network_user::Model, UsersError> {
    let txn = begin_write(db).await?;
    let existing = find_user(&txn, id).await?;
    check_user_references(&txn, spec, Some(id)).await?;
    let mut row: network_user::ActiveModel = existing.clone().into();
    row.username = Set(spec.username.as_str().to_string());
    if let Some(password) = &spec.password {
        row.password_encrypted = Set(key.encrypt(password.expose()));
    }
    row.service_type = Set(spec.service_type.as_str().into());
    row.package_id = Set(Some(spec.package_id));
    row.status = Set(spec.status.as_str().into());
    row.mac_address = Set(spec.mac_address.as_ref().map(|m| m.as_str().to_string()));
    row.expires_at = Set(spec.expires_at.map(Into::into));
    row.full_name = Set(spec.full_name.clone());
    row.notes = Set(spec.notes.clone());
    match plan {
        StaticPlan::Keep if spec.static_target.is_some() => {}
        StaticPlan::Keep | StaticPlan::Drop { .. } => {
            row.static_ip = Set(None);
            row.static_allocation_id = Set(None);
        }
        StaticPlan::Replace { .. } => {
            row.static_ip = Set(allocation.as_ref().map(|a| a.ip.clone()));
            row.static_allocation_id = Set(allocation.as_ref().map(|a| a.id));
        }
    }
    row.radius_sync_pending = Set(true);
    row.updated_at = Set(Utc::now().into());
    let user = row.update(&txn).await.map_err(username_taken_as_invalid)?;
    mikrotik::record_network_user_secrets(&txn, secrets).await?;
    let mut details = user_details(&user);
    details["password_changed"] = serde_json::Value::Bool(spec.password.is_some());
    audit::record(
        &txn,
        actor,
        "network_user.update",
        "network_user",
        Some(id.to_string()),
        details,
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Deletes a user, then releases its static address. Its RADIUS rows are
/// removed by the next sync (which removes rows of users that are gone).
/// A user whose PPP secret ispd keeps on a router is refused (409): it needs
/// [`delete_user_with_router_secrets`], which can log in to the router.
#[instrument(skip_all, fields(network_user.id = id))]
pub async fn delete_user(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    id: i32,
) -> Result<UserWrite, UsersError> {
    let linked = crate::mikrotik::entities::mikrotik_pppoe_user::Entity::find()
        .filter(crate::mikrotik::entities::mikrotik_pppoe_user::Column::NetworkUserId.eq(id))
        .count(db)
        .await?;
    if linked > 0 {
        return Err(UsersError::Conflict {
            code: "user_has_router_secrets",
            message: format!(
                "this user has {linked} PPP secret(s) on MikroTik routers; delete its PPPoE users first"
            ),
        });
    }
    delete_user_rows(db, settings, actor, id, &PushedSecrets::default()).await
}

/// Deletes a user and removes its PPP secrets from its routers: the
/// routers first, then the rows (the user and its PPPoE users) in one
/// transaction; if that fails, the secrets are added back.
#[instrument(skip_all, fields(network_user.id = id))]
pub async fn delete_user_with_router_secrets(
    db: &DatabaseConnection,
    routers: &RouterPool,
    settings: IpamSettings,
    actor: &Actor,
    id: i32,
) -> Result<UserWrite, UsersError> {
    find_user(db, id).await?;
    let secrets = mikrotik::push_network_user_secrets(db, routers, id, None).await?;
    match delete_user_rows(db, settings, actor, id, &secrets).await {
        Ok(written) => Ok(written),
        Err(err) => {
            mikrotik::undo_network_user_secrets(routers, secrets).await;
            Err(err)
        }
    }
}

async fn delete_user_rows(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    id: i32,
    secrets: &PushedSecrets,
) -> Result<UserWrite, UsersError> {
    let txn = begin_write(db).await?;
    let user = find_user(&txn, id).await?;
    mikrotik::record_network_user_secrets(&txn, secrets).await?;
    network_user::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        actor,
        "network_user.delete",
        "network_user",
        Some(id.to_string()),
        user_details(&user),
    )
    .await?;
    txn.commit().await?;
    let unreleased_allocation = match user.static_allocation_id {
        Some(allocation_id) => release_static(db, settings, actor, allocation_id).await,
        None => None,
    };
    Ok(UserWrite {
        user,
        unreleased_allocation,
    })
}

/// The user's password in clear, for staff who must read it out. Every
/// call is audited (without the password).
#[instrument(skip_all, fields(network_user.id = id))]
pub async fn reveal_password(
    db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    id: i32,
) -> Result<Secret, UsersError> {
    let user = find_user(db, id).await?;
    let password = key.decrypt(&user.password_encrypted)?;
    // Recorded before the password is handed out: no reveal goes unaudited.
    audit::record(
        db,
        actor,
        "network_user.reveal_password",
        "network_user",
        Some(id.to_string()),
        serde_json::json!({ "username": user.username }),
    )
    .await?;
    Ok(password)
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Part of the username, full name, MAC address or static IP, any case.
    pub q: Option<String>,
    pub status: Option<UserStatus>,
    pub service_type: Option<ServiceType>,
    pub package_id: Option<i32>,
}

pub async fn list_users(
    db: &impl ConnectionTrait,
    filter: &UserFilter,
    sort: &Sort<network_user::Column>,
    page: PageRequest,
) -> Result<(Vec<network_user::Model>, u64), UsersError> {
    let mut select = network_user::Entity::find();
    if let Some(q) = optional_text(&filter.q) {
        select = select.filter(
            Condition::any()
                .add(contains(network_user::Column::Username, q))
                .add(contains(network_user::Column::FullName, q))
                .add(contains(network_user::Column::MacAddress, q))
                .add(contains(network_user::Column::StaticIp, q)),
        );
    }
    if let Some(status) = filter.status {
        select = select.filter(network_user::Column::Status.eq(status.as_str()));
    }
    if let Some(service_type) = filter.service_type {
        select = select.filter(network_user::Column::ServiceType.eq(service_type.as_str()));
    }
    if let Some(package_id) = filter.package_id {
        select = select.filter(network_user::Column::PackageId.eq(package_id));
    }
    Ok(fetch_page(db, sort.apply(select, network_user::Column::Id), page).await?)
}
