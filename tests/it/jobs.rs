//! Background jobs: the worker's lifecycle and the housekeeping job.

use std::time::Duration;

use chrono::Utc;
use migration::{Migrator, MigratorTrait, RadiusMigrator};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use crate::helpers::{Backend, TestDb};
use ispd::staff::entities::staff_session;

async fn expired_staff_sessions_are_purged_and_live_ones_kept(backend: Backend) {
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    Migrator::up(&db.conn, None).await.unwrap();
    for (id, offset_hours) in [("expired", -1), ("live", 1)] {
        staff_session::ActiveModel {
            id: Set(id.into()),
            staff_user_id: Set(None),
            data: Set(b"{}".to_vec()),
            expiry_date: Set(Utc::now() + chrono::Duration::hours(offset_hours)),
        }
        .insert(&db.conn)
        .await
        .unwrap();
    }
    let purged = ispd::staff::service::purge_expired_sessions(&db.conn)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let left: Vec<String> = staff_session::Entity::find()
        .all(&db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, ["live"]);
}
crate::on_every_backend!(expired_staff_sessions_are_purged_and_live_ones_kept);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_until_told_to_stop() {
    let main = TestDb::fresh(Backend::Sqlite).await.unwrap();
    let radius = TestDb::fresh(Backend::Sqlite).await.unwrap();
    Migrator::up(&main.conn, None).await.unwrap();
    RadiusMigrator::up(&radius.conn, None).await.unwrap();
    let databases = ispd::db::Databases {
        main: main.conn.clone(),
        radius: radius.conn.clone(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let context = ispd::jobs::JobContext {
        db: databases,
        ipam: ispd::ipam::service::IpamSettings {
            lock_timeout: Duration::from_secs(5),
        },
    };
    let worker = tokio::spawn(ispd::jobs::run_worker(context, async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!worker.is_finished(), "the worker keeps running");
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops promptly")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
