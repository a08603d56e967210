//! PPPoE users: every change reaches the router's /ppp/secret and the
//! database, router first, over real TCP against the in-process mock
//! router. Faults (a reply cut in half, no answer, `!fatal`, a late answer)
//! give a typed error and leave neither side half-written; a database
//! failure after the router change is undone on the router. A network user
//! linked to a secret keeps it in step.

use std::time::Duration;

use axum::http::Method;
use ispd::audit::Actor;
use ispd::ipam::service::IpamSettings;
use ispd::mikrotik::entities::mikrotik_pppoe_user;
use ispd::mikrotik::routeros::{Client, Fault, MockRouter, Row};
use ispd::staff::Role;
use ispd::users::service as users;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, assert_error_says, with, ApiFixture, Backend, TestBrowser, TestResponse,
};

const ROUTER_USER: &str = "ispd-api";
const ROUTER_PASSWORD: &str = "R0uter pass";
const PPP_PASSWORD: &str = "Ppp-secret=1";

struct Fixture {
    api: ApiFixture,
    mock: MockRouter,
    router_id: i64,
}

impl std::ops::Deref for Fixture {
    type Target = ApiFixture;
    fn deref(&self) -> &ApiFixture {
        &self.api
    }
}

async fn spawn(backend: Backend) -> Option<Fixture> {
    let api = ApiFixture::spawn_with(backend, &[("MIKROTIK_API_TIMEOUT", "1")]).await?;
    let mock = MockRouter::start(ROUTER_USER, ROUTER_PASSWORD)
        .await
        .unwrap();
    let router_id = api
        .add_router("core-1", mock.addr(), ROUTER_USER, ROUTER_PASSWORD)
        .await;
    let f = Fixture {
        api,
        mock,
        router_id,
    };
    f.router_command(
        "/ppp/profile/add",
        &[("name", "home-20m"), ("rate-limit", "5M/20M")],
    )
    .await;
    f.router_command(
        "/ppp/profile/add",
        &[("name", "home-50m"), ("rate-limit", "10M/50M")],
    )
    .await;
    Some(f)
}

impl Fixture {
    /// Runs a command on the mock router directly, as an admin at the
    /// router's console would.
    async fn router_command(&self, path: &str, args: &[(&str, &str)]) {
        let client = Client::connect(
            &self.mock.addr().to_string(),
            ROUTER_USER,
            ROUTER_PASSWORD,
            Duration::from_secs(3),
        )
        .await
        .unwrap();
        client.command(path, args, &[]).await.unwrap();
        client.close().await;
    }

    fn secrets(&self) -> Vec<Row> {
        self.mock.rows("/ppp/secret")
    }

    fn secret(&self, name: &str) -> Option<Row> {
        self.secrets()
            .into_iter()
            .find(|row| row.get("name").map(String::as_str) == Some(name))
    }

    async fn rows(&self) -> Vec<mikrotik_pppoe_user::Model> {
        mikrotik_pppoe_user::Entity::find()
            .all(self.app.db())
            .await
            .unwrap()
    }

    async fn create(&self, body: Value) -> TestResponse {
        self.post("/api/v1/mikrotik/pppoe-users", body).await
    }

    fn alice(&self) -> Value {
        json!({"router_id": self.router_id, "username": "alice", "password": PPP_PASSWORD,
            "profile": "home-20m", "remote_address": "100.64.0.10"})
    }

    /// Creates alice and returns her id.
    async fn create_alice(&self) -> i64 {
        let created = self.create(self.alice()).await;
        assert_eq!(created.status, 201, "{}", created.text());
        created.json()["id"].as_i64().unwrap()
    }

    /// Ends the router's back-off after a failure, as saving the router
    /// does, so that the next call reaches it at once.
    fn retry_at_once(&self) {
        self.app.state.router_pool.forget(self.router_id as i32);
    }
}

fn field<'a>(row: &'a Row, key: &str) -> &'a str {
    row.get(key).map(String::as_str).unwrap_or("")
}

fn assert_no_password(response: &TestResponse) {
    let text = response.text();
    for secret in [PPP_PASSWORD, ROUTER_PASSWORD, "N3w-secret", "User-pass-123"] {
        assert!(!text.contains(secret), "password leaked: {text}");
    }
    assert!(!text.contains("v1:"), "ciphertext leaked: {text}");
}

