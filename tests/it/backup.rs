//! Backup and restore of both PostgreSQL databases, exactly as
//! docs/DEPLOYMENT.md tells an operator to do it: `pg_dump --format=custom`
//! of a populated main and RADIUS database, `pg_restore` into fresh ones,
//! and the data, the migrations and the encrypted passwords all come back.

use std::collections::BTreeMap;
use std::process::Command;

use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Statement};

use crate::helpers::{Backend, TestApp, TestDb};
use crate::probes::populate;

/// Rows per table, for every table of the database's schema.
async fn row_counts(conn: &DatabaseConnection) -> BTreeMap<String, i64> {
    let backend = conn.get_database_backend();
    let tables = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        ))
        .await
        .unwrap();
    let mut counts = BTreeMap::new();
    for table in tables {
        let name: String = table.try_get("", "name").unwrap();
        let count = conn
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT COUNT(*) AS n FROM \"{name}\""),
            ))
            .await
            .unwrap()
            .unwrap();
        counts.insert(name, count.try_get::<i64>("", "n").unwrap());
    }
    counts
}

async fn all<E: EntityTrait>(conn: &DatabaseConnection) -> Vec<E::Model> {
    E::find().all(conn).await.unwrap()
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_postgresql_databases_survive_a_dump_and_a_restore() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    populate(&app, "restored notes").await;
    let (main_url, radius_url) = app.database_urls();
    let main_before = row_counts(&app.state.db.main).await;
    let radius_before = row_counts(&app.state.db.radius).await;
    assert!(main_before["network_users"] >= 2, "{main_before:?}");
    assert!(radius_before["radcheck"] >= 2, "{radius_before:?}");

    let dir = tempfile::tempdir().unwrap();
    let main_dump = dir.path().join("main.dump");
    let radius_dump = dir.path().join("radius.dump");
    for (url, file) in [(main_url, &main_dump), (radius_url, &radius_dump)] {
        run(
            "pg_dump",
            &[
                "--format=custom",
                "--no-owner",
                "--file",
                file.to_str().unwrap(),
                "--dbname",
                url,
            ],
        );
    }

    let main_restored = TestDb::fresh(Backend::Postgres).await.unwrap();
    let radius_restored = TestDb::fresh(Backend::Postgres).await.unwrap();
    for (db, file) in [
        (&main_restored, &main_dump),
        (&radius_restored, &radius_dump),
    ] {
        run(
            "pg_restore",
            &[
                "--no-owner",
                "--exit-on-error",
                "--dbname",
                &db.url,
                file.to_str().unwrap(),
            ],
        );
    }

    assert_eq!(row_counts(&main_restored.conn).await, main_before);
    assert_eq!(row_counts(&radius_restored.conn).await, radius_before);
    // Nothing is pending: the restored databases are at the same version.
    use migration::MigratorTrait;
    assert!(
        migration::Migrator::get_pending_migrations(&main_restored.conn)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        migration::RadiusMigrator::get_pending_migrations(&radius_restored.conn)
            .await
            .unwrap()
            .is_empty()
    );
    // The same rows, and the passwords decrypt with the same APP_KEY.
    use ispd::radius::entities::radcheck;
    use ispd::users::entities::network_user;
    let original = all::<network_user::Entity>(&app.state.db.main).await;
    let restored = all::<network_user::Entity>(&main_restored.conn).await;
    assert_eq!(restored, original);
    for user in &restored {
        let password = app.state.app_key.decrypt(&user.password_encrypted).unwrap();
        assert!(!password.expose().is_empty());
    }
    assert_eq!(
        all::<radcheck::Entity>(&radius_restored.conn).await,
        all::<radcheck::Entity>(&app.state.db.radius).await
    );
    // Sequences come back too: a new row after the restore gets a new id.
    let next: i64 = main_restored
        .conn
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT nextval(pg_get_serial_sequence('network_users', 'id')) AS id",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "id")
        .unwrap();
    let highest = original.iter().map(|u| i64::from(u.id)).max().unwrap();
    assert!(
        next > highest,
        "the id sequence restarts after {highest}: {next}"
    );
}
