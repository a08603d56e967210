//! The RADIUS sync on every backend: packages and users written into
//! FreeRADIUS's tables exactly, idempotently, in batches, with a dry run,
//! and without the password ever reaching a log.

use chrono::{Duration, TimeZone, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use crate::helpers::{
    home_20, ipam_settings as settings, pppoe_user, Backend, LogCapture, TestApp,
};
use ispd::audit::entities::audit_log;
use ispd::audit::Actor;
use ispd::radius::service::{
    self as radius, current_group_rows, current_user_rows, AttrRow, GroupRows, Outcome, UserRows,
};
use ispd::users::entities::{network_user, service_package};
use ispd::users::service::{self as users, PackageInput, UserInput};

const PASSWORD: &str = "Radius-s3cret pass";

fn package_input() -> PackageInput {
    PackageInput {
        session_timeout_secs: Some(86400),
        simultaneous_use: Some(1),
        ..home_20()
    }
}

fn user_input(username: &str, package_id: i32) -> UserInput {
    pppoe_user(username, PASSWORD, package_id)
}

/// A full sync of the app's databases, or with `dry_run` its drift.
async fn sync_all(app: &TestApp, dry_run: bool) -> radius::SyncReport {
    radius::sync_all(
        &app.state.db.main,
        &app.state.db.radius,
        &app.state.app_key,
        dry_run,
    )
    .await
    .unwrap()
}

/// A report's counts of users: created, updated, removed, unchanged.
fn counts(report: &radius::SyncReport) -> (u64, u64, u64, u64) {
    (
        report.created,
        report.updated,
        report.removed,
        report.unchanged,
    )
}

async fn package(app: &TestApp) -> service_package::Model {
    users::create_package(app.db(), &Actor::system(), &package_input())
        .await
        .expect("create package")
}

async fn user(app: &TestApp, username: &str, package_id: i32) -> network_user::Model {
    app.create_user(&user_input(username, package_id))
        .await
        .expect("create user")
}

async fn reload_user(app: &TestApp, id: i32) -> network_user::Model {
    network_user::Entity::find_by_id(id)
        .one(app.db())
        .await
        .unwrap()
        .expect("user exists")
}

async fn reload_package(app: &TestApp, id: i32) -> service_package::Model {
    service_package::Entity::find_by_id(id)
        .one(app.db())
        .await
        .unwrap()
        .expect("package exists")
}

/// Syncs the user (and its package's group) as the API would.
async fn sync(app: &TestApp, id: i32) -> Outcome {
    radius::sync_user_by_id(
        &app.state.db.main,
        &app.state.db.radius,
        &app.state.app_key,
        id,
    )
    .await
    .expect("sync user")
}

fn set(attribute: &str, value: &str) -> AttrRow {
    AttrRow::set(attribute, value)
}

fn sorted(mut rows: Vec<AttrRow>) -> Vec<AttrRow> {
    rows.sort();
    rows
}

async fn a_package_and_a_user_sync_to_exactly_the_expected_rows(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let radius_db = &app.state.db.radius;
    let p = package(&app).await;
    assert_eq!(
        radius::sync_package(radius_db, &p).await.unwrap(),
        Outcome::Created
    );
    assert_eq!(
        current_group_rows(radius_db, "home-20").await.unwrap(),
        GroupRows {
            check: vec![set("Simultaneous-Use", "1")],
            reply: sorted(vec![
                set("Mikrotik-Rate-Limit", "5M/20M"),
                set("Session-Timeout", "86400"),
                set("Acct-Interim-Interval", "300"),
            ]),
        }
    );

    let u = user(&app, "alice", p.id).await;
    assert!(u.radius_sync_pending);
    assert_eq!(sync(&app, u.id).await, Outcome::Created);
    assert_eq!(
        current_user_rows(radius_db, "alice").await.unwrap(),
        UserRows {
            check: vec![set("Cleartext-Password", PASSWORD)],
            reply: vec![],
            groups: vec![("home-20".into(), 1)],
        }
    );
    let synced = reload_user(&app, u.id).await;
    assert!(
        !synced.radius_sync_pending,
        "the flag is cleared after the sync"
    );
    assert!(synced.radius_synced_at.is_some());

    // Again: nothing to do, for the user and the package.
    assert_eq!(sync(&app, u.id).await, Outcome::Unchanged);
    assert_eq!(
        radius::sync_package(radius_db, &p).await.unwrap(),
        Outcome::Unchanged
    );
    let report = sync_all(&app, false).await;
    assert_eq!(counts(&report), (0, 0, 0, 1), "{report}");
    assert_eq!(report.packages.unchanged, 1);
}
crate::on_every_backend!(a_package_and_a_user_sync_to_exactly_the_expected_rows);

async fn changes_update_the_rows_and_remove_stale_ones(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let radius_db = &app.state.db.radius;
    let p = package(&app).await;
    let u = user(&app, "bob", p.id).await;
    // A static user with an expiry (written directly: the address would
    // come from IPAM, which is not what is tested here).
    let expires = Utc.with_ymd_and_hms(2099, 3, 7, 8, 9, 10).unwrap();
    let mut row: network_user::ActiveModel = u.clone().into();
    row.service_type = Set("static".into());
    row.static_ip = Set(Some("100.64.0.9".into()));
    row.expires_at = Set(Some(expires.into()));
    row.radius_sync_pending = Set(true);
    row.updated_at = Set(Utc::now().into());
    row.update(app.db()).await.unwrap();
    assert_eq!(sync(&app, u.id).await, Outcome::Created);
    assert_eq!(
        current_user_rows(radius_db, "bob").await.unwrap(),
        UserRows {
            check: sorted(vec![
                set("Cleartext-Password", PASSWORD),
                set("Expiration", "Mar 07 2099 08:09:10"),
            ]),
            reply: vec![set("Framed-IP-Address", "100.64.0.9")],
            groups: vec![("home-20".into(), 1)],
        }
    );

    // No longer static, and suspended: the address goes, Reject comes.
    let mut row: network_user::ActiveModel = reload_user(&app, u.id).await.into();
    row.service_type = Set("pppoe".into());
    row.static_ip = Set(None);
    row.status = Set("suspended".into());
    row.radius_sync_pending = Set(true);
    row.updated_at = Set(Utc::now().into());
    row.update(app.db()).await.unwrap();
    assert_eq!(sync(&app, u.id).await, Outcome::Updated);
    let rows = current_user_rows(radius_db, "bob").await.unwrap();
    assert_eq!(rows.reply, vec![], "Framed-IP-Address is removed");
    assert_eq!(
        rows.check,
        sorted(vec![
            set("Cleartext-Password", PASSWORD),
            set("Expiration", "Mar 07 2099 08:09:10"),
            set("Auth-Type", "Reject"),
        ])
    );

    // Reactivated through the users service, but expired: still rejected.
    let mut input = user_input("bob", p.id);
    input.password = None;
    input.status = Some("active".into());
    input.expires_at = Some(Utc::now() - Duration::days(1));
    app.update_user(u.id, &input).await.unwrap();
    assert_eq!(sync(&app, u.id).await, Outcome::Updated);
    let rows = current_user_rows(radius_db, "bob").await.unwrap();
    assert!(rows.check.contains(&set("Auth-Type", "Reject")), "{rows:?}");
    // Reactivated for good: accepted again.
    input.expires_at = None;
    app.update_user(u.id, &input).await.unwrap();
    assert_eq!(sync(&app, u.id).await, Outcome::Updated);
    assert_eq!(
        current_user_rows(radius_db, "bob").await.unwrap().check,
        vec![set("Cleartext-Password", PASSWORD)]
    );

    // The package's rate changes and it loses its limits: the group follows.
    let mut changed = package_input();
    changed.download_rate = "50M".into();
    changed.upload_rate = "10M".into();
    changed.session_timeout_secs = None;
    changed.simultaneous_use = None;
    users::update_package(app.db(), &Actor::system(), p.id, &changed)
        .await
        .unwrap();
    assert!(reload_user(&app, u.id).await.radius_sync_pending);
    let report = sync_all(&app, false).await;
    assert_eq!(report.packages.updated, 1, "{report}");
    assert_eq!(report.unchanged, 1, "{report}");
    assert!(!reload_user(&app, u.id).await.radius_sync_pending);
    assert_eq!(
        current_group_rows(radius_db, "home-20").await.unwrap(),
        GroupRows {
            check: vec![],
            reply: sorted(vec![
                set("Mikrotik-Rate-Limit", "10M/50M"),
                set("Acct-Interim-Interval", "300"),
            ]),
        }
    );
    let p = reload_package(&app, p.id).await;
    assert_eq!(
        radius::sync_package(radius_db, &p).await.unwrap(),
        Outcome::Unchanged
    );
}
crate::on_every_backend!(changes_update_the_rows_and_remove_stale_ones);

async fn a_change_made_during_a_sync_keeps_the_flag(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let p = package(&app).await;
    let u = user(&app, "carol", p.id).await;
    // The user as the sync read it, then a change committed meanwhile.
    let mut row: network_user::ActiveModel = u.clone().into();
    row.status = Set("suspended".into());
    row.updated_at = Set(u.updated_at + Duration::seconds(5));
    row.update(app.db()).await.unwrap();
    radius::sync_user(
        &app.state.db.main,
        &app.state.db.radius,
        &app.state.app_key,
        &u,
        Some(&p),
    )
    .await
    .unwrap();
    assert!(
        reload_user(&app, u.id).await.radius_sync_pending,
        "a change the sync did not see stays pending"
    );
    // A package change meanwhile is caught as well.
    let u = reload_user(&app, u.id).await;
    let stale_package = p.clone();
    let mut prow: service_package::ActiveModel = p.into();
    prow.download_rate_kbps = Set(30_000);
    prow.updated_at = Set(stale_package.updated_at + Duration::seconds(5));
    prow.update(app.db()).await.unwrap();
    radius::sync_user(
        &app.state.db.main,
        &app.state.db.radius,
        &app.state.app_key,
        &u,
        Some(&stale_package),
    )
    .await
    .unwrap();
    assert!(reload_user(&app, u.id).await.radius_sync_pending);
    // The next full sync settles it.
    sync_all(&app, false).await;
    assert!(!reload_user(&app, u.id).await.radius_sync_pending);
}
crate::on_every_backend!(a_change_made_during_a_sync_keeps_the_flag);

async fn sync_all_removes_deleted_users_and_a_dry_run_writes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (main_db, radius_db) = (&app.state.db.main, &app.state.db.radius);
    let p = package(&app).await;
    let mut ids = Vec::new();
    for name in ["dave", "erin", "frank"] {
        ids.push(user(&app, name, p.id).await.id);
    }

    // Dry run on an empty RADIUS DB: all drift, nothing written.
    let report = sync_all(&app, true).await;
    assert_eq!(counts(&report), (3, 0, 0, 0), "{report}");
    assert_eq!(report.packages.created, 1);
    assert!(current_user_rows(radius_db, "dave")
        .await
        .unwrap()
        .is_empty());
    assert!(current_group_rows(radius_db, "home-20")
        .await
        .unwrap()
        .is_empty());
    assert!(reload_user(&app, ids[0]).await.radius_sync_pending);

    let report = sync_all(&app, false).await;
    assert_eq!((report.created, report.unchanged), (3, 0), "{report}");
    for id in &ids {
        assert!(!reload_user(&app, *id).await.radius_sync_pending);
    }

    // A hand-made stale row, a deleted user, and a suspended one.
    ispd::radius::entities::radreply::ActiveModel {
        username: Set("erin".into()),
        attribute: Set("Framed-Pool".into()),
        op: Set(":=".into()),
        value: Set("old-pool".into()),
        ..Default::default()
    }
    .insert(radius_db)
    .await
    .unwrap();
    users::delete_user(main_db, settings(), &Actor::system(), ids[0])
        .await
        .unwrap();
    let mut input = user_input("frank", p.id);
    input.password = None;
    input.status = Some("suspended".into());
    app.update_user(ids[2], &input).await.unwrap();

    let dry = sync_all(&app, true).await;
    assert_eq!(counts(&dry), (0, 2, 1, 0), "{dry}");
    assert_eq!(dry.drift(), 3);
    assert!(
        !current_user_rows(radius_db, "dave")
            .await
            .unwrap()
            .is_empty(),
        "the dry run removed nothing"
    );
    assert!(reload_user(&app, ids[2]).await.radius_sync_pending);

    let report = sync_all(&app, false).await;
    assert_eq!(counts(&report), (0, 2, 1, 0), "{report}");
    assert!(current_user_rows(radius_db, "dave")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        current_user_rows(radius_db, "erin").await.unwrap().reply,
        vec![],
        "the stale Framed-Pool is gone"
    );
    assert!(current_user_rows(radius_db, "frank")
        .await
        .unwrap()
        .check
        .contains(&set("Auth-Type", "Reject")));

    let again = sync_all(&app, false).await;
    assert_eq!(again.drift(), 0, "{again}");
    assert_eq!(again.unchanged, 2);
}
crate::on_every_backend!(sync_all_removes_deleted_users_and_a_dry_run_writes_nothing);