async fn pppoe_users_are_written_to_the_router_and_the_database(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let created = f.create(f.alice()).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_no_password(&created);
    let view = created.json();
    let id = view["id"].as_i64().unwrap();
    assert_eq!(view["service"], "pppoe");
    assert_eq!(view["status"], "active");

    // On the router, with the id stored here.
    let secret = f.secret("alice").expect("secret on the router");
    assert_eq!(field(&secret, "password"), PPP_PASSWORD);
    assert_eq!(field(&secret, "service"), "pppoe");
    assert_eq!(field(&secret, "profile"), "home-20m");
    assert_eq!(field(&secret, "remote-address"), "100.64.0.10");
    assert_eq!(field(&secret, "disabled"), "false");
    assert_eq!(view["router_item_id"], field(&secret, ".id"));
    let row = &f.rows().await[0];
    assert_eq!(f.app.decrypt(&row.password_encrypted), PPP_PASSWORD);

    // Listing: by router, search, status; viewers read.
    let bob = f
        .create(
            json!({"router_id": f.router_id, "username": "bob@isp", "password": "bobpass",
            "service": "any", "disabled": true}),
        )
        .await;
    assert_eq!(bob.status, 201, "{}", bob.text());
    assert_eq!(field(&f.secret("bob@isp").unwrap(), "disabled"), "true");
    let list = f
        .view(&format!(
            "/api/v1/mikrotik/pppoe-users?router_id={}",
            f.router_id
        ))
        .await;
    assert_eq!(list.status, 200);
    assert_no_password(&list);
    assert_eq!(list.json()["meta"]["total"], 2);
    let search = f.view("/api/v1/mikrotik/pppoe-users?q=BOB").await;
    assert_eq!(search.json()["meta"]["total"], 1);
    assert_eq!(search.json()["data"][0]["status"], "disabled");
    let other_router = f.view("/api/v1/mikrotik/pppoe-users?router_id=9999").await;
    assert_eq!(other_router.json()["meta"]["total"], 0);
    let refused = f
        .app
        .post_as("/api/v1/mikrotik/pppoe-users", &f.viewer, f.alice())
        .await;
    assert_error(&refused, 403, "forbidden");

    // Update: rename, new password, new profile, disabled, no remote address.
    let path = format!("/api/v1/mikrotik/pppoe-users/{id}");
    let updated = f
        .put(
            &path,
            json!({"router_id": f.router_id, "username": "alice2", "password": "N3w-secret",
                "profile": "home-50m", "disabled": true, "local_address": "10.0.0.1"}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_no_password(&updated);
    assert!(f.secret("alice").is_none());
    let secret = f.secret("alice2").expect("renamed on the router");
    assert_eq!(field(&secret, "password"), "N3w-secret");
    assert_eq!(field(&secret, "profile"), "home-50m");
    assert_eq!(field(&secret, "disabled"), "true");
    assert_eq!(field(&secret, "local-address"), "10.0.0.1");
    assert_eq!(field(&secret, "remote-address"), "");
    let view = updated.json();
    assert_eq!(view["username"], "alice2");
    assert_eq!(view["status"], "disabled");
    assert_eq!(view["remote_address"], Value::Null);

    // Without a password, the router keeps the current one.
    let kept = f
        .put(
            &path,
            json!({"router_id": f.router_id, "username": "alice2", "profile": "home-50m"}),
        )
        .await;
    assert_eq!(kept.status, 200, "{}", kept.text());
    let secret = f.secret("alice2").unwrap();
    assert_eq!(field(&secret, "password"), "N3w-secret");
    assert_eq!(field(&secret, "disabled"), "false");

    // The router cannot change.
    let moved = f
        .put(&path, json!({"router_id": 9999, "username": "alice2"}))
        .await;
    assert_error(&moved, 422, "validation_failed");

    // A profile the router does not have: its message, on the field.
    let no_profile = f
        .put(
            &path,
            json!({"router_id": f.router_id, "username": "alice2", "profile": "gold"}),
        )
        .await;
    let error = assert_error(&no_profile, 422, "validation_failed");
    assert!(error["fields"]["profile"]
        .as_str()
        .unwrap()
        .contains("does not match any value of profile"));
    assert_eq!(field(&f.secret("alice2").unwrap(), "profile"), "home-50m");

    // Delete: gone on both sides.
    let deleted = f.delete(&path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert!(f.secret("alice2").is_none());
    assert_eq!(f.rows().await.len(), 1);
    assert_eq!(f.send(Method::GET, &path, None).await.status, 404);

    // A secret removed on the router by hand does not block the delete.
    let bob_id = bob.json()["id"].as_i64().unwrap();
    let bob_item = field(&f.secret("bob@isp").unwrap(), ".id").to_string();
    f.router_command("/ppp/secret/remove", &[(".id", &bob_item)])
        .await;
    let deleted = f
        .delete(&format!("/api/v1/mikrotik/pppoe-users/{bob_id}"))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert!(f.rows().await.is_empty());
}
crate::on_every_backend!(pppoe_users_are_written_to_the_router_and_the_database);

async fn invalid_pppoe_users_are_refused_before_the_router_is_asked(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let logins = f.mock.logins();
    let cases: &[(&str, Value, &str)] = &[
        ("username", json!("has space"), "may contain only"),
        ("username", json!(""), "1 to 64"),
        ("password", json!(""), "is required"),
        ("password", json!("with\"quote"), "quotes"),
        ("service", json!("telnet"), "must be one of"),
        ("profile", json!("bad\"profile"), "quotes"),
        ("local_address", json!("10.0.0.300"), "not an IPv4 address"),
        (
            "remote_address",
            json!("2001:db8::1"),
            "not an IPv4 address",
        ),
        (
            "remote_address",
            json!("255.255.255.255"),
            "cannot be a PPP address",
        ),
    ];
    for (name, value, message) in cases {
        let mut body = f.alice();
        body[*name] = value.clone();
        let response = f.create(body).await;
        let error = assert_error(&response, 422, "validation_failed");
        let got = error["fields"][*name]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {error}"));
        assert!(
            got.contains(message),
            "{name}={value}: {got:?} lacks {message:?}"
        );
    }
    let mut no_router = f.alice();
    no_router["router_id"] = json!(9999);
    let error = assert_error(&f.create(no_router).await, 422, "validation_failed");
    assert!(error["fields"]["router_id"].is_string());
    assert!(f.secrets().is_empty());
    assert!(f.rows().await.is_empty());
    assert_eq!(
        f.mock.logins(),
        logins,
        "the router was not even logged in to"
    );
}
crate::on_every_backend!(invalid_pppoe_users_are_refused_before_the_router_is_asked);

async fn a_duplicate_name_is_a_409_on_the_router_or_here(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    // Made on the router by hand: the router's own message.
    f.router_command("/ppp/secret/add", &[("name", "alice"), ("password", "x")])
        .await;
    let response = f.create(f.alice()).await;
    let error = assert_error(&response, 409, "pppoe_user_taken");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("secret with the same name already exists"),
        "{message}"
    );
    assert!(message.contains("core-1"), "{message}");
    assert!(f.rows().await.is_empty());
    assert_eq!(f.secrets().len(), 1);
    assert_eq!(
        field(&f.secret("alice").unwrap(), "password"),
        "x",
        "untouched"
    );

    // Known here: refused before the router is asked.
    let mut bob = f.alice();
    bob["username"] = json!("bob");
    assert_eq!(f.create(bob.clone()).await.status, 201);
    let logins = f.mock.logins();
    let again = f.create(bob).await;
    assert_error(&again, 409, "pppoe_user_taken");
    assert_eq!(f.mock.logins(), logins);
}
crate::on_every_backend!(a_duplicate_name_is_a_409_on_the_router_or_here);

/// Everything the router and the database hold, to compare before and after.
async fn snapshot(f: &Fixture) -> (Vec<Row>, Vec<(String, String, String, String)>) {
    let rows = f
        .rows()
        .await
        .into_iter()
        .map(|r| {
            let password = f.app.state.app_key.decrypt(&r.password_encrypted).unwrap();
            (
                r.username,
                password.expose().to_string(),
                r.status,
                r.profile.unwrap_or_default(),
            )
        })
        .collect();
    (f.secrets(), rows)
}

async fn router_faults_leave_neither_side_half_written(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let id = f.create_alice().await;
    let path = format!("/api/v1/mikrotik/pppoe-users/{id}");
    let change = json!({"router_id": f.router_id, "username": "alice-new", "password": "N3w-secret",
        "profile": "home-50m", "disabled": true});
    let mut bob = f.alice();
    bob["username"] = json!("bob");
    let before = snapshot(&f).await;
    let faults = [
        (
            Fault::DropMidReply,
            502,
            "router_protocol_error",
            "connection lost",
        ),
        (
            Fault::Silent,
            504,
            "router_timeout",
            "did not answer within 1 s",
        ),
        (
            Fault::Fatal("out of sessions".into()),
            502,
            "router_fatal",
            "out of sessions",
        ),
    ];
    for (fault, status, code, message) in faults {
        f.mock.set_fault(fault.clone());
        for call in 0..3 {
            let response = match call {
                0 => f.create(bob.clone()).await,
                1 => f.put(&path, change.clone()).await,
                _ => f.delete(&path).await,
            };
            // Each failure backs the router off; each call here is to
            // meet the fault itself.
            f.retry_at_once();
            let error = assert_error(&response, status, code);
            let text = error["message"].as_str().unwrap();
            assert!(
                text.contains("core-1") && text.contains(message),
                "{fault:?}: {text}"
            );
            assert_no_password(&response);
        }
        f.mock.set_fault(Fault::None);
        assert_eq!(
            snapshot(&f).await,
            before,
            "after {fault:?}, both sides are as they were"
        );
    }
}
crate::on_every_backend!(router_faults_leave_neither_side_half_written);

async fn a_change_whose_answer_comes_too_late_is_undone_on_the_router(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    // The router applies the add, but its answer comes after the timeout
    // (1 s): the service checks, finds the secret and removes it.
    f.mock
        .set_command_delay("/ppp/secret/add", Duration::from_millis(1500));
    let response = f.create(f.alice()).await;
    assert_error(&response, 504, "router_timeout");
    assert!(
        f.secrets().is_empty(),
        "the late add was undone: {:?}",
        f.secrets()
    );
    assert!(f.rows().await.is_empty());

    // The same for a remove: the secret is added back.
    f.mock.set_command_delay("/ppp/secret/add", Duration::ZERO);
    let id = f.create_alice().await;
    let before = snapshot(&f).await;
    f.mock
        .set_command_delay("/ppp/secret/remove", Duration::from_millis(1500));
    let response = f
        .delete(&format!("/api/v1/mikrotik/pppoe-users/{id}"))
        .await;
    assert_error(&response, 504, "router_timeout");
    let (secrets, rows) = snapshot(&f).await;
    assert_eq!(rows, before.1, "the row stays");
    let secret = f.secret("alice").expect("the removed secret is back");
    assert_eq!(field(&secret, "password"), PPP_PASSWORD);
    assert_eq!(field(&secret, "profile"), "home-20m");
    assert_eq!(secrets.len(), 1);
}
crate::on_every_backend!(a_change_whose_answer_comes_too_late_is_undone_on_the_router);

/// Inserts a PPPoE row behind the service's back, as a concurrent request
/// would, while the router is still answering.
fn insert_behind_the_back(f: &Fixture, username: &'static str) -> tokio::task::JoinHandle<()> {
    let db = f.app.db().clone();
    let router_id = f.router_id as i32;
    let sealed = f.app.state.app_key.encrypt("other");
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = chrono::Utc::now().fixed_offset();
        mikrotik_pppoe_user::ActiveModel {
            router_id: Set(router_id),
            username: Set(username.into()),
            password_encrypted: Set(sealed),
            service: Set("pppoe".into()),
            status: Set("active".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
    })
}

async fn a_database_failure_after_the_router_change_is_undone_on_the_router(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };

    // Create: the row is taken while the router adds the secret; the
    // insert fails on the unique index, and the secret is removed again.
    f.mock
        .set_command_delay("/ppp/secret/add", Duration::from_millis(600));
    let racer = insert_behind_the_back(&f, "alice");
    let response = f.create(f.alice()).await;
    racer.await.unwrap();
    assert_error(&response, 409, "pppoe_user_taken");
    assert!(
        f.secret("alice").is_none(),
        "the new secret was removed: {:?}",
        f.secrets()
    );
    let rows = f.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        f.app.decrypt(&rows[0].password_encrypted),
        "other",
        "only the other request's row"
    );
    mikrotik_pppoe_user::Entity::delete_many()
        .exec(f.app.db())
        .await
        .unwrap();
    f.mock.set_command_delay("/ppp/secret/add", Duration::ZERO);

    // Update: a rename whose new name is taken meanwhile; the router gets
    // the old values back.
    let id = f.create_alice().await;
    let before = f.secret("alice").unwrap();
    f.mock
        .set_command_delay("/ppp/secret/set", Duration::from_millis(600));
    let racer = insert_behind_the_back(&f, "alicia");
    let response = f
        .put(
            &format!("/api/v1/mikrotik/pppoe-users/{id}"),
            json!({"router_id": f.router_id, "username": "alicia", "password": "N3w-secret",
                "profile": "home-50m"}),
        )
        .await;
    racer.await.unwrap();
    assert_error(&response, 409, "pppoe_user_taken");
    assert!(f.secret("alicia").is_none());
    assert_eq!(
        f.secret("alice").unwrap(),
        before,
        "every old value is back"
    );
    let row = mikrotik_pppoe_user::Entity::find_by_id(id as i32)
        .one(f.app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.username, "alice");
    assert_eq!(row.profile.as_deref(), Some("home-20m"));
    f.mock.set_command_delay("/ppp/secret/set", Duration::ZERO);
    mikrotik_pppoe_user::Entity::delete_many()
        .filter(mikrotik_pppoe_user::Column::Username.eq("alicia"))
        .exec(f.app.db())
        .await
        .unwrap();

    // Delete: the table is away while the router removes the secret, so
    // the row's delete fails; the secret is added back.
    f.mock
        .set_command_delay("/ppp/secret/remove", Duration::from_millis(600));
    let db = f.app.db().clone();
    let mover = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        db.execute_unprepared(
            "ALTER TABLE mikrotik_pppoe_users RENAME TO mikrotik_pppoe_users_away",
        )
        .await
        .unwrap();
    });
    let response = f
        .delete(&format!("/api/v1/mikrotik/pppoe-users/{id}"))
        .await;
    mover.await.unwrap();
    f.app
        .db()
        .execute_unprepared("ALTER TABLE mikrotik_pppoe_users_away RENAME TO mikrotik_pppoe_users")
        .await
        .unwrap();
    assert_error(&response, 500, "internal");
    let secret = f.secret("alice").expect("the secret is back on the router");
    assert_eq!(field(&secret, "password"), PPP_PASSWORD);
    assert_eq!(field(&secret, "profile"), "home-20m");
    assert_eq!(field(&secret, "remote-address"), "100.64.0.10");
    assert_eq!(f.rows().await.len(), 1, "and the row is still here");
}
crate::on_every_backend!(a_database_failure_after_the_router_change_is_undone_on_the_router);

