//! The figures of the live dashboard, which `/metrics` exports as gauges
//! too: pools and their utilization, sessions online now and over the last
//! day, routers up and down, network users by status, the last run of each
//! job, today's traffic, and the session changes of enforcement not
//! applied yet.
//!
//! Everything is read from the databases on each call (a handful of
//! aggregate queries); nothing is cached, so the page and a scrape show
//! the same, current numbers.
//!
//! The RADIUS database is a separate system: when it cannot be read, the
//! figures derived from it are `None` and the rest are still returned.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tracing::instrument;

use crate::enforcement::delivery::unconfirmed_count;
use crate::ipam::entities::{ip_allocation, ip_pool, ip_subnet};
use crate::ipam::service::{pools_utilization, IpamError};
use crate::jobs::runs::{self, RunStatus};
use crate::mikrotik::entities::mikrotik_router;
use crate::mikrotik::service::{
    ROUTER_STATUS_OFFLINE, ROUTER_STATUS_ONLINE, ROUTER_STATUS_UNKNOWN,
};
use crate::radius::accounting;
use crate::users::domain::UserStatus;
use crate::users::entities::{network_user, network_user_session};

pub mod html;
pub mod metrics;

/// Moments of the online trend: every two hours from 24 hours ago to now.
pub const TREND_POINTS: usize = 13;
/// The time between two moments of the trend.
pub const TREND_STEP_HOURS: i64 = 2;

/// At most this many down routers are named (the count covers them all).
pub const MAX_DOWN_NAMED: u64 = 20;

/// The user statuses, in the order the dashboard lists them.
pub const USER_STATUSES: [UserStatus; 3] = [
    UserStatus::Active,
    UserStatus::Suspended,
    UserStatus::Disabled,
];

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl From<DashboardError> for crate::error::AppError {
    fn from(err: DashboardError) -> Self {
        match err {
            DashboardError::Ipam(err) => err.into(),
            DashboardError::Db(err) => err.into(),
        }
    }
}

/// Everything the dashboard shows, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardFigures {
    pub computed_at: DateTime<Utc>,
    /// Every pool by name.
    pub pools: Vec<PoolFigure>,
    /// PPP sessions the routers reported at the last session sync
    /// (`network_user_sessions` from MikroTik, still active).
    pub router_sessions: u64,
    /// None when the RADIUS database could not be read.
    pub radius: Option<RadiusFigures>,
    pub routers: RouterFigures,
    pub users: UserFigures,
    /// Every scheduled job, in the Jobs page's order.
    pub jobs: Vec<JobFigure>,
    /// Session changes (suspend, resume, expiry) not confirmed within
    /// five minutes, and those given up in the last day
    /// ([`crate::enforcement::delivery::unconfirmed_count`]).
    pub enforcement_unconfirmed: u64,
}

/// A pool's utilization: active allocations over usable addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolFigure {
    pub id: i32,
    pub name: String,
    pub used: u128,
    pub total: u128,
    /// used / total in percent, two decimals; 0 for a pool without subnets.
    pub percent: f64,
}

impl PoolFigure {
    /// used / total, between 0 and 1; 0 for a pool without addresses.
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.used as f64 / self.total as f64
        }
    }
}

/// The figures read from RADIUS accounting (radacct).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusFigures {
    /// Open sessions (no stop time), as the online list counts them.
    pub online_now: u64,
    /// Sessions online at each moment of the last 24 hours, oldest first
    /// ([`TREND_POINTS`] moments, the last one now).
    pub trend: Vec<TrendPoint>,
    pub traffic_today: TrafficToday,
}

impl RadiusFigures {
    /// Sessions online at the first moment of the trend, 24 hours ago.
    pub fn online_day_ago(&self) -> u64 {
        self.trend.first().map(|p| p.online).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrendPoint {
    pub at: DateTime<Utc>,
    pub online: u64,
}

/// Traffic of the sessions active today (UTC), whole: see
/// [`accounting::usage_of_sessions_active_between`] for what a session that
/// started before midnight brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficToday {
    pub sessions: u64,
    /// Sent to the subscribers (acctoutputoctets).
    pub download_octets: i64,
    /// Received from the subscribers (acctinputoctets).
    pub upload_octets: i64,
}

/// MikroTik routers by the status of their last test or check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouterFigures {
    pub online: u64,
    pub offline: u64,
    /// Never tested (and any status ispd does not know).
    pub unknown: u64,
    /// The names of the offline routers, by name, at most [`MAX_DOWN_NAMED`].
    pub down: Vec<String>,
}

