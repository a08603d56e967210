//! Subscriber state enforced on the network.
//!
//! - `service_policies`: what a subscriber who is not active gets (reject,
//!   walled garden or throttle), each with its own RADIUS group. At most one
//!   is the default, for packages that name none.
//! - `service_packages.policy_id` and `.grace_days`: a package's policy and
//!   the days past `expires_at` before its subscribers count as expired.
//! - `network_users.enforced_state`, `.enforced_service` and `.enforced_at`:
//!   the state and the service (as JSON: target, group, rate, address list,
//!   pool) last carried to RADIUS and the live sessions, and when the
//!   subscriber was read for it. The minute job looks only at subscribers
//!   changed since (`updated_at`, their package's `updated_at`) or whose
//!   expiry has passed, and compares the service.
//! - `enforcement_actions`: one row per live session a change must reach:
//!   the request sent (CoA or Disconnect), its outcome, and whether the
//!   session has since shown the change. The rows still pending are the
//!   queue the worker retries, so nothing is lost on a restart.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::columns::{add_columns, drop_columns, timestamp_col};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000001_enforcement"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table("service_policies")
                    .col(pk_auto("id"))
                    .col(string_len("name", 64))
                    // reject, walled_garden or throttle.
                    .col(string_len("action", 16))
                    // The restricted rate (walled garden, throttle), kbit/s.
                    .col(big_integer_null("download_rate_kbps"))
                    .col(big_integer_null("upload_rate_kbps"))
                    .col(string_len_null("framed_pool", 64))
                    .col(string_len_null("address_list", 64))
                    .col(string_len("radius_group", 64))
                    // 1 on the default policy, NULL on the others: a unique
                    // index ignores NULLs, so at most one default.
                    .col(small_integer_null("default_marker"))
                    .col(timestamp_col("created_at", backend, false))
                    .col(timestamp_col("updated_at", backend, false))
                    .take(),
            )
            .await?;
        for (name, column) in [
            ("uq_service_policies_name", "name"),
            ("uq_service_policies_radius_group", "radius_group"),
            ("uq_service_policies_default", "default_marker"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("service_policies")
                        .col(column)
                        .unique()
                        .take(),
                )
                .await?;
        }

        add_columns(
            manager,
            "service_packages",
            [integer_null("policy_id"), integer_null("grace_days")],
        )
        .await?;
        add_columns(
            manager,
            "network_users",
            [
                string_len_null("enforced_state", 16),
                text_null("enforced_service"),
                timestamp_col("enforced_at", backend, true),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("enforcement_actions")
                    .col(big_pk_auto("id"))
                    .col(integer_null("user_id"))
                    .col(string_len("username", 64))
                    // What changed: suspended, resumed, expired, disabled,
                    // package_changed.
                    .col(string_len("reason", 32))
                    // The service the session must get: reject,
                    // walled_garden, throttle or active.
                    .col(string_len("target", 16))
                    // coa, disconnect (to the NAS) or router_disconnect (a
                    // session of a PPP secret on one of our routers).
                    .col(string_len("request", 20))
                    .col(big_integer_null("radacctid"))
                    .col(integer_null("router_id"))
                    .col(string_len("acct_session_id", 64))
                    .col(string_len("nas", 128))
                    // The attributes a CoA carried, as JSON.
                    .col(text_null("attributes"))
                    // pending, sent, confirmed, not_applied, superseded.
                    .col(string_len("status", 16))
                    // The last answer: ack, nak, no_answer, unreachable,
                    // session_closed, nas_not_registered ...
                    .col(string_len_null("outcome", 32))
                    .col(text_null("detail"))
                    .col(integer("attempts").default(0))
                    .col(timestamp_col("next_attempt_at", backend, true))
                    .col(timestamp_col("sent_at", backend, true))
                    .col(timestamp_col("confirmed_at", backend, true))
                    .col(timestamp_col("created_at", backend, false))
                    .col(timestamp_col("updated_at", backend, false))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_enforcement_actions_status")
                    .table("enforcement_actions")
                    .col("status")
                    .col("next_attempt_at")
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_enforcement_actions_user")
                    .table("enforcement_actions")
                    .col("user_id")
                    .col("id")
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table("enforcement_actions")
                    .if_exists()
                    .take(),
            )
            .await?;
        drop_columns(
            manager,
            "network_users",
            &["enforced_at", "enforced_service", "enforced_state"],
        )
        .await?;
        drop_columns(manager, "service_packages", &["grace_days", "policy_id"]).await?;
        manager
            .drop_table(Table::drop().table("service_policies").if_exists().take())
            .await
    }
}
