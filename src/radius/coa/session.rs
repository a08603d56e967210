//! Disconnecting or changing an accounting session: find the open
//! session and its NAS, send the request, and report the result.

use std::net::{IpAddr, SocketAddr};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde_json::json;
use tracing::instrument;

use super::exchange::{exchange, AttemptResult};
use super::packet::{build_request, Reply};
use super::request::{error_cause_text, CoaChanges, RequestKind, SessionRef};
use super::{CoaSettings, DEFAULT_COA_PORT};
use crate::audit::{self, Actor};
use crate::error::{AppError, FieldErrors};

#[derive(Debug, thiserror::Error)]
pub enum CoaError {
    #[error("{0}")]
    NotFound(String),
    /// 409: the session ended, or its NAS is not registered/usable.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("some fields are not valid")]
    Invalid(FieldErrors),
    /// 504 after the last attempt.
    #[error("{0}")]
    Timeout(String),
    /// 502.
    #[error("{0}")]
    Unreachable(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl From<CoaError> for AppError {
    fn from(err: CoaError) -> Self {
        match err {
            CoaError::NotFound(what) => AppError::NotFound(what),
            CoaError::Conflict { code, message } => AppError::Conflict { code, message },
            CoaError::Invalid(fields) => AppError::validation(fields),
            CoaError::Timeout(message) => AppError::GatewayTimeout {
                code: "nas_timeout",
                message,
            },
            CoaError::Unreachable(message) => AppError::BadGateway {
                code: "nas_unreachable",
                message,
            },
            CoaError::Db(db) => db.into(),
        }
    }
}

/// What the NAS answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoaResult {
    pub kind: RequestKind,
    pub session: SessionRef,
    /// The nas row's nasname and the UDP port used.
    pub nas: String,
    pub port: u16,
    pub reply: Reply,
    pub attempts: u32,
}

impl CoaResult {
    pub fn acknowledged(&self) -> bool {
        self.reply == Reply::Ack
    }

    pub fn error_cause(&self) -> Option<u32> {
        match self.reply {
            Reply::Nak { error_cause } => error_cause,
            Reply::Ack => None,
        }
    }

    /// One sentence for a flash message or a log line.
    pub fn summary(&self) -> String {
        let who = self.session.username.as_deref().unwrap_or("(no username)");
        match self.reply {
            Reply::Ack => format!(
                "{} of session {} ({who}) acknowledged by NAS {}.",
                self.kind.name(),
                self.session.radacctid,
                self.nas
            ),
            Reply::Nak { error_cause } => format!(
                "NAS {} refused the {} for session {} ({who}): {}.",
                self.nas,
                self.kind.name(),
                self.session.radacctid,
                match error_cause {
                    Some(c) => format!("{} ({c})", error_cause_text(c)),
                    None => "no Error-Cause given".into(),
                }
            ),
        }
    }
}

/// The open session `radacctid`: 404 when there is none, 409 when it ended.
pub async fn find_open_session(
    radius_db: &impl ConnectionTrait,
    radacctid: i64,
) -> Result<SessionRef, CoaError> {
    let backend = radius_db.get_database_backend();
    // PostgreSQL's address columns are inet: read them as text (see
    // entities::radacct).
    let (nas, framed) = match backend {
        DbBackend::Postgres => ("abbrev(nasipaddress)", "abbrev(framedipaddress)"),
        _ => ("nasipaddress", "framedipaddress"),
    };
    let placeholder = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "SELECT acctsessionid, username, {nas} AS nasipaddress, {framed} AS framedipaddress \
         FROM radacct WHERE radacctid = {placeholder} AND acctstoptime IS NULL"
    );
    let row = radius_db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [radacctid.into()],
        ))
        .await?;
    if let Some(row) = row {
        return Ok(SessionRef {
            radacctid,
            acctsessionid: row.try_get("", "acctsessionid")?,
            username: row.try_get("", "username")?,
            nasipaddress: row.try_get("", "nasipaddress")?,
            framedipaddress: row.try_get("", "framedipaddress")?,
        });
    }
    let exists = radius_db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT acctsessionid FROM radacct WHERE radacctid = {placeholder}"),
            [radacctid.into()],
        ))
        .await?
        .is_some();
    if exists {
        Err(CoaError::Conflict {
            code: "session_closed",
            message: format!("session {radacctid} has already ended"),
        })
    } else {
        Err(CoaError::NotFound(format!(
            "there is no accounting session {radacctid}"
        )))
    }
}

