//! One worker process (or one `ispd run`): the scheduler, the sweep and the
//! apalis consumer, over the shared queue and the `job_runs` table.
//!
//! - **Scheduler**: for each scheduled job, sleeps until the next cron tick
//!   (UTC) and tries to claim it (`runs::claim_tick`). Every worker does
//!   this; the unique run key lets one of them win, and only the winner
//!   queues the run. So a tick runs once however many workers there are.
//! - **Sweep**: every poll interval, queues the active runs nobody has
//!   queued (manual and API runs are only written by the web process) or
//!   whose worker died (expired lease).
//! - **Consumer**: an apalis worker taking queued runs from Redis or the
//!   embedded store. It takes the run's lease, then runs the job with a
//!   timeout, renewing the lease, retrying failed attempts with exponential
//!   back-off, and records each attempt and the outcome in the run's row.
//!
//! Everything runs inside the future returned by [`Worker::run`] (spawned
//! tasks are aborted with it), so that dropping it is like killing the
//! process: in-flight runs keep their rows and expiring leases, and another
//! worker finishes them.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot, watch};

use super::queue::{JobQueue, RunRequest};
use super::runs::{self, JobSummary, Outcome};

pub type JobResult = Result<JobSummary, anyhow::Error>;
pub type JobFuture = Pin<Box<dyn Future<Output = JobResult> + Send>>;
pub type JobFn = Arc<dyn Fn() -> JobFuture + Send + Sync>;

/// A job the worker can run, and its schedule (None: only on request).
#[derive(Clone)]
pub struct JobDefinition {
    pub name: String,
    pub schedule: Option<cron::Schedule>,
    pub run: JobFn,
}

/// The jobs one worker knows, by name.
#[derive(Clone, Default)]
pub struct Registry {
    jobs: BTreeMap<String, JobDefinition>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a job; `run` is called once per attempt.
    pub fn with_job<F, Fut>(mut self, name: &str, schedule: Option<cron::Schedule>, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        let run: JobFn = Arc::new(move || Box::pin(run()) as JobFuture);
        self.jobs.insert(
            name.to_string(),
            JobDefinition {
                name: name.to_string(),
                schedule,
                run,
            },
        );
        self
    }

    pub fn get(&self, name: &str) -> Option<&JobDefinition> {
        self.jobs.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.jobs.keys().map(String::as_str)
    }
}

/// How a worker runs jobs; from the JOBS_* settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Attempts per run, the first included (JOBS_ATTEMPTS).
    pub attempts: u32,
    /// The wait after the first failed attempt, doubling after each next one
    /// (JOBS_RETRY_BACKOFF_SECS).
    pub retry_backoff: Duration,
    /// An attempt running longer is cancelled (JOBS_TIMEOUT_SECS).
    pub timeout: Duration,
    /// How long a run stays with a worker that stops renewing it
    /// (JOBS_LEASE_SECS); renewed every third of it.
    pub lease: Duration,
    /// How often the sweep looks for runs to queue, and the consumer for
    /// queued runs (JOBS_POLL_INTERVAL_MS).
    pub poll_interval: Duration,
}

/// Queue items one worker handles at once. A job has at most one active
/// run, so this only bounds a backlog (and the database connections taking
/// it): without a bound, apalis takes every queued item at once, and with
/// thousands queued the handlers time out waiting for a connection.
const MAX_IN_FLIGHT: usize = 32;
/// The longest wait between two attempts, whatever the back-off says.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(3600);
/// The longest wait before restarting a consumer or reconnecting.
const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(30);

struct Shared {
    id: String,
    db: DatabaseConnection,
    queue: JobQueue,
    registry: Registry,
    settings: WorkerSettings,
    db_outage: Outage,
    queue_outage: Outage,
    executor: mpsc::UnboundedSender<Execution>,
}

