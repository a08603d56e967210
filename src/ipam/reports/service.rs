//! Free addresses of a subnet, and utilization per pool and subnet.

use std::collections::HashMap;
use std::net::IpAddr;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::ipam::allocation::service::usable_count;
use crate::ipam::domain::{from_u128, key_bytes, to_u128, IpVersion};
use crate::ipam::entities::{ip_allocation, ip_free_range, ip_subnet};
use crate::ipam::free_ranges::free_range_of;
use crate::ipam::pools::service::find_pool;
use crate::ipam::service::IpamError;
use crate::ipam::subnets::service::{get_subnet, subnet_cidr, subnet_label};

/// Up to `limit` free addresses of a subnet in order, starting after
/// `after`: a walk of the free ranges, so its cost depends on `limit`, not
/// on the subnet's size.
pub async fn available_ips(
    db: &impl ConnectionTrait,
    subnet_id: i32,
    after: Option<IpAddr>,
    limit: usize,
) -> Result<Vec<IpAddr>, IpamError> {
    let subnet = get_subnet(db, subnet_id).await?;
    let version = IpVersion::from_number(subnet.ip_version).unwrap_or(IpVersion::V4);
    let from = match after {
        Some(addr) if IpVersion::of(addr) != version => {
            return Err(IpamError::invalid(
                "after",
                format!("{addr} is not of this subnet's family"),
            ))
        }
        Some(addr) => match to_u128(addr).checked_add(1) {
            Some(next) => next,
            None => return Ok(Vec::new()),
        },
        None => 0,
    };
    let mut found = Vec::with_capacity(limit.min(1000));
    let mut ranges = ip_free_range::Entity::find()
        .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
        .filter(ip_free_range::Column::EndKey.gte(key_bytes(from)))
        .order_by_asc(ip_free_range::Column::StartKey)
        .paginate(db, 64);
    while found.len() < limit {
        let Some(page) = ranges.fetch_and_next().await? else {
            break;
        };
        for row in page {
            let range = free_range_of(&row);
            let mut key = range.start.max(from);
            while key <= range.end && found.len() < limit {
                found.push(from_u128(key, version));
                match key.checked_add(1) {
                    Some(next) => key = next,
                    None => break,
                }
            }
            if found.len() >= limit {
                break;
            }
        }
    }
    Ok(found)
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Utilization {
    /// Usable addresses (less network, broadcast and gateway).
    #[schema(value_type = u64)]
    pub total: u128,
    #[schema(value_type = u64)]
    pub allocated: u128,
    #[schema(value_type = u64)]
    pub free: u128,
    /// allocated / total, in percent, two decimals.
    pub percent: f64,
}

impl Utilization {
    fn new(total: u128, allocated: u128) -> Self {
        let percent = if total == 0 {
            0.0
        } else {
            ((allocated as f64 / total as f64) * 10_000.0).round() / 100.0
        };
        Self {
            total,
            allocated,
            free: total.saturating_sub(allocated),
            percent,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SubnetUtilization {
    pub subnet_id: i32,
    #[schema(example = "100.64.0.0/24")]
    pub network: String,
    #[serde(flatten)]
    pub utilization: Utilization,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PoolUtilization {
    pub pool_id: i32,
    #[serde(flatten)]
    pub utilization: Utilization,
    pub subnets: Vec<SubnetUtilization>,
}

impl PoolUtilization {
    /// A pool without subnets.
    pub fn empty(pool_id: i32) -> Self {
        Self {
            pool_id,
            utilization: Utilization::new(0, 0),
            subnets: Vec::new(),
        }
    }
}

#[derive(FromQueryResult)]
struct CountPerSubnet {
    subnet_id: i32,
    allocated: i64,
}

/// Active allocations per subnet, counted by the database.
///
/// COUNT(subnet_id), not COUNT(id): every column the query reads is then in
/// the unique index on (subnet_id, ip_key, active), so PostgreSQL counts
/// the pool's entries with an index-only scan. COUNT(id) made it read the
/// whole table, every pool's allocations (docs/BENCHMARKS.md). (SQLite and
/// MariaDB keep the primary key in each index and were not affected.)
async fn allocated_per_subnet(
    db: &impl ConnectionTrait,
    subnet_ids: &[i32],
) -> Result<HashMap<i32, u128>, DbErr> {
    if subnet_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let counts = ip_allocation::Entity::find()
        .select_only()
        .column(ip_allocation::Column::SubnetId)
        .column_as(ip_allocation::Column::SubnetId.count(), "allocated")
        .filter(ip_allocation::Column::SubnetId.is_in(subnet_ids.iter().copied()))
        .filter(ip_allocation::Column::Active.eq(true))
        .group_by(ip_allocation::Column::SubnetId)
        .into_model::<CountPerSubnet>()
        .all(db)
        .await?;
    Ok(counts
        .into_iter()
        .map(|c| (c.subnet_id, c.allocated.max(0) as u128))
        .collect())
}

/// Utilization of a pool and of each of its subnets, from one aggregate
/// query (allocations are counted, not loaded).
pub async fn pool_utilization(
    db: &impl ConnectionTrait,
    pool_id: i32,
) -> Result<PoolUtilization, IpamError> {
    find_pool(db, pool_id).await?;
    let mut usage = pools_utilization(db, &[pool_id]).await?;
    Ok(usage
        .remove(&pool_id)
        .unwrap_or_else(|| PoolUtilization::empty(pool_id)))
}

/// Utilization of several pools (a page of the pool list) in two queries:
/// their subnets, and one aggregate count of active allocations.
pub async fn pools_utilization(
    db: &impl ConnectionTrait,
    pool_ids: &[i32],
) -> Result<HashMap<i32, PoolUtilization>, IpamError> {
    let subnets = ip_subnet::Entity::find()
        .filter(ip_subnet::Column::PoolId.is_in(pool_ids.iter().copied()))
        .order_by_asc(ip_subnet::Column::NetworkKey)
        .all(db)
        .await?;
    let per_subnet = subnets_utilization(db, &subnets).await?;
    let mut pools: HashMap<i32, PoolUtilization> = pool_ids
        .iter()
        .map(|&pool_id| (pool_id, PoolUtilization::empty(pool_id)))
        .collect();
    for subnet in &subnets {
        let Some(usage) = per_subnet.get(&subnet.id).cloned() else {
            continue;
        };
        if let Some(pool) = pools.get_mut(&subnet.pool_id) {
            pool.utilization = Utilization::new(
                pool.utilization.total.saturating_add(usage.total),
                pool.utilization.allocated + usage.allocated,
            );
            pool.subnets.push(SubnetUtilization {
                subnet_id: subnet.id,
                network: subnet_label(subnet),
                utilization: usage,
            });
        }
    }
    Ok(pools)
}

/// Utilization of each subnet given, from one aggregate count.
pub async fn subnets_utilization(
    db: &impl ConnectionTrait,
    subnets: &[ip_subnet::Model],
) -> Result<HashMap<i32, Utilization>, IpamError> {
    let ids: Vec<i32> = subnets.iter().map(|s| s.id).collect();
    let counts = allocated_per_subnet(db, &ids).await?;
    Ok(subnets
        .iter()
        .map(|s| {
            let usable = usable_count(&subnet_cidr(s), s.gateway.as_deref());
            let used = counts.get(&s.id).copied().unwrap_or(0);
            (s.id, Utilization::new(usable, used))
        })
        .collect())
}

/// Utilization of one subnet.
pub async fn subnet_utilization(
    db: &impl ConnectionTrait,
    subnet: &ip_subnet::Model,
) -> Result<Utilization, IpamError> {
    let mut usage = subnets_utilization(db, std::slice::from_ref(subnet)).await?;
    Ok(usage
        .remove(&subnet.id)
        .unwrap_or_else(|| Utilization::new(0, 0)))
}