impl RouterFigures {
    pub fn total(&self) -> u64 {
        self.online + self.offline + self.unknown
    }

    /// The statuses with their counts, for a list or a gauge.
    pub fn by_status(&self) -> [(&'static str, u64); 3] {
        [
            (ROUTER_STATUS_ONLINE, self.online),
            (ROUTER_STATUS_OFFLINE, self.offline),
            (ROUTER_STATUS_UNKNOWN, self.unknown),
        ]
    }
}

/// Network users (RADIUS subscribers) by status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserFigures {
    /// One count per status of [`USER_STATUSES`], in that order.
    pub by_status: Vec<(&'static str, u64)>,
    /// Users whose RADIUS rows still await a sync (after a failed write).
    pub sync_pending: u64,
}

impl UserFigures {
    pub fn total(&self) -> u64 {
        self.by_status.iter().map(|(_, n)| n).sum()
    }
}

/// A scheduled job and how its latest finished run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFigure {
    pub name: &'static str,
    /// None when it has not finished a run yet.
    pub last_run: Option<LastRun>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub id: i64,
    /// succeeded, failed or timed_out.
    pub status: String,
    pub finished_at: Option<DateTime<Utc>>,
}

impl LastRun {
    pub fn succeeded(&self) -> bool {
        self.status == RunStatus::Succeeded.as_str()
    }
}

/// The dashboard's figures at `now`, from the main and the RADIUS database.
#[instrument(skip_all)]
pub async fn figures(
    main_db: &impl ConnectionTrait,
    radius_db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<DashboardFigures, DashboardError> {
    let radius = match radius_figures(radius_db, now).await {
        Ok(figures) => Some(figures),
        Err(err) => {
            tracing::warn!(error = %err, "the RADIUS figures of the dashboard could not be read");
            None
        }
    };
    Ok(DashboardFigures {
        computed_at: now,
        pools: pool_figures(main_db).await?,
        router_sessions: network_user_session::Entity::find()
            .filter(network_user_session::Column::Source.eq("mikrotik"))
            .filter(network_user_session::Column::Status.eq("active"))
            .count(main_db)
            .await?,
        radius,
        routers: router_figures(main_db).await?,
        users: user_figures(main_db).await?,
        jobs: job_figures(main_db).await?,
        enforcement_unconfirmed: unconfirmed_count(main_db, now).await?,
    })
}

async fn pool_figures(db: &impl ConnectionTrait) -> Result<Vec<PoolFigure>, IpamError> {
    let pools = ip_pool::Entity::find()
        .order_by_asc(ip_pool::Column::Name)
        .all(db)
        .await?;
    let ids: Vec<i32> = pools.iter().map(|p| p.id).collect();
    let mut usage = pools_utilization(db, &ids).await?;
    Ok(pools
        .into_iter()
        .map(|pool| {
            let (used, total, percent) = usage
                .remove(&pool.id)
                .map(|u| {
                    (
                        u.utilization.allocated,
                        u.utilization.total,
                        u.utilization.percent,
                    )
                })
                .unwrap_or((0, 0, 0.0));
            PoolFigure {
                id: pool.id,
                name: pool.name,
                used,
                total,
                percent,
            }
        })
        .collect())
}

async fn radius_figures(
    radius_db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<RadiusFigures, DbErr> {
    let moments: Vec<DateTime<Utc>> = (0..TREND_POINTS as i64)
        .rev()
        .map(|back| now - Duration::hours(back * TREND_STEP_HOURS))
        .collect();
    let trend = accounting::online_trend(radius_db, &moments).await?;
    let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
    let today = accounting::usage_of_sessions_active_between(
        radius_db,
        midnight,
        midnight + Duration::days(1),
    )
    .await?;
    Ok(RadiusFigures {
        online_now: trend.open_now,
        trend: trend
            .points
            .into_iter()
            .map(|(at, online)| TrendPoint { at, online })
            .collect(),
        traffic_today: TrafficToday {
            sessions: today.sessions,
            download_octets: today.output_octets,
            upload_octets: today.input_octets,
        },
    })
}

#[derive(FromQueryResult)]
struct CountByStatus {
    status: String,
    count: i64,
}

/// Rows per value of a `status` column, from one GROUP BY.
async fn counts_by_status<E>(
    db: &impl ConnectionTrait,
    status: E::Column,
) -> Result<HashMap<String, u64>, DbErr>
where
    E: EntityTrait,
{
    let rows = E::find()
        .select_only()
        .column_as(status, "status")
        .column_as(status.count(), "count")
        .group_by(status)
        .into_model::<CountByStatus>()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.status, r.count.max(0) as u64))
        .collect())
}

