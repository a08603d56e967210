//! Background jobs: housekeeping, the run table that keeps workers in step
//! (on every database), and whole workers over the real queues (Redis at
//! TEST_REDIS_URL, and the embedded SQLite store): the schedule, manual
//! runs, retries, timeouts, two workers on one queue, a worker killed
//! mid-job, and Redis restarted mid-run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use migration::{Migrator, MigratorTrait, RadiusMigrator};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};

use crate::helpers::{free_port, Backend, TestDb};
use ispd::audit::Actor;
use ispd::jobs::runs::{self, job_run, JobsError, Outcome, Trigger};
use ispd::jobs::{JobQueue, JobSummary, Registry, RunRequest, Worker, WorkerSettings};
use ispd::staff::entities::staff_session;

async fn expired_staff_sessions_are_purged_and_live_ones_kept(backend: Backend) {
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    Migrator::up(&db.conn, None).await.unwrap();
    for (id, offset_hours) in [("expired", -1), ("live", 1)] {
        staff_session::ActiveModel {
            id: Set(id.into()),
            staff_user_id: Set(None),
            data: Set(b"{}".to_vec()),
            expiry_date: Set((Utc::now() + chrono::Duration::hours(offset_hours)).into()),
        }
        .insert(&db.conn)
        .await
        .unwrap();
    }
    let purged = ispd::staff::service::purge_expired_sessions(&db.conn)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let left: Vec<String> = staff_session::Entity::find()
        .all(&db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, ["live"]);
}
crate::on_every_backend!(expired_staff_sessions_are_purged_and_live_ones_kept);

// ------------------------------------------------------------ the run table

async fn migrated(backend: Backend) -> Option<TestDb> {
    let db = TestDb::fresh(backend).await?;
    Migrator::up(&db.conn, None).await.unwrap();
    Some(db)
}

