//! The job-run history: one row per run of a background job (scheduled,
//! manual or from the API). The row is also what makes several workers
//! agree: its unique `run_key` (job + scheduled tick) lets exactly one
//! worker claim a tick, its unique `active_job` (the job name while the run
//! is queued or running, NULL afterwards) keeps two runs of one job from
//! overlapping, and `lease_holder`/`lease_until` say which worker runs it
//! now, so that another worker can take it over when the holder dies.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::columns::timestamp_col;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000200_job_runs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table("job_runs")
                    .col(big_pk_auto("id"))
                    .col(string_len("job_name", 64))
                    // schedule, manual, api or cli.
                    .col(string_len("trigger", 16))
                    // job@tick for scheduled runs, job@manual-<random> otherwise.
                    .col(string_len("run_key", 128))
                    // The job name while the run is queued or running; NULL after
                    // (a unique index ignores NULLs on every backend).
                    .col(string_len_null("active_job", 64))
                    .col(timestamp_col("scheduled_for", backend, true))
                    // queued, running, retrying, succeeded, failed, timed_out.
                    .col(string_len("status", 16))
                    .col(integer("attempts").default(0))
                    .col(string_len_null("requested_by", 128))
                    .col(string_len_null("lease_holder", 128))
                    .col(timestamp_col("lease_until", backend, true))
                    // When a worker last pushed the run onto the job queue.
                    .col(timestamp_col("enqueued_at", backend, true))
                    .col(timestamp_col("created_at", backend, false))
                    .col(timestamp_col("started_at", backend, true))
                    .col(timestamp_col("finished_at", backend, true))
                    .col(big_integer_null("duration_ms"))
                    // JSON object of counts, e.g. {"released": 3}.
                    .col(text_null("summary"))
                    .col(text_null("error"))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_job_runs_run_key")
                    .table("job_runs")
                    .col("run_key")
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_job_runs_active_job")
                    .table("job_runs")
                    .col("active_job")
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_runs_job_created")
                    .table("job_runs")
                    .col("job_name")
                    .col("created_at")
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_runs_status")
                    .table("job_runs")
                    .col("status")
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_runs_created")
                    .table("job_runs")
                    .col("created_at")
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("job_runs").if_exists().take())
            .await
    }
}
