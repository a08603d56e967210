//! MikroTik routers: CRUD through the API and the pages, validation field
//! by field, the write-only password, and the connection test over real
//! TCP (and TLS with a pinned certificate) against the in-process mock
//! router: success, wrong password, unreachable port, no answer.

use std::time::{Duration, Instant};

use axum::http::Method;
use ispd::audit::entities::audit_log;
use ispd::mikrotik::entities::mikrotik_router;
use ispd::mikrotik::routeros::mock::MockOptions;
use ispd::mikrotik::routeros::{Fault, MockRouter};
use ispd::staff::Role;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{
    assert_created, assert_error, assert_error_says, router_tls_identity, ApiFixture, Backend,
    TestBrowser, TestResponse,
};

const ROUTER_USER: &str = "ispd-api";
const ROUTER_PASSWORD: &str = "R0uter=pass word";

type Fixture = ApiFixture;

async fn spawn(backend: Backend) -> Option<Fixture> {
    // A short timeout keeps the no-answer tests quick.
    ApiFixture::spawn_with(backend, &[("MIKROTIK_API_TIMEOUT", "1")]).await
}

async fn router_row(f: &ApiFixture, id: i64) -> mikrotik_router::Model {
    mikrotik_router::Entity::find_by_id(id as i32)
        .one(f.app.db())
        .await
        .unwrap()
        .expect("router row")
}

/// No answer carries the router's password, its ciphertext or a field for it.
fn assert_no_password(response: &TestResponse) {
    let text = response.text();
    assert!(!text.contains(ROUTER_PASSWORD), "password leaked: {text}");
    assert!(!text.contains("v1:"), "ciphertext leaked: {text}");
    assert!(!text.contains("\"password"), "a password field: {text}");
}

async fn mock() -> MockRouter {
    MockRouter::start(ROUTER_USER, ROUTER_PASSWORD)
        .await
        .unwrap()
}

/// A port nothing listens on.
async fn closed_port() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