async fn a_tick_is_claimed_by_exactly_one_of_many_workers(backend: Backend) {
    let Some(db) = migrated(backend).await else {
        return;
    };
    let tick = Utc::now();
    let claims = (0..8).map(|_| {
        let conn = db.conn.clone();
        tokio::spawn(async move { runs::claim_tick(&conn, "ipam-cleanup", tick, Utc::now()).await })
    });
    let mut won = 0;
    for claim in claims {
        if claim.await.unwrap().unwrap().is_some() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one claimer wins a tick");
    // The next tick, while the first run is still active, is skipped...
    let next = tick + chrono::Duration::seconds(60);
    assert!(runs::claim_tick(&db.conn, "ipam-cleanup", next, Utc::now())
        .await
        .unwrap()
        .is_none());
    // ...while another job's tick is not affected.
    assert!(runs::claim_tick(&db.conn, "housekeeping", tick, Utc::now())
        .await
        .unwrap()
        .is_some());
    // Once the run has finished, the next tick is claimed.
    let run = runs::active_run(&db.conn, "ipam-cleanup")
        .await
        .unwrap()
        .unwrap();
    runs::acquire(&db.conn, run.id, "w1", Utc::now(), Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert!(runs::finish(
        &db.conn,
        run.id,
        "w1",
        Outcome::Succeeded(JobSummary::new()),
        Utc::now()
    )
    .await
    .unwrap());
    assert!(runs::claim_tick(&db.conn, "ipam-cleanup", next, Utc::now())
        .await
        .unwrap()
        .is_some());
    // The same tick is never claimed twice, even after its run finished.
    assert!(runs::claim_tick(&db.conn, "housekeeping", tick, Utc::now())
        .await
        .is_ok_and(|claimed| claimed.is_none()));
}
crate::on_every_backend!(a_tick_is_claimed_by_exactly_one_of_many_workers);

async fn a_manual_run_is_refused_while_one_is_queued_or_running(backend: Backend) {
    let Some(db) = migrated(backend).await else {
        return;
    };
    let actor = Actor::cli();
    let first = runs::request_run(&db.conn, "radius-retry", Trigger::Api, &actor)
        .await
        .unwrap();
    assert_eq!(first.status, "queued");
    assert_eq!(first.trigger, "api");
    let again = runs::request_run(&db.conn, "radius-retry", Trigger::Manual, &actor).await;
    assert!(
        matches!(again, Err(JobsError::AlreadyActive { run_id, .. }) if run_id == first.id),
        "{again:?}"
    );
    // Another job is not blocked by it.
    runs::request_run(&db.conn, "housekeeping", Trigger::Manual, &actor)
        .await
        .unwrap();
    assert!(matches!(
        runs::request_run(&db.conn, "no-such-job", Trigger::Api, &actor).await,
        Err(JobsError::UnknownJob(_))
    ));
    // Running, it still blocks; finished, it does not.
    runs::acquire(
        &db.conn,
        first.id,
        "w1",
        Utc::now(),
        Duration::from_secs(30),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        runs::request_run(&db.conn, "radius-retry", Trigger::Api, &actor)
            .await
            .is_err()
    );
    runs::finish(
        &db.conn,
        first.id,
        "w1",
        Outcome::Failed("boom".into()),
        Utc::now(),
    )
    .await
    .unwrap();
    runs::request_run(&db.conn, "radius-retry", Trigger::Api, &actor)
        .await
        .unwrap();
}
crate::on_every_backend!(a_manual_run_is_refused_while_one_is_queued_or_running);

async fn a_run_is_held_by_one_worker_until_its_lease_expires(backend: Backend) {
    let Some(db) = migrated(backend).await else {
        return;
    };
    let lease = Duration::from_secs(30);
    let run = runs::request_run(&db.conn, "housekeeping", Trigger::Api, &Actor::cli())
        .await
        .unwrap();
    let now = Utc::now();
    assert!(runs::acquire(&db.conn, run.id, "a", now, lease)
        .await
        .unwrap()
        .is_some());
    assert!(runs::begin_attempt(&db.conn, run.id, "a").await.unwrap());
    assert!(
        runs::acquire(&db.conn, run.id, "b", now, lease)
            .await
            .unwrap()
            .is_none(),
        "a held run is not taken"
    );
    // Worker a stops renewing (it died): after the lease, b takes over.
    let later = now + chrono::Duration::seconds(31);
    assert!(runs::acquire(&db.conn, run.id, "b", later, lease)
        .await
        .unwrap()
        .is_some());
    assert!(!runs::renew_lease(&db.conn, run.id, "a", later, lease)
        .await
        .unwrap());
    assert!(!runs::begin_attempt(&db.conn, run.id, "a").await.unwrap());
    assert!(!runs::finish(
        &db.conn,
        run.id,
        "a",
        Outcome::Succeeded(JobSummary::new()),
        later
    )
    .await
    .unwrap());
    assert!(runs::begin_attempt(&db.conn, run.id, "b").await.unwrap());
    assert!(runs::finish(
        &db.conn,
        run.id,
        "b",
        Outcome::Succeeded(JobSummary::new().count("purged_sessions", 2)),
        later
    )
    .await
    .unwrap());
    let done = runs::find_run(&db.conn, run.id).await.unwrap().unwrap();
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.attempts, 2);
    assert_eq!(done.active_job, None);
    assert_eq!(done.summary.as_deref(), Some(r#"{"purged_sessions":2}"#));
    assert!(done.duration_ms.is_some());
    // A finished run is not taken again, even when delivered twice.
    assert!(runs::acquire(&db.conn, run.id, "c", later, lease)
        .await
        .unwrap()
        .is_none());
}
crate::on_every_backend!(a_run_is_held_by_one_worker_until_its_lease_expires);

async fn old_finished_runs_are_purged_and_active_ones_kept(backend: Backend) {
    let Some(db) = migrated(backend).await else {
        return;
    };
    let old = Utc::now() - chrono::Duration::days(40);
    let finished = runs::claim_tick(&db.conn, "housekeeping", old, old)
        .await
        .unwrap()
        .unwrap();
    runs::acquire(&db.conn, finished.id, "w", old, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    runs::finish(
        &db.conn,
        finished.id,
        "w",
        Outcome::Succeeded(JobSummary::new()),
        old,
    )
    .await
    .unwrap();
    let stuck = runs::claim_tick(&db.conn, "ipam-cleanup", old, old)
        .await
        .unwrap()
        .unwrap();
    let recent = runs::claim_tick(&db.conn, "housekeeping", Utc::now(), Utc::now())
        .await
        .unwrap()
        .unwrap();
    let purged = ispd::jobs::purge_history(&db.conn, 30).await.unwrap();
    assert_eq!(purged, 1);
    let left: Vec<i64> = job_run::Entity::find()
        .all(&db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [stuck.id, recent.id]);
}
crate::on_every_backend!(old_finished_runs_are_purged_and_active_ones_kept);

async fn old_settled_session_changes_and_finished_deliveries_are_purged(backend: Backend) {
    use ispd::enforcement::entities::enforcement_action;
    use ispd::webhooks::entities::webhook_delivery;
    let Some(db) = migrated(backend).await else {
        return;
    };
    let (old, now) = (Utc::now() - chrono::Duration::days(40), Utc::now());
    let mut actions = Vec::new();
    for (status, at) in [("confirmed", old), ("sent", old), ("confirmed", now)] {
        let action = enforcement_action::ActiveModel {
            username: Set("alice".into()),
            reason: Set("suspended".into()),
            target: Set("walled_garden".into()),
            request: Set("coa".into()),
            acct_session_id: Set("s1".into()),
            nas: Set("192.0.2.1".into()),
            status: Set(status.into()),
            attempts: Set(1),
            created_at: Set(at.into()),
            updated_at: Set(at.into()),
            ..Default::default()
        };
        actions.push(action.insert(&db.conn).await.unwrap().id);
    }
    let endpoint = ispd::webhooks::entities::webhook_endpoint::ActiveModel {
        name: Set("crm".into()),
        url: Set("http://127.0.0.1:9/hooks".into()),
        secret_encrypted: Set("sealed".into()),
        event_types: Set("*".into()),
        active: Set(true),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
    .insert(&db.conn)
    .await
    .unwrap();
    let mut deliveries = Vec::new();
    for (n, (status, at)) in [
        ("delivered", old),
        ("failed", old),
        ("pending", old),
        ("delivered", now),
    ]
    .into_iter()
    .enumerate()
    {
        let delivery = webhook_delivery::ActiveModel {
            endpoint_id: Set(endpoint.id),
            event_id: Set(format!("evt-{n}")),
            event_type: Set("session.started".into()),
            payload: Set("{}".into()),
            status: Set(status.into()),
            attempts: Set(1),
            created_at: Set(at.into()),
            updated_at: Set(at.into()),
            ..Default::default()
        };
        deliveries.push(delivery.insert(&db.conn).await.unwrap().id);
    }
    let purged = ispd::jobs::purge_finished_records(&db.conn, 30)
        .await
        .unwrap();
    assert_eq!((purged.session_changes, purged.webhook_deliveries), (1, 2));
    let left: Vec<i64> = enforcement_action::Entity::find()
        .all(&db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(
        left,
        actions[1..],
        "the waiting one and the recent one stay"
    );
    let left: Vec<i64> = webhook_delivery::Entity::find()
        .all(&db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        left,
        deliveries[2..],
        "the pending one and the recent one stay"
    );
}
crate::on_every_backend!(old_settled_session_changes_and_finished_deliveries_are_purged);

// ------------------------------------------------------------ whole workers

#[derive(Clone, Copy, Debug)]
enum QueueKind {
    Redis,
    Embedded,
}

/// A queue of its own for one test: a random queue name in the Redis at
/// TEST_REDIS_URL, or a fresh embedded store. None when Redis is not set.
async fn queue(kind: QueueKind, dir: &std::path::Path) -> Option<JobQueue> {
    let name = format!("ispd-test-{:016x}", rand::random::<u64>());
    let heartbeat = Duration::from_secs(1);
    match kind {
        QueueKind::Redis => {
            let Ok(url) = std::env::var("TEST_REDIS_URL") else {
                if std::env::var("TEST_REQUIRE_ALL_BACKENDS").as_deref() == Ok("1") {
                    panic!("TEST_REDIS_URL is not set, and TEST_REQUIRE_ALL_BACKENDS=1");
                }
                eprintln!("skipped: TEST_REDIS_URL is not set");
                return None;
            };
            Some(JobQueue::redis(&url, &name, heartbeat).await.unwrap())
        }
        QueueKind::Embedded => Some(
            JobQueue::embedded(&dir.join("jobs.db"), &name, heartbeat)
                .await
                .unwrap(),
        ),
    }
}

fn fast_settings() -> WorkerSettings {
    WorkerSettings {
        attempts: 3,
        retry_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(10),
        lease: Duration::from_secs(2),
        poll_interval: Duration::from_millis(100),
    }
}

/// A migrated SQLite database and a queue of the test's own, with the
/// folder that holds an embedded queue's files.
struct Bench {
    db: TestDb,
    queue: JobQueue,
    _dir: tempfile::TempDir,
}

/// None, and the test is skipped, where the queue's server is not set.
async fn bench(kind: QueueKind) -> Option<Bench> {
    let db = migrated(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue = queue(kind, dir.path()).await?;
    Some(Bench {
        db,
        queue,
        _dir: dir,
    })
}

/// Two workers with fast settings sharing one queue.
fn two_workers(
    db: &DatabaseConnection,
    queue: JobQueue,
    registry: Registry,
) -> (RunningWorker, RunningWorker) {
    let a = RunningWorker::start(db, queue.clone(), registry.clone(), fast_settings());
    let b = RunningWorker::start(db, queue, registry, fast_settings());
    (a, b)
}

struct RunningWorker {
    id: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    fn start(
        db: &DatabaseConnection,
        queue: JobQueue,
        registry: Registry,
        settings: WorkerSettings,
    ) -> Self {
        let worker = Worker::new(db.clone(), queue, registry, settings);
        let id = worker.id().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(worker.run(async move {
            let _ = stopped.await;
        }));
        Self {
            id,
            stop: Some(stop),
            handle,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("the worker stops promptly")
            .unwrap();
    }

    /// Like `kill -9`: the worker's future is dropped where it stands.
    async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

async fn wait_for_run(
    db: &DatabaseConnection,
    id: i64,
    within: Duration,
    done: impl Fn(&job_run::Model) -> bool,
) -> job_run::Model {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let run = runs::find_run(db, id).await.unwrap().unwrap();
        if done(&run) {
            return run;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("run {id} did not get there in {within:?}: {run:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn finished(run: &job_run::Model) -> bool {
    run.active_job.is_none()
}

/// Counts executions and the most that ran at once.
#[derive(Default)]
struct Probe {
    started: AtomicUsize,
    finished: AtomicUsize,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
}

impl Probe {
    async fn run(&self, work: Duration) {
        /// Counts the end of an execution even when it is cancelled.
        struct Running<'a>(&'a AtomicUsize);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.started.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = Running(&self.running);
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(work).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// A registry with one job, `name`, that runs for `work` under a probe.
fn probe_job(name: &str, schedule: Option<&str>, work: Duration) -> (Arc<Probe>, Registry) {
    let probe = Arc::new(Probe::default());
    let registry = add_probe_job(Registry::new(), name, schedule, probe.clone(), work);
    (probe, registry)
}

fn add_probe_job(
    registry: Registry,
    name: &str,
    schedule: Option<&str>,
    probe: Arc<Probe>,
    work: Duration,
) -> Registry {
    use std::str::FromStr;
    let schedule = schedule.map(|s| cron::Schedule::from_str(s).unwrap());
    registry.with_job(name, schedule, move || {
        let probe = probe.clone();
        async move {
            probe.run(work).await;
            Ok(JobSummary::new().count("done", 1))
        }
    })
}

async fn the_schedule_fires_once_per_tick_with_two_workers(kind: QueueKind) {
    let Some(Bench { db, queue, _dir }) = bench(kind).await else {
        return;
    };
    let (probe, registry) = probe_job(
        "housekeeping",
        Some("* * * * * *"),
        Duration::from_millis(100),
    );
    let (a, b) = two_workers(&db.conn, queue, registry);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    a.stop().await;
    b.stop().await;
    let rows = job_run::Entity::find().all(&db.conn).await.unwrap();
    let ticks: std::collections::BTreeSet<_> =
        rows.iter().map(|r| r.scheduled_for.unwrap()).collect();
    assert!(rows.len() >= 3, "a run for each second: {rows:?}");
    assert_eq!(ticks.len(), rows.len(), "one run per tick");
    assert!(rows.iter().all(|r| r.trigger == "schedule"));
    let succeeded = rows.iter().filter(|r| r.status == "succeeded").count();
    assert!(succeeded >= rows.len() - 1, "{rows:?}");
    assert_eq!(
        probe.started.load(Ordering::SeqCst),
        rows.iter().filter(|r| r.attempts > 0).count(),
        "each run executed once"
    );
    assert_eq!(probe.most_at_once.load(Ordering::SeqCst), 1);
}

async fn a_manual_run_is_executed_and_recorded(kind: QueueKind) {
    let Some(Bench { db, queue, _dir }) = bench(kind).await else {
        return;
    };
    let (probe, registry) = probe_job("ipam-cleanup", None, Duration::ZERO);
    let worker = RunningWorker::start(&db.conn, queue, registry, fast_settings());
    let run = runs::request_run(&db.conn, "ipam-cleanup", Trigger::Manual, &Actor::cli())
        .await
        .unwrap();
    let run = wait_for_run(&db.conn, run.id, Duration::from_secs(10), finished).await;
    worker.stop().await;
    assert_eq!(run.status, "succeeded");
    assert_eq!(run.trigger, "manual");
    assert_eq!(run.attempts, 1);
    assert_eq!(run.summary.as_deref(), Some(r#"{"done":1}"#));
    assert_eq!(
        run.requested_by.as_deref(),
        Some(Actor::cli().name.as_str())
    );
    assert!(run.started_at.is_some() && run.finished_at.is_some());
    assert_eq!(probe.finished.load(Ordering::SeqCst), 1);
}

async fn a_failing_job_is_retried_with_backoff_and_recorded(kind: QueueKind) {
    let Some(Bench { db, queue, _dir }) = bench(kind).await else {
        return;
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky_calls = calls.clone();
    let registry = Registry::new()
        // Fails twice, then succeeds.
        .with_job("radius-retry", None, move || {
            let n = flaky_calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    anyhow::bail!("the RADIUS database is down (call {n})");
                }
                Ok(JobSummary::new().count("updated", 4))
            }
        })
        .with_job("radius-close-stale", None, || async {
            anyhow::bail!("always broken")
        });
    let settings = fast_settings();
    let worker = RunningWorker::start(&db.conn, queue, registry, settings.clone());
    let started = std::time::Instant::now();
    let flaky = runs::request_run(&db.conn, "radius-retry", Trigger::Api, &Actor::cli())
        .await
        .unwrap();
    let broken = runs::request_run(&db.conn, "radius-close-stale", Trigger::Api, &Actor::cli())
        .await
        .unwrap();
    let flaky = wait_for_run(&db.conn, flaky.id, Duration::from_secs(15), finished).await;
    let broken = wait_for_run(&db.conn, broken.id, Duration::from_secs(15), finished).await;
    worker.stop().await;
    assert_eq!(flaky.status, "succeeded");
    assert_eq!(flaky.attempts, 3);
    assert_eq!(flaky.error, None);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Back-off: 100 ms, then 200 ms, between the attempts.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(broken.status, "failed");
    assert_eq!(broken.attempts, settings.attempts as i32);
    assert_eq!(broken.error.as_deref(), Some("always broken"));
}

async fn a_job_past_its_timeout_is_cancelled_and_recorded(kind: QueueKind) {
    let Some(Bench { db, queue, _dir }) = bench(kind).await else {
        return;
    };
    let completed = Arc::new(AtomicBool::new(false));
    let flag = completed.clone();
    let registry = Registry::new().with_job("network-health-check", None, move || {
        let flag = flag.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            flag.store(true, Ordering::SeqCst);
            Ok(JobSummary::new())
        }
    });
    let settings = WorkerSettings {
        attempts: 2,
        timeout: Duration::from_millis(300),
        ..fast_settings()
    };
    let worker = RunningWorker::start(&db.conn, queue, registry, settings);
    let run = runs::request_run(
        &db.conn,
        "network-health-check",
        Trigger::Api,
        &Actor::cli(),
    )
    .await
    .unwrap();
    let run = wait_for_run(&db.conn, run.id, Duration::from_secs(10), finished).await;
    assert_eq!(run.status, "timed_out");
    assert_eq!(run.attempts, 2);
    assert!(run.error.as_deref().unwrap().contains("timeout"), "{run:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker.stop().await;
    assert!(
        !completed.load(Ordering::SeqCst),
        "a cancelled attempt does not go on in the background"
    );
}

async fn a_run_whose_worker_is_killed_is_finished_by_another(kind: QueueKind) {
    let Some(Bench { db, queue, _dir }) = bench(kind).await else {
        return;
    };
    let (probe, registry) = probe_job("mikrotik-sync-sessions", None, Duration::from_millis(1500));
    let first = RunningWorker::start(&db.conn, queue.clone(), registry.clone(), fast_settings());
    let first_id = first.id.clone();
    let run = runs::request_run(
        &db.conn,
        "mikrotik-sync-sessions",
        Trigger::Api,
        &Actor::cli(),
    )
    .await
    .unwrap();
    wait_for_run(&db.conn, run.id, Duration::from_secs(10), |r| {
        r.status == "running" && r.attempts == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.kill().await;
    assert_eq!(probe.finished.load(Ordering::SeqCst), 0, "killed mid-job");
    let second = RunningWorker::start(&db.conn, queue, registry, fast_settings());
    let run = wait_for_run(&db.conn, run.id, Duration::from_secs(20), finished).await;
    second.stop().await;
    assert_eq!(run.status, "succeeded");
    assert_eq!(run.attempts, 2, "the second worker's attempt counts too");
    assert_ne!(run.lease_holder.as_deref(), Some(first_id.as_str()));
    assert_eq!(
        run.lease_holder.as_deref(),
        Some(second_id_of(&db.conn, run.id).await.as_str())
    );
    assert_eq!(probe.started.load(Ordering::SeqCst), 2);
    assert_eq!(probe.finished.load(Ordering::SeqCst), 1);
    assert_eq!(probe.most_at_once.load(Ordering::SeqCst), 1);
}

async fn second_id_of(db: &DatabaseConnection, run_id: i64) -> String {
    runs::find_run(db, run_id)
        .await
        .unwrap()
        .unwrap()
        .lease_holder
        .unwrap()
}

async fn two_workers_never_run_one_job_at_the_same_time(kind: QueueKind) {
    let Some(Bench { db, queue, _dir }) = bench(kind).await else {
        return;
    };
    // Ticks every second, each run takes longer than a second, and people
    // press "Run now" meanwhile.
    let (probe, registry) = probe_job(
        "radius-sync-users",
        Some("* * * * * *"),
        Duration::from_millis(1300),
    );
    let (a, b) = two_workers(&db.conn, queue, registry);
    let mut refused = 0;
    for _ in 0..20 {
        if runs::request_run(
            &db.conn,
            "radius-sync-users",
            Trigger::Manual,
            &Actor::cli(),
        )
        .await
        .is_err()
        {
            refused += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.stop().await;
    b.stop().await;
    assert!(refused > 0, "requests during a run are refused");
    assert!(probe.started.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        probe.most_at_once.load(Ordering::SeqCst),
        1,
        "never two at once"
    );
    let rows = job_run::Entity::find().all(&db.conn).await.unwrap();
    assert_eq!(
        probe.started.load(Ordering::SeqCst),
        rows.iter().map(|r| r.attempts as usize).sum::<usize>(),
        "every execution is an attempt on record"
    );
}

macro_rules! on_both_queues {
    ($name:ident) => {
        $crate::test_each!(
            $name,
            4,
            redis => super::QueueKind::Redis,
            embedded => super::QueueKind::Embedded,
        );
    };
}

on_both_queues!(the_schedule_fires_once_per_tick_with_two_workers);
on_both_queues!(a_manual_run_is_executed_and_recorded);
on_both_queues!(a_failing_job_is_retried_with_backoff_and_recorded);
on_both_queues!(a_job_past_its_timeout_is_cancelled_and_recorded);
on_both_queues!(a_run_whose_worker_is_killed_is_finished_by_another);
on_both_queues!(two_workers_never_run_one_job_at_the_same_time);

/// Runs queued by the hundred before any worker starts are each executed
/// exactly once by two workers sharing the queue.
async fn a_backlog_of_queued_runs_is_drained_once_by_two_workers(kind: QueueKind) {
    const RUNS: usize = 300;
    let Some(Bench { db, queue, _dir }) = bench(kind).await else {
        return;
    };
    let probe = Arc::new(Probe::default());
    let mut registry = Registry::new();
    let tick = Utc::now();
    for i in 0..RUNS {
        // One job per run: a job has at most one active run.
        let name = format!("backlog-{i}");
        registry = add_probe_job(registry, &name, None, probe.clone(), Duration::ZERO);
        let run = runs::claim_tick(&db.conn, &name, tick, Utc::now())
            .await
            .unwrap()
            .unwrap();
        queue
            .push(RunRequest {
                run_id: run.id,
                job: name,
            })
            .await
            .unwrap();
    }
    let (a, b) = two_workers(&db.conn, queue, registry);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = job_run::Entity::find().all(&db.conn).await.unwrap();
        if rows.iter().all(finished) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {RUNS} runs left after 60 s",
            rows.iter().filter(|r| !finished(r)).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
    b.stop().await;
    let rows = job_run::Entity::find().all(&db.conn).await.unwrap();
    assert_eq!(rows.len(), RUNS);
    assert!(
        rows.iter()
            .all(|r| r.status == "succeeded" && r.attempts == 1),
        "every run succeeded at its first attempt"
    );
    assert_eq!(
        probe.started.load(Ordering::SeqCst),
        RUNS,
        "each run executed once"
    );
}

on_both_queues!(a_backlog_of_queued_runs_is_drained_once_by_two_workers);

/// A redis-server of the test's own, on a free port, that it can kill.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server");
        Self { port, child }
    }

    async fn wait_ready(&self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A redis-server of the test's own on a free port, and a queue on it:
/// (server, port, URL, queue). None, and the test is skipped, where
/// redis-server is not installed.
async fn own_redis_queue() -> Option<(OwnRedis, u16, String, JobQueue)> {
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no redis-server");
        return None;
    }
    let port = free_port();
    let redis = OwnRedis::start_on(port);
    redis.wait_ready().await;
    let url = format!("redis://127.0.0.1:{port}");
    let queue = JobQueue::redis(&url, "ispd-jobs", Duration::from_secs(1))
        .await
        .unwrap();
    Some((redis, port, url, queue))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_recovers_when_redis_restarts_mid_run() {
    let Some((mut redis, port, _, queue)) = own_redis_queue().await else {
        return;
    };
    let db = migrated(Backend::Sqlite).await.unwrap();
    let (probe, registry) = probe_job("housekeeping", None, Duration::from_millis(1500));
    let worker = RunningWorker::start(&db.conn, queue, registry, fast_settings());

    let during = runs::request_run(&db.conn, "housekeeping", Trigger::Api, &Actor::cli())
        .await
        .unwrap();
    // Running, and its attempt begun: the job itself is executing (a run
    // is "running" from the moment a worker takes it, a moment before).
    wait_for_run(&db.conn, during.id, Duration::from_secs(10), |r| {
        r.status == "running" && r.attempts > 0
    })
    .await;
    // Redis goes away mid-run, and comes back empty (no persistence).
    redis.stop();
    let during = wait_for_run(&db.conn, during.id, Duration::from_secs(10), finished).await;
    assert_eq!(during.status, "succeeded", "the run in progress finishes");
    // A run asked for while Redis is down...
    let while_down = runs::request_run(&db.conn, "housekeeping", Trigger::Api, &Actor::cli())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut redis = OwnRedis::start_on(port);
    redis.wait_ready().await;
    // ...runs once Redis is back.
    let while_down = wait_for_run(&db.conn, while_down.id, Duration::from_secs(30), finished).await;
    assert_eq!(while_down.status, "succeeded");
    // And the worker keeps taking new runs.
    let after = runs::request_run(&db.conn, "housekeeping", Trigger::Api, &Actor::cli())
        .await
        .unwrap();
    let after = wait_for_run(&db.conn, after.id, Duration::from_secs(30), finished).await;
    assert_eq!(after.status, "succeeded");
    worker.stop().await;
    redis.stop();
    assert_eq!(probe.most_at_once.load(Ordering::SeqCst), 1);
}

/// apalis-redis's fetch moves every due item of the queue to its active
/// list in one Lua call, which fails from about 8 000 items on (Lua's
/// `unpack` limit): a backlog that large used to stop every consumer at its
/// first fetch, for good. The workers move due items over in chunks first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_backlog_too_large_for_one_lua_call_is_consumed() {
    const BACKLOG: usize = 8_500;
    let Some((mut redis, _, url, queue)) = own_redis_queue().await else {
        return;
    };
    let db = migrated(Backend::Sqlite).await.unwrap();
    let run = runs::claim_tick(&db.conn, "housekeeping", Utc::now(), Utc::now())
        .await
        .unwrap()
        .unwrap();
    // The run, then as many more deliveries of it as make the backlog: a
    // repeated delivery is harmless, and quick to consume.
    let request = RunRequest {
        run_id: run.id,
        job: "housekeeping".into(),
    };
    queue.push(request.clone()).await.unwrap();
    let mut pushers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (queue, request) = (queue.clone(), request.clone());
        pushers.spawn(async move {
            for _ in 0..(BACKLOG - 1).div_ceil(8) {
                queue.push(request.clone()).await.unwrap();
            }
        });
    }
    while let Some(pushed) = pushers.join_next().await {
        pushed.unwrap();
    }
    let (probe, registry) = probe_job("housekeeping", None, Duration::ZERO);
    let (a, b) = two_workers(&db.conn, queue, registry);
    let run = wait_for_run(&db.conn, run.id, Duration::from_secs(20), finished).await;
    assert_eq!(run.status, "succeeded");
    assert_eq!(run.attempts, 1);
    // The whole backlog leaves Redis's lists.
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (waiting, due): (u64, u64) = redis::pipe()
            .cmd("LLEN")
            .arg("ispd-jobs:active")
            .cmd("ZCARD")
            .arg("ispd-jobs:scheduled")
            .query_async(&mut conn)
            .await
            .unwrap();
        if waiting + due == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} items still queued after 20 s",
            waiting + due
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
    b.stop().await;
    redis.stop();
    assert_eq!(probe.started.load(Ordering::SeqCst), 1, "executed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_until_told_to_stop() {
    let main = TestDb::fresh(Backend::Sqlite).await.unwrap();
    let radius = TestDb::fresh(Backend::Sqlite).await.unwrap();
    Migrator::up(&main.conn, None).await.unwrap();
    RadiusMigrator::up(&radius.conn, None).await.unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let config = ispd::config::Config::from_lookup(|name| match name {
        "DATA_DIR" => Some(data_dir.path().display().to_string()),
        _ => None,
    })
    .unwrap();
    let databases = ispd::db::Databases {
        main: main.conn.clone(),
        radius: radius.conn.clone(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let context = ispd::jobs::JobContext::new(
        Arc::new(config),
        databases,
        ispd::crypto::AppKey::generate(),
    );
    let worker = tokio::spawn(ispd::jobs::run_worker(context, async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!worker.is_finished(), "the worker keeps running");
    assert!(
        data_dir.path().join("jobs.db").exists(),
        "the embedded store without REDIS_URL"
    );
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops promptly")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

/// ispd's own jobs, run by a worker on request: the same service calls as
/// their CLI commands, with their counts recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ispds_jobs_run_on_request_and_record_their_counts() {
    let main = migrated(Backend::Sqlite).await.unwrap();
    let radius = TestDb::fresh(Backend::Sqlite).await.unwrap();
    RadiusMigrator::up(&radius.conn, None).await.unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let config = ispd::config::Config::from_lookup(|name| match name {
        "DATA_DIR" => Some(data_dir.path().display().to_string()),
        "JOBS_POLL_INTERVAL_MS" => Some("100".into()),
        _ => None,
    })
    .unwrap();
    let context = ispd::jobs::JobContext::new(
        Arc::new(config),
        ispd::db::Databases {
            main: main.conn.clone(),
            radius: radius.conn.clone(),
        },
        ispd::crypto::AppKey::generate(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(ispd::jobs::run_worker(context, async move {
        let _ = stopped.await;
    }));
    let mut ids = Vec::new();
    for job in [
        "housekeeping",
        "ipam-cleanup",
        "radius-retry",
        "radius-close-stale",
        "radius-sync-users",
        "network-health-check",
        "mikrotik-sync-sessions",
    ] {
        ids.push(
            runs::request_run(&main.conn, job, Trigger::Api, &Actor::cli())
                .await
                .unwrap()
                .id,
        );
    }
    for id in ids {
        let run = wait_for_run(&main.conn, id, Duration::from_secs(30), finished).await;
        assert_eq!(run.status, "succeeded", "{run:?}");
        assert!(run.summary.is_some(), "{run:?}");
    }
    let cleanup = runs::last_finished_run(&main.conn, "ipam-cleanup")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cleanup.summary.as_deref(),
        Some(r#"{"already_released":0,"released":0}"#)
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), worker)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();
}

// ------------------------------------------------------------ API and page

async fn send_api(
    app: &crate::helpers::TestApp,
    method: &str,
    path: &str,
    token: &str,
) -> crate::helpers::TestResponse {
    let method = axum::http::Method::from_bytes(method.as_bytes()).unwrap();
    app.api(method, path, token, None).await
}

async fn the_jobs_api_lists_jobs_and_runs_and_starts_runs(backend: Backend) {
    use ispd::staff::Role;
    let Some(app) = crate::helpers::TestApp::spawn_with(
        backend,
        &[("JOBS_SCHEDULE_NETWORK_HEALTH_CHECK", "off")],
    )
    .await
    else {
        return;
    };
    let operator = app.create_token(Role::Operator).await;
    let viewer = app.create_token(Role::Viewer).await;

    let jobs = send_api(&app, "GET", "/api/v1/jobs", &viewer).await;
    assert_eq!(jobs.status, 200, "{}", jobs.text());
    let jobs = jobs.json();
    let names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    for name in [
        "mikrotik-sync-sessions",
        "radius-sync-users",
        "radius-retry",
        "radius-close-stale",
        "network-health-check",
        "ipam-cleanup",
        "housekeeping",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let cleanup = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "ipam-cleanup")
        .unwrap();
    assert_eq!(cleanup["schedule"], "0 0 0 * * *");
    assert!(cleanup["next_run_at"]
        .as_str()
        .unwrap()
        .ends_with("T00:00:00Z"));
    let health = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "network-health-check")
        .unwrap();
    assert!(health["schedule"].is_null(), "turned off: {health}");
    assert!(health["next_run_at"].is_null());

    // Viewers may not start runs; operators may, once at a time.
    let refused = send_api(&app, "POST", "/api/v1/jobs/ipam-cleanup/run", &viewer).await;
    assert_eq!(refused.status, 403);
    let started = send_api(&app, "POST", "/api/v1/jobs/ipam-cleanup/run", &operator).await;
    assert_eq!(started.status, 202, "{}", started.text());
    let run = started.json();
    assert_eq!(run["job"], "ipam-cleanup");
    assert_eq!(run["trigger"], "api");
    assert_eq!(run["status"], "queued");
    assert_eq!(
        started.header("location"),
        Some(format!("/api/v1/jobs/runs/{}", run["id"]).as_str())
    );
    let again = send_api(&app, "POST", "/api/v1/jobs/ipam-cleanup/run", &operator).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["error"]["code"], "job_already_running");
    let unknown = send_api(&app, "POST", "/api/v1/jobs/no-such-job/run", &operator).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], "not_found");

    let one = send_api(
        &app,
        "GET",
        &format!("/api/v1/jobs/runs/{}", run["id"]),
        &viewer,
    )
    .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["id"], run["id"]);
    assert_eq!(
        send_api(&app, "GET", "/api/v1/jobs/runs/999999", &viewer)
            .await
            .status,
        404
    );
    let listed = send_api(
        &app,
        "GET",
        "/api/v1/jobs/runs?job=ipam-cleanup&status=queued&trigger=api",
        &viewer,
    )
    .await;
    assert_eq!(listed.status, 200);
    let listed = listed.json();
    assert_eq!(listed["meta"]["total"], 1);
    assert_eq!(listed["data"][0]["id"], run["id"]);
    let none = send_api(&app, "GET", "/api/v1/jobs/runs?status=failed", &viewer).await;
    assert_eq!(none.json()["meta"]["total"], 0);
    for bad in [
        "/api/v1/jobs/runs?status=exploded",
        "/api/v1/jobs/runs?trigger=cron",
        "/api/v1/jobs/runs?job=nope",
        "/api/v1/jobs/runs?page=0",
    ] {
        let response = send_api(&app, "GET", bad, &viewer).await;
        assert_eq!(response.status, 422, "{bad}: {}", response.text());
        assert_eq!(response.json()["error"]["code"], "validation_failed");
    }
    let active = send_api(&app, "GET", "/api/v1/jobs", &viewer).await.json();
    let cleanup = active
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "ipam-cleanup")
        .unwrap();
    assert_eq!(cleanup["active_run"]["id"], run["id"]);
}
crate::on_every_backend!(the_jobs_api_lists_jobs_and_runs_and_starts_runs);

async fn the_jobs_page_lists_runs_and_lets_operators_run_a_job_now(backend: Backend) {
    use ispd::staff::Role;
    let Some(app) = crate::helpers::TestApp::spawn(backend).await else {
        return;
    };
    let password = app.create_staff("olga", Role::Operator).await;
    let viewer_password = app.create_staff("victor", Role::Viewer).await;

    let mut viewer = crate::helpers::TestBrowser::new(&app);
    viewer.sign_in("victor", &viewer_password).await;
    let page = viewer.get("/jobs").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("mikrotik-sync-sessions"));
    assert!(html.contains("No job has run yet."));
    assert!(html.contains("hx-trigger=\"every 5s\""));
    assert!(
        !html.contains("action=\"/jobs/housekeeping/run\""),
        "viewers see no run button"
    );
    let refused = viewer.post("/jobs/housekeeping/run", &[]).await;
    assert_eq!(refused.status, 403);

    let mut operator = crate::helpers::TestBrowser::new(&app);
    operator.sign_in("olga", &password).await;
    assert!(operator
        .get("/jobs")
        .await
        .text()
        .contains("action=\"/jobs/housekeeping/run\""));
    let posted = operator.post("/jobs/housekeeping/run", &[]).await;
    assert_eq!(posted.status, 303, "{}", posted.text());
    assert_eq!(posted.header("location"), Some("/jobs?job=housekeeping"));
    let page = operator.get("/jobs?job=housekeeping").await.text();
    assert!(page.contains("queued (run 1)"), "{page}");
    assert!(page.contains("data-status=\"queued\""));
    assert!(page.contains("by olga"));
    // Pressed again while queued: refused with a message, nothing queued.
    let again = operator.post("/jobs/housekeeping/run", &[]).await;
    assert_eq!(again.status, 303);
    let page = operator.get("/jobs").await.text();
    assert!(page.contains("already queued or running"), "{page}");
    assert_eq!(
        job_run::Entity::find().all(app.db()).await.unwrap().len(),
        1
    );
    // The refresh asks for the fragment only.
    let fragment = app
        .send(
            axum::http::Request::get("/jobs?status=queued")
                .header("cookie", operator.cookie.clone().unwrap())
                .header("hx-request", "true")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(fragment.status, 200);
    let text = fragment.text();
    assert!(
        text.trim_start().starts_with("<section id=\"live\""),
        "{text}"
    );
    assert!(!text.contains("<html"));
    assert!(text.contains("data-status=\"queued\""));
    let empty = operator.get("/jobs?status=failed").await.text();
    assert!(empty.contains("No run matches these filters."));
}
crate::on_every_backend!(the_jobs_page_lists_runs_and_lets_operators_run_a_job_now);

#[test]
fn ispd_jobs_run_queues_a_run_and_refuses_a_second_one() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = crate::helpers::ispd_command(dir.path())
        .env("DATA_DIR", dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let run = |name: &str| {
        crate::helpers::ispd_command(dir.path())
            .env("DATA_DIR", dir.path())
            .args(["jobs", "run", name])
            .output()
            .unwrap()
    };
    let first = run("ipam-cleanup");
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("Queued run 1 of \"ipam-cleanup\""));
    let second = run("ipam-cleanup");
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already queued or running"),
        "{second:?}"
    );
    let unknown = run("nope");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("there is no job named \"nope\""));
}
