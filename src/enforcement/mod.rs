//! Subscriber state enforced on the network: a suspension, an expiry or a
//! resumption reaches the subscriber's live sessions within seconds (a
//! CoA that changes them in place, or a Disconnect), and counts as applied
//! only when the session shows it.
//!
//! This room sits above users, RADIUS and the routers, and owns the saga
//! that joins them ([`service::enforce_user`]); none of them calls back up.
//! [`plan`] decides the request for a session, [`delivery`] sends it,
//! retries it and confirms it, and the `enforcement` job runs a pass every
//! minute ([`service::run_pass`]). [`api`] and [`html`] are its two
//! surfaces: the billing-facing JSON and the subscriber page's panel.
//! [`events`] tells billing and CRM systems what happened, as webhook
//! events.

pub mod api;
pub mod delivery;
pub mod entities;
pub mod events;
pub mod html;
pub mod plan;
pub mod service;

use sea_orm::DbErr;

use crate::config::Config;
use crate::crypto::AppKey;
use crate::db::Databases;
use crate::error::AppError;
use crate::ipam::service::IpamSettings;
use crate::mikrotik::pool::RouterPool;
use crate::radius::coa::CoaSettings;
use crate::users::service::UsersError;

/// What enforcement reaches: both databases, the app key (the subscribers'
/// RADIUS passwords), the routers (their PPP secrets and sessions), how
/// hard to try a NAS, and the IPAM settings a subscriber's write needs.
#[derive(Clone)]
pub struct Reach {
    pub db: Databases,
    pub key: AppKey,
    pub routers: RouterPool,
    pub coa: CoaSettings,
    pub ipam: IpamSettings,
}

impl Reach {
    /// What a request of the web server reaches.
    pub fn from_app(state: &crate::app::AppState) -> Self {
        Self::new(
            state.db.clone(),
            state.app_key.clone(),
            state.router_pool.clone(),
            &state.config,
        )
    }

    /// With the NAS and IPAM settings of `config`.
    pub fn new(db: Databases, key: AppKey, routers: RouterPool, config: &Config) -> Self {
        Self {
            db,
            key,
            routers,
            coa: CoaSettings::from_config(config),
            ipam: IpamSettings::from_config(config),
        }
    }
}

/// Runs `work` on every item, at most `limit` at a time, and gives the
/// results in the order of the items. Every item runs to its end: a send
/// to a NAS is never cut off half-way, even when another one failed.
pub(crate) async fn in_parallel<T, R, F, Fut>(
    items: Vec<T>,
    limit: usize,
    work: F,
) -> Result<Vec<R>, tokio::task::JoinError>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let mut results: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let mut queue = items.into_iter().enumerate();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < limit.max(1) {
            let Some((index, item)) = queue.next() else {
                break;
            };
            let job = work(item);
            running.spawn(async move { (index, job.await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (index, result) = joined?;
        results[index] = Some(result);
    }
    Ok(results.into_iter().flatten().collect())
}

#[derive(Debug, thiserror::Error)]
pub enum EnforcementError {
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<EnforcementError> for AppError {
    fn from(err: EnforcementError) -> Self {
        match err {
            EnforcementError::Users(users) => users.into(),
            EnforcementError::Db(db) => db.into(),
            EnforcementError::Internal(err) => AppError::Internal(err),
        }
    }
}
