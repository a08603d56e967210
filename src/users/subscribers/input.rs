//! A network user as the caller gives it, and the checks that need no
//! database ([`UserInput::validate`]); a change to some of its settings
//! ([`UserChanges`]) is turned into the same input, so that it meets the
//! same checks.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::crypto::Secret;
use crate::error::FieldErrors;
use crate::text::optional_text;
use crate::users::domain::{check_password, MacAddress, NetUsername, ServiceType, UserStatus};
use crate::users::entities::network_user;
use crate::users::quota::AnchorDay;
use crate::users::service::UsersError;

/// A network user as the caller gives it; the same shape creates and
/// replaces one.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub username: String,
    /// Required on create; on update `None` keeps the current password.
    pub password: Option<Secret>,
    /// pppoe, hotspot or static.
    pub service_type: String,
    pub package_id: Option<i32>,
    /// active (the default), suspended or disabled.
    pub status: Option<String>,
    pub mac_address: Option<String>,
    /// Must be in the future when the user is created.
    pub expires_at: Option<DateTime<Utc>>,
    /// For service_type static: the IPAM subnet the address comes from.
    pub static_subnet_id: Option<i32>,
    /// For service_type static: this address, else the lowest free one.
    pub static_ip: Option<String>,
    pub full_name: Option<String>,
    pub notes: Option<String>,
    /// The day of the month (1 to 28) its billing cycle starts; None: its
    /// package's.
    pub cycle_anchor_day: Option<i64>,
}

/// A change to some of a user's settings, read as a JSON merge patch
/// (RFC 7396) over its [`UserInput`]: for each field `None` keeps the
/// current value, `Some(None)` clears it (as leaving it out of a full
/// replacement would), `Some(Some(value))` sets it.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// Cleared, it is empty, which the checks refuse.
    pub username: Option<Option<String>>,
    /// `None` keeps the current password; a user cannot be without one.
    pub password: Option<Secret>,
    /// Cleared, it is empty, which the checks refuse.
    pub service_type: Option<Option<String>>,
    /// Cleared, the checks refuse it: a user needs a package.
    pub package_id: Option<Option<i32>>,
    /// Cleared, it is the default, active.
    pub status: Option<Option<String>>,
    pub mac_address: Option<Option<String>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// Kept or cleared, a static user keeps its current address.
    pub static_subnet_id: Option<Option<i32>>,
    /// Kept or cleared, a static user keeps its current address.
    pub static_ip: Option<Option<String>>,
    pub full_name: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub cycle_anchor_day: Option<Option<i64>>,
}

/// Where a static user's address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticTarget {
    pub subnet_id: i32,
    pub ip: Option<IpAddr>,
}

#[derive(Debug, Clone)]
pub struct UserSpec {
    pub username: NetUsername,
    pub password: Option<Secret>,
    pub service_type: ServiceType,
    pub package_id: i32,
    pub status: UserStatus,
    pub mac_address: Option<MacAddress>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Some exactly when the service type is static.
    pub static_target: Option<StaticTarget>,
    pub full_name: Option<String>,
    pub notes: Option<String>,
    pub cycle_anchor_day: Option<AnchorDay>,
}

impl UserInput {
    /// The input that leaves `user` as it is: its settings, no password
    /// (the current one stays), and no subnet or address named. A static
    /// user then keeps the address it holds, the way a replacement that
    /// names none does: the update fills in the subnet of the current
    /// allocation and keeps that allocation. The held address is not
    /// named, because a change of service type away from static would
    /// then be refused (`static_ip` is only for static users) unless it
    /// also cleared the address.
    pub fn unchanged(user: &network_user::Model) -> Self {
        Self {
            username: user.username.clone(),
            password: None,
            service_type: user.service_type.clone(),
            package_id: user.package_id,
            status: Some(user.status.clone()),
            mac_address: user.mac_address.clone(),
            expires_at: user.expires_at.map(|at| at.to_utc()),
            static_subnet_id: None,
            static_ip: None,
            full_name: user.full_name.clone(),
            notes: user.notes.clone(),
            cycle_anchor_day: user.cycle_anchor_day.map(i64::from),
        }
    }

