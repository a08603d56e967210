//! Finding network users: the list's filter and sort table (one for the
//! pages and the API), and usernames to ids.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::error::FieldErrors;
use crate::query::{contains, fetch_page, filters, PageRequest, Sort};
use crate::text::optional_text;
use crate::users::domain::{ServiceType, UserStatus};
use crate::users::entities::network_user;
use crate::users::service::UsersError;

/// Sort fields of the user list (`?sort=`).
pub const USER_SORTS: &[(&str, network_user::Column)] = &[
    ("id", network_user::Column::Id),
    ("username", network_user::Column::Username),
    ("status", network_user::Column::Status),
    ("service_type", network_user::Column::ServiceType),
    ("package_id", network_user::Column::PackageId),
    ("expires_at", network_user::Column::ExpiresAt),
    ("created_at", network_user::Column::CreatedAt),
    ("updated_at", network_user::Column::UpdatedAt),
];

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Part of the username, full name, MAC address or static IP, any case.
    pub q: Option<String>,
    pub status: Option<UserStatus>,
    pub service_type: Option<ServiceType>,
    pub package_id: Option<i32>,
}

impl UserFilter {
    /// Reads the user-list filters (of the pages and the API alike);
    /// problems go into `errors` by parameter.
    pub fn parse(
        q: Option<&str>,
        status: Option<&str>,
        service_type: Option<&str>,
        package_id: Option<&str>,
        errors: &mut FieldErrors,
    ) -> UserFilter {
        let status = filters::parsed::<UserStatus>("status", status, errors);
        let service_type = filters::parsed::<ServiceType>("service_type", service_type, errors);
        let package_id = package_id
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .and_then(|s| match s.parse::<i32>() {
                Ok(id) if id > 0 => Some(id),
                _ => {
                    errors.insert(
                        "package_id".into(),
                        "must be a positive whole number".into(),
                    );
                    None
                }
            });
        UserFilter {
            q: filters::text("q", q, 100, errors),
            status,
            service_type,
            package_id,
        }
    }
}

/// The ids of the network users among these usernames, by username.
pub async fn ids_by_username(
    db: &impl ConnectionTrait,
    usernames: Vec<String>,
) -> Result<HashMap<String, i32>, UsersError> {
    if usernames.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<(i32, String)> = network_user::Entity::find()
        .select_only()
        .column(network_user::Column::Id)
        .column(network_user::Column::Username)
        .filter(network_user::Column::Username.is_in(usernames))
        .into_tuple()
        .all(db)
        .await?;
    Ok(found.into_iter().map(|(id, name)| (name, id)).collect())
}

pub async fn list_users(
    db: &impl ConnectionTrait,
    filter: &UserFilter,
    sort: &Sort<network_user::Column>,
    page: PageRequest,
) -> Result<(Vec<network_user::Model>, u64), UsersError> {
    let mut select = network_user::Entity::find();
    if let Some(q) = optional_text(&filter.q) {
        select = select.filter(
            Condition::any()
                .add(contains(network_user::Column::Username, q))
                .add(contains(network_user::Column::FullName, q))
                .add(contains(network_user::Column::MacAddress, q))
                .add(contains(network_user::Column::StaticIp, q)),
        );
    }
    if let Some(status) = filter.status {
        select = select.filter(network_user::Column::Status.eq(status.as_str()));
    }
    if let Some(service_type) = filter.service_type {
        select = select.filter(network_user::Column::ServiceType.eq(service_type.as_str()));
    }
    if let Some(package_id) = filter.package_id {
        select = select.filter(network_user::Column::PackageId.eq(package_id));
    }
    Ok(fetch_page(db, sort.apply(select, network_user::Column::Id), page).await?)
}
