//! The RADIUS sync: writes service packages and network users into
//! FreeRADIUS's tables, on the RADIUS connection (`state.db.radius`).
//!
//! **What is written.**
//! - A package, as its `radius_group`: `radgroupreply` gets
//!   `Mikrotik-Rate-Limit := <rx/tx ...>`, `Session-Timeout := N` (when set)
//!   and `Acct-Interim-Interval := 300`; `radgroupcheck` gets
//!   `Simultaneous-Use := N` (when set).
//! - A user: `radcheck` gets `Cleartext-Password := ...` (decrypted with
//!   the APP_KEY), `Expiration := "Mon DD YYYY HH:MM:SS"` (when the user
//!   has an expiry), and `Auth-Type := Reject` while the user is not active
//!   or has expired; `radreply` gets `Framed-IP-Address := <ip>` for a static
//!   user; `radusergroup` gets the package's group with priority 1.
//!
//! **Exact and idempotent.** A sync compares the rows FreeRADIUS has with
//! the rows the model gives ([`user_rows`], [`package_rows`]). When they
//! are the same nothing is written ([`Outcome::Unchanged`]); otherwise the
//! user's (or group's) rows are deleted and the desired ones inserted, in
//! one transaction on the RADIUS DB, so FreeRADIUS never sees half a user
//! and no stale attribute survives. Running a sync twice gives the same
//! rows.
//!
//! **Ordering with the main DB.** The two databases cannot share a
//! transaction. Every change to a user or a package sets
//! `network_users.radius_sync_pending` in the main DB, in the same
//! transaction as the change. The sync then
//! 1. writes the RADIUS rows (one RADIUS transaction), and only after that
//!    commits
//! 2. clears `radius_sync_pending` and sets `radius_synced_at` in the main
//!    DB, and only if neither the user nor its package changed since they
//!    were read (the update is conditional on both `updated_at` values), so
//!    a change made while the sync ran keeps its flag.
//!
//! A failure between 1 and 2 leaves the flag set: the next `radius
//! sync-users` (or a retry) repeats the sync, which is idempotent. Nothing
//! is lost silently; at worst a sync is repeated.
//!
//! **Expiration** is written as FreeRADIUS's `rlm_expiration` parses it,
//! e.g. `Jan 05 2027 13:00:00`, from the UTC time; FreeRADIUS reads it in
//! its host's local time zone, so run FreeRADIUS in UTC. Independently of
//! that module, a user already expired at sync time gets `Auth-Type :=
//! Reject`.
//!
//! **Secrets.** The cleartext password exists only in memory, in the rows
//! written to `radcheck` (FreeRADIUS needs it for CHAP and MS-CHAP). It is
//! never logged: spans skip all arguments, and [`AttrRow`]'s `Debug` prints
//! a password's value as `[redacted]`.
//!
//! The queries use only the `username`/`groupname`, `attribute`, `op` and
//! `value` columns (never the `id`, which is `serial` on PostgreSQL and
//! `int unsigned` on MySQL), so they work the same on all three backends.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use tracing::instrument;

use super::entities::{radcheck, radgroupcheck, radgroupreply, radreply, radusergroup};
use crate::crypto::{AppKey, CryptoError, Secret};
use crate::db::begin_write;
use crate::error::AppError;
use crate::users::domain::mikrotik_rate_limit;
use crate::users::entities::{network_user, service_package};

/// `Acct-Interim-Interval` sent to every user, in seconds.
pub const ACCT_INTERIM_INTERVAL_SECS: u32 = 300;

/// Users read, compared and written per batch by [`sync_all`].
pub const BATCH_SIZE: u64 = 500;

/// Rows per multi-row `INSERT`: well under every backend's parameter limit.
const INSERT_CHUNK: usize = 1000;

/// Usernames per `IN (...)` list when deleting orphans.
const DELETE_CHUNK: usize = 500;

pub const CLEARTEXT_PASSWORD: &str = "Cleartext-Password";