/// Logs an outage once when it starts and once when it ends, not on every
/// failed call in between.
struct Outage {
    what: &'static str,
    down: AtomicBool,
}

impl Outage {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            down: AtomicBool::new(false),
        }
    }

    fn failed(&self, error: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::SeqCst) {
            tracing::error!(error = %error, "{} unavailable; jobs wait and retry until it is back", self.what);
        } else {
            tracing::debug!(error = %error, "{} still unavailable", self.what);
        }
    }

    fn ok(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            tracing::info!("{} is back; jobs resume", self.what);
        }
    }
}

pub struct Worker {
    shared: Arc<Shared>,
    executions: mpsc::UnboundedReceiver<Execution>,
}

/// A run taken by the consumer, handed to the executor. The executor, not
/// the apalis consumer, owns the running job: when the queue fails (Redis
/// down) apalis drops its consumer and everything in it, but a job already
/// running has no need of the queue and finishes.
struct Execution {
    job: JobDefinition,
    run_id: i64,
    attempts_done: u32,
    done: oneshot::Sender<Result<(), sea_orm::DbErr>>,
}

/// A name unique to this worker: host, process and a random part (two
/// workers in one process, as in the tests, differ too).
fn new_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        rand::random::<u32>() & 0xff_ffff
    )
}

impl Worker {
    pub fn new(
        db: DatabaseConnection,
        queue: JobQueue,
        registry: Registry,
        settings: WorkerSettings,
    ) -> Self {
        let (executor, executions) = mpsc::unbounded_channel();
        Self {
            shared: Arc::new(Shared {
                id: new_worker_id(),
                db,
                queue,
                registry,
                settings,
                db_outage: Outage::new("the main database"),
                queue_outage: Outage::new("the job queue"),
                executor,
            }),
            executions,
        }
    }

    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Runs until `shutdown` completes, then lets the running jobs finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let shared = self.shared;
        let (stop, stopped) = watch::channel(false);
        // Stopped last, so that the consumer's in-flight runs can finish.
        let (stop_executor, executor_stopped) = watch::channel(false);
        let executor = tokio::spawn(execute_loop(
            shared.clone(),
            self.executions,
            executor_stopped,
        ));
        let executor = AbortOnDrop(executor);
        let mut tasks = tokio::task::JoinSet::new();
        for job in shared.registry.jobs.values() {
            if let Some(schedule) = job.schedule.clone() {
                tasks.spawn(schedule_loop(
                    shared.clone(),
                    job.name.clone(),
                    schedule,
                    stopped.clone(),
                ));
            }
        }
        tasks.spawn(sweep_loop(shared.clone(), stopped.clone()));
        tasks.spawn(consume_loop(shared.clone(), stopped.clone()));
        tracing::info!(
            worker = %shared.id,
            queue = shared.queue.kind(),
            jobs = shared.registry.jobs.len(),
            "worker started"
        );
        shutdown.await;
        let _ = stop.send(true);
        while tasks.join_next().await.is_some() {}
        let _ = stop_executor.send(true);
        let mut executor = executor;
        let _ = (&mut executor.0).await;
        tracing::info!(worker = %shared.id, "worker stopped");
    }
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|&stop| stop).await;
}

/// Sleeps for `duration`; true when asked to stop meanwhile.
async fn sleep_or_stop(duration: Duration, stopped: &watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stopped.borrow(),
        _ = wait_for_stop(stopped.clone()) => true,
    }
}

