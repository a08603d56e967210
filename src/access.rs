//! Who is asking: the staff roles, their floors as types for extractors,
//! and the actor that the audit log records. Plain types below every room,
//! so that the HTTP edges (`web`, `api`) and every domain can name them
//! without importing one another.

use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

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

/// A signed-in staff member, as a request sees them.
#[derive(Clone)]
pub struct StaffUser {
    pub id: i32,
    pub username: String,
    pub role: Role,
    /// Signing in stores this; a changed password no longer matches it,
    /// which ends every session made with the old one.
    password_hash: String,
}

impl std::fmt::Debug for StaffUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl StaffUser {
    /// The member as a session holds them; `password_hash` binds the
    /// session to the password it was made with.
    pub fn new(id: i32, username: String, role: Role, password_hash: String) -> Self {
        Self {
            id,
            username,
            role,
            password_hash,
        }
    }

    /// The password hash the session was made with.
    pub fn password_hash(&self) -> &str {
        &self.password_hash
    }

    /// 403 unless the member's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), crate::error::AppError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(crate::error::AppError::forbidden_for_role())
        }
    }

    pub fn actor(&self, ip_address: Option<String>) -> Actor {
        Actor {
            kind: ActorKind::Staff,
            id: Some(self.id),
            name: self.username.clone(),
            ip_address,
        }
    }
}

/// The signed-in staff member; requests without one are refused (the web
/// layer turns that into a redirect to the login page, the API into 401).
///
/// The sign-in layer (`staff::auth::expose_member`) leaves the member of a
/// live session in the request's extensions; a request it has not seen has
/// no member, and is refused.
pub struct SignedIn(pub StaffUser);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = crate::error::AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<StaffUser>()
            .cloned()
            .map(SignedIn)
            .ok_or(crate::error::AppError::Unauthenticated)
    }
}
