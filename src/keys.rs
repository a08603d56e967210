//! Rotating APP_KEY: every stored ciphertext is re-encrypted from the old
//! key to the new one in **one transaction** on the main database.
//!
//! The order of steps, and what happens on failure:
//!
//! 1. Open a write transaction (`BEGIN IMMEDIATE` on SQLite), or a plain
//!    one for a dry run, which writes nothing.
//! 2. For each column in [`SEALED_COLUMNS`], read the rows in batches of
//!    [`BATCH_SIZE`] by ascending id, decrypt each ciphertext with the old
//!    key and (unless dry run) write it back encrypted with the new key.
//!    The UPDATE also requires the ciphertext it read, so a row changed
//!    meanwhile by a process still running with the old key fails the
//!    rotation instead of being overwritten.
//! 3. A row that does not decrypt stops all writing; the scan goes on only
//!    to name every such row, then the transaction is rolled back: nothing
//!    changes. The error names table, row id and column, never a value.
//! 4. Record one audit entry with the counts and commit.
//!
//! `updated_at` is left alone: the secrets themselves did not change.
//! Processes still running with the old key cannot read the new
//! ciphertexts, so `serve` and `worker` are stopped before and restarted
//! with the new key after (docs/DEPLOYMENT.md, "Rotating APP_KEY").

use std::fmt;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde_json::json;

use crate::audit::{self, Actor};
use crate::crypto::{AppKey, CryptoError};
use crate::mikrotik::entities::{mikrotik_pppoe_user, mikrotik_router};
use crate::users::entities::network_user;
use crate::webhooks::entities::webhook_endpoint;

/// Rows read and re-encrypted at a time (all inside the one transaction).
pub const BATCH_SIZE: u64 = 500;

/// At most this many undecryptable rows are named in the error.
const MAX_NAMED_FAILURES: usize = 20;

/// Every column that holds a ciphertext sealed with APP_KEY, as
/// `(table, column)`. A new `*_encrypted` column must be added here and in
/// [`rotate`]; the integration test
/// `every_encrypted_column_of_the_schema_is_rotated` compares this list with
/// the migrated schema.
pub const SEALED_COLUMNS: &[(&str, &str)] = &[
    ("network_users", "password_encrypted"),
    ("mikrotik_routers", "password_encrypted"),
    ("mikrotik_pppoe_users", "password_encrypted"),
    ("webhook_endpoints", "secret_encrypted"),
];

/// How many secrets of one column were re-encrypted (or, in a dry run,
/// proved to decrypt with the old key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnCount {
    pub table: &'static str,
    pub column: &'static str,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub dry_run: bool,
    pub columns: Vec<ColumnCount>,
}

impl RotationReport {
    pub fn total(&self) -> u64 {
        self.columns.iter().map(|c| c.rows).sum()
    }

    /// The count for one table, 0 if it is not listed.
    pub fn rows(&self, table: &str) -> u64 {
        self.columns
            .iter()
            .filter(|c| c.table == table)
            .map(|c| c.rows)
            .sum()
    }
}

impl fmt::Display for RotationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "decrypt with the old key (dry run: nothing written)"
        } else {
            "re-encrypted with the new key"
        };
        writeln!(f, "{} secret(s) {verb}:", self.total())?;
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {}.{}: {}", c.table, c.column, c.rows)?;
        }
        Ok(())
    }
}

/// A stored secret that the old key cannot open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecryptable {
    pub table: &'static str,
    pub column: &'static str,
    pub id: i32,
    pub reason: String,
}