async fn schedule_loop(
    shared: Arc<Shared>,
    job: String,
    schedule: cron::Schedule,
    stopped: watch::Receiver<bool>,
) {
    loop {
        let now = Utc::now();
        let Some(tick) = schedule.after(&now).next() else {
            return;
        };
        let wait = (tick - now).to_std().unwrap_or_default();
        if sleep_or_stop(wait, &stopped).await {
            return;
        }
        // A worker that could not reach the database at the tick keeps
        // trying briefly: the tick is still owed if no one else claimed it.
        let mut delay = Duration::from_millis(200);
        loop {
            match runs::claim_tick(&shared.db, &job, tick, Utc::now()).await {
                Ok(Some(run)) => {
                    shared.db_outage.ok();
                    tracing::debug!(job = %job, run = run.id, %tick, "claimed the tick");
                    push(&shared, run.id, &job).await;
                    break;
                }
                Ok(None) => {
                    shared.db_outage.ok();
                    tracing::debug!(job = %job, %tick, "tick claimed by another worker, or the job is still running");
                    break;
                }
                Err(err) => {
                    shared.db_outage.failed(&err);
                    let next_tick = schedule.after(&tick).next();
                    let give_up = next_tick.is_none_or(|next| Utc::now() + delay >= next);
                    if give_up || sleep_or_stop(delay, &stopped).await {
                        break;
                    }
                    delay = (delay * 2).min(MAX_RECONNECT_BACKOFF);
                }
            }
        }
    }
}

async fn push(shared: &Shared, run_id: i64, job: &str) {
    let request = RunRequest {
        run_id,
        job: job.to_string(),
    };
    match shared.queue.push(request).await {
        Ok(()) => shared.queue_outage.ok(),
        // The run stays queued in the table; the sweep pushes it again.
        Err(err) => shared.queue_outage.failed(&err),
    }
}

async fn sweep_loop(shared: Arc<Shared>, stopped: watch::Receiver<bool>) {
    loop {
        match runs::take_runs_to_enqueue(&shared.db, Utc::now(), shared.settings.lease).await {
            Ok(taken) => {
                shared.db_outage.ok();
                for run in taken {
                    push(&shared, run.id, &run.job_name).await;
                }
            }
            Err(err) => shared.db_outage.failed(&err),
        }
        // Keeps the Redis fetch from ever facing a backlog too large for it
        // (see `JobQueue::promote_due`), whoever queued it.
        if let Err(err) = shared.queue.promote_due().await {
            shared.queue_outage.failed(&err);
        }
        if sleep_or_stop(shared.settings.poll_interval, &stopped).await {
            return;
        }
    }
}

/// Runs the apalis consumer, restarting it with back-off when its backend
/// fails (Redis down): apalis stops a worker whose heartbeat or fetch fails.
async fn consume_loop(shared: Arc<Shared>, stopped: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(250);
    let mut generation = 0u32;
    loop {
        // apalis refuses a worker name seen alive recently: a new one per start.
        let name = format!("{}-c{generation}", shared.id);
        generation += 1;
        let started = std::time::Instant::now();
        // A Redis fetch fails as long as thousands of due items wait in the
        // scheduled set, so they are moved over in chunks first.
        let result = match shared.queue.promote_due().await {
            Ok(_) => run_consumer(shared.clone(), name, stopped.clone()).await,
            Err(err) => Err(WorkerError::BackendError(err.into())),
        };
        if *stopped.borrow() {
            return;
        }
        match result {
            Ok(()) => shared
                .queue_outage
                .failed(&"the job queue consumer stopped"),
            Err(err) => shared.queue_outage.failed(&err),
        }
        if started.elapsed() > MAX_RECONNECT_BACKOFF {
            backoff = Duration::from_millis(250);
        }
        if sleep_or_stop(backoff, &stopped).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_RECONNECT_BACKOFF);
    }
}

async fn run_consumer(
    shared: Arc<Shared>,
    name: String,
    stopped: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let poll = shared.settings.poll_interval;
    let signal = async move {
        wait_for_stop(stopped).await;
        Ok::<(), WorkerError>(())
    };
    match shared.queue.clone() {
        JobQueue::Redis(storage) => {
            WorkerBuilder::new(name)
                .backend(storage.poll_with_interval(poll))
                .concurrency(MAX_IN_FLIGHT)
                .data(shared)
                .build(handle_run)
                .run_until(signal)
                .await
        }
        JobQueue::Embedded(storage) => {
            WorkerBuilder::new(name)
                .backend(storage.poll_with_interval(poll))
                .concurrency(MAX_IN_FLIGHT)
                .data(shared)
                .build(handle_run)
                .run_until(signal)
                .await
        }
    }
}