async fn routers_are_created_read_updated_and_deleted_without_their_password(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let body = json!({"name": "core-1", "ip_address": "192.0.2.1", "username": ROUTER_USER,
        "password": ROUTER_PASSWORD});
    let created = f.post("/api/v1/mikrotik/routers", body.clone()).await;
    let (router, id) = assert_created(&created, "/api/v1/mikrotik/routers");
    assert_no_password(&created);
    assert_eq!(router["api_port"], 8728, "the plain API port by default");
    assert_eq!(router["status"], "unknown");
    // Encrypted at rest, and recoverable with the key.
    let row = router_row(&f, id).await;
    assert_ne!(row.password_encrypted, ROUTER_PASSWORD);
    assert_eq!(f.app.decrypt(&row.password_encrypted), ROUTER_PASSWORD);

    // The name is unique.
    let again = f.post("/api/v1/mikrotik/routers", body).await;
    assert_error_says(&again, 409, "router_name_taken", "core-1");

    // TLS: port 8729 by default, the fingerprint normalised.
    let (_, pin) = router_tls_identity();
    let tls = f
        .post(
            "/api/v1/mikrotik/routers",
            json!({"name": "edge-1", "ip_address": "Edge-1.Example.net", "use_tls": true,
                "tls_fingerprint": pin.to_string().replace(':', "").to_lowercase(),
                "username": ROUTER_USER, "password": ROUTER_PASSWORD}),
        )
        .await;
    assert_eq!(tls.status, 201, "{}", tls.text());
    assert_eq!(tls.json()["api_port"], 8729);
    assert_eq!(tls.json()["tls_fingerprint"], pin.to_string());
    assert_eq!(tls.json()["ip_address"], "edge-1.example.net");

    // Reading: list, search, filter, one.
    let list = f.view("/api/v1/mikrotik/routers?q=EDGE").await;
    assert_eq!(list.status, 200);
    assert_no_password(&list);
    assert_eq!(list.json()["meta"]["total"], 1);
    assert_eq!(list.json()["data"][0]["name"], "edge-1");
    let by_status = f.view("/api/v1/mikrotik/routers?status=online").await;
    assert_eq!(by_status.json()["meta"]["total"], 0);
    let bad_status = f.view("/api/v1/mikrotik/routers?status=up").await;
    assert_error(&bad_status, 422, "validation_failed");
    let one = f.view(&format!("/api/v1/mikrotik/routers/{id}")).await;
    assert_eq!(one.status, 200);
    assert_no_password(&one);

    // Viewers read only.
    let refused = f
        .app
        .post_as(
            "/api/v1/mikrotik/routers",
            &f.viewer,
            json!({"name": "x", "ip_address": "192.0.2.9", "username": "a", "password": "b"}),
        )
        .await;
    assert_error(&refused, 403, "forbidden");

    // Update without a password keeps it (while the endpoint stays the
    // same); with one, replaces it.
    let path = format!("/api/v1/mikrotik/routers/{id}");
    let kept = f
        .put(
            &path,
            json!({"name": "core-1a", "ip_address": "192.0.2.1", "api_port": 8728,
                "username": ROUTER_USER, "password": ""}),
        )
        .await;
    assert_eq!(kept.status, 200, "{}", kept.text());
    assert_no_password(&kept);
    assert_eq!(kept.json()["name"], "core-1a");
    assert_eq!(kept.json()["api_port"], 8728);
    let row = router_row(&f, id).await;
    assert_eq!(f.app.decrypt(&row.password_encrypted), ROUTER_PASSWORD);
    let changed = f
        .put(
            &path,
            json!({"name": "core-1a", "ip_address": "192.0.2.1", "username": ROUTER_USER,
                "password": "another pass"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    let row = router_row(&f, id).await;
    assert_eq!(f.app.decrypt(&row.password_encrypted), "another pass");
    let taken = f
        .put(
            &path,
            json!({"name": "edge-1", "ip_address": "192.0.2.1", "username": ROUTER_USER}),
        )
        .await;
    assert_error(&taken, 409, "router_name_taken");

    // Delete, audited; no audit entry holds a password.
    let deleted = f.delete(&path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_eq!(f.send(Method::GET, &path, None).await.status, 404);
    let entries = audit_log::Entity::find()
        .filter(audit_log::Column::EntityType.eq("mikrotik_router"))
        .all(f.app.db())
        .await
        .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "mikrotik_router.create",
        "mikrotik_router.update",
        "mikrotik_router.delete",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    for entry in &entries {
        let details = entry.details.clone().unwrap_or_default();
        assert!(!details.contains(ROUTER_PASSWORD) && !details.contains("another pass"));
        assert!(
            !details.contains("v1:"),
            "ciphertext in the audit log: {details}"
        );
    }
}
crate::on_every_backend!(routers_are_created_read_updated_and_deleted_without_their_password);

/// The stored password goes only to the endpoint it was stored for: a new
/// address, port, TLS setting, fingerprint or API user name without the
/// password again is a 422 that says why, over the API and on the page, and
/// nothing is changed (so no test, sync or health check sends it there).
async fn a_router_moved_to_a_new_endpoint_needs_its_password_again(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let home = mock().await;
    let elsewhere = mock().await;
    let id = f
        .add_router("core-1", home.addr(), ROUTER_USER, ROUTER_PASSWORD)
        .await;
    let path = format!("/api/v1/mikrotik/routers/{id}");
    let (_, pin) = router_tls_identity();
    let base = json!({"name": "core-1", "ip_address": "127.0.0.1", "api_port": home.addr().port(),
        "username": ROUTER_USER});
    let moves = [
        ("address", json!({"ip_address": "127.0.0.2"})),
        ("API port", json!({"api_port": elsewhere.addr().port()})),
        (
            "TLS setting",
            json!({"use_tls": true, "tls_fingerprint": pin.to_string()}),
        ),
        ("API user name", json!({"username": "someone-else"})),
    ];
    for (what, change) in moves {
        for password in [None, Some("")] {
            let mut body = base.clone();
            for (key, value) in change.as_object().unwrap() {
                body[key] = value.clone();
            }
            if let Some(password) = password {
                body["password"] = json!(password);
            }
            let refused = f.put(&path, body).await;
            let error = assert_error(&refused, 422, "validation_failed");
            let message = error["fields"]["password"].as_str().unwrap_or_default();
            assert!(
                message.contains(what) && message.contains("only ever sent to the router"),
                "{what}: {error}"
            );
        }
    }
    let row = router_row(&f, id).await;
    assert_eq!(
        (
            row.ip_address.as_str(),
            row.api_port,
            row.use_tls,
            row.username.as_str()
        ),
        (
            "127.0.0.1",
            i32::from(home.addr().port()),
            false,
            ROUTER_USER
        ),
        "nothing changed"
    );
    // The test still goes home, and nowhere else.
    let tested = f.send(Method::POST, &format!("{path}/test"), None).await;
    assert_eq!(tested.status, 200, "{}", tested.text());
    assert_eq!(elsewhere.logins(), 0);
    assert_eq!(elsewhere.connections(), 0);

    // With the password typed again, the move is made.
    let mut moved = base.clone();
    moved["api_port"] = json!(elsewhere.addr().port());
    moved["password"] = json!(ROUTER_PASSWORD);
    let moved = f.put(&path, moved).await;
    assert_eq!(moved.status, 200, "{}", moved.text());
    let tested = f.send(Method::POST, &format!("{path}/test"), None).await;
    assert_eq!(tested.status, 200, "{}", tested.text());
    assert_eq!(elsewhere.logins(), 1);

    // The page says the same, inline, and keeps what was typed.
    let staff_password = f.app.create_staff("noc", Role::Operator).await;
    let mut browser = TestBrowser::new(&f.app);
    browser.sign_in("noc", &staff_password).await;
    let port = elsewhere.addr().port().to_string();
    let form = [
        ("name", "core-1"),
        ("ip_address", "127.0.0.3"),
        ("api_port", port.as_str()),
        ("username", ROUTER_USER),
        ("password", ""),
    ];
    let page = browser
        .post(&format!("/mikrotik/routers/{id}"), &form)
        .await;
    assert_eq!(page.status, 422, "{}", page.text());
    assert!(
        page.text()
            .contains("is required again because the address"),
        "{}",
        page.text()
    );
    assert_eq!(router_row(&f, id).await.ip_address, "127.0.0.1");
}
crate::on_every_backend!(a_router_moved_to_a_new_endpoint_needs_its_password_again);

async fn invalid_routers_are_refused_field_by_field(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let valid = json!({"name": "core-1", "ip_address": "192.0.2.1", "username": "api",
        "password": "pw"});
    let cases: &[(&str, Value, &str)] = &[
        ("name", json!(""), "1 to 64"),
        ("name", json!("x".repeat(65)), "1 to 64"),
        (
            "ip_address",
            json!("not a host!"),
            "not an IP address or a host name",
        ),
        ("ip_address", json!(""), "is required"),
        (
            "ip_address",
            json!("-bad.example"),
            "not an IP address or a host name",
        ),
        ("api_port", json!(0), "1 to 65535"),
        ("api_port", json!(65536), "1 to 65535"),
        ("tls_fingerprint", json!("abcd"), "64 hexadecimal digits"),
        ("username", json!(" "), "1 to 64"),
        ("password", json!(""), "is required"),
    ];
    for (field, value, message) in cases {
        let mut body = valid.clone();
        body[*field] = value.clone();
        let response = f.post("/api/v1/mikrotik/routers", body).await;
        let error = assert_error(&response, 422, "validation_failed");
        let got = error["fields"][*field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {error}"));
        assert!(
            got.contains(message),
            "{field}={value}: {got:?} lacks {message:?}"
        );
    }
    // TLS needs a fingerprint.
    let mut tls = valid.clone();
    tls["use_tls"] = json!(true);
    let response = f.post("/api/v1/mikrotik/routers", tls).await;
    let error = assert_error(&response, 422, "validation_failed");
    assert!(error["fields"]["tls_fingerprint"]
        .as_str()
        .unwrap()
        .contains("required with TLS"));
    // Nothing was written.
    assert!(mikrotik_router::Entity::find()
        .all(f.app.db())
        .await
        .unwrap()
        .is_empty());
}
crate::on_every_backend!(invalid_routers_are_refused_field_by_field);

async fn a_connection_test_records_identity_version_and_uptime(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let router = mock().await;
    let id = f
        .add_router("core-1", router.addr(), ROUTER_USER, ROUTER_PASSWORD)
        .await;
    let tested = f
        .send(
            Method::POST,
            &format!("/api/v1/mikrotik/routers/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text());
    let probe = tested.json();
    assert_eq!(probe["identity"], "MikroTik");
    assert_eq!(probe["version"], "7.16.2 (stable)");
    assert!(!probe["uptime"].as_str().unwrap().is_empty());
    let row = router_row(&f, id).await;
    assert_eq!(row.status, "online");
    assert_eq!(row.identity.as_deref(), Some("MikroTik"));
    assert_eq!(row.version.as_deref(), Some("7.16.2 (stable)"));
    assert!(row.last_seen_at.is_some());
    assert!(row.last_error.is_none());
    // Each test is one login, and the connection is closed afterwards.
    assert_eq!(router.logins(), 1);
    // Viewers may not test (it logs in to the router).
    let refused = f
        .app
        .api(
            Method::POST,
            &format!("/api/v1/mikrotik/routers/{id}/test"),
            &f.viewer,
            None,
        )
        .await;
    assert_error(&refused, 403, "forbidden");
}
crate::on_every_backend!(a_connection_test_records_identity_version_and_uptime);

async fn connection_failures_are_typed_and_recorded(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let router = mock().await;

    // A wrong password: 502 with the router's message.
    let wrong = f
        .add_router("wrong-pass", router.addr(), ROUTER_USER, "not the password")
        .await;
    let response = f
        .send(
            Method::POST,
            &format!("/api/v1/mikrotik/routers/{wrong}/test"),
            None,
        )
        .await;
    let error = assert_error(&response, 502, "router_login_failed");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("wrong-pass"),
        "names the router: {message}"
    );
    assert!(
        message.contains("invalid user name or password"),
        "{message}"
    );
    assert!(!message.contains("not the password"));
    let row = router_row(&f, wrong).await;
    assert_eq!(row.status, "offline");
    assert!(row
        .last_error
        .unwrap()
        .contains("invalid user name or password"));

    // Nothing listens: 502, unreachable.
    let closed = f
        .add_router("closed", closed_port().await, ROUTER_USER, ROUTER_PASSWORD)
        .await;
    let response = f
        .send(
            Method::POST,
            &format!("/api/v1/mikrotik/routers/{closed}/test"),
            None,
        )
        .await;
    assert_error_says(&response, 502, "router_unreachable", "closed");
    assert_eq!(router_row(&f, closed).await.status, "offline");

    // Logs in, then never answers: 504 within the timeout (1 s).
    let silent = f
        .add_router("silent", router.addr(), ROUTER_USER, ROUTER_PASSWORD)
        .await;
    router.set_fault(Fault::Silent);
    let started = Instant::now();
    let response = f
        .send(
            Method::POST,
            &format!("/api/v1/mikrotik/routers/{silent}/test"),
            None,
        )
        .await;
    let waited = started.elapsed();
    assert_error_says(&response, 504, "router_timeout", "silent");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    let row = router_row(&f, silent).await;
    assert_eq!(row.status, "offline");
    assert!(row.last_error.unwrap().contains("did not answer"));

    // A successful test clears the error again.
    router.set_fault(Fault::None);
    let response = f
        .send(
            Method::POST,
            &format!("/api/v1/mikrotik/routers/{silent}/test"),
            None,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let row = router_row(&f, silent).await;
    assert_eq!(row.status, "online");
    assert!(row.last_error.is_none());
}
crate::on_every_backend!(connection_failures_are_typed_and_recorded);

async fn tls_connects_only_with_the_pinned_certificate(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let (identity, pin) = router_tls_identity();
    let router = MockRouter::start_with(MockOptions {
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls: Some(identity),
        ..MockOptions::local(ROUTER_USER, ROUTER_PASSWORD)
    })
    .await
    .unwrap();
    let addr = router.tls_addr().unwrap();
    let create = |name: &str, pin: String| {
        json!({"name": name, "ip_address": "127.0.0.1", "api_port": addr.port(),
            "use_tls": true, "tls_fingerprint": pin, "username": ROUTER_USER,
            "password": ROUTER_PASSWORD})
    };
    let pinned = f
        .post(
            "/api/v1/mikrotik/routers",
            create("tls-ok", pin.to_string()),
        )
        .await;
    assert_eq!(pinned.status, 201, "{}", pinned.text());
    let id = pinned.json()["id"].as_i64().unwrap();
    let tested = f
        .send(
            Method::POST,
            &format!("/api/v1/mikrotik/routers/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text());
    assert_eq!(tested.json()["identity"], "MikroTik");

    let other = f
        .post(
            "/api/v1/mikrotik/routers",
            create("tls-wrong", "ab".repeat(32)),
        )
        .await;
    let id = other.json()["id"].as_i64().unwrap();
    let refused = f
        .send(
            Method::POST,
            &format!("/api/v1/mikrotik/routers/{id}/test"),
            None,
        )
        .await;
    assert_error_says(&refused, 502, "router_tls_failed", "not the pinned");
    assert_eq!(router_row(&f, id).await.status, "offline");
}
crate::on_every_backend!(tls_connects_only_with_the_pinned_certificate);

async fn router_pages_create_test_edit_and_delete(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let router = mock().await;
    let password = f.app.create_staff("noc", Role::Operator).await;
    let mut browser = TestBrowser::new(&f.app);
    browser.sign_in("noc", &password).await;

    let empty = browser.get("/mikrotik/routers").await;
    assert_eq!(empty.status, 200);
    assert!(empty.text().contains("No routers yet."));

    // Inline messages, and the password is not sent back.
    let invalid = browser
        .post(
            "/mikrotik/routers",
            &[
                ("name", "core-1"),
                ("ip_address", "bad host!"),
                ("api_port", "http"),
                ("username", ROUTER_USER),
                ("password", ROUTER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(invalid.status, 422);
    let page = invalid.text();
    assert!(page.contains("not an IP address or a host name"), "{page}");
    assert!(page.contains("is not a port"), "{page}");
    assert!(!page.contains(ROUTER_PASSWORD));

    let port = router.addr().port().to_string();
    let created = browser
        .post(
            "/mikrotik/routers",
            &[
                ("name", "core-1"),
                ("ip_address", "127.0.0.1"),
                ("api_port", &port),
                ("username", ROUTER_USER),
                ("password", ROUTER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.text());
    let location = created.header("location").unwrap().to_string();
    let shown = browser.get(&location).await;
    assert_eq!(shown.status, 200);
    let page = shown.text();
    assert!(page.contains("Router “core-1” added."), "flash: {page}");
    assert!(page.contains("Test connection"));
    assert!(page.contains("data-confirm=\"Delete router core-1?"));
    assert!(!page.contains(ROUTER_PASSWORD));

    // The test shows identity, version and uptime.
    let tested = browser.post(&format!("{location}/test"), &[]).await;
    assert_eq!(tested.status, 200, "{}", tested.text());
    let page = tested.text();
    assert!(
        page.contains("Connected. Identity: MikroTik; RouterOS 7.16.2 (stable); up "),
        "{page}"
    );
    // ... and the exact error when it fails.
    router.set_fault(Fault::Fatal("too many sessions".into()));
    let failed = browser.post(&format!("{location}/test"), &[]).await;
    assert_eq!(failed.status, 502);
    let page = failed.text();
    assert!(
        page.contains(
            "Connection test failed: router core-1 closed the session: too many sessions"
        ),
        "{page}"
    );
    router.set_fault(Fault::None);

    let listed = browser.get("/mikrotik/routers?q=core").await;
    assert!(listed.text().contains("core-1"));
    assert!(listed.text().contains("offline"));
    let none = browser.get("/mikrotik/routers?q=nothing-like-this").await;
    assert!(none.text().contains("No router matches these filters."));

    // Edit with a blank password keeps it.
    let saved = browser
        .post(
            &location,
            &[
                ("name", "core-2"),
                ("ip_address", "127.0.0.1"),
                ("api_port", &port),
                ("username", ROUTER_USER),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let row = mikrotik_router::Entity::find()
        .one(f.app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.name, "core-2");
    assert_eq!(f.app.decrypt(&row.password_encrypted), ROUTER_PASSWORD);

    // A viewer sees no change buttons.
    let viewer_password = f.app.create_staff("watcher", Role::Viewer).await;
    let mut viewer = TestBrowser::new(&f.app);
    viewer.sign_in("watcher", &viewer_password).await;
    let page = viewer.get(&location).await.text();
    assert!(!page.contains("Test connection") && !page.contains("Delete router"));
    assert_eq!(
        viewer.post(&format!("{location}/delete"), &[]).await.status,
        403
    );

    let deleted = browser.post(&format!("{location}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    assert!(mikrotik_router::Entity::find()
        .all(f.app.db())
        .await
        .unwrap()
        .is_empty());
}
crate::on_every_backend!(router_pages_create_test_edit_and_delete);