#[derive(Debug, thiserror::Error)]
pub enum RadiusError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A stored password does not decrypt (wrong APP_KEY?).
    #[error("the password of user \"{username}\" cannot be decrypted: {source}")]
    Crypto {
        username: String,
        #[source]
        source: CryptoError,
    },
    #[error("{0}")]
    NotFound(String),
}

impl From<RadiusError> for AppError {
    fn from(err: RadiusError) -> Self {
        match err {
            RadiusError::Db(db) => db.into(),
            RadiusError::NotFound(what) => AppError::NotFound(what),
            err @ RadiusError::Crypto { .. } => AppError::Internal(err.into()),
        }
    }
}

/// One `attribute op value` row of radcheck, radreply, radgroupcheck or
/// radgroupreply. `value` is the stored form ([`super::value::stored`]), as
/// the column holds it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttrRow {
    pub attribute: String,
    pub op: String,
    pub value: String,
}

impl AttrRow {
    /// A row whose value FreeRADIUS reads as exactly `value`, whatever
    /// quotes, backticks or `%{` it holds.
    pub fn new(attribute: &str, op: &str, value: impl AsRef<str>) -> Self {
        Self {
            attribute: attribute.to_string(),
            op: op.to_string(),
            value: super::value::stored(value.as_ref()).into_owned(),
        }
    }

    /// `:=`: set, replacing any value FreeRADIUS already has.
    pub fn set(attribute: &str, value: impl AsRef<str>) -> Self {
        Self::new(attribute, ":=", value)
    }

    pub fn is_password(&self) -> bool {
        self.attribute.eq_ignore_ascii_case(CLEARTEXT_PASSWORD)
            || self.attribute.to_ascii_lowercase().ends_with("-password")
    }
}

impl fmt::Debug for AttrRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.is_password() {
            "[redacted]"
        } else {
            self.value.as_str()
        };
        write!(f, "{} {} {:?}", self.attribute, self.op, value)
    }
}

/// A user's rows in radcheck, radreply and radusergroup, sorted so that two
/// sets compare equal whatever order the database returned them in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRows {
    pub check: Vec<AttrRow>,
    pub reply: Vec<AttrRow>,
    /// (groupname, priority)
    pub groups: Vec<(String, i32)>,
}

impl UserRows {
    fn sorted(mut self) -> Self {
        self.check.sort();
        self.reply.sort();
        self.groups.sort();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.check.is_empty() && self.reply.is_empty() && self.groups.is_empty()
    }
}

/// A group's rows in radgroupcheck and radgroupreply, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRows {
    pub check: Vec<AttrRow>,
    pub reply: Vec<AttrRow>,
}

impl GroupRows {
    fn sorted(mut self) -> Self {
        self.check.sort();
        self.reply.sort();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.check.is_empty() && self.reply.is_empty()
    }
}

/// What a sync did (or, in a dry run, would do) to one user or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It had no rows.
    Created,
    /// It had rows, not the right ones.
    Updated,
    /// Its rows were already right; nothing written.
    Unchanged,
}

impl Outcome {
    fn of(current_empty: bool, same: bool) -> Self {
        match (same, current_empty) {
            (true, _) => Outcome::Unchanged,
            (false, true) => Outcome::Created,
            (false, false) => Outcome::Updated,
        }
    }
}

/// Counts for packages (their groups).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackageCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What [`sync_all`] did, or with `dry_run` would do. `created`,
/// `updated`, `removed` and `unchanged` count users (usernames).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub created: u64,
    pub updated: u64,
    /// Usernames with RADIUS rows that are no longer network users.
    pub removed: u64,
    pub unchanged: u64,
    pub packages: PackageCounts,
    /// Users not synced because their password does not decrypt; their
    /// rows are left as they were and their flag stays set.
    pub failed: Vec<String>,
    pub dry_run: bool,
}