impl fmt::Display for Undecryptable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} id {} column {}: {}",
            self.table, self.id, self.column, self.reason
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("the new key is the same as the current APP_KEY")]
    SameKey,
    #[error(
        "{count} stored secret(s) do not decrypt with the current APP_KEY; nothing was changed: {}{}",
        .failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        if *.count > .failures.len() { format!("; and {} more", .count - .failures.len()) } else { String::new() }
    )]
    Undecryptable {
        /// The first [`MAX_NAMED_FAILURES`] of them.
        failures: Vec<Undecryptable>,
        count: usize,
    },
    #[error("{table} id {id} changed while the key was being rotated (is serve or worker still running?); nothing was changed")]
    Concurrent { table: &'static str, id: i32 },
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Re-encrypts every stored secret from `old` to `new` in one transaction,
/// or with `dry_run` only proves that each decrypts with `old`.
#[tracing::instrument(skip_all, fields(dry_run))]
pub async fn rotate(
    db: &DatabaseConnection,
    old: &AppKey,
    new: &AppKey,
    dry_run: bool,
) -> Result<RotationReport, RotateError> {
    if old == new {
        return Err(RotateError::SameKey);
    }
    let txn = if dry_run {
        db.begin().await?
    } else {
        crate::db::begin_write(db).await?
    };
    let mut pass = Pass {
        old,
        new,
        write: !dry_run,
        failures: Vec::new(),
        failed: 0,
    };
    let columns = vec![
        pass.column::<network_user::Entity, _>(
            &txn,
            SEALED_COLUMNS[0],
            network_user::Column::Id,
            network_user::Column::PasswordEncrypted,
        )
        .await?,
        pass.column::<mikrotik_router::Entity, _>(
            &txn,
            SEALED_COLUMNS[1],
            mikrotik_router::Column::Id,
            mikrotik_router::Column::PasswordEncrypted,
        )
        .await?,
        pass.column::<mikrotik_pppoe_user::Entity, _>(
            &txn,
            SEALED_COLUMNS[2],
            mikrotik_pppoe_user::Column::Id,
            mikrotik_pppoe_user::Column::PasswordEncrypted,
        )
        .await?,
        pass.column::<webhook_endpoint::Entity, _>(
            &txn,
            SEALED_COLUMNS[3],
            webhook_endpoint::Column::Id,
            webhook_endpoint::Column::SecretEncrypted,
        )
        .await?,
    ];
    if pass.failed > 0 {
        txn.rollback().await?;
        return Err(RotateError::Undecryptable {
            failures: pass.failures,
            count: pass.failed,
        });
    }
    let report = RotationReport { dry_run, columns };
    if dry_run {
        txn.rollback().await?;
        return Ok(report);
    }
    let counts: serde_json::Map<String, serde_json::Value> = report
        .columns
        .iter()
        .map(|c| (format!("{}.{}", c.table, c.column), json!(c.rows)))
        .collect();
    audit::record(
        &txn,
        &Actor::cli(),
        "app_key.rotate",
        "app_key",
        None,
        json!({ "re_encrypted": counts, "total": report.total() }),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(total = report.total(), "APP_KEY rotated");
    Ok(report)
}

struct Pass<'a> {
    old: &'a AppKey,
    new: &'a AppKey,
    /// False in a dry run, and after the first failure.
    write: bool,
    failures: Vec<Undecryptable>,
    failed: usize,
}

impl Pass<'_> {
    async fn column<E, C>(
        &mut self,
        txn: &C,
        (table, column): (&'static str, &'static str),
        id_col: E::Column,
        secret_col: E::Column,
    ) -> Result<ColumnCount, RotateError>
    where
        E: EntityTrait,
        C: ConnectionTrait,
    {
        let mut rows = 0;
        let mut after = i32::MIN;
        loop {
            let batch: Vec<(i32, String)> = E::find()
                .select_only()
                .column(id_col)
                .column(secret_col)
                .filter(id_col.gt(after))
                .order_by_asc(id_col)
                .limit(BATCH_SIZE)
                .into_tuple()
                .all(txn)
                .await?;
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            after = last;
            for (id, sealed) in batch {
                let plaintext = match self.old.decrypt(&sealed) {
                    Ok(plaintext) => plaintext,
                    Err(err) => {
                        self.fail(table, column, id, &err);
                        continue;
                    }
                };
                rows += 1;
                if !self.write {
                    continue;
                }
                let updated = E::update_many()
                    .col_expr(
                        secret_col,
                        Expr::value(self.new.encrypt(plaintext.expose())),
                    )
                    .filter(id_col.eq(id))
                    .filter(secret_col.eq(sealed))
                    .exec(txn)
                    .await?;
                if updated.rows_affected != 1 {
                    return Err(RotateError::Concurrent { table, id });
                }
            }
        }
        Ok(ColumnCount {
            table,
            column,
            rows,
        })
    }

    fn fail(&mut self, table: &'static str, column: &'static str, id: i32, err: &CryptoError) {
        self.write = false;
        self.failed += 1;
        if self.failures.len() < MAX_NAMED_FAILURES {
            self.failures.push(Undecryptable {
                table,
                column,
                id,
                reason: err.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_each_column_and_the_total() {
        let report = RotationReport {
            dry_run: false,
            columns: vec![
                ColumnCount {
                    table: "network_users",
                    column: "password_encrypted",
                    rows: 2,
                },
                ColumnCount {
                    table: "mikrotik_routers",
                    column: "password_encrypted",
                    rows: 1,
                },
            ],
        };
        assert_eq!(report.total(), 3);
        assert_eq!(report.rows("mikrotik_routers"), 1);
        assert_eq!(
            report.to_string(),
            "3 secret(s) re-encrypted with the new key:\n  network_users.password_encrypted: 2\n  mikrotik_routers.password_encrypted: 1"
        );
    }

    #[test]
    fn the_error_names_rows_but_caps_the_list() {
        let failures: Vec<_> = (1..=MAX_NAMED_FAILURES as i32)
            .map(|id| Undecryptable {
                table: "network_users",
                column: "password_encrypted",
                id,
                reason: CryptoError::Malformed.to_string(),
            })
            .collect();
        let text = RotateError::Undecryptable {
            failures,
            count: MAX_NAMED_FAILURES + 3,
        }
        .to_string();
        assert!(
            text.contains("network_users id 7 column password_encrypted"),
            "{text}"
        );
        assert!(text.ends_with("; and 3 more"), "{text}");
        assert!(text.contains("nothing was changed"), "{text}");
    }
}
