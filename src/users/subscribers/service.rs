//! Creating, changing and deleting network users. Their input is read in
//! [`super::input`], their static address handled in [`super::addresses`],
//! and the list in [`super::listing`].

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, Set,
};
use tracing::instrument;

use super::addresses::{
    allocate_static, keeping_static_subnet, plan_static, release_static, undo_allocation,
    NewAllocation, StaticPlan,
};
use crate::audit::{self, Actor};
use crate::crypto::{AppKey, Secret};
use crate::db::{begin_write, UniqueKey};
use crate::error::FieldErrors;
use crate::ipam::service::IpamSettings;
use crate::mikrotik::pool::RouterPool;
use crate::mikrotik::service::{self as mikrotik, PushedSecrets};
use crate::users::domain::{ServiceType, UserStatus};
use crate::users::entities::{network_user, service_package};
use crate::users::packages::service::find_package;
use crate::users::service::UsersError;

pub use super::input::*;
pub use super::listing::*;

/// The result of a change that may give up a static address.
#[derive(Debug, Clone)]
pub struct UserWrite {
    /// The user as written (for a delete: as it was).
    pub user: network_user::Model,
    /// An allocation the user no longer holds that IPAM failed to release
    /// (the failure is logged); release it in IPAM. None normally.
    pub unreleased_allocation: Option<i64>,
}

pub(super) async fn find_user(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<network_user::Model, UsersError> {
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

/// The only unique key of `network_users`, its username. On MariaDB it
/// also holds names differing only in case.
const USERNAME_KEY: UniqueKey = UniqueKey::column("network_users", &["username"]);

fn username_taken_as_invalid(err: DbErr) -> UsersError {
    if USERNAME_KEY.violated_by(&err) {
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
        cycle_anchor_day: Set(spec.cycle_anchor_day.map(|d| d.day() as i32)),
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
    row.cycle_anchor_day = Set(spec.cycle_anchor_day.map(|d| d.day() as i32));
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
