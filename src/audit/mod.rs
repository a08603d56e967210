//! The audit log: every change records who made it.

pub mod api;
pub mod entities;
pub mod html;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use crate::query::{contains, fetch_page, PageRequest, Sort};

use entities::audit_log;

pub use crate::access::{Actor, ActorKind};

/// Appends one entry. Call it inside the transaction of the change it
/// describes, so that the two commit or roll back together.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    entity_type: &str,
    entity_id: Option<String>,
    details: serde_json::Value,
) -> Result<(), DbErr> {
    audit_log::ActiveModel {
        actor_kind: Set(actor.kind.as_str().into()),
        actor_id: Set(actor.id),
        actor_name: Set(actor.name.clone()),
        action: Set(action.into()),
        entity_type: Set(entity_type.into()),
        entity_id: Set(entity_id),
        details: Set(Some(details.to_string())),
        ip_address: Set(actor.ip_address.clone()),
        created_at: Set(Utc::now().into()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// The actor's name, exactly.
    pub actor: Option<String>,
    /// Part of the action, the actor's name or the kind of thing, any case.
    pub search: Option<String>,
}

/// The orders the audit log can be read in.
pub const AUDIT_SORTS: &[(&str, audit_log::Column)] = &[
    ("id", audit_log::Column::Id),
    ("created_at", audit_log::Column::CreatedAt),
    ("action", audit_log::Column::Action),
];

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
    if let Some(text) = &filter.search {
        select = select.filter(
            Condition::any()
                .add(contains(audit_log::Column::Action, text))
                .add(contains(audit_log::Column::ActorName, text))
                .add(contains(audit_log::Column::EntityType, text)),
        );
    }
    fetch_page(db, sort.apply(select, audit_log::Column::Id), page).await
}
