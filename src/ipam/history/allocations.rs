//! IPAM's own record of who held an address (`ip_allocation_history`).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::ipam::domain::{key_bytes, to_u128};
use crate::ipam::entities::ip_allocation_history;
use crate::ipam::service::IpamError;

/// Who held `ip` at `at`: the allocations whose holding interval contains
/// that moment (normally one; none if the address was free).
pub async fn address_history(
    db: &impl ConnectionTrait,
    ip: IpAddr,
    at: DateTime<Utc>,
) -> Result<Vec<ip_allocation_history::Model>, IpamError> {
    Ok(ip_allocation_history::Entity::find()
        .filter(ip_allocation_history::Column::IpKey.eq(key_bytes(to_u128(ip))))
        .filter(ip_allocation_history::Column::Action.eq("allocate"))
        .filter(ip_allocation_history::Column::AllocatedAt.lte(at.fixed_offset()))
        .filter(
            Condition::any()
                .add(ip_allocation_history::Column::ReleasedAt.is_null())
                .add(ip_allocation_history::Column::ReleasedAt.gt(at.fixed_offset())),
        )
        .order_by_desc(ip_allocation_history::Column::AllocatedAt)
        .all(db)
        .await?)
}

/// Every holding of `ip`, newest first (for the history page).
pub async fn address_timeline(
    db: &impl ConnectionTrait,
    ip: IpAddr,
    limit: u64,
) -> Result<Vec<ip_allocation_history::Model>, IpamError> {
    Ok(ip_allocation_history::Entity::find()
        .filter(ip_allocation_history::Column::IpKey.eq(key_bytes(to_u128(ip))))
        .order_by_desc(ip_allocation_history::Column::CreatedAt)
        .order_by_desc(ip_allocation_history::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
