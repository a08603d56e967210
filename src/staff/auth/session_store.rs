//! tower-sessions store over the main database (sea-orm), so that staff
//! sessions survive a restart and the one sqlx of sea-orm serves them too.
//!
//! Each row also records the signed-in staff member, so that changing a
//! password can end that person's other sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::staff::entities::staff_session;

/// Where axum-login keeps its data inside a session record.
pub const AUTH_DATA_KEY: &str = "axum-login.data";

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: DatabaseConnection,
}

impl DbSessionStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Ends every session of a staff member except `keep`.
    pub async fn delete_sessions_of(
        &self,
        staff_user_id: i32,
        keep: Option<&Id>,
    ) -> Result<u64, sea_orm::DbErr> {
        let mut delete = staff_session::Entity::delete_many()
            .filter(staff_session::Column::StaffUserId.eq(staff_user_id));
        if let Some(keep) = keep {
            delete = delete.filter(staff_session::Column::Id.ne(keep.to_string()));
        }
        Ok(delete.exec(&self.db).await?.rows_affected)
    }
}

fn backend_error(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

fn to_chrono(at: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(at.unix_timestamp(), at.nanosecond()).unwrap_or_else(Utc::now)
}

/// The staff member a session belongs to, read from axum-login's data.
fn staff_user_id(record: &Record) -> Option<i32> {
    record
        .data
        .get(AUTH_DATA_KEY)?
        .get("user_id")?
        .as_i64()
        .and_then(|id| i32::try_from(id).ok())
}

fn to_row(record: &Record) -> Result<staff_session::ActiveModel, session_store::Error> {
    let data = serde_json::to_vec(&record.data)
        .map_err(|e| session_store::Error::Encode(e.to_string()))?;
    Ok(staff_session::ActiveModel {
        id: Set(record.id.to_string()),
        staff_user_id: Set(staff_user_id(record)),
        data: Set(data),
        expiry_date: Set(to_chrono(record.expiry_date).into()),
    })
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits; on the rare collision, draw another.
        loop {
            let inserted = staff_session::Entity::insert(to_row(record)?)
                .on_conflict(
                    // do_nothing_on: MySQL has no ON CONFLICT DO NOTHING;
                    // this becomes a no-op update there.
                    OnConflict::column(staff_session::Column::Id)
                        .do_nothing_on([staff_session::Column::Id])
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await
                .map_err(backend_error)?;
            if inserted > 0 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        staff_session::Entity::insert(to_row(record)?)
            .on_conflict(
                OnConflict::column(staff_session::Column::Id)
                    .update_columns([
                        staff_session::Column::StaffUserId,
                        staff_session::Column::Data,
                        staff_session::Column::ExpiryDate,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) = staff_session::Entity::find_by_id(id.to_string())
            .filter(staff_session::Column::ExpiryDate.gt(Utc::now().fixed_offset()))
            .one(&self.db)
            .await
            .map_err(backend_error)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_slice(&row.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(row.expiry_date.timestamp())
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        staff_session::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await
            .map_err(backend_error)?;
        Ok(())
    }
}
