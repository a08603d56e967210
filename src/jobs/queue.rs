//! The shared job queue: Redis (apalis-redis) when REDIS_URL is set, else
//! the embedded SQLite store (apalis-sqlite) in `DATA_DIR/jobs.db`, which
//! workers on one host share through the file.
//!
//! A queued item only names a run (`job_runs` row); the row is the truth.
//! Losing an item (a Redis restarted without persistence) costs a delay, not
//! a run: the workers' sweep queues an active run again when its item has
//! not been taken within the lease time (see `runs::take_runs_to_enqueue`).
//! Delivering an item twice is harmless: only one worker can take the run.
//!
//! Redis backlogs: apalis-redis puts every pushed item in the queue's
//! scheduled set (due now), and its fetch script moves *all* due items to the
//! active list in one Lua call (`rpush` with `unpack` of the whole range).
//! Redis's Lua cannot unpack about 8 000 values, so once that many items wait
//! every fetch fails and the consumer never gets an item. The workers
//! therefore move due items over themselves in bounded chunks
//! ([`JobQueue::promote_due`]) before each consumer start and on every sweep,
//! so that the fetch only ever sees a few.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Items moved from the scheduled set to the active list per Lua call: far
/// below the ~8 000 values Redis's Lua can unpack at once.
const PROMOTE_CHUNK: usize = 1000;

/// Moves up to ARGV[2] items due by ARGV[1] (unix seconds, the scores
/// apalis-redis writes) from the scheduled set to the end of the active
/// list, as apalis-redis's fetch script does but bounded, and raises the
/// same "items available" signal. Returns how many it moved.
const PROMOTE_DUE_SCRIPT: &str = r#"
local ids = redis.call("zrangebyscore", KEYS[1], 0, ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
if #ids > 0 then
    redis.call("rpush", KEYS[2], unpack(ids))
    redis.call("zrem", KEYS[1], unpack(ids))
    redis.call("del", KEYS[3])
    redis.call("lpush", KEYS[3], 1)
end
return #ids
"#;

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

    /// Moves every item that is due from the scheduled set to the active
    /// list, `PROMOTE_CHUNK` at a time (see the module doc for why);
    /// returns how many. Nothing to do for the embedded store, whose fetch
    /// takes a bounded batch straight from its table.
    pub async fn promote_due(&self) -> anyhow::Result<u64> {
        let JobQueue::Redis(storage) = self else {
            return Ok(0);
        };
        let mut storage = storage.clone();
        let config = storage.get_config().clone();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut promoted = 0u64;
        loop {
            let moved: u64 = redis::cmd("EVAL")
                .arg(PROMOTE_DUE_SCRIPT)
                .arg(3)
                .arg(config.scheduled_jobs_set())
                .arg(config.active_jobs_list())
                .arg(config.signal_list())
                .arg(now)
                .arg(PROMOTE_CHUNK)
                .query_async(storage.get_connection())
                .await
                .map_err(|e| anyhow::anyhow!("moving due job runs to the Redis queue: {e}"))?;
            promoted += moved;
            if moved < PROMOTE_CHUNK as u64 {
                return Ok(promoted);
            }
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
