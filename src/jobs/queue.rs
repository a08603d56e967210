//! The shared job queue: Redis (apalis-redis) when REDIS_URL is set, else
//! the embedded SQLite store (apalis-sqlite) in `DATA_DIR/jobs.db`, which
//! workers on one host share through the file.
//!
//! A queued item only names a run (`job_runs` row); the row is the truth.
//! Losing an item (a Redis restarted without persistence) costs a delay, not
//! a run: the workers' sweep queues an active run again when its item has
//! not been taken within the lease time (see `runs::take_runs_to_enqueue`).
//! Delivering an item twice is harmless: only one worker can take the run.

use std::path::Path;
use std::time::Duration;

use apalis::prelude::TaskSink;
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteStorage};
use serde::{Deserialize, Serialize};

/// One queued run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    pub run_id: i64,
    pub job: String,
}

/// The queue's name in Redis and in the embedded store.
pub const QUEUE_NAME: &str = "ispd-jobs";

#[derive(Clone)]
pub enum JobQueue {
    Redis(RedisStorage<RunRequest>),
    Embedded(SqliteStorage<RunRequest>),
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl JobQueue {
    /// Connects to Redis (at once: an unreachable Redis is an error here,
    /// and the caller retries with back-off). Afterwards the connection
    /// manager reconnects by itself.
    pub async fn redis(url: &str, queue: &str, heartbeat: Duration) -> anyhow::Result<Self> {
        let conn = apalis_redis::connect(url).await?;
        let config = apalis_redis::Config::default()
            .queue(queue)
            .heartbeat_interval(heartbeat)
            .missed_heartbeats(3);
        Ok(JobQueue::Redis(RedisStorage::new(conn).with_config(config)))
    }

    /// Opens (creating it if needed) the embedded store at `path`.
    pub async fn embedded(path: &Path, queue: &str, heartbeat: Duration) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        SqliteStorage::setup(&pool).await?;
        let config = apalis_sqlite::Config::default()
            .queue(queue)
            .heartbeat_interval(heartbeat)
            .missed_heartbeats(3);
        Ok(JobQueue::Embedded(
            SqliteStorage::new(&pool).with_config(config),
        ))
    }

    /// Redis when `redis_url` is set, else the embedded store in `data_dir`.
    pub async fn from_settings(
        redis_url: Option<&str>,
        data_dir: &Path,
        heartbeat: Duration,
    ) -> anyhow::Result<Self> {
        match redis_url {
            Some(url) => Self::redis(url, QUEUE_NAME, heartbeat).await,
            None => Self::embedded(&data_dir.join("jobs.db"), QUEUE_NAME, heartbeat).await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            JobQueue::Redis(_) => "redis",
            JobQueue::Embedded(_) => "embedded",
        }
    }

    pub async fn push(&self, request: RunRequest) -> anyhow::Result<()> {
        match self {
            JobQueue::Redis(storage) => storage
                .clone()
                .push(request)
                .await
                .map_err(|e| anyhow::anyhow!("queueing a job run in Redis: {e}")),
            JobQueue::Embedded(storage) => storage
                .clone()
                .push(request)
                .await
                .map_err(|e| anyhow::anyhow!("queueing a job run in the embedded store: {e}")),
        }
    }
}
