//! One accounting session as a table row, shared by the online list, the
//! report and the user pages.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use super::super::accounting::{
    self, human_bytes, human_duration, Session as RadSession, STALE_CAUSE,
};
use crate::app::AppState;
use crate::error::AppError;
use crate::web::listing::when;

/// A session as the tables show it. It carries what a row action (the
/// Disconnect button) needs: `radacctid`, `acct_session_id`,
/// `acct_unique_id`, `username`, `nas_ip` and `framed_ip`.
pub struct SessionRow {
    pub radacctid: i64,
    pub acct_session_id: String,
    pub acct_unique_id: String,
    pub username: String,
    /// The network user's page, when the username is one of ours.
    pub user_href: Option<String>,
    pub nas_ip: String,
    pub framed_ip: String,
    pub mac: String,
    pub started: String,
    pub stopped: String,
    pub duration: String,
    pub input: String,
    pub output: String,
    pub input_octets: i64,
    pub output_octets: i64,
    pub cause: String,
    pub open: bool,
    /// Closed by ispd's stale-session cleanup.
    pub stale: bool,
    /// Open sessions: time since the last accounting packet.
    pub last_update_age: String,
    /// Open sessions: more than two default intervals without an update.
    pub overdue: bool,
}

fn dash_str(value: &Option<String>) -> String {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or("—")
        .to_string()
}

impl SessionRow {
    pub fn of(s: RadSession, now: DateTime<Utc>, user_href: Option<String>) -> Self {
        let open = s.is_open();
        let age = if open {
            s.last_update_age_secs(now)
        } else {
            None
        };
        let default_interval = accounting::StaleSettings::default().default_interval_secs;
        Self {
            radacctid: s.radacctid,
            user_href,
            nas_ip: if s.nas_ip.is_empty() {
                "—".into()
            } else {
                s.nas_ip.clone()
            },
            framed_ip: dash_str(&s.framed_ip),
            mac: dash_str(&s.calling_station_id),
            started: s
                .started_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "—".into()),
            stopped: match &s.stopped_at {
                Some(at) => when(at),
                None => "online".into(),
            },
            duration: s
                .duration_secs(now)
                .map(human_duration)
                .unwrap_or_else(|| "—".into()),
            input: human_bytes(s.input_octets),
            output: human_bytes(s.output_octets),
            input_octets: s.input_octets,
            output_octets: s.output_octets,
            cause: dash_str(&s.terminate_cause),
            stale: s.terminate_cause.as_deref() == Some(STALE_CAUSE),
            open,
            last_update_age: age
                .map(|a| format!("{} ago", human_duration(a)))
                .unwrap_or_else(|| "—".into()),
            overdue: age.is_some_and(|a| a > 2 * default_interval),
            acct_session_id: s.acct_session_id,
            acct_unique_id: s.acct_unique_id,
            username: s.username,
        }
    }
}

/// Links to the network users among these usernames.
pub(super) async fn user_links(
    main_db: &impl ConnectionTrait,
    usernames: impl Iterator<Item = String>,
) -> Result<HashMap<String, String>, AppError> {
    let mut names: Vec<String> = usernames.filter(|u| !u.is_empty()).collect();
    names.sort();
    names.dedup();
    let found = crate::users::service::ids_by_username(main_db, names).await?;
    Ok(found
        .into_iter()
        .map(|(name, id)| (name, format!("/users/{id}")))
        .collect())
}

pub(super) async fn session_rows(
    state: &AppState,
    sessions: Vec<RadSession>,
    link_users: bool,
) -> Result<Vec<SessionRow>, AppError> {
    let links = if link_users {
        user_links(&state.db.main, sessions.iter().map(|s| s.username.clone())).await?
    } else {
        HashMap::new()
    };
    let now = Utc::now();
    Ok(sessions
        .into_iter()
        .map(|s| {
            let href = links.get(&s.username).cloned();
            SessionRow::of(s, now, href)
        })
        .collect())
}
