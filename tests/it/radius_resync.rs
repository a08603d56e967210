//! `POST /api/v1/users/{id}/sync-radius` and the `radius-retry` job's
//! service call: what a sync changed, a RADIUS failure as a 502 that leaves
//! the user flagged, and the retry that picks flagged users up in batches.

use axum::http::Method;
use ispd::audit::entities::audit_log;
use ispd::audit::Actor;
use ispd::crypto::Secret;
use ispd::ipam::service::IpamSettings;
use ispd::radius::entities::radcheck;
use ispd::radius::resync::sync_pending_users;
use ispd::staff::Role;
use ispd::users::entities::network_user;
use ispd::users::service::UserInput;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp, TestResponse};

const PASSWORD: &str = "Sup3r-secret pass";

struct Fixture {
    app: TestApp,
    op: String,
    package: i64,
}

async fn spawn(backend: Backend) -> Option<Fixture> {
    let app = TestApp::spawn(backend).await?;
    let op = app.create_token(Role::Operator).await;
    let package = app
        .post_as(
            "/api/v1/packages",
            &op,
            json!({"name": "Home 20M", "download_rate": "20M", "upload_rate": "5M",
                    "radius_group": "home-20m"}),
        )
        .await;
    assert_eq!(package.status, 201, "{}", package.text());
    let package = package.json()["id"].as_i64().unwrap();
    Some(Fixture { app, op, package })
}

impl Fixture {
    /// A user saved in the main DB only, as when the RADIUS write that
    /// follows an API change failed: flagged, with no RADIUS rows.
    async fn user(&self, username: &str) -> i64 {
        let input = UserInput {
            username: username.into(),
            password: Some(Secret::new(PASSWORD)),
            service_type: "pppoe".into(),
            package_id: Some(self.package as i32),
            ..Default::default()
        };
        let user = ispd::users::service::create_user(
            self.app.db(),
            &self.app.state.app_key,
            IpamSettings::from_config(&self.app.state.config),
            &Actor::system(),
            &input,
        )
        .await
        .unwrap();
        user.id as i64
    }

    async fn sync(&self, id: i64) -> TestResponse {
        self.app
            .api(
                Method::POST,
                &format!("/api/v1/users/{id}/sync-radius"),
                &self.op,
                None,
            )
            .await
    }

    async fn pending(&self, id: i64) -> bool {
        network_user::Entity::find_by_id(id as i32)
            .one(self.app.db())
            .await
            .unwrap()
            .unwrap()
            .radius_sync_pending
    }

    async fn radcheck_rows(&self, username: &str) -> usize {
        radcheck::Entity::find()
            .filter(radcheck::Column::Username.eq(username))
            .all(&self.app.state.db.radius)
            .await
            .unwrap()
            .len()
    }

    /// Takes radcheck away (or gives it back): the RADIUS database then
    /// refuses every user write, as when it is down or read-only.
    async fn break_radius(&self, broken: bool) {
        let (from, to) = if broken {
            ("radcheck", "radcheck_away")
        } else {
            ("radcheck_away", "radcheck")
        };
        self.app
            .state
            .db
            .radius
            .execute_unprepared(&format!("ALTER TABLE {from} RENAME TO {to}"))
            .await
            .unwrap();
    }
}

async fn syncing_a_user_now_reports_what_changed(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let id = f.user("alice").await;
    assert!(f.pending(id).await);

    let first = f.sync(id).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let body = first.json();
    assert_eq!(body["outcome"], "created");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["radius_sync_pending"], false);
    assert!(body["radius_synced_at"].is_string());
    assert!(!first.text().contains(PASSWORD));
    assert!(!f.pending(id).await);
    assert!(f.radcheck_rows("alice").await >= 1);

    let again = f.sync(id).await;
    assert_eq!(again.json()["outcome"], "unchanged");

    let suspended = f
        .app
        .put_as(
            &format!("/api/v1/users/{id}"),
            &f.op,
            json!({"username": "alice", "service_type": "pppoe", "package_id": f.package,
                    "status": "suspended"}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text());
    // An API change writes the RADIUS rows itself.
    assert_eq!(suspended.json()["radius_sync_pending"], false);
    assert!(!f.pending(id).await);
    let changed = f.sync(id).await;
    assert_eq!(changed.json()["outcome"], "unchanged");

    let missing = f.sync(99999).await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    let viewer = f.app.create_token(Role::Viewer).await;
    let refused = f
        .app
        .api(
            Method::POST,
            &format!("/api/v1/users/{id}/sync-radius"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(refused.status, 403);

    let audited: Vec<Value> = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("network_user.sync_radius"))
        .all(f.app.db())
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(e.details.as_deref().unwrap()).unwrap())
        .collect();
    let outcomes: Vec<&str> = audited
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["created", "unchanged", "unchanged"]);
}
crate::on_every_backend!(syncing_a_user_now_reports_what_changed);

async fn a_radius_failure_is_a_502_and_the_user_stays_flagged(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let id = f.user("bob").await;
    f.break_radius(true).await;
    let failed = f.sync(id).await;
    assert_eq!(failed.status, 502, "{}", failed.text());
    let error = failed.json()["error"].clone();
    assert_eq!(error["code"], "radius_unavailable");
    let text = failed.text().to_lowercase();
    assert!(
        !text.contains("radcheck") && !text.contains("relation") && !text.contains("table"),
        "database text leaked: {text}"
    );
    assert!(f.pending(id).await, "the user stays flagged");

    f.break_radius(false).await;
    let repaired = f.sync(id).await;
    assert_eq!(repaired.status, 200, "{}", repaired.text());
    assert_eq!(repaired.json()["outcome"], "created");
    assert!(!f.pending(id).await);
}
crate::on_every_backend!(a_radius_failure_is_a_502_and_the_user_stays_flagged);

