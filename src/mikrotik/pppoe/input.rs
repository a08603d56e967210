//! What a caller gives for a PPPoE user, and the `/ppp/secret` values it
//! becomes once checked (a linked network user's name, password, profile
//! and status win over the caller's).

use std::net::Ipv4Addr;

use sea_orm::{ConnectionTrait, EntityTrait};

use super::service::PPP_SERVICES;
use crate::crypto::{AppKey, Secret};
use crate::error::FieldErrors;
use crate::ipam::domain::NetUsername;
use crate::mikrotik::routeros::Row;
use crate::mikrotik::service::MikrotikError;
use crate::text::optional_text;
use crate::users::entities::{network_user, service_package};

/// The fields of a `/ppp/secret`, as ispd writes them. `Debug` redacts the
/// password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretValues {
    pub name: String,
    pub password: Secret,
    pub service: String,
    /// None: the router's `default` profile.
    pub profile: Option<String>,
    pub local_address: Option<Ipv4Addr>,
    pub remote_address: Option<Ipv4Addr>,
    pub disabled: bool,
}

impl SecretValues {
    /// Reads a `/ppp/secret` row.
    pub(crate) fn from_row(row: &Row) -> SecretValues {
        let text = |key: &str| row.get(key).map(String::as_str).unwrap_or_default();
        let address = |key: &str| text(key).parse::<Ipv4Addr>().ok();
        SecretValues {
            name: text("name").to_string(),
            password: Secret::new(text("password")),
            service: match text("service") {
                "" => "any".to_string(),
                other => other.to_string(),
            },
            profile: match text("profile") {
                "" | "default" => None,
                other => Some(other.to_string()),
            },
            local_address: address("local-address"),
            remote_address: address("remote-address"),
            disabled: matches!(text("disabled"), "true" | "yes"),
        }
    }

    /// `=key=value` pairs for `add` (`replacing` None: unset fields left
    /// out) or for a `set` over the `replacing` values (every field, so that
    /// the secret ends up exactly like this; an address is cleared only if
    /// it was set, so that a set and its undo leave the row as it was).
    pub(crate) fn args(&self, replacing: Option<&SecretValues>) -> Vec<(&'static str, String)> {
        let for_set = replacing.is_some();
        let mut args = vec![
            ("name", self.name.clone()),
            ("password", self.password.expose().to_string()),
            ("service", self.service.clone()),
        ];
        match (&self.profile, for_set) {
            (Some(profile), _) => args.push(("profile", profile.clone())),
            (None, true) => args.push(("profile", "default".into())),
            (None, false) => {}
        }
        for (key, value, current) in [
            (
                "local-address",
                self.local_address,
                replacing.and_then(|c| c.local_address),
            ),
            (
                "remote-address",
                self.remote_address,
                replacing.and_then(|c| c.remote_address),
            ),
        ] {
            match (value, current) {
                (Some(ip), _) => args.push((key, ip.to_string())),
                (None, Some(_)) => args.push((key, String::new())),
                (None, None) => {}
            }
        }
        args.push((
            "disabled",
            if self.disabled { "yes" } else { "no" }.to_string(),
        ));
        args
    }
}

/// A PPPoE user as the caller gives it.
#[derive(Debug, Clone, Default)]
pub struct PppoeInput {
    pub router_id: i32,
    /// Ignored when `network_user_id` is set (the user's name is used).
    pub username: String,
    /// Required on create unless `network_user_id` is set; on update,
    /// absent keeps the current one.
    pub password: Option<Secret>,
    /// Default `pppoe`.
    pub service: Option<String>,
    /// The router's PPP profile; none means `default`. With
    /// `network_user_id`, the user's package's profile is used.
    pub profile: Option<String>,
    pub local_address: Option<String>,
    pub remote_address: Option<String>,
    pub disabled: bool,
    /// A network user of service type pppoe whose secret this is: its name,
    /// password, package profile and status then follow the user.
    pub network_user_id: Option<i32>,
}

#[derive(Debug, Clone)]
pub(super) struct PppoeSpec {
    pub(super) network_user_id: Option<i32>,
    pub(super) values: SecretValues,
    /// False on an update that keeps the current password.
    pub(super) password_given: bool,
}

fn ipv4_field(field: &str, value: &Option<String>, errors: &mut FieldErrors) -> Option<Ipv4Addr> {
    let text = optional_text(value)?;
    match text.parse::<Ipv4Addr>() {
        Ok(ip) if !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast() => Some(ip),
        Ok(_) => {
            errors.insert(field.into(), format!("{text} cannot be a PPP address"));
            None
        }
        Err(_) => {
            errors.insert(field.into(), format!("\"{text}\" is not an IPv4 address"));
            None
        }
    }
}

