//! Staff accounts and API tokens: the people and scripts that operate ispd.

pub mod account;
pub mod api;
pub mod auth;
pub mod entities;
pub mod html;
pub mod service;

pub use crate::access::{Admin, AtLeast, Operator, Role, Viewer};

/// A staff login name: 3-64 characters of letters, digits, `.`, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffUsername(String);

impl StaffUsername {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !(3..=64).contains(&name.len()) {
            return Err("must be 3 to 64 characters long".into());
        }
        if !name.chars().all(allowed) {
            return Err("may contain only letters, digits, '.', '_' and '-'".into());
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Minimum length of a staff password chosen by a person.
pub const MIN_PASSWORD_LEN: usize = 12;

pub fn validate_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "must be at least {MIN_PASSWORD_LEN} characters long"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_order_by_power() {
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert!("root".parse::<Role>().unwrap_err().contains("not a role"));
    }

    #[test]
    fn usernames_are_checked() {
        assert!(StaffUsername::parse("admin").is_ok());
        for bad in ["ab", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(
                StaffUsername::parse(bad).is_err(),
                "{bad} should be refused"
            );
        }
    }
}
