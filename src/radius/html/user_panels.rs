//! The RADIUS panels on a network user's page: the user's radcheck and
//! radreply rows and groups as FreeRADIUS sees them, recent sessions and
//! usage.

use chrono::{Duration, Utc};

use super::super::accounting::{self, DateRange};
use super::super::service::{self as radius, AttrRow};
use super::charts::{UsageChart, UsageRow};
use super::online::SessionActions;
use super::rows::{session_rows, SessionRow};
use super::{CHART_DAYS, USER_PAGE_SESSIONS};
use crate::app::AppState;
use crate::error::AppError;
use crate::query::PageRequest;

/// One `attribute op value` row; a password's value is masked.
pub struct AttrView {
    pub attribute: String,
    pub op: String,
    pub value: String,
}

impl AttrView {
    pub(super) fn of(row: &AttrRow) -> Self {
        Self {
            attribute: row.attribute.clone(),
            op: row.op.clone(),
            value: if row.is_password() {
                "••••••••".into()
            } else {
                row.value.clone()
            },
        }
    }
}

/// A group of the user, with its rows.
pub struct GroupView {
    pub name: String,
    pub priority: i32,
    pub check: Vec<AttrView>,
    pub reply: Vec<AttrView>,
}

/// The RADIUS panels of the user page: the rows FreeRADIUS will read for
/// this user, and the latest sessions with a usage chart.
pub struct UserRadiusPanels {
    pub user_id: i32,
    pub check: Vec<AttrView>,
    pub reply: Vec<AttrView>,
    pub groups: Vec<GroupView>,
    /// The package's group when radusergroup does not name it (not synced).
    pub expected_group: Option<String>,
    pub no_rows: bool,
    pub sessions: Vec<SessionRow>,
    pub total_sessions: u64,
    pub chart: UsageChart,
    pub chart_totals: UsageRow,
    pub accounting_href: String,
    /// Set by the user page for staff who may disconnect.
    pub actions: Option<SessionActions>,
}

/// Reads what the user page's RADIUS panels show. `package_group` is the
/// RADIUS group of the user's package, if any.
pub async fn user_panels(
    state: &AppState,
    user_id: i32,
    username: &str,
    package_group: Option<&str>,
) -> Result<UserRadiusPanels, AppError> {
    let db = &state.db.radius;
    let rows = radius::current_user_rows(db, username).await?;
    let mut groups = Vec::new();
    for (name, priority) in &rows.groups {
        let group = radius::current_group_rows(db, name).await?;
        groups.push(GroupView {
            name: name.clone(),
            priority: *priority,
            check: group.check.iter().map(AttrView::of).collect(),
            reply: group.reply.iter().map(AttrView::of).collect(),
        });
    }
    let expected_group = package_group
        .filter(|g| !rows.groups.iter().any(|(name, _)| name == g))
        .map(str::to_string);
    let now = Utc::now();
    let range = DateRange::last_days(CHART_DAYS, now);
    let (sessions, total_sessions) = accounting::user_sessions(
        db,
        username,
        &DateRange::default(),
        PageRequest {
            page: 1,
            per_page: USER_PAGE_SESSIONS,
        },
    )
    .await?;
    let days = accounting::usage_by_day(db, Some(username), &range).await?;
    let today = now.date_naive();
    Ok(UserRadiusPanels {
        user_id,
        no_rows: rows.is_empty(),
        check: rows.check.iter().map(AttrView::of).collect(),
        reply: rows.reply.iter().map(AttrView::of).collect(),
        groups,
        expected_group,
        sessions: session_rows(state, sessions, false).await?,
        total_sessions,
        chart: UsageChart::new(&days, today - Duration::days(CHART_DAYS - 1), today),
        chart_totals: UsageRow::of(
            format!("Last {CHART_DAYS} days"),
            &accounting::total_of(&days),
        ),
        accounting_href: format!("/users/{user_id}/accounting"),
        actions: None,
    })
}
