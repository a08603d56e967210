//! Creating, changing, listing and deleting network users.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
};
use tracing::instrument;

use crate::audit::{self, Actor};
use crate::crypto::{AppKey, Secret};
use crate::db::begin_write;
use crate::error::FieldErrors;
use crate::ipam::service::{self as ipam, AllocationInput, IpamError, IpamSettings};
use crate::mikrotik::pool::RouterPool;
use crate::mikrotik::service::{self as mikrotik, PushedSecrets};
use crate::query::{contains, fetch_page, filters, PageRequest, Sort};
use crate::text::optional_text;
use crate::users::domain::{check_password, MacAddress, NetUsername, ServiceType, UserStatus};
use crate::users::entities::{network_user, service_package};
use crate::users::packages::service::find_package;
use crate::users::service::UsersError;

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

/// A static user whose input names no subnet keeps the address it has:
/// the input, with the subnet of the user's current allocation filled in.
async fn keeping_static_subnet(
    db: &DatabaseConnection,
    id: i32,
    input: &UserInput,
) -> Result<UserInput, UsersError> {
    let mut input = input.clone();
    if input.static_subnet_id.is_none() && input.service_type.trim() == "static" {
        if let Some(allocation_id) = find_user(db, id).await?.static_allocation_id {
            if let Ok(allocation) = ipam::get_allocation(db, allocation_id).await {
                input.static_subnet_id = Some(allocation.subnet_id);
            }
        }
    }
    Ok(input)
}

/// The field messages [`update_user`] would answer `input` with before
/// writing anything (none when it reads well), for a form that has
/// problems of its own to show with them.
pub async fn update_problems(
    db: &DatabaseConnection,
    id: i32,
    input: &UserInput,
) -> Result<FieldErrors, UsersError> {
    match keeping_static_subnet(db, id, input).await?.validate(false) {
        Err(UsersError::Invalid(fields)) => Ok(fields),
        _ => Ok(FieldErrors::new()),
    }
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
    let spec = keeping_static_subnet(db, id, input)
        .await?
        .validate(false)?;
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

impl UserFilter {
    /// Reads the user-list filters (of the pages and the API alike);
    /// problems go into `errors` by parameter.
    pub fn parse(
        q: Option<&str>,
        status: Option<&str>,
        service_type: Option<&str>,
        package_id: Option<&str>,
        errors: &mut FieldErrors,
    ) -> UserFilter {
        let status = filters::parsed::<UserStatus>("status", status, errors);
        let service_type = filters::parsed::<ServiceType>("service_type", service_type, errors);
        let package_id = package_id
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .and_then(|s| match s.parse::<i32>() {
                Ok(id) if id > 0 => Some(id),
                _ => {
                    errors.insert(
                        "package_id".into(),
                        "must be a positive whole number".into(),
                    );
                    None
                }
            });
        UserFilter {
            q: filters::text("q", q, 100, errors),
            status,
            service_type,
            package_id,
        }
    }
}

/// The ids of the network users among these usernames, by username.
pub async fn ids_by_username(
    db: &impl ConnectionTrait,
    usernames: Vec<String>,
) -> Result<HashMap<String, i32>, UsersError> {
    if usernames.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<(i32, String)> = network_user::Entity::find()
        .select_only()
        .column(network_user::Column::Id)
        .column(network_user::Column::Username)
        .filter(network_user::Column::Username.is_in(usernames))
        .into_tuple()
        .all(db)
        .await?;
    Ok(found.into_iter().map(|(id, name)| (name, id)).collect())
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