/// Checks a PPP password: 1 to 128 characters, no control characters, no
/// quotes or backslashes (RouterOS scripts and exports would mangle them).
fn check_ppp_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if !(1..=128).contains(&len) {
        return Err("must be 1 to 128 characters long".into());
    }
    if password
        .chars()
        .any(|c| c.is_control() || matches!(c, '"' | '\\'))
    {
        return Err("must not contain control characters, quotes or backslashes".into());
    }
    Ok(())
}

/// What a linked network user dictates for its secret.
#[derive(Debug, Clone)]
pub struct NetworkUserSecret {
    pub username: String,
    /// None keeps the password the router has.
    pub password: Option<Secret>,
    pub profile: Option<String>,
    /// Suspended or disabled users, and users that are no longer PPPoE
    /// users, get `disabled=yes`.
    pub disabled: bool,
}

impl NetworkUserSecret {
    /// From a network user's row (its current password) and its package.
    pub fn of_user(
        key: &AppKey,
        user: &network_user::Model,
        package: Option<&service_package::Model>,
    ) -> Result<NetworkUserSecret, MikrotikError> {
        Ok(NetworkUserSecret {
            username: user.username.clone(),
            password: Some(key.decrypt(&user.password_encrypted)?),
            profile: package.and_then(|p| p.mikrotik_profile.clone()),
            disabled: user.status != "active" || user.service_type != "pppoe",
        })
    }
}

async fn linked_user_secret(
    db: &impl ConnectionTrait,
    key: &AppKey,
    network_user_id: i32,
) -> Result<NetworkUserSecret, MikrotikError> {
    let user = network_user::Entity::find_by_id(network_user_id)
        .one(db)
        .await?
        .ok_or_else(|| {
            MikrotikError::invalid(
                "network_user_id",
                format!("there is no network user with id {network_user_id}"),
            )
        })?;
    if user.service_type != "pppoe" {
        return Err(MikrotikError::invalid(
            "network_user_id",
            format!(
                "network user \"{}\" is a {} user, not a PPPoE user",
                user.username, user.service_type
            ),
        ));
    }
    let package = match user.package_id {
        Some(id) => service_package::Entity::find_by_id(id).one(db).await?,
        None => None,
    };
    NetworkUserSecret::of_user(key, &user, package.as_ref())
}

impl PppoeInput {
    pub(super) async fn validate(
        &self,
        db: &impl ConnectionTrait,
        key: &AppKey,
        creating: bool,
    ) -> Result<PppoeSpec, MikrotikError> {
        let mut errors = FieldErrors::new();
        let linked = match self.network_user_id {
            Some(id) => match linked_user_secret(db, key, id).await {
                Ok(secret) => Some(secret),
                Err(MikrotikError::Invalid(fields)) => {
                    errors.extend(fields);
                    None
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        let name = match &linked {
            Some(secret) => secret.username.clone(),
            None => match NetUsername::parse(&self.username) {
                Ok(name) => name.as_str().to_string(),
                Err(e) => {
                    errors.insert("username".into(), e);
                    String::new()
                }
            },
        };
        let password = match &linked {
            Some(secret) => secret.password.clone(),
            None => self.password.clone().filter(|p| !p.expose().is_empty()),
        };
        match &password {
            None if creating => {
                errors.insert("password".into(), "is required".into());
            }
            // A linked user's password was checked by the users service.
            Some(p) if linked.is_none() => {
                if let Err(e) = check_ppp_password(p.expose()) {
                    errors.insert("password".into(), e);
                }
            }
            Some(_) => {}
            None => {}
        }
        let service = optional_text(&self.service)
            .unwrap_or("pppoe")
            .to_ascii_lowercase();
        if !PPP_SERVICES.contains(&service.as_str()) {
            errors.insert(
                "service".into(),
                format!("must be one of {}", PPP_SERVICES.join(", ")),
            );
        }
        let profile = match &linked {
            Some(secret) => secret.profile.clone(),
            None => optional_text(&self.profile).map(str::to_string),
        };
        if let Some(profile) = &profile {
            if let Err(e) = crate::users::domain::MikrotikProfile::parse(profile) {
                errors.insert("profile".into(), e);
            }
        }
        let local_address = ipv4_field("local_address", &self.local_address, &mut errors);
        let remote_address = ipv4_field("remote_address", &self.remote_address, &mut errors);
        let disabled = linked.as_ref().map_or(self.disabled, |s| s.disabled);
        if !errors.is_empty() {
            return Err(MikrotikError::Invalid(errors));
        }
        Ok(PppoeSpec {
            network_user_id: self.network_user_id,
            password_given: password.is_some(),
            values: SecretValues {
                name,
                password: password.unwrap_or_else(|| Secret::new("")),
                service,
                profile: profile.map(|p| p.trim().to_string()),
                local_address,
                remote_address,
                disabled,
            },
        })
    }
}
