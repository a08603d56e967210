//! Creating, changing, listing and deleting pools.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
};

use crate::audit::{self, Actor};
use crate::db::UniqueKey;
use crate::error::FieldErrors;
use crate::ipam::domain::{key_bytes, to_u128, IpVersion, RangeStatus, VlanId};
use crate::ipam::entities::{ip_allocation, ip_free_range, ip_pool, ip_subnet};
use crate::ipam::free_ranges::classify;
use crate::ipam::service::IpamError;
use crate::ipam::subnets::service::{begin_write, lock_pool, subnet_range};
use crate::query::{fetch_page, PageRequest, Sort};
use crate::text::optional_text;

/// A pool as the caller asks for it; `validate` turns it into [`PoolSpec`].
#[derive(Debug, Clone, Default)]
pub struct PoolInput {
    pub name: String,
    pub description: Option<String>,
    pub start_ip: String,
    pub end_ip: String,
    pub gateway: Option<String>,
    pub dns_servers: Vec<String>,
    pub vlan_id: Option<i64>,
    /// active (the default), reserved or deprecated.
    pub status: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PoolSpec {
    pub name: String,
    pub description: Option<String>,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: Option<IpAddr>,
    pub dns_servers: Vec<IpAddr>,
    pub vlan_id: Option<VlanId>,
    pub status: RangeStatus,
}

impl PoolInput {
    /// Checks every field; all problems are reported together.
    pub fn validate(&self) -> Result<PoolSpec, IpamError> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            errors.insert("name".into(), "must be 1 to 100 characters long".into());
        }
        let mut ip = |field: &str, text: &str| match crate::ipam::domain::parse_ip(text) {
            Ok(ip) => Some(ip),
            Err(e) => {
                errors.insert(field.into(), e);
                None
            }
        };
        let start = ip("start_ip", &self.start_ip);
        let end = ip("end_ip", &self.end_ip);
        let gateway = optional_text(&self.gateway).and_then(|g| ip("gateway", g));
        let mut dns_servers = Vec::new();
        for (i, text) in self.dns_servers.iter().enumerate() {
            match crate::ipam::domain::parse_ip(text) {
                Ok(addr) => dns_servers.push(addr),
                Err(e) => {
                    errors.insert(format!("dns_servers[{i}]"), e);
                }
            }
        }
        if let (Some(start), Some(end)) = (start, end) {
            if IpVersion::of(start) != IpVersion::of(end) {
                errors.insert(
                    "end_ip".into(),
                    "must be of the same family (IPv4 or IPv6) as start_ip".into(),
                );
            } else if to_u128(start) > to_u128(end) {
                errors.insert(
                    "end_ip".into(),
                    format!("{end} comes before start_ip {start}"),
                );
            } else if let Some(gateway) = gateway {
                if IpVersion::of(gateway) != IpVersion::of(start)
                    || !(to_u128(start)..=to_u128(end)).contains(&to_u128(gateway))
                {
                    errors.insert(
                        "gateway".into(),
                        format!("{gateway} is not inside {start} – {end}"),
                    );
                }
            }
        }
        let vlan_id = match self.vlan_id.map(VlanId::new) {
            Some(Err(e)) => {
                errors.insert("vlan_id".into(), e);
                None
            }
            Some(Ok(vlan)) => Some(vlan),
            None => None,
        };
        let status = match optional_text(&self.status).map(str::parse::<RangeStatus>) {
            None => Some(RangeStatus::Active),
            Some(Ok(status)) => Some(status),
            Some(Err(e)) => {
                errors.insert("status".into(), e);
                None
            }
        };
        if let Some(d) = optional_text(&self.description) {
            if d.chars().count() > 1000 {
                errors.insert(
                    "description".into(),
                    "must be at most 1000 characters long".into(),
                );
            }
        }
        match (start, end, status, errors.is_empty()) {
            (Some(start), Some(end), Some(status), true) => Ok(PoolSpec {
                name,
                description: optional_text(&self.description).map(str::to_string),
                start,
                end,
                gateway,
                dns_servers,
                vlan_id,
                status,
            }),
            _ => Err(IpamError::Invalid(errors)),
        }
    }
}

