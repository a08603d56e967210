//! Job throughput: 10 000 queued no-op runs drained by two workers, on
//! Redis and on the embedded SQLite store, through the whole path a real
//! run takes (the `job_runs` row is taken with its lease, the attempt is
//! counted, the outcome recorded; the queue item is fetched and acked).
//!
//! `cargo bench --bench jobs` (options: `--jobs N`, default 10 000;
//! `--queue redis|embedded|both`, default both). Redis is BENCH_REDIS_URL
//! (default redis://127.0.0.1:6379, a `/N` suffix picks the database); the
//! queue gets a random name (`ispd-bench-…`) and its keys are deleted after
//! the run, so other users of that Redis are left alone. The main database
//! is a SQLite file in a temporary directory, the embedded setup's default.
//!
//! The runs are written and queued before the clock starts; the figure is
//! runs finished per second from the workers' start to the last finish.
//! While draining, the runs left are printed every 10 s, so that a stall
//! shows as such.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use ispd::jobs::runs::{self, job_run};
use ispd::jobs::{JobQueue, JobSummary, Registry, RunRequest, Worker, WorkerSettings};

fn main() -> ExitCode {
    let mut jobs = 10_000usize;
    let mut queues = vec!["redis", "embedded"];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--jobs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => jobs = n,
                None => {
                    eprintln!("--jobs needs a number");
                    return ExitCode::from(2);
                }
            },
            "--queue" => match args.next().as_deref() {
                Some("redis") => queues = vec!["redis"],
                Some("embedded") => queues = vec!["embedded"],
                Some("both") => {}
                _ => {
                    eprintln!("--queue needs redis, embedded or both");
                    return ExitCode::from(2);
                }
            },
            // cargo bench passes --bench to every harness = false target.
            "--bench" => {}
            other => {
                eprintln!("unknown option {other}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for queue in queues {
        if let Err(err) = runtime.block_on(drain(queue, jobs)) {
            eprintln!("jobs bench ({queue}): {err:#}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

async fn drain(kind: &str, jobs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("ispd.db").display());
    let db = ispd::db::connect(&url, Duration::from_secs(5)).await?;
    Migrator::up(&db, None).await?;
    let queue_name = format!("ispd-bench-{:016x}", rand::random::<u64>());
    let heartbeat = Duration::from_secs(5);
    let redis_url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = match kind {
        "redis" => JobQueue::redis(&redis_url, &queue_name, heartbeat)
            .await
            .with_context(|| format!("connecting to {redis_url}"))?,
        _ => JobQueue::embedded(&dir.path().join("jobs.db"), &queue_name, heartbeat).await?,
    };
    let result = queue_and_drain(kind, jobs, &db, &queue).await;
    if kind == "redis" {
        if let Err(err) = remove_redis_queue(&redis_url, &queue_name).await {
            eprintln!("jobs bench: could not remove the Redis keys of {queue_name}: {err:#}");
        }
    }
    result
}

async fn queue_and_drain(
    kind: &str,
    jobs: usize,
    db: &sea_orm::DatabaseConnection,
    queue: &JobQueue,
) -> anyhow::Result<()> {
    let db = db.clone();

    // One job name per run: a job has at most one active run.
    let mut registry = Registry::new();
    let tick = Utc::now();
    let prepared = Instant::now();
    for i in 0..jobs {
        let name = format!("noop-{i}");
        registry = registry.with_job(&name, None, || async { Ok(JobSummary::new()) });
        let run = runs::claim_tick(&db, &name, tick, Utc::now())
            .await?
            .context("a fresh tick is always claimed")?;
        queue
            .push(RunRequest {
                run_id: run.id,
                job: name,
            })
            .await?;
    }
    println!(
        "{kind}: {jobs} runs written and queued in {:.1} s",
        prepared.elapsed().as_secs_f64()
    );

    let settings = WorkerSettings {
        attempts: 1,
        retry_backoff: Duration::from_secs(1),
        timeout: Duration::from_secs(30),
        // Longer than the drain, so that the sweep does not queue again.
        lease: Duration::from_secs(600),
        poll_interval: Duration::from_millis(50),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let worker = Worker::new(
            db.clone(),
            queue.clone(),
            registry.clone(),
            settings.clone(),
        );
        let mut stopped = stopped.clone();
        workers.push(tokio::spawn(worker.run(async move {
            let _ = stopped.wait_for(|&s| s).await;
        })));
    }
    let mut next_report = Duration::from_secs(10);
    loop {
        let left = job_run::Entity::find()
            .filter(job_run::Column::ActiveJob.is_not_null())
            .count(&db)
            .await?;
        if left == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            anyhow::bail!("{left} runs left after 15 minutes");
        }
        if started.elapsed() >= next_report {
            eprintln!(
                "{kind}: {left} of {jobs} runs left after {} s",
                next_report.as_secs()
            );
            next_report += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    for worker in workers {
        worker.await?;
    }
    let succeeded = job_run::Entity::find()
        .filter(job_run::Column::Status.eq("succeeded"))
        .count(&db)
        .await?;
    anyhow::ensure!(succeeded == jobs as u64, "{succeeded} of {jobs} succeeded");
    let double = job_run::Entity::find()
        .filter(job_run::Column::Attempts.ne(1))
        .count(&db)
        .await?;
    anyhow::ensure!(double == 0, "{double} runs were attempted more than once");
    println!(
        "{kind}: {jobs} runs drained by 2 workers in {:.2} s: {:.0} runs/s (each run exactly once)",
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Deletes the bench queue's keys (the item data, one metadata hash per
/// item, the done set, the workers...) and its entry in apalis's list of
/// queues. Only keys under the bench's random queue name are touched.
async fn remove_redis_queue(url: &str, queue_name: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{queue_name}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<u64>(&mut conn)
                .await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    redis::cmd("ZREM")
        .arg("core:apalis:queues:list")
        .arg(format!("{queue_name}:workers"))
        .query_async::<u64>(&mut conn)
        .await?;
    Ok(())
}
