//! The subnet lock (and which database errors mean "busy" or "retry"), and
//! the table of free ranges per subnet, which keeps "lowest free address"
//! one index seek however full the subnet is.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::ipam::domain::{key_bytes, key_from_bytes, KeyRange};
use crate::ipam::entities::{ip_free_range, ip_subnet};
use crate::ipam::service::{IpamError, IpamSettings};
use crate::ipam::subnets::service::begin_write;

/// Whether an error means "the lock was not granted in time".
fn is_lock_timeout(err: &DbErr) -> bool {
    let text = err.to_string();
    // PostgreSQL 55P03 lock_not_available (lock_timeout), MariaDB 1205,
    // SQLite SQLITE_BUSY after busy_timeout.
    text.contains("55P03")
        || text.contains("lock timeout")
        || text.contains("Lock wait timeout exceeded")
        || text.contains("database is locked")
}

/// Deadlocks and serialisation failures: the transaction may simply be retried.
pub(crate) fn is_retryable(err: &DbErr) -> bool {
    let text = err.to_string();
    text.contains("40P01") || text.contains("40001") || text.contains("Deadlock found")
}

pub(crate) fn classify(err: DbErr) -> IpamError {
    if is_lock_timeout(&err) {
        IpamError::Busy
    } else {
        IpamError::Db(err)
    }
}

/// Opens the transaction every change to a subnet's addresses runs in, and
/// takes the subnet's row lock, waiting at most `settings.lock_timeout`.
pub(crate) async fn lock_subnet(
    db: &DatabaseConnection,
    settings: IpamSettings,
    id: i32,
) -> Result<(DatabaseTransaction, ip_subnet::Model), IpamError> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let millis = settings.lock_timeout.as_millis().max(1);
    match backend {
        DbBackend::Postgres => {
            txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{millis}ms'"))
                .await?;
        }
        DbBackend::MySql => {
            // Whole seconds, at least one; per session, set before each lock.
            let secs = settings.lock_timeout.as_secs().max(1);
            txn.execute_unprepared(&format!("SET SESSION innodb_lock_wait_timeout = {secs}"))
                .await?;
        }
        _ => {}
    }
    let mut query = ip_subnet::Entity::find_by_id(id);
    if backend != DbBackend::Sqlite {
        query = query.lock_exclusive();
    }
    let subnet = query
        .one(&txn)
        .await
        .map_err(classify)?
        .ok_or_else(|| IpamError::NotFound(format!("no subnet with id {id}")))?;
    Ok((txn, subnet))
}

pub(crate) async fn insert_free_range(
    db: &impl ConnectionTrait,
    subnet_id: i32,
    range: KeyRange,
) -> Result<(), DbErr> {
    ip_free_range::ActiveModel {
        subnet_id: Set(subnet_id),
        start_key: Set(key_bytes(range.start)),
        end_key: Set(key_bytes(range.end)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

pub(crate) fn free_range_of(row: &ip_free_range::Model) -> KeyRange {
    KeyRange {
        start: key_from_bytes(&row.start_key).unwrap_or(0),
        end: key_from_bytes(&row.end_key).unwrap_or(0),
    }
}

/// Replaces a free range by what is left of it once `key` is taken.
pub(crate) async fn split_free_range(
    db: &impl ConnectionTrait,
    row: ip_free_range::Model,
    key: u128,
) -> Result<(), DbErr> {
    let (below, above) = free_range_of(&row).without(key);
    let subnet_id = row.subnet_id;
    match below {
        Some(below) => {
            let mut active: ip_free_range::ActiveModel = row.into();
            active.end_key = Set(key_bytes(below.end));
            active.update(db).await?;
        }
        None => {
            ip_free_range::Entity::delete_by_id(row.id).exec(db).await?;
        }
    }
    if let Some(above) = above {
        insert_free_range(db, subnet_id, above).await?;
    }
    Ok(())
}

/// The free range containing `key`, if any.
pub(crate) async fn free_range_containing(
    db: &impl ConnectionTrait,
    subnet_id: i32,
    key: u128,
) -> Result<Option<ip_free_range::Model>, DbErr> {
    let candidate = ip_free_range::Entity::find()
        .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
        .filter(ip_free_range::Column::StartKey.lte(key_bytes(key)))
        .order_by_desc(ip_free_range::Column::StartKey)
        .one(db)
        .await?;
    Ok(candidate.filter(|row| free_range_of(row).contains(key)))
}

/// Takes `key` out of the free set; false if it was not free.
pub(crate) async fn take_free_key(
    db: &impl ConnectionTrait,
    subnet_id: i32,
    key: u128,
) -> Result<bool, DbErr> {
    match free_range_containing(db, subnet_id, key).await? {
        Some(row) => {
            split_free_range(db, row, key).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Puts `key` back into the free set, merging it with its neighbours.
pub(crate) async fn give_back_key(
    db: &impl ConnectionTrait,
    subnet_id: i32,
    key: u128,
) -> Result<(), DbErr> {
    let below = match key.checked_sub(1) {
        Some(prev) => {
            ip_free_range::Entity::find()
                .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
                .filter(ip_free_range::Column::EndKey.eq(key_bytes(prev)))
                .one(db)
                .await?
        }
        None => None,
    };
    let above = match key.checked_add(1) {
        Some(next) => {
            ip_free_range::Entity::find()
                .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
                .filter(ip_free_range::Column::StartKey.eq(key_bytes(next)))
                .one(db)
                .await?
        }
        None => None,
    };
    match (below, above) {
        (Some(below), Some(above)) => {
            let end = above.end_key.clone();
            ip_free_range::Entity::delete_by_id(above.id)
                .exec(db)
                .await?;
            let mut row: ip_free_range::ActiveModel = below.into();
            row.end_key = Set(end);
            row.update(db).await?;
        }
        (Some(below), None) => {
            let mut row: ip_free_range::ActiveModel = below.into();
            row.end_key = Set(key_bytes(key));
            row.update(db).await?;
        }
        (None, Some(above)) => {
            let mut row: ip_free_range::ActiveModel = above.into();
            row.start_key = Set(key_bytes(key));
            row.update(db).await?;
        }
        (None, None) => {
            insert_free_range(
                db,
                subnet_id,
                KeyRange {
                    start: key,
                    end: key,
                },
            )
            .await?
        }
    }
    Ok(())
}
