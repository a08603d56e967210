//! Writing the rows: one user or group per transaction, and the full sync
//! that compares and repairs in batches.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use tracing::instrument;

use super::super::entities::{radcheck, radgroupcheck, radgroupreply, radreply, radusergroup};
use super::model::{decrypt, package_rows, policy_rows, user_rows};
use super::reading::{current_group_rows, current_user_rows, current_users_rows, radius_usernames};
use super::rows::{GroupRows, Outcome, SyncReport, UserRows};
use super::{RadiusError, BATCH_SIZE, DELETE_CHUNK, INSERT_CHUNK};
use crate::crypto::AppKey;
use crate::db::begin_write;
use crate::users::entities::{network_user, service_package, service_policy};
use crate::users::policies::service::{policy_of_package, quota_policy_of_user, Policies};
use crate::users::state::Entitlement;

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
    sync_group(
        radius_db,
        &package.radius_group,
        &package_rows(package),
        false,
    )
    .await
}

/// Makes the policy's group exactly [`policy_rows`], in one transaction.
#[instrument(skip_all, fields(radius.group = %policy.radius_group))]
pub async fn sync_policy(
    radius_db: &DatabaseConnection,
    policy: &service_policy::Model,
) -> Result<Outcome, RadiusError> {
    sync_group(radius_db, &policy.radius_group, &policy_rows(policy), false).await
}

async fn sync_group(
    radius_db: &DatabaseConnection,
    groupname: &str,
    desired: &GroupRows,
    dry_run: bool,
) -> Result<Outcome, RadiusError> {
    if dry_run {
        let current = current_group_rows(radius_db, groupname).await?;
        return Ok(Outcome::of(current.is_empty(), &current == desired));
    }
    let txn = begin_write(radius_db).await?;
    let current = current_group_rows(&txn, groupname).await?;
    let outcome = Outcome::of(current.is_empty(), &current == desired);
    if outcome != Outcome::Unchanged {
        write_group(&txn, groupname, desired).await?;
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
    let policy = match package {
        Some(package) => policy_of_package(main_db, package).await?,
        None => None,
    };
    let quota = quota_policy_of_user(main_db, user).await?;
    let entitlement = Entitlement {
        package,
        policy: policy.as_ref(),
        quota: quota.as_ref(),
    };
    let desired = user_rows(user, &password, entitlement, Utc::now());
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
        if let Some(policy) = policy_of_package(main_db, package).await? {
            sync_policy(radius_db, &policy).await?;
        }
    }
    if let Some(policy) = quota_policy_of_user(main_db, &user).await? {
        sync_policy(radius_db, &policy).await?;
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
    let policies = Policies::load(main_db).await?;
    let groups = packages
        .values()
        .map(|p| (p.radius_group.as_str(), package_rows(p)))
        .chain(
            policies
                .by_id
                .values()
                .map(|p| (p.radius_group.as_str(), policy_rows(p))),
        );
    for (groupname, rows) in groups {
        match sync_group(radius_db, groupname, &rows, dry_run).await? {
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
            &policies,
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
    policies: &Policies,
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
                let entitlement = Entitlement {
                    package,
                    policy: package.and_then(|p| policies.of_package(p)),
                    quota: policies.quota_of(user),
                };
                desired.push((user, user_rows(user, &password, entitlement, now)));
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