async fn router_figures(db: &impl ConnectionTrait) -> Result<RouterFigures, DbErr> {
    let counts =
        counts_by_status::<mikrotik_router::Entity>(db, mikrotik_router::Column::Status).await?;
    let mut figures = RouterFigures::default();
    for (status, n) in counts {
        match status.as_str() {
            ROUTER_STATUS_ONLINE => figures.online += n,
            ROUTER_STATUS_OFFLINE => figures.offline += n,
            _ => figures.unknown += n,
        }
    }
    if figures.offline > 0 {
        figures.down = mikrotik_router::Entity::find()
            .filter(mikrotik_router::Column::Status.eq(ROUTER_STATUS_OFFLINE))
            .order_by_asc(mikrotik_router::Column::Name)
            .limit(MAX_DOWN_NAMED)
            .all(db)
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect();
    }
    Ok(figures)
}

async fn user_figures(db: &impl ConnectionTrait) -> Result<UserFigures, DbErr> {
    let counts = counts_by_status::<network_user::Entity>(db, network_user::Column::Status).await?;
    Ok(UserFigures {
        by_status: USER_STATUSES
            .iter()
            .map(|s| (s.as_str(), counts.get(s.as_str()).copied().unwrap_or(0)))
            .collect(),
        sync_pending: network_user::Entity::find()
            .filter(network_user::Column::RadiusSyncPending.eq(true))
            .count(db)
            .await?,
    })
}

async fn job_figures(db: &impl ConnectionTrait) -> Result<Vec<JobFigure>, DbErr> {
    let mut jobs = Vec::with_capacity(crate::jobs::SCHEDULE.len());
    for job in crate::jobs::SCHEDULE {
        let last_run = runs::last_finished_run(db, job.name)
            .await?
            .map(|run| LastRun {
                id: run.id,
                status: run.status,
                finished_at: run.finished_at.map(|at| at.to_utc()),
            });
        jobs.push(JobFigure {
            name: job.name,
            last_run,
        });
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_without_addresses_is_empty_not_full() {
        let pool = PoolFigure {
            id: 1,
            name: "new".into(),
            used: 0,
            total: 0,
            percent: 0.0,
        };
        assert_eq!(pool.ratio(), 0.0);
        let half = PoolFigure {
            used: 3,
            total: 6,
            ..pool
        };
        assert_eq!(half.ratio(), 0.5);
    }

    #[test]
    fn the_trend_spans_the_last_day() {
        assert_eq!((TREND_POINTS as i64 - 1) * TREND_STEP_HOURS, 24);
    }
}

/// How many of each record there are, for the dashboard's tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCounts {
    pub pools: u64,
    pub subnets: u64,
    pub active_allocations: u64,
    pub network_users: u64,
    /// PPP sessions the routers reported at their last sync.
    pub router_sessions: u64,
    pub routers: u64,
}

pub async fn record_counts(db: &impl ConnectionTrait) -> Result<RecordCounts, DbErr> {
    Ok(RecordCounts {
        pools: ip_pool::Entity::find().count(db).await?,
        subnets: ip_subnet::Entity::find().count(db).await?,
        active_allocations: ip_allocation::Entity::find()
            .filter(ip_allocation::Column::Active.eq(true))
            .count(db)
            .await?,
        network_users: network_user::Entity::find().count(db).await?,
        router_sessions: network_user_session::Entity::find()
            .filter(network_user_session::Column::Source.eq("mikrotik"))
            .filter(network_user_session::Column::Status.eq("active"))
            .count(db)
            .await?,
        routers: mikrotik_router::Entity::find().count(db).await?,
    })
}