/// The DNS servers of a pool, from their JSON column.
pub fn dns_servers(pool: &ip_pool::Model) -> Vec<String> {
    pool.dns_servers
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

pub(crate) async fn find_pool(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<ip_pool::Model, IpamError> {
    ip_pool::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| IpamError::NotFound(format!("no IP pool with id {id}")))
}

pub async fn get_pool(db: &impl ConnectionTrait, id: i32) -> Result<ip_pool::Model, IpamError> {
    find_pool(db, id).await
}

async fn check_pool_name_free(
    db: &impl ConnectionTrait,
    name: &str,
    except: Option<i32>,
) -> Result<(), IpamError> {
    let mut query = ip_pool::Entity::find().filter(ip_pool::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(ip_pool::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(IpamError::invalid(
            "name",
            format!("a pool named \"{name}\" exists already"),
        ));
    }
    Ok(())
}

fn pool_model(spec: &PoolSpec, now: DateTime<Utc>) -> ip_pool::ActiveModel {
    ip_pool::ActiveModel {
        name: Set(spec.name.clone()),
        description: Set(spec.description.clone()),
        ip_version: Set(IpVersion::of(spec.start).number()),
        start_ip: Set(spec.start.to_string()),
        end_ip: Set(spec.end.to_string()),
        start_key: Set(key_bytes(to_u128(spec.start))),
        end_key: Set(key_bytes(to_u128(spec.end))),
        gateway: Set(spec.gateway.map(|g| g.to_string())),
        dns_servers: Set(Some(
            serde_json::to_string(
                &spec
                    .dns_servers
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>(),
            )
            .expect("strings serialise"),
        )),
        vlan_id: Set(spec.vlan_id.map(|v| i32::from(v.get()))),
        status: Set(spec.status.as_str().into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
}

fn pool_details(pool: &ip_pool::Model) -> serde_json::Value {
    serde_json::json!({
        "name": pool.name, "start_ip": pool.start_ip, "end_ip": pool.end_ip,
        "gateway": pool.gateway, "vlan_id": pool.vlan_id, "status": pool.status,
    })
}

pub async fn create_pool(
    db: &DatabaseConnection,
    actor: &Actor,
    input: &PoolInput,
) -> Result<ip_pool::Model, IpamError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    check_pool_name_free(&txn, &spec.name, None).await?;
    let now = Utc::now();
    let mut row = pool_model(&spec, now);
    row.created_at = Set(now.into());
    let pool = row.insert(&txn).await.map_err(name_taken_as_invalid)?;
    audit::record(
        &txn,
        actor,
        "ipam.pool.create",
        "ip_pool",
        Some(pool.id.to_string()),
        pool_details(&pool),
    )
    .await?;
    txn.commit().await?;
    Ok(pool)
}

/// The unique pool name (`ip_pools.name`).
pub(crate) const POOL_NAME: UniqueKey = UniqueKey::column("ip_pools", &["name"]);

/// A unique-name violation that raced past the check is still a 422.
fn name_taken_as_invalid(err: DbErr) -> IpamError {
    if POOL_NAME.violated_by(&err) {
        IpamError::invalid("name", "a pool with this name exists already")
    } else {
        IpamError::Db(err)
    }
}

pub async fn update_pool(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
    input: &PoolInput,
) -> Result<ip_pool::Model, IpamError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    let existing = find_pool(&txn, id).await?;
    check_pool_name_free(&txn, &spec.name, Some(id)).await?;
    // Every subnet must stay inside the new range.
    let (start, end) = (to_u128(spec.start), to_u128(spec.end));
    let subnets = ip_subnet::Entity::find()
        .filter(ip_subnet::Column::PoolId.eq(id))
        .all(&txn)
        .await?;
    if let Some(outside) = subnets.iter().find(|s| {
        let range = subnet_range(s);
        range.start < start
            || range.end > end
            || IpVersion::from_number(s.ip_version) != Some(IpVersion::of(spec.start))
    }) {
        return Err(IpamError::invalid(
            "start_ip",
            format!(
                "the range must keep subnet {}/{} inside it",
                outside.network, outside.prefix_length
            ),
        ));
    }
    let mut row = pool_model(&spec, Utc::now());
    row.id = Set(existing.id);
    row.created_at = Set(existing.created_at);
    let pool = row.update(&txn).await.map_err(name_taken_as_invalid)?;
    audit::record(
        &txn,
        actor,
        "ipam.pool.update",
        "ip_pool",
        Some(id.to_string()),
        pool_details(&pool),
    )
    .await?;
    txn.commit().await?;
    Ok(pool)
}

/// Deletes a pool and its subnets; refused while any address in it is
/// allocated. Address history stays.
pub async fn delete_pool(db: &DatabaseConnection, actor: &Actor, id: i32) -> Result<(), IpamError> {
    let txn = begin_write(db).await?;
    let pool = lock_pool(&txn, id)
        .await?
        .ok_or_else(|| IpamError::NotFound(format!("no IP pool with id {id}")))?;
    // Lock the pool's subnets too, so that no allocation commits between
    // the count below and the deletion.
    let mut subnets = ip_subnet::Entity::find().filter(ip_subnet::Column::PoolId.eq(id));
    if txn.get_database_backend() != DbBackend::Sqlite {
        subnets = subnets.lock_exclusive();
    }
    let subnet_ids: Vec<i32> = subnets
        .all(&txn)
        .await
        .map_err(classify)?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let active = active_allocation_count(&txn, &subnet_ids).await?;
    if active > 0 {
        return Err(IpamError::Conflict(format!(
            "pool \"{}\" still has {active} active allocation(s); release them first",
            pool.name
        )));
    }
    for subnet_id in &subnet_ids {
        remove_subnet_rows(&txn, *subnet_id).await?;
    }
    ip_pool::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        actor,
        "ipam.pool.delete",
        "ip_pool",
        Some(id.to_string()),
        pool_details(&pool),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

pub(crate) async fn active_allocation_count(
    db: &impl ConnectionTrait,
    subnet_ids: &[i32],
) -> Result<u64, DbErr> {
    if subnet_ids.is_empty() {
        return Ok(0);
    }
    ip_allocation::Entity::find()
        .filter(ip_allocation::Column::SubnetId.is_in(subnet_ids.iter().copied()))
        .filter(ip_allocation::Column::Active.eq(true))
        .count(db)
        .await
}

/// A subnet's released allocations, free ranges and the subnet itself.
pub(crate) async fn remove_subnet_rows(
    db: &impl ConnectionTrait,
    subnet_id: i32,
) -> Result<(), DbErr> {
    ip_free_range::Entity::delete_many()
        .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
        .exec(db)
        .await?;
    ip_allocation::Entity::delete_many()
        .filter(ip_allocation::Column::SubnetId.eq(subnet_id))
        .exec(db)
        .await?;
    ip_subnet::Entity::delete_by_id(subnet_id).exec(db).await?;
    Ok(())
}

/// The orders of a pool list, by `?sort=` key: the page's sort select and
/// the API's `sort` parameter both choose from it.
pub const POOL_SORTS: &[(&str, ip_pool::Column)] = &[
    ("name", ip_pool::Column::Name),
    ("vlan", ip_pool::Column::VlanId),
    ("status", ip_pool::Column::Status),
    ("created_at", ip_pool::Column::CreatedAt),
    ("id", ip_pool::Column::Id),
];

#[derive(Debug, Default, Clone)]
pub struct PoolFilter {
    /// Part of the name, any case.
    pub search: Option<String>,
    pub status: Option<RangeStatus>,
    pub ip_version: Option<IpVersion>,
}

pub async fn list_pools(
    db: &impl ConnectionTrait,
    filter: &PoolFilter,
    sort: &Sort<ip_pool::Column>,
    page: PageRequest,
) -> Result<(Vec<ip_pool::Model>, u64), IpamError> {
    let mut select = ip_pool::Entity::find();
    if let Some(search) = &filter.search {
        select = select.filter(crate::query::contains(ip_pool::Column::Name, search));
    }
    if let Some(status) = filter.status {
        select = select.filter(ip_pool::Column::Status.eq(status.as_str()));
    }
    if let Some(version) = filter.ip_version {
        select = select.filter(ip_pool::Column::IpVersion.eq(version.number()));
    }
    Ok(fetch_page(db, sort.apply(select, ip_pool::Column::Id), page).await?)
}
