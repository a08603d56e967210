//! Counting usage from radacct, then moving subscribers between tiers.
//!
//! FreeRADIUS writes radacct; this only reads it, so FreeRADIUS's own
//! accounting writes cost what they always did (no trigger, no index on a
//! column an interim update changes). Each pass:
//!
//! 1. reads every open session and every session newer than the last one
//!    counted (a session that started and stopped between two passes), and
//!    the sessions still counted as open that radacct no longer lists open;
//! 2. per session, compares the octet counters with those already counted
//!    (`quota_session_counters`) and adds only the growth
//!    ([`counter_growth`]: gigawords included, a 32-bit wrap recognised) to
//!    the cycle the reading belongs to (its update or stop time, so that a
//!    session spanning the cycle boundary counts its bytes before it in the
//!    old cycle and after it in the new one). The counter and the usage
//!    change in one transaction, and the counter only moves from the value
//!    it was read at: a reading counts once, even with two passes at once;
//! 3. puts every subscriber whose usage grew, or who is in a tier, in the
//!    tier its usage this cycle says ([`reassess`]: a CoA with the tier's
//!    rate, no disconnect where the NAS takes it).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use tracing::instrument;

use super::entities::quota_session_counter;
use super::service::{add_usage_many, cycle_anchor, quota_statuses_of, reassess, Reassessed};
use crate::audit::Actor;
use crate::db::{begin_write, lost_to_concurrent_writer, unique_violation};
use crate::enforcement::{EnforcementError, Reach};
use crate::radius::accounting::{last_radacctid, sessions_by_ids, sessions_to_meter, Session};
use crate::users::entities::{network_user, service_package};
use crate::users::quota::counter_growth;
use crate::webhooks::service::emit_logged;
use crate::webhooks::{SessionEvent, WebhookEvent};

/// Sessions re-read below the newest one counted: a row that committed
/// after a newer one (ids are handed out before commit) is still found.
const LOOKBACK_IDS: i64 = 1_000;

/// How long a stopped session's counter is kept (for the look-back).
const KEEP_STOPPED: Duration = Duration::days(2);

/// Sessions whose start or stop is older than this are history, not news:
/// no `session.started` or `session.stopped` event for them (the first
/// pass over an existing radacct, a worker that was down for a day).
const EVENT_FRESHNESS: Duration = Duration::hours(1);

/// Readings counted per transaction.
const CHUNK: usize = 200;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MeterReport {
    /// Sessions read from radacct.
    pub sessions: u64,
    /// Sessions whose counters grew (or stopped) and were counted.
    pub counted: u64,
    /// Sessions left to another pass that was counting them at the same
    /// moment.
    pub contended: u64,
    pub started: u64,
    pub stopped: u64,
    /// Subscribers moved into or out of a tier.
    pub tiers_changed: u64,
    /// Of those, the ones whose change could not be carried yet.
    pub not_enforced: u64,
}

impl std::fmt::Display for MeterReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} session(s) read, {} counted ({} started, {} stopped); {} subscriber(s) changed tier, {} of them not enforced yet",
            self.sessions, self.counted, self.started, self.stopped, self.tiers_changed, self.not_enforced
        )
    }
}

/// A session whose counters moved since they were counted.
struct Growth<'a> {
    session: &'a Session,
    user: &'a network_user::Model,
    counted: Option<&'a quota_session_counter::Model>,
    download: i64,
    upload: i64,
    started: bool,
    stopped: bool,
}

impl Growth<'_> {
    /// The time the reading belongs to: its stop, else its last update,
    /// never later than now.
    fn observed_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.session
            .stopped_at
            .or_else(|| self.session.last_update())
            .unwrap_or(now)
            .min(now)
    }
}

