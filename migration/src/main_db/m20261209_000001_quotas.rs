//! Fair-usage quotas.
//!
//! - `service_packages.quota_bytes`, `.quota_direction` and
//!   `.cycle_anchor_day`: the bytes a subscriber may use per billing cycle,
//!   counted on download, upload or both (`total`), and the day of the
//!   month its cycle starts (1 to 28, so that every month has it).
//! - `network_users.cycle_anchor_day`: the subscriber's own anchor, which
//!   wins over the package's; `.quota_policy_id`: the policy of the quota
//!   tier the subscriber is in now (NULL: under every tier). Kept on the
//!   subscriber so that the RADIUS rows and the enforcement read it like
//!   the rest of its state.
//! - `service_packages.quota_tiers`: at which share of the allowance a
//!   policy (throttle, walled garden, reject) takes over, as JSON: a
//!   package has a handful, always read with it.
//! - `quota_usage`: per subscriber and cycle, the bytes counted and the
//!   bytes topped up.
//! - `quota_session_counters`: per radacct session, the counters already
//!   counted: the next reading adds only what grew since, so a reading seen
//!   twice counts once and a 32-bit counter that wrapped is recognised.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::columns::{add_columns, drop_columns, timestamp_col};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261209_000001_quotas"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        add_columns(
            manager,
            "service_packages",
            [
                big_integer_null("quota_bytes"),
                // total, download or upload.
                string_len_null("quota_direction", 8),
                integer_null("cycle_anchor_day"),
                // JSON: [{"threshold_percent": 100, "policy_id": 3}, ...].
                text_null("quota_tiers"),
            ],
        )
        .await?;
        add_columns(
            manager,
            "network_users",
            [
                integer_null("cycle_anchor_day"),
                integer_null("quota_policy_id"),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("quota_usage")
                    .col(big_pk_auto("id"))
                    .col(integer("user_id"))
                    .col(timestamp_col("cycle_start", backend, false))
                    .col(big_integer("download_bytes").default(0))
                    .col(big_integer("upload_bytes").default(0))
                    .col(big_integer("topup_bytes").default(0))
                    .col(timestamp_col("updated_at", backend, false))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_quota_usage_user_cycle")
                    .table("quota_usage")
                    .col("user_id")
                    .col("cycle_start")
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("quota_session_counters")
                    // radacct's id, in the RADIUS database.
                    .col(big_integer("radacctid").primary_key())
                    .col(integer("user_id"))
                    // The octets already counted (gigawords included).
                    .col(big_integer("input_octets"))
                    .col(big_integer("output_octets"))
                    .col(boolean("stopped").default(false))
                    .col(timestamp_col("seen_at", backend, false))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_quota_session_counters_stopped")
                    .table("quota_session_counters")
                    .col("stopped")
                    .col("seen_at")
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["quota_session_counters", "quota_usage"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().take())
                .await?;
        }
        drop_columns(
            manager,
            "network_users",
            &["quota_policy_id", "cycle_anchor_day"],
        )
        .await?;
        drop_columns(
            manager,
            "service_packages",
            &[
                "quota_tiers",
                "cycle_anchor_day",
                "quota_direction",
                "quota_bytes",
            ],
        )
        .await
    }
}