impl SyncReport {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }

    /// Users created, updated or removed: the drift a dry run reports.
    pub fn drift(&self) -> u64 {
        self.created + self.updated + self.removed
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would be " } else { "" };
        write!(
            f,
            "users: {} {verb}created, {} {verb}updated, {} {verb}removed, {} unchanged; \
             packages: {} {verb}created, {} {verb}updated, {} unchanged",
            self.created,
            self.updated,
            self.removed,
            self.unchanged,
            self.packages.created,
            self.packages.updated,
            self.packages.unchanged
        )?;
        if !self.failed.is_empty() {
            write!(f, "; failed: {}", self.failed.join(", "))?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------ the model

/// The `Expiration` value, in the form FreeRADIUS's rlm_expiration parses:
/// `Jan 05 2027 13:00:00`.
pub fn expiration_value<Tz: chrono::TimeZone>(at: DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    at.with_timezone(&Utc)
        .format("%b %d %Y %H:%M:%S")
        .to_string()
}

/// The rows a package's group must have.
pub fn package_rows(package: &service_package::Model) -> GroupRows {
    let mut reply = Vec::new();
    let rate = mikrotik_rate_limit(package);
    if !rate.is_empty() {
        reply.push(AttrRow::set("Mikrotik-Rate-Limit", rate));
    }
    if let Some(timeout) = package.session_timeout_secs.filter(|t| *t > 0) {
        reply.push(AttrRow::set("Session-Timeout", timeout.to_string()));
    }
    reply.push(AttrRow::set(
        "Acct-Interim-Interval",
        ACCT_INTERIM_INTERVAL_SECS.to_string(),
    ));
    let mut check = Vec::new();
    if let Some(limit) = package.simultaneous_use.filter(|n| *n > 0) {
        check.push(AttrRow::set("Simultaneous-Use", limit.to_string()));
    }
    GroupRows { check, reply }.sorted()
}

/// Whether FreeRADIUS must refuse the user: not active, or expired at `now`.
pub fn is_rejected(user: &network_user::Model, now: DateTime<Utc>) -> bool {
    user.status != "active" || user.expires_at.is_some_and(|at| at <= now)
}

/// The rows a user must have. A user without a package gets no group and
/// is rejected: it has no service to receive.
pub fn user_rows(
    user: &network_user::Model,
    password: &Secret,
    package: Option<&service_package::Model>,
    now: DateTime<Utc>,
) -> UserRows {
    let mut check = vec![AttrRow::set(CLEARTEXT_PASSWORD, password.expose())];
    if let Some(at) = user.expires_at {
        check.push(AttrRow::set("Expiration", expiration_value(at)));
    }
    if is_rejected(user, now) || package.is_none() {
        check.push(AttrRow::set("Auth-Type", "Reject"));
    }
    let mut reply = Vec::new();
    if user.service_type == "static" {
        if let Some(ip) = user.static_ip.as_deref().filter(|ip| !ip.is_empty()) {
            reply.push(AttrRow::set("Framed-IP-Address", ip));
        }
    }
    let groups = package
        .map(|p| vec![(p.radius_group.clone(), 1)])
        .unwrap_or_default();
    UserRows {
        check,
        reply,
        groups,
    }
    .sorted()
}

fn decrypt(key: &AppKey, user: &network_user::Model) -> Result<Secret, RadiusError> {
    key.decrypt(&user.password_encrypted)
        .map_err(|source| RadiusError::Crypto {
            username: user.username.clone(),
            source,
        })
}

// ------------------------------------------------------- reading RADIUS

type Quad = (String, String, String, String);

fn quads_by_name(rows: Vec<Quad>) -> HashMap<String, Vec<AttrRow>> {
    let mut map: HashMap<String, Vec<AttrRow>> = HashMap::new();
    for (name, attribute, op, value) in rows {
        map.entry(name).or_default().push(AttrRow {
            attribute,
            op,
            value,
        });
    }
    map
}

/// The rows FreeRADIUS has for these users.
async fn current_users_rows(
    db: &impl ConnectionTrait,
    usernames: &[String],
) -> Result<HashMap<String, UserRows>, DbErr> {
    let mut out: HashMap<String, UserRows> = HashMap::new();
    if usernames.is_empty() {
        return Ok(out);
    }
    let check: Vec<Quad> = radcheck::Entity::find()
        .select_only()
        .columns([
            radcheck::Column::Username,
            radcheck::Column::Attribute,
            radcheck::Column::Op,
            radcheck::Column::Value,
        ])
        .filter(radcheck::Column::Username.is_in(usernames.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    let reply: Vec<Quad> = radreply::Entity::find()
        .select_only()
        .columns([
            radreply::Column::Username,
            radreply::Column::Attribute,
            radreply::Column::Op,
            radreply::Column::Value,
        ])
        .filter(radreply::Column::Username.is_in(usernames.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    let groups: Vec<(String, String, i32)> = radusergroup::Entity::find()
        .select_only()
        .columns([
            radusergroup::Column::Username,
            radusergroup::Column::Groupname,
            radusergroup::Column::Priority,
        ])
        .filter(radusergroup::Column::Username.is_in(usernames.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    for (name, rows) in quads_by_name(check) {
        out.entry(name).or_default().check = rows;
    }
    for (name, rows) in quads_by_name(reply) {
        out.entry(name).or_default().reply = rows;
    }
    for (name, group, priority) in groups {
        out.entry(name).or_default().groups.push((group, priority));
    }
    Ok(out
        .into_iter()
        .map(|(name, rows)| (name, rows.sorted()))
        .collect())
}

/// The rows FreeRADIUS has for one user (what it will see on a request).
pub async fn current_user_rows(
    radius_db: &impl ConnectionTrait,
    username: &str,
) -> Result<UserRows, DbErr> {
    Ok(
        current_users_rows(radius_db, std::slice::from_ref(&username.to_string()))
            .await?
            .remove(username)
            .unwrap_or_default(),
    )
}

/// The rows FreeRADIUS has for one group.
pub async fn current_group_rows(
    radius_db: &impl ConnectionTrait,
    groupname: &str,
) -> Result<GroupRows, DbErr> {
    let check: Vec<Quad> = radgroupcheck::Entity::find()
        .select_only()
        .columns([
            radgroupcheck::Column::Groupname,
            radgroupcheck::Column::Attribute,
            radgroupcheck::Column::Op,
            radgroupcheck::Column::Value,
        ])
        .filter(radgroupcheck::Column::Groupname.eq(groupname))
        .into_tuple()
        .all(radius_db)
        .await?;
    let reply: Vec<Quad> = radgroupreply::Entity::find()
        .select_only()
        .columns([
            radgroupreply::Column::Groupname,
            radgroupreply::Column::Attribute,
            radgroupreply::Column::Op,
            radgroupreply::Column::Value,
        ])
        .filter(radgroupreply::Column::Groupname.eq(groupname))
        .into_tuple()
        .all(radius_db)
        .await?;
    let take = |rows: Vec<Quad>| {
        rows.into_iter()
            .map(|(_, attribute, op, value)| AttrRow {
                attribute,
                op,
                value,
            })
            .collect()
    };
    Ok(GroupRows {
        check: take(check),
        reply: take(reply),
    }
    .sorted())
}

/// Every username that has a row in radcheck, radreply or radusergroup.
async fn radius_usernames(db: &impl ConnectionTrait) -> Result<HashSet<String>, DbErr> {
    let mut names = HashSet::new();
    let check: Vec<String> = radcheck::Entity::find()
        .select_only()
        .column(radcheck::Column::Username)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let reply: Vec<String> = radreply::Entity::find()
        .select_only()
        .column(radreply::Column::Username)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let groups: Vec<String> = radusergroup::Entity::find()
        .select_only()
        .column(radusergroup::Column::Username)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    names.extend(check);
    names.extend(reply);
    names.extend(groups);
    Ok(names)
}

// ------------------------------------------------------- writing RADIUS

async fn delete_users_rows(txn: &DatabaseTransaction, usernames: &[String]) -> Result<(), DbErr> {
    if usernames.is_empty() {
        return Ok(());
    }
    radcheck::Entity::delete_many()
        .filter(radcheck::Column::Username.is_in(usernames.iter().cloned()))
        .exec(txn)
        .await?;
    radreply::Entity::delete_many()
        .filter(radreply::Column::Username.is_in(usernames.iter().cloned()))
        .exec(txn)
        .await?;
    radusergroup::Entity::delete_many()
        .filter(radusergroup::Column::Username.is_in(usernames.iter().cloned()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Inserts these users' rows, several rows per statement.
async fn insert_users_rows(
    txn: &DatabaseTransaction,
    users: &[(&str, &UserRows)],
) -> Result<(), DbErr> {
    let mut check = Vec::new();
    let mut reply = Vec::new();
    let mut groups = Vec::new();
    for (username, rows) in users {
        for row in &rows.check {
            check.push(radcheck::ActiveModel {
                id: NotSet,
                username: Set(username.to_string()),
                attribute: Set(row.attribute.clone()),
                op: Set(row.op.clone()),
                value: Set(row.value.clone()),
            });
        }
        for row in &rows.reply {
            reply.push(radreply::ActiveModel {
                id: NotSet,
                username: Set(username.to_string()),
                attribute: Set(row.attribute.clone()),
                op: Set(row.op.clone()),
                value: Set(row.value.clone()),
            });
        }
        for (group, priority) in &rows.groups {
            groups.push(radusergroup::ActiveModel {
                id: NotSet,
                username: Set(username.to_string()),
                groupname: Set(group.clone()),
                priority: Set(*priority),
            });
        }
    }
    while !check.is_empty() {
        let chunk: Vec<_> = check.drain(..check.len().min(INSERT_CHUNK)).collect();
        radcheck::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    while !reply.is_empty() {
        let chunk: Vec<_> = reply.drain(..reply.len().min(INSERT_CHUNK)).collect();
        radreply::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    while !groups.is_empty() {
        let chunk: Vec<_> = groups.drain(..groups.len().min(INSERT_CHUNK)).collect();
        radusergroup::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

async fn write_group(
    txn: &DatabaseTransaction,
    groupname: &str,
    rows: &GroupRows,
) -> Result<(), DbErr> {
    radgroupcheck::Entity::delete_many()
        .filter(radgroupcheck::Column::Groupname.eq(groupname))
        .exec(txn)
        .await?;
    radgroupreply::Entity::delete_many()
        .filter(radgroupreply::Column::Groupname.eq(groupname))
        .exec(txn)
        .await?;
    let check: Vec<_> = rows
        .check
        .iter()
        .map(|row| radgroupcheck::ActiveModel {
            id: NotSet,
            groupname: Set(groupname.to_string()),
            attribute: Set(row.attribute.clone()),
            op: Set(row.op.clone()),
            value: Set(row.value.clone()),
        })
        .collect();
    if !check.is_empty() {
        radgroupcheck::Entity::insert_many(check)
            .exec_without_returning(txn)
            .await?;
    }
    let reply: Vec<_> = rows
        .reply
        .iter()
        .map(|row| radgroupreply::ActiveModel {
            id: NotSet,
            groupname: Set(groupname.to_string()),
            attribute: Set(row.attribute.clone()),
            op: Set(row.op.clone()),
            value: Set(row.value.clone()),
        })
        .collect();
    if !reply.is_empty() {
        radgroupreply::Entity::insert_many(reply)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Makes the package's group exactly [`package_rows`], in one transaction.
#[instrument(skip_all, fields(radius.group = %package.radius_group))]
pub async fn sync_package(
    radius_db: &DatabaseConnection,
    package: &service_package::Model,
) -> Result<Outcome, RadiusError> {
    sync_package_inner(radius_db, package, false).await
}

async fn sync_package_inner(
    radius_db: &DatabaseConnection,
    package: &service_package::Model,
    dry_run: bool,
) -> Result<Outcome, RadiusError> {
    let desired = package_rows(package);
    if dry_run {
        let current = current_group_rows(radius_db, &package.radius_group).await?;
        return Ok(Outcome::of(current.is_empty(), current == desired));
    }
    let txn = begin_write(radius_db).await?;
    let current = current_group_rows(&txn, &package.radius_group).await?;
    let outcome = Outcome::of(current.is_empty(), current == desired);
    if outcome != Outcome::Unchanged {
        write_group(&txn, &package.radius_group, &desired).await?;
    }
    txn.commit().await?;
    Ok(outcome)
}

/// Makes the user's rows exactly [`user_rows`] (one RADIUS transaction),
/// then clears its `radius_sync_pending` flag in the main DB, unless the
/// user or its package changed meanwhile. See the module's documentation
/// for why this order is safe.
#[instrument(skip_all, fields(network_user.id = user.id))]
pub async fn sync_user(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    key: &AppKey,
    user: &network_user::Model,
    package: Option<&service_package::Model>,
) -> Result<Outcome, RadiusError> {
    let password = decrypt(key, user)?;
    let desired = user_rows(user, &password, package, Utc::now());
    let txn = begin_write(radius_db).await?;
    let current = current_user_rows(&txn, &user.username).await?;
    let outcome = Outcome::of(current.is_empty(), current == desired);
    if outcome != Outcome::Unchanged {
        delete_users_rows(&txn, std::slice::from_ref(&user.username)).await?;
        insert_users_rows(&txn, &[(user.username.as_str(), &desired)]).await?;
    }
    txn.commit().await?;
    mark_synced(main_db, &[(user, package)], Utc::now()).await?;
    Ok(outcome)
}

/// [`sync_user`] for the user with this id, with its package (and the
/// package's group, so that the user's group exists).
#[instrument(skip_all, fields(network_user.id = id))]
pub async fn sync_user_by_id(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    key: &AppKey,
    id: i32,
) -> Result<Outcome, RadiusError> {
    let user = network_user::Entity::find_by_id(id)
        .one(main_db)
        .await?
        .ok_or_else(|| RadiusError::NotFound(format!("there is no network user {id}")))?;
    let package = match user.package_id {
        Some(package_id) => {
            service_package::Entity::find_by_id(package_id)
                .one(main_db)
                .await?
        }
        None => None,
    };
    if let Some(package) = &package {
        sync_package(radius_db, package).await?;
    }
    sync_user(main_db, radius_db, key, &user, package.as_ref()).await
}

/// Deletes every radcheck, radreply and radusergroup row of this username,
/// in one transaction. Returns whether there were any.
#[instrument(skip_all)]
pub async fn remove_user(radius_db: &DatabaseConnection, username: &str) -> Result<bool, DbErr> {
    let txn = begin_write(radius_db).await?;
    let had = !current_user_rows(&txn, username).await?.is_empty();
    delete_users_rows(&txn, std::slice::from_ref(&username.to_string())).await?;
    txn.commit().await?;
    Ok(had)
}

/// Users whose "needs sync" flag is cleared in one statement.
const MARK_CHUNK: usize = 400;

/// Clears the "needs sync" flag of users whose rows were just written, but
/// only where neither the user nor its package changed since they were read
/// (`updated_at` still matches): a concurrent edit keeps its flag and is
/// synced next time. One UPDATE per [`MARK_CHUNK`] users, not one per user.
async fn mark_synced(
    main_db: &impl ConnectionTrait,
    users: &[(&network_user::Model, Option<&service_package::Model>)],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for chunk in users.chunks(MARK_CHUNK) {
        let mut unchanged_users = Condition::any();
        let mut unchanged_packages = Condition::any();
        let mut seen_packages = HashSet::new();
        for (user, package) in chunk {
            let same_package = match package {
                Some(package) => network_user::Column::PackageId.eq(package.id),
                None => network_user::Column::PackageId.is_null(),
            };
            unchanged_users = unchanged_users.add(
                Condition::all()
                    .add(network_user::Column::Id.eq(user.id))
                    .add(network_user::Column::UpdatedAt.eq(user.updated_at))
                    .add(same_package),
            );
            if let Some(package) = package.filter(|p| seen_packages.insert(p.id)) {
                unchanged_packages = unchanged_packages.add(
                    Condition::all()
                        .add(service_package::Column::Id.eq(package.id))
                        .add(service_package::Column::UpdatedAt.eq(package.updated_at)),
                );
            }
        }
        let package_still_as_read = Condition::any()
            .add(network_user::Column::PackageId.is_null())
            .add(
                network_user::Column::PackageId.in_subquery(
                    Query::select()
                        .column(service_package::Column::Id)
                        .from(service_package::Entity)
                        .cond_where(unchanged_packages)
                        .to_owned(),
                ),
            );
        network_user::Entity::update_many()
            .col_expr(network_user::Column::RadiusSyncPending, Expr::value(false))
            .col_expr(
                network_user::Column::RadiusSyncedAt,
                Expr::value(now.fixed_offset()),
            )
            .filter(unchanged_users)
            .filter(package_still_as_read)
            .exec(main_db)
            .await?;
    }
    Ok(())
}

/// Syncs every package and every user, in batches of [`BATCH_SIZE`] users,
/// and removes the rows of usernames that are no longer network users.
/// With `dry_run` nothing is written; the report is the drift.
#[instrument(skip_all, fields(dry_run = dry_run))]
pub async fn sync_all(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    key: &AppKey,
    dry_run: bool,
) -> Result<SyncReport, RadiusError> {
    sync_all_with_progress(main_db, radius_db, key, dry_run, |_, _| {}).await
}

/// [`sync_all`], calling `progress(done, total)` after each batch of users
/// (for a progress bar).
pub async fn sync_all_with_progress(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    key: &AppKey,
    dry_run: bool,
    mut progress: impl FnMut(u64, u64),
) -> Result<SyncReport, RadiusError> {
    use sea_orm::PaginatorTrait;

    let mut report = SyncReport {
        dry_run,
        ..Default::default()
    };
    let now = Utc::now();

    let packages: BTreeMap<i32, service_package::Model> = service_package::Entity::find()
        .all(main_db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    for package in packages.values() {
        match sync_package_inner(radius_db, package, dry_run).await? {
            Outcome::Created => report.packages.created += 1,
            Outcome::Updated => report.packages.updated += 1,
            Outcome::Unchanged => report.packages.unchanged += 1,
        }
    }

    let total = network_user::Entity::find().count(main_db).await?;
    let mut done = 0u64;
    let mut known: HashSet<String> = HashSet::new();
    let mut last_id = i32::MIN;
    loop {
        let users = network_user::Entity::find()
            .filter(network_user::Column::Id.gt(last_id))
            .order_by_asc(network_user::Column::Id)
            .limit(BATCH_SIZE)
            .all(main_db)
            .await?;
        let Some(last) = users.last() else { break };
        last_id = last.id;
        done += users.len() as u64;
        known.extend(users.iter().map(|u| u.username.clone()));
        sync_batch(
            main_db,
            radius_db,
            key,
            &packages,
            &users,
            now,
            dry_run,
            &mut report,
        )
        .await?;
        progress(done, total.max(done));
    }

    // Rows of usernames that are no longer network users.
    let mut orphans: Vec<String> = radius_usernames(radius_db)
        .await?
        .into_iter()
        .filter(|name| !known.contains(name))
        .collect();
    orphans.sort();
    for chunk in orphans.chunks(DELETE_CHUNK) {
        // A user created while the sync ran is not an orphan.
        let created_since: HashSet<String> = network_user::Entity::find()
            .select_only()
            .column(network_user::Column::Username)
            .filter(network_user::Column::Username.is_in(chunk.iter().cloned()))
            .into_tuple::<String>()
            .all(main_db)
            .await?
            .into_iter()
            .collect();
        let gone: Vec<String> = chunk
            .iter()
            .filter(|name| !created_since.contains(*name))
            .cloned()
            .collect();
        report.removed += gone.len() as u64;
        if !dry_run && !gone.is_empty() {
            let txn = begin_write(radius_db).await?;
            delete_users_rows(&txn, &gone).await?;
            txn.commit().await?;
        }
    }
    tracing::info!(
        dry_run,
        created = report.created,
        updated = report.updated,
        removed = report.removed,
        unchanged = report.unchanged,
        failed = report.failed.len(),
        "RADIUS sync finished"
    );
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn sync_batch(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    key: &AppKey,
    packages: &BTreeMap<i32, service_package::Model>,
    users: &[network_user::Model],
    now: DateTime<Utc>,
    dry_run: bool,
    report: &mut SyncReport,
) -> Result<(), RadiusError> {
    let mut desired: Vec<(&network_user::Model, UserRows)> = Vec::with_capacity(users.len());
    for user in users {
        match decrypt(key, user) {
            Ok(password) => {
                let package = user.package_id.and_then(|id| packages.get(&id));
                desired.push((user, user_rows(user, &password, package, now)));
            }
            Err(err) => {
                // Logged without the ciphertext; the user's rows stay as
                // they are and its flag stays set.
                tracing::error!(network_user.id = user.id, error = %err, "RADIUS sync skipped a user");
                report.failed.push(user.username.clone());
            }
        }
    }
    let usernames: Vec<String> = desired.iter().map(|(u, _)| u.username.clone()).collect();
    let mut current = current_users_rows(radius_db, &usernames).await?;
    let mut changed: Vec<(&network_user::Model, &UserRows)> = Vec::new();
    for (user, rows) in &desired {
        let now_rows = current.remove(&user.username).unwrap_or_default();
        let outcome = Outcome::of(now_rows.is_empty(), &now_rows == rows);
        report.count(outcome);
        if outcome != Outcome::Unchanged {
            changed.push((user, rows));
        }
    }
    if dry_run {
        return Ok(());
    }
    if !changed.is_empty() {
        let txn = begin_write(radius_db).await?;
        let names: Vec<String> = changed.iter().map(|(u, _)| u.username.clone()).collect();
        delete_users_rows(&txn, &names).await?;
        let rows: Vec<(&str, &UserRows)> = changed
            .iter()
            .map(|(u, rows)| (u.username.as_str(), *rows))
            .collect();
        insert_users_rows(&txn, &rows).await?;
        txn.commit().await?;
    }
    // Only after the RADIUS commit: clear the flags of the users synced.
    let changed_ids: HashSet<i32> = changed.iter().map(|(u, _)| u.id).collect();
    let to_mark: Vec<_> = desired
        .iter()
        .map(|(u, _)| *u)
        .filter(|u| u.radius_sync_pending || changed_ids.contains(&u.id))
        .map(|u| (u, u.package_id.and_then(|id| packages.get(&id))))
        .collect();
    if !to_mark.is_empty() {
        mark_synced(main_db, &to_mark, Utc::now()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn expiration_is_in_freeradius_form() {
        let at = Utc.with_ymd_and_hms(2027, 1, 5, 13, 4, 9).unwrap();
        assert_eq!(expiration_value(at), "Jan 05 2027 13:04:09");
    }

    #[test]
    fn password_rows_do_not_print_their_value() {
        let row = AttrRow::set(CLEARTEXT_PASSWORD, "hunter2");
        let printed = format!("{row:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"));
        let other = AttrRow::set("Framed-IP-Address", "10.0.0.1");
        assert!(format!("{other:?}").contains("10.0.0.1"));
    }
}
