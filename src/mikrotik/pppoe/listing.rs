//! The PPPoE user list: its filter, its sort fields, and the names of the
//! network users linked to its rows.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use super::service::PPPOE_STATUSES;
use crate::error::FieldErrors;
use crate::mikrotik::entities::mikrotik_pppoe_user;
use crate::mikrotik::service::MikrotikError;
use crate::query::{contains, fetch_page, filters, PageRequest, Sort};
use crate::text::optional_text;
use crate::users::entities::network_user;

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
            router_id: filters::id("router_id", router_id, errors),
            network_user_id: filters::id("network_user_id", network_user_id, errors),
            q: filters::text("q", q, 200, errors),
            status,
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
