//! A network user as the caller gives it, and the checks that need no
//! database ([`UserInput::validate`]).

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::crypto::Secret;
use crate::error::FieldErrors;
use crate::text::optional_text;
use crate::users::domain::{check_password, MacAddress, NetUsername, ServiceType, UserStatus};
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
}

impl UserInput {
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
                })
            }
            _ => Err(UsersError::Invalid(errors)),
        }
    }
}