async fn many_users_sync_in_batches(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let p = package(&app).await;
    let count = radius::BATCH_SIZE as usize + 7;
    let now = Utc::now();
    let encrypted = app.state.app_key.encrypt(PASSWORD);
    let rows: Vec<network_user::ActiveModel> = (0..count)
        .map(|i| network_user::ActiveModel {
            username: Set(format!("bulk{i:04}")),
            password_encrypted: Set(encrypted.clone()),
            service_type: Set("pppoe".into()),
            package_id: Set(Some(p.id)),
            status: Set("active".into()),
            radius_sync_pending: Set(true),
            created_at: Set(now.into()),
            updated_at: Set(now.into()),
            ..Default::default()
        })
        .collect();
    network_user::Entity::insert_many(rows)
        .exec_without_returning(app.db())
        .await
        .unwrap();
    let mut calls = Vec::new();
    let report = radius::sync_all_with_progress(
        &app.state.db.main,
        &app.state.db.radius,
        &app.state.app_key,
        false,
        |done, total| calls.push((done, total)),
    )
    .await
    .unwrap();
    assert_eq!(report.created, count as u64, "{report}");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls.last(), Some(&(count as u64, count as u64)));
    let again = sync_all(&app, false).await;
    assert_eq!(again.unchanged, count as u64, "{again}");
}
crate::on_every_backend!(many_users_sync_in_batches);

async fn the_password_never_reaches_a_log_or_the_audit(backend: Backend) {
    let captured = LogCapture::start();
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let p = package(&app).await;
    let u = user(&app, "grace", p.id).await;
    sync(&app, u.id).await;
    tracing::info!(rows = ?current_user_rows(&app.state.db.radius, "grace").await.unwrap(), "rows");
    sync_all(&app, false).await;
    radius::remove_user(&app.state.db.radius, "grace")
        .await
        .unwrap();
    sync_all(&app, true).await;

    let logs = captured.text();
    assert!(
        logs.contains("RADIUS sync finished"),
        "the logs were captured: {logs}"
    );
    assert!(!logs.contains(PASSWORD), "the password is in the logs");
    let audit = audit_log::Entity::find().all(app.db()).await.unwrap();
    for entry in audit {
        assert!(
            !format!("{entry:?}").contains(PASSWORD),
            "the password is in the audit log"
        );
    }
}
crate::on_every_backend!(the_password_never_reaches_a_log_or_the_audit);