/// One queued run, as apalis hands it over. Errors here only concern the
/// bookkeeping (the database is down): the run keeps its row, and the sweep
/// queues it again once its lease has expired.
async fn handle_run(request: RunRequest, shared: Data<Arc<Shared>>) -> Result<(), BoxDynError> {
    let shared: Arc<Shared> = (*shared).clone();
    let settings = &shared.settings;
    let run = match runs::acquire(
        &shared.db,
        request.run_id,
        &shared.id,
        Utc::now(),
        settings.lease,
    )
    .await
    {
        Ok(Some(run)) => run,
        Ok(None) => {
            tracing::debug!(run = request.run_id, "run already taken or finished");
            return Ok(());
        }
        Err(err) => {
            shared.db_outage.failed(&err);
            return Err(err.into());
        }
    };
    let Some(job) = shared.registry.get(&run.job_name).cloned() else {
        let message = format!("this worker has no job named \"{}\"", run.job_name);
        runs::finish(
            &shared.db,
            run.id,
            &shared.id,
            Outcome::Failed(message),
            Utc::now(),
        )
        .await?;
        return Ok(());
    };
    let (done, finished) = oneshot::channel();
    let execution = Execution {
        job,
        run_id: run.id,
        attempts_done: run.attempts.max(0) as u32,
        done,
    };
    if shared.executor.send(execution).is_err() {
        return Err("the worker is stopping".into());
    }
    // Acknowledged once the run is over, so that apalis re-queues the item
    // if this worker dies first.
    match finished.await {
        Ok(result) => Ok(result?),
        Err(_) => Err("the worker stopped before the run finished".into()),
    }
}

/// Runs each taken run in a task of its own until asked to stop, then waits
/// for the runs in progress. Aborted with the worker when it is killed.
async fn execute_loop(
    shared: Arc<Shared>,
    mut executions: mpsc::UnboundedReceiver<Execution>,
    stopped: watch::Receiver<bool>,
) {
    let mut running = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            execution = executions.recv() => {
                let Some(execution) = execution else { break };
                let shared = shared.clone();
                running.spawn(async move {
                    let result = execute(
                        &shared,
                        &execution.job,
                        execution.run_id,
                        execution.attempts_done,
                    )
                    .await;
                    if let Err(err) = &result {
                        shared.db_outage.failed(err);
                    }
                    let _ = execution.done.send(result);
                });
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
            () = wait_for_stop(stopped.clone()) => break,
        }
    }
    while running.join_next().await.is_some() {}
}

enum Attempt {
    Succeeded(JobSummary),
    Failed(String),
    TimedOut(String),
    /// Another worker took the run (this one could not renew its lease).
    LostLease,
}

