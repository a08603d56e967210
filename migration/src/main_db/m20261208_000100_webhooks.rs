//! Outbound webhooks.
//!
//! - `webhook_endpoints`: where events are pushed (a billing system, a
//!   CRM): its URL, the secret that signs each request (sealed with
//!   APP_KEY, like router passwords), the event types it takes (`*` for
//!   all, else names separated by commas) and whether it is active.
//! - `webhook_deliveries`: one row per event and endpoint. The payload is
//!   stored as sent, so every retry and replay sends the same bytes with
//!   the same event id. The rows still pending are the queue the
//!   `webhook-delivery` job works through: nothing is lost on a restart.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::columns::timestamp_col;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000100_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table("webhook_endpoints")
                    .col(pk_auto("id"))
                    .col(string_len("name", 64))
                    .col(string_len("url", 2048))
                    // AES-256-GCM under APP_KEY (crate::crypto); rotated by
                    // `ispd key rotate`.
                    .col(text("secret_encrypted"))
                    // `*`, or event type names separated by commas.
                    .col(text("event_types"))
                    .col(boolean("active").default(true))
                    .col(timestamp_col("created_at", backend, false))
                    .col(timestamp_col("updated_at", backend, false))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_webhook_endpoints_name")
                    .table("webhook_endpoints")
                    .col("name")
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("webhook_deliveries")
                    .col(big_pk_auto("id"))
                    .col(integer("endpoint_id"))
                    // The event's id: random, the same for every retry and
                    // replay, and for each endpoint the event went to.
                    .col(string_len("event_id", 40))
                    .col(string_len("event_type", 64))
                    // The JSON body, as sent.
                    .col(text("payload"))
                    // pending, delivered, failed.
                    .col(string_len("status", 16))
                    .col(integer("attempts").default(0))
                    // When a pending row is next due; a worker sending it
                    // moves it ahead by its lease (webhooks::delivery).
                    .col(timestamp_col("next_attempt_at", backend, true))
                    .col(integer_null("last_status_code"))
                    .col(text_null("last_error"))
                    .col(timestamp_col("delivered_at", backend, true))
                    .col(timestamp_col("created_at", backend, false))
                    .col(timestamp_col("updated_at", backend, false))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_endpoint")
                            .from("webhook_deliveries", "endpoint_id")
                            .to("webhook_endpoints", "id")
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_due")
                    .table("webhook_deliveries")
                    .col("status")
                    .col("next_attempt_at")
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_webhook_deliveries_event")
                    .table("webhook_deliveries")
                    .col("endpoint_id")
                    .col("event_id")
                    .unique()
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("webhook_deliveries").if_exists().take())
            .await?;
        manager
            .drop_table(Table::drop().table("webhook_endpoints").if_exists().take())
            .await
    }
}
