//! Who is asking: the staff roles, their floors as types for extractors,
//! and the actor that the audit log records. Plain types below every room,
//! so that the HTTP edges (`web`, `api`) and every domain can name them
//! without importing one another.

use std::fmt;
use std::str::FromStr;

/// What a staff member or token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read only.
    Viewer,
    /// Day-to-day changes.
    Operator,
    /// Everything, including staff and tokens.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "\"{other}\" is not a role (admin, operator or viewer)"
            )),
        }
    }
}

/// A role as a type, for extractors that check it before the handler runs
/// (`web::forms::Staff<Operator>`, `api::auth::Api<Viewer>`).
pub trait AtLeast: Send + Sync + 'static {
    const ROLE: Role;
}

/// Any signed-in member or token.
pub struct Viewer;
/// Operators and admins.
pub struct Operator;
/// Admins only.
pub struct Admin;

impl AtLeast for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl AtLeast for Operator {
    const ROLE: Role = Role::Operator;
}
impl AtLeast for Admin {
    const ROLE: Role = Role::Admin;
}

/// Who did something.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<i32>,
    pub name: String,
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Staff,
    Token,
    Cli,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Staff => "staff",
            ActorKind::Token => "token",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
        }
    }
}

impl Actor {
    /// Someone at the server's console, running an `ispd` command.
    pub fn cli() -> Self {
        let name = std::env::var("USER").unwrap_or_else(|_| "console".into());
        Self {
            kind: ActorKind::Cli,
            id: None,
            name,
            ip_address: None,
        }
    }

    /// ispd itself: first-run setup, scheduled jobs.
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
            name: "ispd".into(),
            ip_address: None,
        }
    }

    pub fn staff_id(&self) -> Option<i32> {
        (self.kind == ActorKind::Staff).then_some(self.id).flatten()
    }
}