/// Sends a Disconnect-Request for the session `radacctid` to its NAS.
#[instrument(skip_all, fields(radacct.id = radacctid))]
pub async fn disconnect_session(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    settings: CoaSettings,
    actor: &Actor,
    radacctid: i64,
) -> Result<CoaResult, CoaError> {
    send_for_session(
        main_db,
        radius_db,
        settings,
        actor,
        radacctid,
        RequestKind::Disconnect,
        None,
    )
    .await
}

/// Sends a CoA-Request with `changes` for the session `radacctid`.
#[instrument(skip_all, fields(radacct.id = radacctid))]
pub async fn change_session(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    settings: CoaSettings,
    actor: &Actor,
    radacctid: i64,
    changes: &CoaChanges,
) -> Result<CoaResult, CoaError> {
    send_for_session(
        main_db,
        radius_db,
        settings,
        actor,
        radacctid,
        RequestKind::Coa,
        Some(changes),
    )
    .await
}

async fn send_for_session(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    settings: CoaSettings,
    actor: &Actor,
    radacctid: i64,
    kind: RequestKind,
    changes: Option<&CoaChanges>,
) -> Result<CoaResult, CoaError> {
    let session = find_open_session(radius_db, radacctid).await?;
    let address: IpAddr = session
        .nasipaddress
        .trim()
        .parse()
        .map_err(|_| CoaError::Conflict {
            code: "nas_unusable",
            message: format!(
                "session {radacctid}'s NAS address \"{}\" is not an IP address",
                session.nasipaddress
            ),
        })?;
    let nas = super::super::nas::find_by_nasname(radius_db, &address.to_string())
        .await?
        .ok_or_else(|| CoaError::Conflict {
            code: "nas_not_registered",
            message: format!(
                "NAS {address} is not registered: add it (with its shared secret) under NAS first"
            ),
        })?;
    let port = nas
        .ports
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_COA_PORT);
    let target = SocketAddr::new(address, port);
    let secret = nas.secret.as_bytes();
    let (request, identifier) =
        build_request(kind, &session, changes, secret).map_err(|e| CoaError::Conflict {
            code: "request_too_large",
            message: format!("the {} cannot be built: {e}", kind.name()),
        })?;
    tracing::info!(nas = %target, identifier, kind = kind.name(), "sending");
    let exchange = exchange(kind, target, &request, secret, settings).await;

    let total = exchange.attempts.len();
    for (i, attempt) in exchange.attempts.iter().enumerate() {
        let (error_cause, detail) = match attempt {
            AttemptResult::Reply(Reply::Nak { error_cause }) => (*error_cause, None),
            AttemptResult::Unreachable(why) => (None, Some(why.clone())),
            _ => (None, None),
        };
        audit::record(
            main_db,
            actor,
            kind.audit_action(),
            "radius_session",
            Some(radacctid.to_string()),
            json!({
                "attempt": i + 1,
                "of": settings.attempts,
                "outcome": attempt.as_str(),
                "error_cause": error_cause,
                "error_cause_text": error_cause.map(error_cause_text),
                "detail": detail,
                "nas": nas.nasname,
                "port": port,
                "username": session.username,
                "acctsessionid": session.acctsessionid,
                "identifier": identifier,
                "rate_limit": changes.and_then(|c| c.rate_limit.clone()),
                "session_timeout_secs": changes.and_then(|c| c.session_timeout_secs),
                "final": i + 1 == total,
            }),
        )
        .await?;
    }
    tracing::info!(
        nas = %target,
        outcome = exchange.last().as_str(),
        attempts = total,
        ignored = exchange.ignored_replies,
        kind = kind.name(),
        "dynamic authorization finished"
    );
    match exchange.last().clone() {
        AttemptResult::Reply(reply) => Ok(CoaResult {
            kind,
            session,
            nas: nas.nasname,
            port,
            reply,
            attempts: total as u32,
        }),
        AttemptResult::NoAnswer => Err(CoaError::Timeout(format!(
            "NAS {target} did not answer the {} ({total} attempt(s), {} ms each)",
            kind.name(),
            settings.timeout.as_millis()
        ))),
        AttemptResult::Unreachable(why) => Err(CoaError::Unreachable(format!(
            "NAS {target} cannot be reached: {why}"
        ))),
    }
}
