//! PPPoE secrets: what the caller gives, checked, written to the router
//! first and then to the database (undone on the router if the database
//! write fails).

use std::net::Ipv4Addr;

use chrono::Utc;
use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use tracing::instrument;

use crate::audit::{self, Actor};
use crate::crypto::{AppKey, Secret};
use crate::db::{begin_write, UniqueKey};
use crate::error::FieldErrors;
use crate::ipam::domain::NetUsername;
use crate::mikrotik::entities::{mikrotik_pppoe_user, mikrotik_router};
use crate::mikrotik::link::RouterLink;
use crate::mikrotik::pool::RouterPool;
use crate::mikrotik::routeros::Row;
use crate::mikrotik::routers::service::find_router;
use crate::mikrotik::service::MikrotikError;
use crate::query::{contains, fetch_page, filters, PageRequest, Sort};
use crate::text::optional_text;
use crate::users::entities::{network_user, service_package};

/// The services a PPP secret may be for.
pub const PPP_SERVICES: &[&str] = &["any", "pppoe", "pptp", "l2tp", "ovpn", "sstp"];

/// A PPPoE user's row status: the secret is enabled, or disabled
/// (`disabled=yes` on the router).
pub const PPPOE_STATUS_ACTIVE: &str = "active";
pub const PPPOE_STATUS_DISABLED: &str = "disabled";
/// Every PPPoE user status, as the list filters offer them.
pub const PPPOE_STATUSES: [&str; 2] = [PPPOE_STATUS_ACTIVE, PPPOE_STATUS_DISABLED];

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
    pub(crate) fn from_row(row: &Row) -> SecretValues {
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
    pub(crate) fn args(&self, replacing: Option<&SecretValues>) -> Vec<(&'static str, String)> {
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

/// The PPPoE user list's order from `?sort=` ([`PPPOE_SORTS`]), by user
/// name when none is asked for.
pub fn pppoe_sort(
    raw: Option<&str>,
    errors: &mut FieldErrors,
) -> Sort<mikrotik_pppoe_user::Column> {
    Sort::parse(raw, PPPOE_SORTS, "username", errors)
}

#[derive(Debug, Default, Clone)]
pub struct PppoeFilter {
    pub router_id: Option<i32>,
    /// Part of the username, profile or addresses, any case.
    pub q: Option<String>,
    pub status: Option<String>,
    pub network_user_id: Option<i32>,
}

impl PppoeFilter {
    /// The filter of a list request (each argument the raw query value): a
    /// bad value is a message under its field in `errors`.
    pub fn parse(
        router_id: Option<&str>,
        network_user_id: Option<&str>,
        q: Option<&str>,
        status: Option<&str>,
        errors: &mut FieldErrors,
    ) -> Self {
        let status = filters::text("status", status, 16, errors);
        if let Some(s) = &status {
            if !PPPOE_STATUSES.contains(&s.as_str()) {
                errors.insert("status".into(), "must be active or disabled".into());
            }
        }
        Self {
            router_id: id_filter("router_id", router_id, errors),
            network_user_id: id_filter("network_user_id", network_user_id, errors),
            q: filters::text("q", q, 200, errors),
            status,
        }
    }
}

/// A positive id, or a message under `field`.
fn id_filter(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<i32> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    match text.parse::<i32>() {
        Ok(id) if id > 0 => Some(id),
        _ => {
            errors.insert(field.into(), "must be a positive whole number".into());
            None
        }
    }
}

/// The id of the network user named `name`, if there is one.
pub async fn network_user_id_named(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<i32>, MikrotikError> {
    Ok(network_user::Entity::find()
        .filter(network_user::Column::Username.eq(name))
        .one(db)
        .await?
        .map(|u| u.id))
}

/// The names of the network users with these ids (the PPPoE users linked
/// to them), by id.
pub async fn network_user_names(
    db: &impl ConnectionTrait,
    ids: impl Iterator<Item = i32>,
) -> Result<HashMap<i32, String>, MikrotikError> {
    let ids: Vec<i32> = ids.collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(network_user::Entity::find()
        .filter(network_user::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
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