/// Runs the attempts left of one run, which this worker holds.
async fn execute(
    shared: &Arc<Shared>,
    job: &JobDefinition,
    run_id: i64,
    mut attempts_done: u32,
) -> Result<(), sea_orm::DbErr> {
    let settings = &shared.settings;
    loop {
        if !runs::begin_attempt(&shared.db, run_id, &shared.id).await? {
            return Ok(());
        }
        attempts_done += 1;
        tracing::info!(job = %job.name, run = run_id, attempt = attempts_done, "job started");
        let started = std::time::Instant::now();
        let attempt = while_holding_lease(shared, run_id, run_attempt(job, settings.timeout)).await;
        let attempt = attempt.unwrap_or(Attempt::LostLease);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let error = match attempt {
            Attempt::Succeeded(summary) => {
                tracing::info!(job = %job.name, run = run_id, elapsed_ms, summary = %summary, "job succeeded");
                runs::finish(
                    &shared.db,
                    run_id,
                    &shared.id,
                    Outcome::Succeeded(summary),
                    Utc::now(),
                )
                .await?;
                return Ok(());
            }
            Attempt::LostLease => {
                tracing::warn!(job = %job.name, run = run_id, "lost the run's lease; another worker has it");
                return Ok(());
            }
            Attempt::Failed(error) | Attempt::TimedOut(error)
                if attempts_done >= settings.attempts =>
            {
                tracing::error!(job = %job.name, run = run_id, attempts = attempts_done, error = %error, "job failed");
                let outcome = if matches!(attempt_kind(&error), Kind::Timeout) {
                    Outcome::TimedOut(error)
                } else {
                    Outcome::Failed(error)
                };
                runs::finish(&shared.db, run_id, &shared.id, outcome, Utc::now()).await?;
                return Ok(());
            }
            Attempt::Failed(error) | Attempt::TimedOut(error) => error,
        };
        let backoff = settings
            .retry_backoff
            .saturating_mul(1 << (attempts_done - 1).min(20))
            .min(MAX_RETRY_BACKOFF);
        tracing::warn!(job = %job.name, run = run_id, attempt = attempts_done, error = %error, retry_in_ms = backoff.as_millis() as u64, "job attempt failed; retrying");
        if !runs::record_retry(&shared.db, run_id, &shared.id, &error).await? {
            return Ok(());
        }
        if while_holding_lease(shared, run_id, tokio::time::sleep(backoff))
            .await
            .is_none()
        {
            return Ok(());
        }
    }
}

/// The prefix of a timeout error, to tell it from a job's own error.
const TIMEOUT_PREFIX: &str = "timed out: ";

enum Kind {
    Timeout,
    Error,
}

fn attempt_kind(error: &str) -> Kind {
    if error.starts_with(TIMEOUT_PREFIX) {
        Kind::Timeout
    } else {
        Kind::Error
    }
}

/// Aborts a spawned job when dropped: a timed-out attempt or a killed
/// worker leaves nothing running behind. Spawning also turns a panic in a
/// job into a failed attempt.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_attempt(job: &JobDefinition, timeout: Duration) -> Attempt {
    let mut handle = AbortOnDrop(tokio::spawn((job.run)()));
    match tokio::time::timeout(timeout, &mut handle.0).await {
        Ok(Ok(Ok(summary))) => Attempt::Succeeded(summary),
        Ok(Ok(Err(error))) => Attempt::Failed(format!("{error:#}")),
        Ok(Err(join_error)) => Attempt::Failed(format!("the job panicked: {join_error}")),
        Err(_) => Attempt::TimedOut(format!(
            "{TIMEOUT_PREFIX}cancelled after the {} s job timeout",
            timeout.as_secs_f64()
        )),
    }
}

/// Runs `work` while renewing the run's lease every third of its length.
/// Returns None (dropping `work`) when the lease is lost: another worker
/// took the run, or renewals failed for a whole lease period (the database
/// is unreachable, so another worker may take the run once it is back).
async fn while_holding_lease<T>(
    shared: &Arc<Shared>,
    run_id: i64,
    work: impl Future<Output = T>,
) -> Option<T> {
    let lease = shared.settings.lease;
    let renew = async {
        let mut last_renewed = std::time::Instant::now();
        loop {
            tokio::time::sleep(lease / 3).await;
            match runs::renew_lease(&shared.db, run_id, &shared.id, Utc::now(), lease).await {
                Ok(true) => {
                    shared.db_outage.ok();
                    last_renewed = std::time::Instant::now();
                }
                Ok(false) => return,
                Err(err) => {
                    shared.db_outage.failed(&err);
                    if last_renewed.elapsed() >= lease {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        result = work => Some(result),
        () = renew => None,
    }
}