async fn the_retry_syncs_every_flagged_user_in_batches(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let (main, radius, key) = (
        &f.app.state.db.main,
        &f.app.state.db.radius,
        &f.app.state.app_key,
    );
    let mut ids = Vec::new();
    for name in ["u1", "u2", "u3", "u4", "u5"] {
        ids.push(f.user(name).await);
    }
    // One is already synced: it is not picked up again.
    assert_eq!(f.sync(ids[0]).await.status, 200);

    // While RADIUS refuses writes, the run stops and everyone stays flagged.
    f.break_radius(true).await;
    let stopped = sync_pending_users(main, radius, key, 2).await.unwrap();
    assert!(stopped.stopped_by.is_some(), "{stopped}");
    assert_eq!(stopped.created, 0);
    for id in &ids[1..] {
        assert!(f.pending(*id).await);
    }
    f.break_radius(false).await;

    let report = sync_pending_users(main, radius, key, 2).await.unwrap();
    assert_eq!(report.pending, 4, "{report}");
    assert_eq!(report.created, 4, "{report}");
    assert_eq!((report.failed, report.stopped_by.clone()), (0, None));
    for (id, name) in ids.iter().zip(["u1", "u2", "u3", "u4", "u5"]) {
        assert!(!f.pending(*id).await, "{name} synced");
        assert!(f.radcheck_rows(name).await >= 1, "{name} has rows");
    }
    let idle = sync_pending_users(main, radius, key, 2).await.unwrap();
    assert_eq!(idle.pending, 0, "{idle}");
}
crate::on_every_backend!(the_retry_syncs_every_flagged_user_in_batches);

async fn the_radius_retry_job_runs_the_retry_and_fails_while_radius_refuses(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let id = f.user("carol").await;
    let context = ispd::jobs::JobContext::new(
        f.app.state.config.clone(),
        f.app.state.db.clone(),
        f.app.state.app_key.clone(),
    );
    let registry = ispd::jobs::registry(&context);
    let job = registry
        .get(ispd::jobs::RADIUS_RETRY.name)
        .expect("radius-retry is registered");
    assert!(job.schedule.is_some(), "scheduled by default");

    f.break_radius(true).await;
    let failed = (job.run)().await;
    assert!(failed.is_err(), "a run stopped by RADIUS fails");
    assert!(f.pending(id).await);
    f.break_radius(false).await;

    let summary = (job.run)().await.expect("the run succeeds");
    assert_eq!(summary.0.get("pending"), Some(&1), "{summary}");
    assert_eq!(summary.0.get("created"), Some(&1), "{summary}");
    assert!(!f.pending(id).await);
}
crate::on_every_backend!(the_radius_retry_job_runs_the_retry_and_fails_while_radius_refuses);

/// Changes through the API reach FreeRADIUS's tables at once. When the
/// RADIUS database refuses, a create or update is still saved (flagged for
/// the retry), and a delete changes nothing, so a deleted subscriber can
/// never keep logging in.
async fn api_changes_reach_radius_at_once_and_a_refusal_loses_nothing(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let create = |username: &str| {
        json!({"username": username, "password": PASSWORD, "service_type": "pppoe",
                "package_id": f.package})
    };
    let created = f.app.post_as("/api/v1/users", &f.op, create("carol")).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["radius_sync_pending"], false);
    let carol = created.json()["id"].as_i64().unwrap();
    let carol_rows = f.radcheck_rows("carol").await;
    assert!(carol_rows >= 1);

    f.break_radius(true).await;
    let saved = f.app.post_as("/api/v1/users", &f.op, create("dave")).await;
    assert_eq!(
        saved.status,
        201,
        "saved in spite of RADIUS: {}",
        saved.text()
    );
    assert_eq!(saved.json()["radius_sync_pending"], true);
    let refused = f
        .app
        .delete_as(&format!("/api/v1/users/{carol}"), &f.op)
        .await;
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "radius_unavailable");
    assert!(
        network_user::Entity::find_by_id(carol as i32)
            .one(f.app.db())
            .await
            .unwrap()
            .is_some(),
        "nothing deleted"
    );
    f.break_radius(false).await;
    assert_eq!(
        f.radcheck_rows("carol").await,
        carol_rows,
        "carol's rows are intact"
    );

    let deleted = f
        .app
        .delete_as(&format!("/api/v1/users/{carol}"), &f.op)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_eq!(
        f.radcheck_rows("carol").await,
        0,
        "gone from RADIUS at once"
    );

    // The retry writes the user saved while RADIUS refused.
    let report = sync_pending_users(
        &f.app.state.db.main,
        &f.app.state.db.radius,
        &f.app.state.app_key,
        10,
    )
    .await
    .unwrap();
    assert_eq!(report.created, 1, "{report}");
    assert!(f.radcheck_rows("dave").await >= 1);
}
crate::on_every_backend!(api_changes_reach_radius_at_once_and_a_refusal_loses_nothing);
