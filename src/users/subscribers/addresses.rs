//! A static user's address, which IPAM holds: taking one for a user,
//! giving it back, and what an update does with it. IPAM commits on its
//! own, so these steps are ordered and compensated by the service (see
//! [`crate::users::service`]).

use std::net::IpAddr;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::input::{StaticTarget, UserInput, UserSpec};
use super::service::find_user;
use crate::audit::Actor;
use crate::ipam::service::{self as ipam, AllocationInput, IpamError, IpamSettings};
use crate::users::entities::network_user;
use crate::users::service::UsersError;

/// IPAM's answer in the user's terms: its fields renamed, a missing subnet
/// a field error rather than a 404.
pub(super) fn allocation_error(err: IpamError, target: StaticTarget) -> UsersError {
    match err {
        IpamError::NotFound(_) => UsersError::invalid(
            "static_subnet_id",
            format!("there is no IPAM subnet with id {}", target.subnet_id),
        ),
        IpamError::Invalid(fields) => UsersError::Invalid(
            fields
                .into_iter()
                .map(|(field, message)| {
                    let field = match field.as_str() {
                        "ip_address" => "static_ip".to_string(),
                        "subnet_id" => "static_subnet_id".to_string(),
                        _ => field,
                    };
                    (field, message)
                })
                .collect(),
        ),
        other => UsersError::Ipam(other),
    }
}

/// An allocation this call made, which must be undone if the user's write
/// fails.
pub(super) struct NewAllocation {
    pub id: i64,
    pub ip: String,
    /// False when IPAM returned an allocation this username and MAC held
    /// before (reserved by hand): adopted, and not ours to release.
    pub created: bool,
}

pub(super) async fn allocate_static(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    spec: &UserSpec,
    target: StaticTarget,
) -> Result<NewAllocation, UsersError> {
    let allocated = ipam::allocate_ip(
        db,
        settings,
        actor,
        &AllocationInput {
            subnet_id: target.subnet_id,
            mac_address: spec.mac_address.as_ref().map(|m| m.as_str().to_string()),
            username: Some(spec.username.as_str().to_string()),
            ip_address: target.ip.map(|ip| ip.to_string()),
            expires_at: None,
        },
    )
    .await
    .map_err(|e| allocation_error(e, target))?;
    let allocation = NewAllocation {
        id: allocated.allocation.id,
        ip: allocated.allocation.ip_address.clone(),
        created: allocated.created,
    };
    if !allocation.created {
        // Adopting an existing allocation is fine unless another user holds it.
        let holder = network_user::Entity::find()
            .filter(network_user::Column::StaticAllocationId.eq(allocation.id))
            .one(db)
            .await?;
        if let Some(holder) = holder {
            return Err(UsersError::Conflict {
                code: "address_in_use",
                message: format!(
                    "{} is the static address of user \"{}\"",
                    allocation.ip, holder.username
                ),
            });
        }
    }
    Ok(allocation)
}

/// Gives back an allocation: the compensation of a failed write, or the
/// address of a user that is gone or no longer static. Returns the id when
/// IPAM could not release it (logged).
pub(super) async fn release_static(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    allocation_id: i64,
) -> Option<i64> {
    match ipam::release_ip(db, settings, actor, allocation_id).await {
        Ok(_) | Err(IpamError::NotFound(_)) => None,
        Err(err) => {
            tracing::error!(
                ip_allocation.id = allocation_id,
                error = %err,
                "a static address could not be released; release it in IPAM"
            );
            Some(allocation_id)
        }
    }
}

/// Undoes a new allocation after the user's write failed, and passes the
/// write's error on.
pub(super) async fn undo_allocation<T>(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    allocation: &Option<NewAllocation>,
    err: UsersError,
) -> Result<T, UsersError> {
    if let Some(allocation) = allocation.as_ref().filter(|a| a.created) {
        release_static(db, settings, actor, allocation.id).await;
    }
    Err(err)
}

/// What an update does with the static address.
pub(super) enum StaticPlan {
    /// Keep what the user has (possibly nothing).
    Keep,
    /// Take a new address; give up the old allocation, if any, afterwards.
    Replace { old: Option<i64> },
    /// No longer static: give up this allocation afterwards.
    Drop { old: i64 },
}

pub(super) async fn plan_static(
    db: &DatabaseConnection,
    existing: &network_user::Model,
    target: Option<StaticTarget>,
) -> Result<StaticPlan, UsersError> {
    // The current allocation, if IPAM still has it active (it may have been
    // released in IPAM directly).
    let current = match existing.static_allocation_id {
        Some(id) => match ipam::get_allocation(db, id).await {
            Ok(a) if a.active == Some(true) => Some(a),
            Ok(_) | Err(IpamError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    Ok(match (target, current) {
        (None, None) => StaticPlan::Keep,
        (None, Some(current)) => StaticPlan::Drop { old: current.id },
        (Some(_), None) => StaticPlan::Replace {
            old: existing.static_allocation_id,
        },
        (Some(target), Some(current)) if target.subnet_id == current.subnet_id => {
            let same_ip = target
                .ip
                .is_none_or(|ip| current.ip_address.parse::<IpAddr>().ok() == Some(ip));
            if !same_ip {
                // IPAM keeps one address per subscriber and subnet, so a new
                // one cannot be taken before the old one is given back, and
                // giving it back first could lose it. Not done in one step.
                return Err(UsersError::invalid(
                    "static_ip",
                    format!(
                        "the user holds {} in this subnet; to change it, make the user non-static first, or choose another subnet",
                        current.ip_address
                    ),
                ));
            }
            StaticPlan::Keep
        }
        (Some(_), Some(current)) => StaticPlan::Replace {
            old: Some(current.id),
        },
    })
}

/// A static user whose input names no subnet keeps the address it has:
/// the input, with the subnet of the user's current allocation filled in.
pub(super) async fn keeping_static_subnet(
    db: &DatabaseConnection,
    id: i32,
    input: &UserInput,
) -> Result<UserInput, UsersError> {
    let mut input = input.clone();
    if input.static_subnet_id.is_none() && input.service_type.trim() == "static" {
        if let Some(allocation_id) = find_user(db, id).await?.static_allocation_id {
            if let Ok(allocation) = ipam::get_allocation(db, allocation_id).await {
                input.static_subnet_id = Some(allocation.subnet_id);
            }
        }
    }
    Ok(input)
}