    /// This input with `changes` merged over it. Nothing is checked here:
    /// the result goes through [`UserInput::validate`] like any other, so
    /// a change is refused with the same messages as a replacement.
    pub fn changed(mut self, changes: UserChanges) -> Self {
        fn merge<T>(field: &mut Option<T>, change: Option<Option<T>>) {
            if let Some(value) = change {
                *field = value;
            }
        }
        // A required text cleared is empty, and refused as such.
        if let Some(username) = changes.username {
            self.username = username.unwrap_or_default();
        }
        if let Some(service_type) = changes.service_type {
            self.service_type = service_type.unwrap_or_default();
        }
        if changes.password.is_some() {
            self.password = changes.password;
        }
        merge(&mut self.package_id, changes.package_id);
        merge(&mut self.status, changes.status);
        merge(&mut self.mac_address, changes.mac_address);
        merge(&mut self.expires_at, changes.expires_at);
        merge(&mut self.static_subnet_id, changes.static_subnet_id);
        merge(&mut self.static_ip, changes.static_ip);
        merge(&mut self.full_name, changes.full_name);
        merge(&mut self.notes, changes.notes);
        merge(&mut self.cycle_anchor_day, changes.cycle_anchor_day);
        self
    }

    /// Checks every field that needs no database; all problems together.
    /// `creating`: a password is required, and an expiry must lie ahead.
    pub fn validate(&self, creating: bool) -> Result<UserSpec, UsersError> {
        let mut errors = FieldErrors::new();
        let username = match NetUsername::parse(&self.username) {
            Ok(name) => Some(name),
            Err(e) => {
                errors.insert("username".into(), e);
                None
            }
        };
        match &self.password {
            None if creating => {
                errors.insert("password".into(), "is required".into());
            }
            Some(password) => {
                if let Err(e) = check_password(password.expose()) {
                    errors.insert("password".into(), e);
                }
            }
            None => {}
        }
        let service_type = match self.service_type.parse::<ServiceType>() {
            Ok(t) => Some(t),
            Err(e) => {
                errors.insert("service_type".into(), e);
                None
            }
        };
        if self.package_id.is_none() {
            errors.insert("package_id".into(), "is required".into());
        }
        let status = match optional_text(&self.status).map(str::parse::<UserStatus>) {
            None => Some(UserStatus::Active),
            Some(Ok(status)) => Some(status),
            Some(Err(e)) => {
                errors.insert("status".into(), e);
                None
            }
        };
        let mac_address = match optional_text(&self.mac_address).map(MacAddress::parse) {
            Some(Err(e)) => {
                errors.insert("mac_address".into(), e);
                None
            }
            other => other.and_then(Result::ok),
        };
        if creating && self.expires_at.is_some_and(|at| at <= Utc::now()) {
            errors.insert("expires_at".into(), "must be in the future".into());
        }
        let static_ip = match optional_text(&self.static_ip).map(crate::ipam::domain::parse_ip) {
            Some(Err(e)) => {
                errors.insert("static_ip".into(), e);
                None
            }
            other => other.and_then(Result::ok),
        };
        let static_target = match (service_type, self.static_subnet_id) {
            (Some(ServiceType::Static), Some(subnet_id)) => Some(StaticTarget {
                subnet_id,
                ip: static_ip,
            }),
            (Some(ServiceType::Static), None) => {
                errors.insert(
                    "static_subnet_id".into(),
                    "is required for a static user: the subnet its address comes from".into(),
                );
                None
            }
            (Some(_), subnet) => {
                if subnet.is_some() {
                    errors.insert(
                        "static_subnet_id".into(),
                        "is only for service_type static".into(),
                    );
                }
                if optional_text(&self.static_ip).is_some() {
                    errors.insert("static_ip".into(), "is only for service_type static".into());
                }
                None
            }
            (None, _) => None,
        };
        let full_name = optional_text(&self.full_name).map(str::to_string);
        if full_name.as_ref().is_some_and(|n| n.chars().count() > 128) {
            errors.insert(
                "full_name".into(),
                "must be at most 128 characters long".into(),
            );
        }
        let notes = optional_text(&self.notes).map(str::to_string);
        if notes.as_ref().is_some_and(|n| n.chars().count() > 10_000) {
            errors.insert(
                "notes".into(),
                "must be at most 10000 characters long".into(),
            );
        }
        let cycle_anchor_day = match self.cycle_anchor_day.map(AnchorDay::new) {
            Some(Err(e)) => {
                errors.insert("cycle_anchor_day".into(), e);
                None
            }
            other => other.and_then(Result::ok),
        };
        match (username, service_type, self.package_id, status) {
            (Some(username), Some(service_type), Some(package_id), Some(status))
                if errors.is_empty() =>
            {
                Ok(UserSpec {
                    username,
                    password: self.password.clone(),
                    service_type,
                    package_id,
                    status,
                    mac_address,
                    expires_at: self.expires_at,
                    static_target,
                    full_name,
                    notes,
                    cycle_anchor_day,
                })
            }
            _ => Err(UsersError::Invalid(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn static_user() -> network_user::Model {
        let at = Utc.with_ymd_and_hms(2099, 1, 2, 3, 4, 5).unwrap().into();
        network_user::Model {
            id: 7,
            username: "alice".into(),
            password_encrypted: "sealed".into(),
            service_type: "static".into(),
            package_id: Some(1),
            status: "suspended".into(),
            static_ip: Some("100.64.0.2".into()),
            static_allocation_id: Some(3),
            mac_address: Some("aa:bb:cc:dd:ee:ff".into()),
            expires_at: Some(at),
            full_name: Some("Alice".into()),
            notes: Some("Flat 4B".into()),
            radius_sync_pending: false,
            radius_synced_at: None,
            enforced_state: None,
            enforced_service: None,
            enforced_at: None,
            cycle_anchor_day: None,
            quota_policy_id: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn no_changes_keep_every_setting_and_the_password() {
        let user = static_user();
        let input = UserInput::unchanged(&user).changed(UserChanges::default());
        assert_eq!(input.username, "alice");
        assert_eq!(input.service_type, "static");
        assert_eq!(input.package_id, Some(1));
        assert_eq!(input.status.as_deref(), Some("suspended"));
        assert_eq!(input.mac_address.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
        assert_eq!(input.expires_at, user.expires_at.map(|at| at.to_utc()));
        assert_eq!(input.full_name.as_deref(), Some("Alice"));
        assert_eq!(input.notes.as_deref(), Some("Flat 4B"));
        assert!(input.password.is_none(), "the current password stays");
        // No subnet or address named: the update keeps the held one.
        assert_eq!((input.static_subnet_id, input.static_ip), (None, None));
    }

    #[test]
    fn null_clears_a_field_and_a_value_sets_it() {
        let input = UserInput::unchanged(&static_user()).changed(UserChanges {
            expires_at: Some(None),
            mac_address: Some(None),
            full_name: Some(Some("Alice Example".into())),
            password: Some(Secret::new("An0ther-password")),
            ..UserChanges::default()
        });
        assert_eq!(input.expires_at, None);
        assert_eq!(input.mac_address, None);
        assert_eq!(input.full_name.as_deref(), Some("Alice Example"));
        assert_eq!(input.notes.as_deref(), Some("Flat 4B"), "left out, kept");
        assert!(input.password.is_some());
    }

    #[test]
    fn a_cleared_required_field_is_refused_by_the_usual_checks() {
        let input = UserInput::unchanged(&static_user()).changed(UserChanges {
            username: Some(None),
            package_id: Some(None),
            ..UserChanges::default()
        });
        let Err(UsersError::Invalid(fields)) = input.validate(false) else {
            panic!("a user without a name or package passed");
        };
        assert!(fields.contains_key("username"), "{fields:?}");
        assert_eq!(fields["package_id"], "is required");
    }
}
