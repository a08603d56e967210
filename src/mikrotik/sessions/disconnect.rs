//! Disconnecting a live session on its router (`/ppp/active/remove`).

use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;

use super::super::pool::RouterPool;
use super::super::routeros::{self};
use super::super::service::MikrotikError;
use super::live::{find_router, LiveSessionId};
use super::reading::{nas_ip, session_key, ActiveSession};
use super::{SESSION_ACTIVE, SESSION_CLOSED};
use crate::audit::{self, Actor};
use crate::db::begin_write;
use crate::users::entities::network_user_session;

/// What was disconnected.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Disconnected {
    #[schema(example = "3-1A")]
    pub id: String,
    #[schema(example = 3)]
    pub router_id: i32,
    #[schema(example = "core-1")]
    pub router_name: String,
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = "100.64.0.10")]
    pub address: Option<String>,
}

/// Removes a session from `/ppp/active`, which disconnects the subscriber;
/// closes its synced row, if any, and records the disconnection in the
/// audit log. 404 when the router has no such session (any more).
pub async fn disconnect(
    db: &DatabaseConnection,
    pool: &RouterPool,
    actor: &Actor,
    id: &LiveSessionId,
) -> Result<Disconnected, MikrotikError> {
    let router = find_router(db, id.router_id).await?;
    let item_id = id.item_id.clone();
    let removed = pool
        .run(&router, |client| {
            let item_id = item_id.clone();
            async move {
                let query = format!(".id={item_id}");
                let rows = client
                    .print(
                        "/ppp/active",
                        &[".id", "name", "service", "address", "session-id"],
                        &[&query],
                    )
                    .await?;
                let Some(row) = rows.into_iter().next() else {
                    return Ok(None);
                };
                match client
                    .command("/ppp/active/remove", &[(".id", &item_id)], &[])
                    .await
                {
                    Ok(_) => Ok(Some(row)),
                    // Gone between the print and the remove.
                    Err(routeros::Error::Trap {
                        category: Some(0), ..
                    }) => Ok(None),
                    Err(err) => Err(err),
                }
            }
        })
        .await?;
    let Some(row) = removed else {
        return Err(MikrotikError::NotFound(format!(
            "router {} has no active session {}",
            router.name, item_id
        )));
    };
    let session = ActiveSession {
        item_id: item_id.clone(),
        name: row.get("name").cloned().unwrap_or_default(),
        service: row.get("service").cloned().unwrap_or_default(),
        caller_id: None,
        address: row.get("address").cloned().filter(|a| !a.is_empty()),
        uptime: Duration::ZERO,
        session_id: row.get("session-id").cloned().filter(|s| !s.is_empty()),
        upload_bytes: None,
        download_bytes: None,
    };
    let now = Utc::now();
    let txn = begin_write(db).await?;
    network_user_session::Entity::update_many()
        .col_expr(
            network_user_session::Column::Status,
            Expr::value(SESSION_CLOSED),
        )
        .col_expr(
            network_user_session::Column::EndTime,
            Expr::value(now.fixed_offset()),
        )
        .col_expr(
            network_user_session::Column::UpdatedAt,
            Expr::value(now.fixed_offset()),
        )
        .filter(network_user_session::Column::NasIp.eq(nas_ip(&router)))
        .filter(network_user_session::Column::SessionId.eq(session_key(router.id, &session)))
        .filter(network_user_session::Column::Status.eq(SESSION_ACTIVE))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        "mikrotik.session.disconnect",
        "mikrotik_session",
        Some(id.to_string()),
        serde_json::json!({
            "router_id": router.id,
            "router": router.name,
            "item_id": item_id,
            "username": session.name,
            "address": session.address,
        }),
    )
    .await?;
    txn.commit().await?;
    Ok(Disconnected {
        id: id.to_string(),
        router_id: router.id,
        router_name: router.name,
        username: session.name,
        address: session.address,
    })
}

/// What [`disconnect_username`] did on one router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterCut {
    pub router_name: String,
    /// The PPP sessions removed.
    pub removed: usize,
    /// Sessions of the name the router still lists after the removal: 0
    /// when the router's own read confirms the cut.
    pub remaining: usize,
}

/// Removes every session of the PPP secret `username` from the router's
/// `/ppp/active`, then reads it again: the second read is the confirmation.
/// Audited as `mikrotik.session.disconnect` when something was removed.
pub async fn disconnect_username(
    db: &DatabaseConnection,
    pool: &RouterPool,
    actor: &Actor,
    router_id: i32,
    username: &str,
) -> Result<RouterCut, MikrotikError> {
    let router = find_router(db, router_id).await?;
    let name = username.to_string();
    let (removed, remaining) = pool
        .run(&router, |client| {
            let query = format!("name={name}");
            async move {
                let rows = client
                    .print("/ppp/active", &[".id", "name"], &[&query])
                    .await?;
                let mut removed = 0;
                for row in &rows {
                    let Some(item_id) = row.get(".id") else {
                        continue;
                    };
                    match client
                        .command("/ppp/active/remove", &[(".id", item_id)], &[])
                        .await
                    {
                        Ok(_) => removed += 1,
                        // Gone between the print and the remove.
                        Err(routeros::Error::Trap {
                            category: Some(0), ..
                        }) => {}
                        Err(err) => return Err(err),
                    }
                }
                let after = client.print("/ppp/active", &[".id"], &[&query]).await?;
                Ok((removed, after.len()))
            }
        })
        .await?;
    if removed > 0 {
        audit::record(
            db,
            actor,
            "mikrotik.session.disconnect",
            "mikrotik_session",
            None,
            serde_json::json!({
                "router_id": router.id,
                "router": router.name,
                "username": username,
                "removed": removed,
            }),
        )
        .await?;
    }
    Ok(RouterCut {
        router_name: router.name,
        removed,
        remaining,
    })
}
