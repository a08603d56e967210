//! Queries behind the API's staff, token and audit-log endpoints. They
//! know nothing of HTTP; the changes themselves (create, revoke) are the
//! staff domain's own service functions, shared with the CLI and the pages.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use crate::audit::entities::audit_log;
use crate::staff::entities::{api_token, staff_user};
use crate::staff::service::hash_token;
use crate::staff::Role;
use crate::web::pagination::{contains, fetch_page, PageRequest, Sort};

/// `last_used_at` is written at most this often per token, so that a busy
/// script does not turn every request into a write.
pub const LAST_USED_RESOLUTION: Duration = Duration::seconds(60);

/// The token whose plaintext this is, if it is known, not revoked and not
/// expired. Records its use (see [`LAST_USED_RESOLUTION`]).
pub async fn authenticate_token(
    db: &impl ConnectionTrait,
    plaintext: &str,
) -> Result<Option<api_token::Model>, DbErr> {
    let Some(token) = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(hash_token(plaintext)))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let now = Utc::now();
    if !is_active(&token, now) {
        return Ok(None);
    }
    let stale = now - LAST_USED_RESOLUTION;
    if token.last_used_at.is_none_or(|at| at < stale) {
        // The condition repeats the check, so that concurrent requests
        // write once between them.
        let written = api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
            .filter(api_token::Column::Id.eq(token.id))
            .filter(
                Condition::any()
                    .add(api_token::Column::LastUsedAt.is_null())
                    .add(api_token::Column::LastUsedAt.lt(stale)),
            )
            .exec(db)
            .await;
        if let Err(err) = written {
            // Not worth failing the request over.
            tracing::warn!(token.id = token.id, error = %err, "could not record the token's use");
        }
    }
    Ok(Some(token))
}

/// Not revoked, and not past its expiry.
pub fn is_active(token: &api_token::Model, now: DateTime<Utc>) -> bool {
    token.revoked_at.is_none() && token.expires_at.is_none_or(|at| at > now)
}

#[derive(Debug, Default, Clone)]
pub struct TokenFilter {
    /// Part of the name, any case.
    pub name: Option<String>,
    pub role: Option<Role>,
    /// Only tokens that work now (true) or that no longer do (false).
    pub active: Option<bool>,
}

pub async fn list_tokens(
    db: &impl ConnectionTrait,
    filter: &TokenFilter,
    sort: &Sort<api_token::Column>,
    page: PageRequest,
) -> Result<(Vec<api_token::Model>, u64), DbErr> {
    let mut select = api_token::Entity::find();
    if let Some(name) = &filter.name {
        select = select.filter(contains(api_token::Column::Name, name));
    }
    if let Some(role) = filter.role {
        select = select.filter(api_token::Column::Role.eq(role.as_str()));
    }
    if let Some(active) = filter.active {
        let now = Utc::now();
        let works = Condition::all()
            .add(api_token::Column::RevokedAt.is_null())
            .add(
                Condition::any()
                    .add(api_token::Column::ExpiresAt.is_null())
                    .add(api_token::Column::ExpiresAt.gt(now)),
            );
        select = select.filter(if active { works } else { works.not() });
    }
    fetch_page(db, sort.apply(select, api_token::Column::Id), page).await
}

pub async fn get_token(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<Option<api_token::Model>, DbErr> {
    api_token::Entity::find_by_id(id).one(db).await
}

#[derive(Debug, Default, Clone)]
pub struct StaffFilter {
    pub role: Option<Role>,
    /// Part of the username, any case.
    pub search: Option<String>,
    pub active: Option<bool>,
}

pub async fn list_staff(
    db: &impl ConnectionTrait,
    filter: &StaffFilter,
    sort: &Sort<staff_user::Column>,
    page: PageRequest,
) -> Result<(Vec<staff_user::Model>, u64), DbErr> {
    let mut select = staff_user::Entity::find();
    if let Some(role) = filter.role {
        select = select.filter(staff_user::Column::Role.eq(role.as_str()));
    }
    if let Some(search) = &filter.search {
        select = select.filter(contains(staff_user::Column::Username, search));
    }
    if let Some(active) = filter.active {
        select = select.filter(staff_user::Column::IsActive.eq(active));
    }
    fetch_page(db, sort.apply(select, staff_user::Column::Id), page).await
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// The actor's name, exactly.
    pub actor: Option<String>,
}

pub async fn list_audit_log(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    sort: &Sort<audit_log::Column>,
    page: PageRequest,
) -> Result<(Vec<audit_log::Model>, u64), DbErr> {
    let mut select = audit_log::Entity::find();
    if let Some(action) = &filter.action {
        select = select.filter(audit_log::Column::Action.eq(action.as_str()));
    }
    if let Some(entity_type) = &filter.entity_type {
        select = select.filter(audit_log::Column::EntityType.eq(entity_type.as_str()));
    }
    if let Some(entity_id) = &filter.entity_id {
        select = select.filter(audit_log::Column::EntityId.eq(entity_id.as_str()));
    }
    if let Some(actor) = &filter.actor {
        select = select.filter(audit_log::Column::ActorName.eq(actor.as_str()));
    }
    fetch_page(db, sort.apply(select, audit_log::Column::Id), page).await
}