async fn a_pppoe_network_user_keeps_its_secret_in_step(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = |name: &str, profile: &str| {
        json!({"name": name, "download_rate": "20M", "upload_rate": "5M",
            "radius_group": name, "mikrotik_profile": profile})
    };
    let p20 = f
        .post("/api/v1/packages", package("home-20", "home-20m"))
        .await;
    assert_eq!(p20.status, 201, "{}", p20.text());
    let p50 = f
        .post("/api/v1/packages", package("home-50", "home-50m"))
        .await;
    let (p20, p50) = (p20.json()["id"].clone(), p50.json()["id"].clone());
    let user = f
        .post(
            "/api/v1/users",
            json!({"username": "carol", "password": "User-pass-123", "service_type": "pppoe",
                "package_id": p20}),
        )
        .await;
    assert_eq!(user.status, 201, "{}", user.text());
    let user_id = user.json()["id"].as_i64().unwrap();

    // Linking: name, password and profile come from the user record.
    let linked = f
        .create(json!({"router_id": f.router_id, "network_user_id": user_id,
            "remote_address": "100.64.0.20"}))
        .await;
    assert_eq!(linked.status, 201, "{}", linked.text());
    assert_no_password(&linked);
    assert_eq!(linked.json()["network_user_id"], user_id);
    let secret = f.secret("carol").expect("pushed to the router");
    assert_eq!(field(&secret, "password"), "User-pass-123");
    assert_eq!(field(&secret, "profile"), "home-20m");
    assert_eq!(field(&secret, "disabled"), "false");

    // A user of another type cannot be linked.
    let hotspot = f
        .post(
            "/api/v1/users",
            json!({"username": "dave", "password": "User-pass-123",
                "service_type": "hotspot", "package_id": p20}),
        )
        .await;
    let refused = f
        .create(json!({"router_id": f.router_id,
            "network_user_id": hotspot.json()["id"]}))
        .await;
    let error = assert_error(&refused, 422, "validation_failed");
    assert!(error["fields"]["network_user_id"]
        .as_str()
        .unwrap()
        .contains("not a PPPoE user"));

    // The user changes: new password, other package, suspended.
    let user_path = format!("/api/v1/users/{user_id}");
    let updated = f
        .put(
            &user_path,
            json!({"username": "carol", "password": "N3w-secret", "service_type": "pppoe",
                "package_id": p50, "status": "suspended"}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    let secret = f.secret("carol").unwrap();
    assert_eq!(field(&secret, "password"), "N3w-secret");
    assert_eq!(field(&secret, "profile"), "home-50m");
    assert_eq!(field(&secret, "disabled"), "true");
    assert_eq!(
        field(&secret, "remote-address"),
        "100.64.0.20",
        "its own fields stay"
    );
    let row = &f.rows().await[0];
    assert_eq!(row.status, "disabled");
    assert_eq!(row.profile.as_deref(), Some("home-50m"));
    assert_eq!(f.app.decrypt(&row.password_encrypted), "N3w-secret");

    // Renamed and active again (no new password: the router keeps it).
    let renamed = f
        .put(
            &user_path,
            json!({"username": "carol2", "service_type": "pppoe", "package_id": p50,
                "status": "active"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    assert!(f.secret("carol").is_none());
    let secret = f.secret("carol2").unwrap();
    assert_eq!(field(&secret, "password"), "N3w-secret");
    assert_eq!(field(&secret, "disabled"), "false");
    assert_eq!(f.rows().await[0].username, "carol2");

    // The router does not answer: the user is not changed either.
    f.mock.set_fault(Fault::Silent);
    let blocked = f
        .put(
            &user_path,
            json!({"username": "carol2", "service_type": "pppoe", "package_id": p50,
                "status": "disabled"}),
        )
        .await;
    assert_error(&blocked, 504, "router_timeout");
    f.mock.set_fault(Fault::None);
    f.retry_at_once();
    assert_eq!(
        f.send(Method::GET, &user_path, None).await.json()["status"],
        "active"
    );
    assert_eq!(field(&f.secret("carol2").unwrap(), "disabled"), "false");
    assert_eq!(f.rows().await[0].status, "active");

    // The user's write fails after the router change (the name is taken
    // meanwhile): the secret gets its old values back.
    let before = f.secret("carol2").unwrap();
    f.mock
        .set_command_delay("/ppp/secret/set", Duration::from_millis(600));
    let db = f.app.db().clone();
    let sealed = f.app.state.app_key.encrypt("x");
    let racer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = chrono::Utc::now().fixed_offset();
        ispd::users::entities::network_user::ActiveModel {
            username: Set("carol3".into()),
            password_encrypted: Set(sealed),
            service_type: Set("pppoe".into()),
            status: Set("active".into()),
            radius_sync_pending: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
    });
    let failed = f
        .put(
            &user_path,
            json!({"username": "carol3", "service_type": "pppoe", "package_id": p50}),
        )
        .await;
    racer.await.unwrap();
    assert_eq!(failed.status, 422, "{}", failed.text());
    assert!(f.secret("carol3").is_none());
    assert_eq!(f.secret("carol2").unwrap(), before);
    assert_eq!(f.rows().await[0].username, "carol2");
    f.mock.set_command_delay("/ppp/secret/set", Duration::ZERO);

    // Deleting: the plain delete refuses while the secret exists; the one
    // that can reach the router removes it, then the rows.
    let refused = users::delete_user(
        f.app.db(),
        IpamSettings::from_config(&f.app.state.config),
        &Actor::system(),
        user_id as i32,
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(users::UsersError::Conflict {
                code: "user_has_router_secrets",
                ..
            })
        ),
        "{refused:?}"
    );
    users::delete_user_with_router_secrets(
        f.app.db(),
        &f.app.state.router_pool,
        IpamSettings::from_config(&f.app.state.config),
        &Actor::system(),
        user_id as i32,
    )
    .await
    .unwrap();
    assert!(f.secret("carol2").is_none());
    assert!(f.rows().await.is_empty());
    assert_eq!(f.send(Method::GET, &user_path, None).await.status, 404);
}
crate::on_every_backend!(a_pppoe_network_user_keeps_its_secret_in_step);

async fn pppoe_pages_create_edit_and_delete_on_the_router(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let password = f.app.create_staff("noc", Role::Operator).await;
    let mut browser = TestBrowser::new(&f.app);
    browser.sign_in("noc", &password).await;
    let router_id = f.router_id.to_string();

    let empty = browser.get("/mikrotik/pppoe").await;
    assert_eq!(empty.status, 200);
    assert!(empty.text().contains("No PPPoE secrets yet."));
    let form = browser
        .get(&format!("/mikrotik/pppoe/new?router_id={router_id}"))
        .await;
    assert_eq!(form.status, 200);
    assert!(form.text().contains("core-1"));

    let invalid = browser
        .post(
            "/mikrotik/pppoe",
            &[
                ("router_id", &router_id),
                ("username", "bad name"),
                ("password", PPP_PASSWORD),
                ("service", "pppoe"),
                ("remote_address", "nope"),
            ],
        )
        .await;
    assert_eq!(invalid.status, 422);
    let page = invalid.text();
    assert!(page.contains("may contain only letters"), "{page}");
    assert!(page.contains("not an IPv4 address"), "{page}");
    assert!(!page.contains(PPP_PASSWORD));

    // The router is down: nothing saved, the error shown.
    f.mock.set_fault(Fault::Fatal("maintenance".into()));
    let erin = [
        ("router_id", router_id.as_str()),
        ("username", "erin"),
        ("password", PPP_PASSWORD),
        ("service", "pppoe"),
    ];
    let down = browser.post("/mikrotik/pppoe", &erin).await;
    assert_eq!(down.status, 502);
    assert!(down
        .text()
        .contains("Nothing was saved: router core-1 closed the session: maintenance"));
    assert!(f.rows().await.is_empty());
    f.mock.set_fault(Fault::None);
    f.retry_at_once();

    let created = browser
        .post(
            "/mikrotik/pppoe",
            &with(&erin, &[("profile", "home-20m"), ("disabled", "on")]),
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.text());
    assert_eq!(field(&f.secret("erin").unwrap(), "disabled"), "true");
    let location = created.header("location").unwrap().to_string();
    let shown = browser.get(&location).await;
    let page = shown.text();
    assert!(
        page.contains("PPPoE user “erin” created on the router."),
        "{page}"
    );
    assert!(!page.contains(PPP_PASSWORD));
    assert!(page.contains("data-confirm=\"Delete PPPoE user erin?"));

    // A duplicate made on the router: 409, inline.
    f.router_command("/ppp/secret/add", &[("name", "frank"), ("password", "x")])
        .await;
    let duplicate = browser
        .post("/mikrotik/pppoe", &with(&erin, &[("username", "frank")]))
        .await;
    assert_eq!(duplicate.status, 409);
    assert!(duplicate
        .text()
        .contains("secret with the same name already exists"));

    let saved = browser
        .post(
            &location,
            &[
                ("router_id", &router_id),
                ("username", "erin"),
                ("password", ""),
                ("service", "any"),
                ("profile", "home-50m"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let secret = f.secret("erin").unwrap();
    assert_eq!(field(&secret, "service"), "any");
    assert_eq!(field(&secret, "disabled"), "false");
    assert_eq!(field(&secret, "password"), PPP_PASSWORD);

    let listed = browser
        .get(&format!("/mikrotik/pppoe?router_id={router_id}&q=eri"))
        .await;
    assert!(listed.text().contains("erin"));
    let csv = browser.get("/mikrotik/pppoe.csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.text().contains("erin"));
    assert!(!csv.text().contains(PPP_PASSWORD));

    let deleted = browser.post(&format!("{location}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    assert!(f.secret("erin").is_none());
    assert!(f.rows().await.is_empty());
}
crate::on_every_backend!(pppoe_pages_create_edit_and_delete_on_the_router);

async fn pppoe_changes_reuse_one_login_per_router(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let logins = f.mock.logins();

    // Create, update and delete PPPoE users one after the other.
    let alice = f.create_alice().await;
    let mut bob = f.alice();
    bob["username"] = json!("bob");
    let bob = f.create(bob).await;
    assert_eq!(bob.status, 201, "{}", bob.text());
    let mut change = f.alice();
    change["profile"] = json!("home-50m");
    let updated = f
        .put(&format!("/api/v1/mikrotik/pppoe-users/{alice}"), change)
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    let bob_id = bob.json()["id"].as_i64().unwrap();
    let deleted = f
        .delete(&format!("/api/v1/mikrotik/pppoe-users/{bob_id}"))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());

    // A network user's change reaches its secret over the same connection.
    let package = f
        .post(
            "/api/v1/packages",
            json!({"name": "home-20", "download_rate": "20M", "upload_rate": "5M",
                "radius_group": "home-20", "mikrotik_profile": "home-20m"}),
        )
        .await;
    let package_id = package.json()["id"].clone();
    let user = f
        .post(
            "/api/v1/users",
            json!({"username": "carol", "password": "User-pass-123",
                "service_type": "pppoe", "package_id": package_id}),
        )
        .await;
    let user_id = user.json()["id"].as_i64().unwrap();
    let linked = f
        .create(json!({"router_id": f.router_id, "network_user_id": user_id}))
        .await;
    assert_eq!(linked.status, 201, "{}", linked.text());
    let suspended = f
        .put(
            &format!("/api/v1/users/{user_id}"),
            json!({"username": "carol", "service_type": "pppoe",
                "package_id": package_id, "status": "suspended"}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text());
    assert_eq!(field(&f.secret("carol").unwrap(), "disabled"), "true");

    assert_eq!(
        f.mock.logins(),
        logins + 1,
        "six changes on one router, one login"
    );
    let status = f.app.state.router_pool.status(f.router_id as i32);
    assert_eq!(status.logins, 1, "{status:?}");
    assert_eq!(status.idle_connections, 1, "kept for the next change");
    assert_eq!(status.consecutive_failures, 0);
}
crate::on_every_backend!(pppoe_changes_reuse_one_login_per_router);

async fn a_failing_router_is_backed_off_not_hammered(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let logins = f.mock.logins();

    // The router ends the session: the call fails with its error, and the
    // failure counts.
    f.mock.set_fault(Fault::Fatal("out of sessions".into()));
    let failed = f.create(f.alice()).await;
    assert_error(&failed, 502, "router_fatal");
    let status = f.app.state.router_pool.status(f.router_id as i32);
    assert_eq!(status.consecutive_failures, 1, "{status:?}");
    assert!(status.backing_off(), "{status:?}");

    // Even once it would answer again, it is not tried again before the
    // pause is over: an immediate answer, and nothing saved anywhere.
    f.mock.set_fault(Fault::None);
    let logins_before = f.mock.logins();
    let mut bob = f.alice();
    bob["username"] = json!("bob");
    let started = std::time::Instant::now();
    let refused = f.create(bob).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "answered after {:?}",
        started.elapsed()
    );
    let error = assert_error(&refused, 502, "router_unreachable");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("core-1") && message.contains("not tried again"),
        "{message}"
    );
    assert!(message.contains("out of sessions"), "{message}");
    assert_eq!(f.mock.logins(), logins_before, "the router was not asked");
    assert!(f.secrets().is_empty());
    assert!(f.rows().await.is_empty());

    // A router that is not reachable at all: the first call finds out,
    // the next one is answered from the back-off.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let edge = f
        .add_router("edge-9", closed, ROUTER_USER, ROUTER_PASSWORD)
        .await;
    let mut carol = f.alice();
    carol["router_id"] = json!(edge);
    carol["username"] = json!("carol");
    let first = f.create(carol.clone()).await;
    let error = assert_error(&first, 502, "router_unreachable");
    assert!(
        !error["message"]
            .as_str()
            .unwrap()
            .contains("not tried again"),
        "{error}"
    );
    let second = f.create(carol).await;
    assert_error_says(&second, 502, "router_unreachable", "not tried again");
    assert!(f.rows().await.is_empty());

    // A successful "Test connection" ends the back-off (as saving the
    // router or the pause running out do): it is tried again at once.
    let tested = f
        .send(
            Method::POST,
            &format!("/api/v1/mikrotik/routers/{}/test", f.router_id),
            None,
        )
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text());
    assert!(!f
        .app
        .state
        .router_pool
        .status(f.router_id as i32)
        .backing_off());
    f.create_alice().await;
    assert_eq!(
        f.mock.logins(),
        logins + 3,
        "one login before the failure, one for the test, one after the back-off"
    );
}
crate::on_every_backend!(a_failing_router_is_backed_off_not_hammered);
