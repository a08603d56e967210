//! PPPoE secrets: what the caller gives, checked ([`super::input`]),
//! written to the router first and then to the database (undone on the
//! router if the database write fails), and listed ([`super::listing`]).

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, Set,
};
use tracing::instrument;

use super::input::PppoeSpec;
use crate::audit::{self, Actor};
use crate::crypto::AppKey;
use crate::db::{begin_write, UniqueKey};
use crate::mikrotik::entities::{mikrotik_pppoe_user, mikrotik_router};
use crate::mikrotik::link::RouterLink;
use crate::mikrotik::pool::RouterPool;
use crate::mikrotik::routers::service::find_router;
use crate::mikrotik::service::MikrotikError;

pub use super::input::*;
pub use super::listing::*;

/// The services a PPP secret may be for.
pub const PPP_SERVICES: &[&str] = &["any", "pppoe", "pptp", "l2tp", "ovpn", "sstp"];

/// A PPPoE user's row status: the secret is enabled, or disabled
/// (`disabled=yes` on the router).
pub const PPPOE_STATUS_ACTIVE: &str = "active";
pub const PPPOE_STATUS_DISABLED: &str = "disabled";
/// Every PPPoE user status, as the list filters offer them.
pub const PPPOE_STATUSES: [&str; 2] = [PPPOE_STATUS_ACTIVE, PPPOE_STATUS_DISABLED];

/// The unique key on a router's PPPoE user names: a race that
/// [`check_pppoe_name`] lost ends on it.
const PPPOE_NAME_KEY: UniqueKey = UniqueKey::index(
    "uq_mikrotik_pppoe_users_router_username",
    "mikrotik_pppoe_users",
    &["router_id", "username"],
);

fn pppoe_taken(name: &str, router: &str) -> MikrotikError {
    MikrotikError::Conflict {
        code: "pppoe_user_taken",
        message: format!("a PPPoE user named \"{name}\" exists already on router {router}"),
    }
}

/// The router's refusal in the caller's terms: a duplicate name is a 409
/// with the router's own message; a value the router does not accept
/// (category 1: no such profile, service...) a 422 on that field.
pub(crate) fn secret_refused(err: MikrotikError) -> MikrotikError {
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
pub(crate) fn fill_row(
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
            if PPPOE_NAME_KEY.violated_by(&db_err) {
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
pub(crate) async fn locate_secret(
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