/// The growth of `session` since `counted`; None when nothing moved.
fn growth_of<'a>(
    session: &'a Session,
    user: &'a network_user::Model,
    counted: Option<&'a quota_session_counter::Model>,
) -> Option<Growth<'a>> {
    let stopped = !session.is_open();
    match counted {
        Some(c) if c.stopped => None,
        Some(c) => {
            let download = counter_growth(c.output_octets, session.output_octets);
            let upload = counter_growth(c.input_octets, session.input_octets);
            (download != 0 || upload != 0 || stopped).then_some(Growth {
                session,
                user,
                counted,
                download,
                upload,
                started: false,
                stopped,
            })
        }
        None => Some(Growth {
            session,
            user,
            counted,
            download: session.output_octets.max(0),
            upload: session.input_octets.max(0),
            started: true,
            stopped,
        }),
    }
}

/// One metering pass (the `quota-metering` job, `ispd radius meter`).
#[instrument(skip_all)]
pub async fn meter(reach: &Reach, actor: &Actor) -> Result<MeterReport, EnforcementError> {
    let (main, radius) = (&reach.db.main, &reach.db.radius);
    let now = Utc::now();
    let mut report = MeterReport::default();

    let newest_counted: Option<i64> = quota_session_counter::Entity::find()
        .select_only()
        .column_as(quota_session_counter::Column::Radacctid.max(), "newest")
        .into_tuple::<Option<i64>>()
        .one(main)
        .await?
        .flatten();
    // The first pass starts at the newest sessions, not at the start of
    // a radacct that may hold years.
    let newest = match newest_counted {
        Some(id) => id,
        None => last_radacctid(radius).await?,
    };
    let after_id = (newest - LOOKBACK_IDS).max(0);
    let mut sessions = sessions_to_meter(radius, after_id).await?;
    let counters: HashMap<i64, quota_session_counter::Model> =
        quota_session_counter::Entity::find()
            .filter(
                Condition::any()
                    .add(quota_session_counter::Column::Stopped.eq(false))
                    .add(quota_session_counter::Column::Radacctid.gt(after_id)),
            )
            .all(main)
            .await?
            .into_iter()
            .map(|c| (c.radacctid, c))
            .collect();
    let listed: HashSet<i64> = sessions.iter().map(|s| s.radacctid).collect();
    let closed_since: Vec<i64> = counters
        .values()
        .filter(|c| !c.stopped && !listed.contains(&c.radacctid))
        .map(|c| c.radacctid)
        .collect();
    if !closed_since.is_empty() {
        let found = sessions_by_ids(radius, &closed_since).await?;
        let found_ids: HashSet<i64> = found.iter().map(|s| s.radacctid).collect();
        let gone: Vec<i64> = closed_since
            .iter()
            .copied()
            .filter(|id| !found_ids.contains(id))
            .collect();
        // Deleted from radacct by hand: nothing more to count.
        if !gone.is_empty() {
            quota_session_counter::Entity::update_many()
                .col_expr(quota_session_counter::Column::Stopped, Expr::value(true))
                .filter(quota_session_counter::Column::Radacctid.is_in(gone))
                .exec(main)
                .await?;
        }
        sessions.extend(found);
    }
    report.sessions = sessions.len() as u64;

    let users = users_named(main, &sessions, &counters).await?;
    let packages: BTreeMap<i32, service_package::Model> = service_package::Entity::find()
        .all(main)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let growths: Vec<Growth<'_>> = sessions
        .iter()
        .filter_map(|s| {
            let user = users.get(s.username.as_str())?;
            growth_of(s, user, counters.get(&s.radacctid))
        })
        .collect();

    let mut grown: BTreeMap<i32, &network_user::Model> = BTreeMap::new();
    for chunk in growths.chunks(CHUNK) {
        let counted = match count_chunk(main, chunk, &packages, now).await {
            Ok(counted) => counted,
            // Another pass is counting the same readings (the counter it
            // inserts is there already, or the two met on the same rows):
            // they are its to count, and this pass leaves the chunk,
            // rolled back, to it.
            Err(err) if unique_violation(&err).is_some() || lost_to_concurrent_writer(&err) => {
                tracing::debug!(error = %err, "another metering pass counts these sessions");
                report.contended += chunk.len() as u64;
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        for growth in counted {
            report.counted += 1;
            grown.insert(growth.user.id, growth.user);
            session_events(main, growth, now, &mut report).await;
        }
    }

    // Subscribers in a tier are looked at every pass: a new cycle, a
    // package's quota changed, a top-up elsewhere.
    let in_a_tier = network_user::Entity::find()
        .filter(network_user::Column::QuotaPolicyId.is_not_null())
        .all(main)
        .await?;
    let mut candidates: BTreeMap<i32, network_user::Model> =
        in_a_tier.into_iter().map(|u| (u.id, u)).collect();
    for (id, user) in grown {
        candidates.entry(id).or_insert_with(|| user.clone());
    }
    // Only a subscriber with a quota, or in a tier, can move.
    let subjects: Vec<_> = candidates
        .into_values()
        .map(|user| {
            let package = user.package_id.and_then(|id| packages.get(&id));
            (user, package)
        })
        .filter(|(user, package)| {
            user.quota_policy_id.is_some() || package.is_some_and(|p| p.quota_bytes.is_some())
        })
        .collect();
    for status in quota_statuses_of(main, subjects, now).await? {
        match reassess(reach, actor, &status).await? {
            Reassessed::Unchanged => {}
            Reassessed::Moved => report.tiers_changed += 1,
            Reassessed::MovedNotEnforced => {
                report.tiers_changed += 1;
                report.not_enforced += 1;
            }
        }
    }

    forget_old_counters(main, now, newest).await?;
    Ok(report)
}

/// Counts a chunk of readings in one transaction, in a few multi-row
/// statements; gives those it counted.
///
/// The chunk's counters are read again under a row lock (on SQLite the
/// write transaction excludes other writers): a counter that moved since
/// this pass read it was counted by another pass, and is left to it. New
/// counters are plain inserts, so that a pass that inserts the same one
/// first makes this one fail (a unique violation: the caller leaves the
/// chunk to that pass). Then the usage of each subscriber and cycle grows
/// by the sum of its sessions' growth.
async fn count_chunk<'g, 'a>(
    main: &DatabaseConnection,
    chunk: &'g [Growth<'a>],
    packages: &BTreeMap<i32, service_package::Model>,
    now: DateTime<Utc>,
) -> Result<Vec<&'g Growth<'a>>, sea_orm::DbErr> {
    let txn = begin_write(main).await?;
    let ids: Vec<i64> = chunk.iter().map(|g| g.session.radacctid).collect();
    let current: HashMap<i64, quota_session_counter::Model> = quota_session_counter::Entity::find()
        .filter(quota_session_counter::Column::Radacctid.is_in(ids))
        .lock_exclusive()
        .all(&txn)
        .await?
        .into_iter()
        .map(|c| (c.radacctid, c))
        .collect();
    let counted: Vec<&Growth<'a>> = chunk
        .iter()
        .filter(|g| current.get(&g.session.radacctid) == g.counted)
        .collect();
    let row = |g: &Growth<'_>| quota_session_counter::ActiveModel {
        radacctid: Set(g.session.radacctid),
        user_id: Set(g.user.id),
        input_octets: Set(g.session.input_octets),
        output_octets: Set(g.session.output_octets),
        stopped: Set(g.stopped),
        seen_at: Set(now.fixed_offset()),
    };
    let (moved, new): (Vec<&Growth<'a>>, Vec<&Growth<'a>>) =
        counted.iter().partition(|g| g.counted.is_some());
    if !new.is_empty() {
        quota_session_counter::Entity::insert_many(new.iter().map(|g| row(g)))
            .exec(&txn)
            .await?;
    }
    if !moved.is_empty() {
        quota_session_counter::Entity::insert_many(moved.iter().map(|g| row(g)))
            .on_conflict(
                OnConflict::column(quota_session_counter::Column::Radacctid)
                    .update_columns([
                        quota_session_counter::Column::InputOctets,
                        quota_session_counter::Column::OutputOctets,
                        quota_session_counter::Column::Stopped,
                        quota_session_counter::Column::SeenAt,
                    ])
                    .to_owned(),
            )
            .exec(&txn)
            .await?;
    }
    let mut usage: BTreeMap<(i32, DateTime<Utc>), (i64, i64)> = BTreeMap::new();
    for growth in &counted {
        let package = growth.user.package_id.and_then(|id| packages.get(&id));
        let cycle = cycle_anchor(growth.user, package).cycle_start(growth.observed_at(now));
        let sum = usage.entry((growth.user.id, cycle)).or_default();
        sum.0 += growth.download;
        sum.1 += growth.upload;
    }
    add_usage_many(&txn, &usage).await?;
    txn.commit().await?;
    Ok(counted)
}

