//! Staff sign-in: axum-login over the staff_users table, sessions in the
//! main database, and the member each request carries
//! ([`end_expired_sessions`] leaves it for `access::SignedIn`).

pub mod callers;
pub mod session_store;
pub mod throttle;

use axum::response::IntoResponse;
use axum_login::{AuthUser, AuthnBackend};
use sea_orm::{DatabaseConnection, EntityTrait};

use crate::access::StaffUser;
use crate::crypto::Secret;
use crate::staff::entities::staff_user;
use crate::staff::service::find_by_username;

/// The session's member of an account row; none for a disabled account or
/// an unknown role.
fn member_of(row: staff_user::Model) -> Option<StaffUser> {
    if !row.is_active {
        return None;
    }
    let role = row.role.parse().ok()?;
    Some(StaffUser::new(
        row.id,
        row.username,
        role,
        row.password_hash,
    ))
}

impl AuthUser for StaffUser {
    type Id = i32;

    fn id(&self) -> Self::Id {
        self.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash().as_bytes()
    }
}

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone)]
pub struct StaffBackend {
    db: DatabaseConnection,
}

impl StaffBackend {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl StaffBackend {
    pub async fn get_user_by_id(&self, id: i32) -> Result<Option<StaffUser>, sea_orm::DbErr> {
        Ok(staff_user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .and_then(member_of))
    }

    /// Whether `password` is the staff member's current password.
    pub async fn verify_password(
        &self,
        id: i32,
        password: &Secret,
    ) -> Result<bool, sea_orm::DbErr> {
        let Some(row) = staff_user::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(false);
        };
        Ok(check_password(password, row.password_hash).await)
    }
}

/// argon2 verifications running at once, at most: each takes tens of MiB
/// and a core for a while, so a burst of sign-ins waits its turn instead of
/// filling the blocking pool and the memory.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 4;

static VERIFICATIONS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MAX_CONCURRENT_VERIFICATIONS);

/// argon2 is slow by design: verify off the async threads, a few at a time.
async fn check_password(password: &Secret, hash: String) -> bool {
    let Ok(_permit) = VERIFICATIONS.acquire().await else {
        return false;
    };
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        password_auth::verify_password(password.expose(), &hash).is_ok()
    })
    .await
    .unwrap_or(false)
}

impl AuthnBackend for StaffBackend {
    type User = StaffUser;
    type Credentials = Credentials;
    type Error = sea_orm::DbErr;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<StaffUser>, Self::Error> {
        let row = find_by_username(&self.db, &creds.username)
            .await
            .map_err(|e| match e {
                crate::staff::service::StaffError::Db(db) => db,
                other => sea_orm::DbErr::Custom(other.to_string()),
            })?;
        // Verify even for an unknown user, against a fixed hash, so that the
        // response time does not tell which usernames exist.
        let hash = row
            .as_ref()
            .map(|r| r.password_hash.clone())
            .unwrap_or_else(|| UNKNOWN_USER_HASH.clone());
        let matches = check_password(&creds.password, hash).await;
        Ok(row.filter(|_| matches).and_then(member_of))
    }

    async fn get_user(&self, id: &i32) -> Result<Option<StaffUser>, Self::Error> {
        self.get_user_by_id(*id).await
    }
}

/// An argon2 hash of a random string nobody knows, made once.
static UNKNOWN_USER_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| password_auth::generate_hash(crate::crypto::random_password(32)));

pub type AuthSession = axum_login::AuthSession<StaffBackend>;

/// Sessions end after this long without a request.
pub const SESSION_IDLE_LIMIT: time::Duration = time::Duration::hours(8);

/// Sessions end this long after signing in, however busy: a stolen cookie
/// does not work for ever.
pub const SESSION_ABSOLUTE_LIMIT: time::Duration = time::Duration::hours(24);

/// Session key of the time (Unix seconds) the member signed in.
const SIGNED_IN_AT: &str = "signed_in_at";

/// Starts the absolute lifetime of a session; called when signing in.
pub async fn start_session_clock(
    session: &tower_sessions::Session,
) -> Result<(), crate::error::AppError> {
    session
        .insert(
            SIGNED_IN_AT,
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )
        .await
        .map_err(|e| crate::error::AppError::Internal(e.into()))
}

/// Middleware (inside the auth layer): signs out a session older than
/// [`SESSION_ABSOLUTE_LIMIT`], or one that has no sign-in time, before any
/// handler sees its user; then leaves the member of a live session in the
/// request's extensions, where [`crate::access::SignedIn`], the page frame
/// and the API's caller find them.
pub async fn end_expired_sessions(
    mut auth: AuthSession,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if auth.user.is_some() {
        let started: Option<i64> = auth.session.get(SIGNED_IN_AT).await.ok().flatten();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let expired = started
            .is_none_or(|at| now.saturating_sub(at) > SESSION_ABSOLUTE_LIMIT.whole_seconds());
        if expired {
            if let Err(e) = auth.logout().await {
                return crate::error::AppError::Internal(anyhow::anyhow!("{e}")).into_response();
            }
            // Handlers that sign in or out read the session from here.
            request.extensions_mut().insert(auth.clone());
        }
    }
    if let Some(member) = auth.user {
        request.extensions_mut().insert(member);
    }
    next.run(request).await
}

pub type AuthLayer = axum_login::AuthManagerLayer<StaffBackend, session_store::DbSessionStore>;

/// Sessions (HttpOnly, SameSite=Lax, Secure when APP_URL is https, stored
/// in the main database) and staff authentication on top of them.
pub fn auth_layer(state: &crate::app::AppState) -> AuthLayer {
    use tower_sessions::cookie::SameSite;
    use tower_sessions::{Expiry, SessionManagerLayer};
    let sessions =
        SessionManagerLayer::new(session_store::DbSessionStore::new(state.db.main.clone()))
            .with_name(crate::web::SESSION_COOKIE)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(state.config.is_https())
            .with_expiry(Expiry::OnInactivity(SESSION_IDLE_LIMIT));
    axum_login::AuthManagerLayerBuilder::new(StaffBackend::new(state.db.main.clone()), sessions)
        .with_data_key(session_store::AUTH_DATA_KEY)
        .build()
}