/// The subscribers named by these sessions, by username.
async fn users_named(
    main: &impl ConnectionTrait,
    sessions: &[Session],
    counters: &HashMap<i64, quota_session_counter::Model>,
) -> Result<HashMap<String, network_user::Model>, sea_orm::DbErr> {
    // Sessions already counted and unchanged need no lookup.
    let mut names: Vec<String> = sessions
        .iter()
        .filter(|s| {
            counters.get(&s.radacctid).is_none_or(|c| {
                !c.stopped
                    && (c.input_octets != s.input_octets
                        || c.output_octets != s.output_octets
                        || !s.is_open())
            })
        })
        .filter(|s| !s.username.is_empty())
        .map(|s| s.username.clone())
        .collect();
    names.sort();
    names.dedup();
    let mut users = HashMap::with_capacity(names.len());
    for chunk in names.chunks(500) {
        for user in network_user::Entity::find()
            .filter(network_user::Column::Username.is_in(chunk.iter().cloned()))
            .all(main)
            .await?
        {
            users.insert(user.username.clone(), user);
        }
    }
    Ok(users)
}

/// `session.started` and `session.stopped`, for sessions that started or
/// stopped within the last hour.
async fn session_events(
    main: &impl ConnectionTrait,
    growth: &Growth<'_>,
    now: DateTime<Utc>,
    report: &mut MeterReport,
) {
    let session = growth.session;
    let fresh = |at: Option<DateTime<Utc>>| at.is_some_and(|at| now - at <= EVENT_FRESHNESS);
    let event = |stopped_at| SessionEvent {
        user_id: growth.user.id,
        username: growth.user.username.clone(),
        radacctid: session.radacctid,
        session_id: session.acct_session_id.clone(),
        nas: session.nas_ip.clone(),
        framed_ip: session.framed_ip.clone(),
        started_at: session.started_at,
        stopped_at,
        download_bytes: session.output_octets,
        upload_bytes: session.input_octets,
        terminate_cause: session
            .terminate_cause
            .clone()
            .filter(|_| stopped_at.is_some()),
    };
    if growth.started {
        report.started += 1;
        if fresh(session.started_at) {
            emit_logged(main, WebhookEvent::session(true, event(None))).await;
        }
    }
    if growth.stopped {
        report.stopped += 1;
        if fresh(session.stopped_at) {
            emit_logged(
                main,
                WebhookEvent::session(false, event(session.stopped_at)),
            )
            .await;
        }
    }
}

/// Forgets the counters of sessions stopped two days ago, except the
/// newest ones (the next pass starts from them).
async fn forget_old_counters(
    main: &impl ConnectionTrait,
    now: DateTime<Utc>,
    newest: i64,
) -> Result<(), sea_orm::DbErr> {
    quota_session_counter::Entity::delete_many()
        .filter(quota_session_counter::Column::Stopped.eq(true))
        .filter(quota_session_counter::Column::SeenAt.lt((now - KEEP_STOPPED).fixed_offset()))
        .filter(quota_session_counter::Column::Radacctid.lt(newest - LOOKBACK_IDS))
        .exec(main)
        .await?;
    Ok(())
}
