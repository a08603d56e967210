//! Live PPP sessions against in-process mock routers over real TCP: the
//! connection pool (reuse, idle timeout, back-off), the session sync
//! (insert, update, close, offline routers), the live list and disconnect
//! through the API and the page, and `ispd mikrotik sync-sessions`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use chrono::Utc;
use ispd::audit::entities::audit_log;
use ispd::crypto::AppKey;
use ispd::mikrotik::entities::mikrotik_router;
use ispd::mikrotik::pool::{PoolSettings, RouterPool};
use ispd::mikrotik::routeros::{Client, Fault, MockRouter};
use ispd::mikrotik::sessions::{self, SyncOptions};
use ispd::staff::Role;
use ispd::users::entities::{network_user, network_user_session};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::Value;

use crate::helpers::{ispd_command, Backend, TestApp, TestDb};

const USER: &str = "api";
const PASSWORD: &str = "router-pass=1";
const TIMEOUT: Duration = Duration::from_secs(3);

/// A router row for `addr`, its password encrypted with `key`.
pub async fn add_router(
    db: &DatabaseConnection,
    key: &AppKey,
    name: &str,
    addr: SocketAddr,
    password: &str,
) -> mikrotik_router::Model {
    let now = Utc::now().fixed_offset();
    mikrotik_router::ActiveModel {
        name: Set(name.into()),
        ip_address: Set(addr.ip().to_string()),
        api_port: Set(i32::from(addr.port())),
        use_tls: Set(false),
        tls_fingerprint: Set(None),
        username: Set(USER.into()),
        password_encrypted: Set(key.encrypt(password)),
        status: Set("unknown".into()),
        identity: Set(None),
        version: Set(None),
        last_seen_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
}

/// An address where nothing listens.
pub async fn dead_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// A row as the pool needs it, without a database.
fn router_model(id: i32, addr: SocketAddr, key: &AppKey, password: &str) -> mikrotik_router::Model {
    let now = Utc::now().fixed_offset();
    mikrotik_router::Model {
        id,
        name: format!("r{id}"),
        ip_address: addr.ip().to_string(),
        api_port: i32::from(addr.port()),
        use_tls: false,
        tls_fingerprint: None,
        username: USER.into(),
        password_encrypted: key.encrypt(password),
        status: "unknown".into(),
        identity: None,
        version: None,
        last_seen_at: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    }
}

fn quick_pool(key: &AppKey) -> RouterPool {
    RouterPool::new(
        key.clone(),
        PoolSettings {
            backoff_base: Duration::from_millis(300),
            backoff_max: Duration::from_secs(5),
            ..PoolSettings::with_timeout(TIMEOUT)
        },
    )
}

async fn identity(pool: &RouterPool, router: &mikrotik_router::Model) -> Result<String, String> {
    pool.run(router, |client| async move {
        let rows = client.print("/system/identity", &["name"], &[]).await?;
        Ok(rows[0]["name"].clone())
    })
    .await
    .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_logs_in_once_and_reuses_the_connection() {
    let mock = MockRouter::start(USER, PASSWORD).await.unwrap();
    let key = AppKey::generate();
    let pool = quick_pool(&key);
    let router = router_model(1, mock.addr(), &key, PASSWORD);
    for _ in 0..5 {
        assert_eq!(identity(&pool, &router).await.unwrap(), "MikroTik");
    }
    assert_eq!(mock.logins(), 1, "five calls, one login");
    assert_eq!(pool.status(1).logins, 1);
    assert_eq!(pool.status(1).idle_connections, 1);

    // Concurrent calls never open more than max_per_router connections.
    let calls = (0..6).map(|_| {
        let (pool, router) = (pool.clone(), router.clone());
        async move { identity(&pool, &router).await }
    });
    for result in futures_join_all(calls).await {
        assert_eq!(result.unwrap(), "MikroTik");
    }
    assert!(
        mock.logins() <= PoolSettings::DEFAULT_MAX_PER_ROUTER,
        "{} logins",
        mock.logins()
    );
    assert!(mock.connections() <= PoolSettings::DEFAULT_MAX_PER_ROUTER);

    // An edited router (new password) gets a fresh login, not the old one.
    let mut edited = router.clone();
    edited.password_encrypted = key.encrypt(PASSWORD);
    let before = mock.logins();
    identity(&pool, &edited).await.unwrap();
    assert_eq!(mock.logins(), before + 1);
}

/// Joins futures without a futures crate: one task each.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_past_its_timeout_is_not_reused() {
    let mock = MockRouter::start(USER, PASSWORD).await.unwrap();
    let key = AppKey::generate();
    let pool = RouterPool::new(
        key.clone(),
        PoolSettings {
            idle_timeout: Duration::from_millis(200),
            ..PoolSettings::with_timeout(TIMEOUT)
        },
    );
    let router = router_model(1, mock.addr(), &key, PASSWORD);
    identity(&pool, &router).await.unwrap();
    identity(&pool, &router).await.unwrap();
    assert_eq!(mock.logins(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    pool.reap_idle();
    assert_eq!(pool.status(1).idle_connections, 0);
    identity(&pool, &router).await.unwrap();
    assert_eq!(mock.logins(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_is_dropped_and_the_router_backed_off_then_retried() {
    let mock = MockRouter::start(USER, PASSWORD).await.unwrap();
    let key = AppKey::generate();
    let pool = quick_pool(&key);
    let router = router_model(1, mock.addr(), &key, PASSWORD);
    identity(&pool, &router).await.unwrap();

    mock.set_fault(Fault::DropMidReply);
    let err = identity(&pool, &router).await.unwrap_err();
    assert!(err.contains("connection lost"), "{err}");
    let status = pool.status(1);
    assert_eq!(status.consecutive_failures, 1);
    assert_eq!(status.idle_connections, 0, "the broken connection is gone");
    assert!(status.backing_off());

    // While backed off, the pool answers at once without connecting.
    mock.set_fault(Fault::None);
    let logins = mock.logins();
    let err = identity(&pool, &router).await.unwrap_err();
    assert!(err.contains("not tried again"), "{err}");
    assert_eq!(mock.logins(), logins);

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(identity(&pool, &router).await.unwrap(), "MikroTik");
    assert_eq!(mock.logins(), logins + 1, "a new login after the pause");
    assert_eq!(pool.status(1).consecutive_failures, 0);
    assert!(!pool.status(1).backing_off());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_that_keeps_failing_is_tried_less_and_less_often() {
    // A "router" that accepts connections and hangs up at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let key = AppKey::generate();
    let pool = quick_pool(&key);
    let router = router_model(7, addr, &key, PASSWORD);

    let err = identity(&pool, &router).await.unwrap_err();
    assert!(err.starts_with("router r7"), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    for _ in 0..5 {
        assert!(identity(&pool, &router).await.is_err());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "not hammered");

    // First pause 300 ms: one more attempt, which fails; the next pause is 600 ms.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(identity(&pool, &router).await.is_err());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    let status = pool.status(7);
    assert_eq!(status.consecutive_failures, 2);
    // The hang-up reads as a refused login or a reset, as timing has it.
    assert!(status.last_error.unwrap().contains("router r7"));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(identity(&pool, &router).await.is_err());
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "still pausing after 350 ms"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(identity(&pool, &router).await.is_err());
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert_eq!(pool.status(7).consecutive_failures, 3);

    // Forgetting the router (after an edit) clears the back-off.
    pool.forget(7);
    assert_eq!(pool.status(7).consecutive_failures, 0);
    acceptor.abort();
}

async fn active_rows(db: &DatabaseConnection) -> Vec<network_user_session::Model> {
    network_user_session::Entity::find()
        .filter(network_user_session::Column::Status.eq("active"))
        .order_by_asc(network_user_session::Column::Username)
        .all(db)
        .await
        .unwrap()
}

async fn add_network_user(db: &DatabaseConnection, key: &AppKey, username: &str) -> i32 {
    let now = Utc::now().fixed_offset();
    network_user::ActiveModel {
        username: Set(username.into()),
        password_encrypted: Set(key.encrypt("subscriber-pass")),
        service_type: Set("pppoe".into()),
        status: Set("active".into()),
        radius_sync_pending: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

/// Removes an active session on a mock, as the subscriber hanging up would.
async fn hang_up(mock: &MockRouter, item_id: &str) {
    let client = Client::connect(&mock.addr().to_string(), USER, PASSWORD, TIMEOUT)
        .await
        .unwrap();
    client
        .command("/ppp/active/remove", &[(".id", item_id)], &[])
        .await
        .unwrap();
    client.close().await;
}

async fn sync_upserts_updates_and_closes_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (db, key) = (app.db(), &app.state.app_key);
    let a = MockRouter::start(USER, PASSWORD).await.unwrap();
    let b = MockRouter::start(USER, PASSWORD).await.unwrap();
    let router_a = add_router(db, key, "alpha", a.addr(), PASSWORD).await;
    let router_b = add_router(db, key, "bravo", b.addr(), PASSWORD).await;
    let alice_id = add_network_user(db, key, "alice").await;
    a.login_session("alice", "100.64.0.10", "AA:BB:CC:DD:EE:01");
    let bob = a.login_session("bob", "100.64.0.11", "AA:BB:CC:DD:EE:02");
    b.login_session("carol", "100.64.1.10", "AA:BB:CC:DD:EE:03");
    let pool = &app.state.router_pool;

    let report = sessions::sync_sessions(db, pool, SyncOptions::default())
        .await
        .unwrap();
    let lines: Vec<(String, usize, usize, usize)> = report
        .routers
        .iter()
        .map(|r| (r.router.clone(), r.sessions, r.new, r.closed))
        .collect();
    assert_eq!(
        lines,
        [("alpha".into(), 2, 2, 0), ("bravo".into(), 1, 1, 0)]
    );
    assert!(report.to_string().contains("2 of 2 router(s) synced"));
    let rows = active_rows(db).await;
    assert_eq!(rows.len(), 3);
    let alice = &rows[0];
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.user_id, Some(alice_id), "linked by user name");
    assert_eq!(alice.source, "mikrotik");
    assert_eq!(alice.router_id, Some(router_a.id));
    assert_eq!(alice.nas_ip, "127.0.0.1");
    assert_eq!(alice.ip_address.as_deref(), Some("100.64.0.10"));
    assert_eq!(alice.mac_address.as_deref(), Some("AA:BB:CC:DD:EE:01"));
    assert!(alice
        .session_id
        .starts_with(&format!("{}:*1:", router_a.id)));
    let age = Utc::now() - alice.start_time.to_utc();
    assert!(age.num_seconds().abs() < 10, "start = now - uptime: {age}");
    assert!(alice.download_bytes > 0 && alice.upload_bytes > 0);
    assert_eq!(rows[1].user_id, None, "bob has no network user");
    assert_eq!(rows[2].router_id, Some(router_b.id));
    for router in [&router_a, &router_b] {
        let row = mikrotik_router::Entity::find_by_id(router.id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, "online");
        assert!(row.last_seen_at.is_some());
    }

    // Bob hangs up, dave dials in, counters grow.
    hang_up(&a, &bob).await;
    a.login_session("dave", "100.64.0.12", "AA:BB:CC:DD:EE:04");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = sessions::sync_sessions(db, pool, SyncOptions::default())
        .await
        .unwrap();
    let alpha = &report.routers[0];
    assert_eq!((alpha.sessions, alpha.new, alpha.closed), (2, 1, 1));
    let rows = active_rows(db).await;
    let names: Vec<&str> = rows.iter().map(|r| r.username.as_str()).collect();
    assert_eq!(names, ["alice", "carol", "dave"]);
    assert!(
        rows[0].download_bytes > alice.download_bytes,
        "counters updated"
    );
    assert_eq!(rows[0].id, alice.id, "updated in place");
    let bob_row = network_user_session::Entity::find()
        .filter(network_user_session::Column::Username.eq("bob"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_row.status, "closed");
    assert!(bob_row.end_time.is_some());

    // Again, with nothing changed: idempotent.
    let report = sessions::sync_sessions(db, pool, SyncOptions::default())
        .await
        .unwrap();
    assert!(report.routers.iter().all(|r| r.new == 0 && r.closed == 0));
    assert_eq!(
        network_user_session::Entity::find()
            .all(db)
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(a.logins(), 2, "one pooled login, plus the hang-up's own");
}
crate::on_every_backend!(sync_upserts_updates_and_closes_sessions);

async fn an_unreachable_router_is_marked_offline_while_the_others_sync(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (db, key) = (app.db(), &app.state.app_key);
    let live = MockRouter::start(USER, PASSWORD).await.unwrap();
    live.login_session("alice", "100.64.0.10", "AA:BB:CC:DD:EE:01");
    add_router(db, key, "alive", live.addr(), PASSWORD).await;
    let dead = add_router(db, key, "dead", dead_address().await, PASSWORD).await;
    let wrong = add_router(db, key, "wrong-password", live.addr(), "nope").await;

    let report = sessions::sync_sessions(db, &app.state.router_pool, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(report.failed(), 2);
    assert!(!report.all_failed());
    let text = report.to_string();
    assert!(text.contains("unreachable"), "{text}");
    assert!(text.contains("1 of 3 router(s) synced"), "{text}");
    assert_eq!(active_rows(db).await.len(), 1);
    for (router, error) in [(&dead, "unreachable"), (&wrong, "refused the login")] {
        let row = mikrotik_router::Entity::find_by_id(router.id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, "offline");
        let last_error = row.last_error.unwrap_or_default();
        assert!(last_error.contains(error), "{last_error}");
    }
}
crate::on_every_backend!(an_unreachable_router_is_marked_offline_while_the_others_sync);

async fn a_session_key_reused_after_a_reboot_starts_a_new_row(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (db, key) = (app.db(), &app.state.app_key);
    let first = MockRouter::start(USER, PASSWORD).await.unwrap();
    let router = add_router(db, key, "core", first.addr(), PASSWORD).await;
    first.login_session("alice", "100.64.0.10", "AA:BB:CC:DD:EE:01");
    let pool = &app.state.router_pool;
    sessions::sync_sessions(db, pool, SyncOptions::default())
        .await
        .unwrap();
    // The router reboots: everyone is gone...
    drop(first);
    let rebooted = MockRouter::start(USER, PASSWORD).await.unwrap();
    let mut moved: mikrotik_router::ActiveModel = router.clone().into();
    moved.api_port = Set(i32::from(rebooted.addr().port()));
    let router = moved.update(db).await.unwrap();
    sessions::sync_sessions(db, pool, SyncOptions::default())
        .await
        .unwrap();
    assert!(active_rows(db).await.is_empty());
    // ...and the first session after the reboot gets the same ids.
    rebooted.login_session("alice", "100.64.0.20", "AA:BB:CC:DD:EE:01");
    let report = sessions::sync_sessions(db, pool, SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(report.routers[0].new, 1, "{report}");
    let all = network_user_session::Entity::find()
        .order_by_asc(network_user_session::Column::Id)
        .all(db)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].status, "closed");
    assert!(all[0].session_id.contains('~'), "{}", all[0].session_id);
    assert_eq!(all[1].status, "active");
    assert_eq!(all[1].ip_address.as_deref(), Some("100.64.0.20"));
    assert_eq!(all[1].router_id, Some(router.id));
}
crate::on_every_backend!(a_session_key_reused_after_a_reboot_starts_a_new_row);

/// A mock router with two sessions, alice's and bob's; and alice's id.
async fn two_sessions() -> (MockRouter, String) {
    let mock = MockRouter::start(USER, PASSWORD).await.unwrap();
    let alice = mock.login_session("alice", "100.64.0.10", "AA:BB:CC:DD:EE:01");
    mock.login_session("bob", "100.64.0.11", "AA:BB:CC:DD:EE:02");
    (mock, alice)
}

fn router_entry<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["routers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["router_name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {body}"))
}

async fn the_live_list_shows_every_router_with_its_state(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (db, key) = (app.db(), &app.state.app_key);
    let (mock, _) = two_sessions().await;
    let live = add_router(db, key, "alive", mock.addr(), PASSWORD).await;
    add_router(db, key, "dead", dead_address().await, PASSWORD).await;
    let viewer = app.create_token(Role::Viewer).await;

    let response = app.get_as("/api/v1/mikrotik/sessions", &viewer).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["total"], 2);
    let alive = router_entry(&body, "alive");
    assert_eq!(alive["state"], "ok");
    let alice = &alive["sessions"][0];
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["address"], "100.64.0.10");
    assert_eq!(alice["caller_id"], "AA:BB:CC:DD:EE:01");
    assert_eq!(alice["id"], format!("{}-1", live.id));
    assert!(alice["download_bytes"].as_u64().unwrap() > 0);
    assert!(
        alice["download_bps"].is_null(),
        "no rate on the first reading"
    );
    let dead = router_entry(&body, "dead");
    assert_eq!(dead["state"], "unreachable");
    assert!(dead["error"].as_str().unwrap().contains("unreachable"));
    assert_eq!(dead["pool"]["consecutive_failures"], 1);
    assert!(dead["pool"]["retry_in_secs"].as_u64().is_some());

    // A second reading a second later has rates (the mock sends ~40 Mbit/s down).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let body = app
        .get_as(
            &format!("/api/v1/mikrotik/sessions?router_id={}&q=ALI", live.id),
            &viewer,
        )
        .await
        .json();
    assert_eq!(body["routers"].as_array().unwrap().len(), 1);
    assert_eq!(body["total"], 1);
    let alice = &body["routers"][0]["sessions"][0];
    let down = alice["download_bps"].as_u64().unwrap();
    assert!((20_000_000..80_000_000).contains(&down), "{down} bit/s");
    assert_eq!(mock.logins(), 1, "both readings on one pooled login");

    let missing = app
        .get_as("/api/v1/mikrotik/sessions?router_id=999", &viewer)
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    let bad = app
        .get_as("/api/v1/mikrotik/sessions?router_id=x", &viewer)
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.json()["error"]["fields"]["router_id"].is_string());
    let anonymous = app.get("/api/v1/mikrotik/sessions").await;
    assert_eq!(anonymous.status, 401);
}
crate::on_every_backend!(the_live_list_shows_every_router_with_its_state);

async fn disconnect_through_the_api_removes_the_session_on_the_router(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (db, key) = (app.db(), &app.state.app_key);
    let (mock, alice) = two_sessions().await;
    let router = add_router(db, key, "core", mock.addr(), PASSWORD).await;
    sessions::sync_sessions(db, &app.state.router_pool, SyncOptions::default())
        .await
        .unwrap();
    let operator = app.create_token(Role::Operator).await;
    let viewer = app.create_token(Role::Viewer).await;
    let path = format!(
        "/api/v1/mikrotik/sessions/{}-{}/disconnect",
        router.id,
        alice.trim_start_matches('*')
    );

    let refused = app.post_empty_as(&path, &viewer).await;
    assert_eq!(refused.status, 403);
    assert_eq!(mock.rows("/ppp/active").len(), 2);

    let response = app.post_empty_as(&path, &operator).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["disconnected"]["username"], "alice");
    assert_eq!(body["disconnected"]["router_name"], "core");
    let left: Vec<String> = mock
        .rows("/ppp/active")
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(left, ["bob"]);
    let row = network_user_session::Entity::find()
        .filter(network_user_session::Column::Username.eq("alice"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "closed", "the synced row is closed too");
    let audit = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("mikrotik.session.disconnect"))
        .all(db)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert!(audit[0].details.as_deref().unwrap().contains("alice"));

    let again = app.post_empty_as(&path, &operator).await;
    assert_eq!(again.status, 404, "{}", again.text());
    let junk = app
        .post_empty_as("/api/v1/mikrotik/sessions/abc/disconnect", &operator)
        .await;
    assert_eq!(junk.status, 422, "{}", junk.text());
    let no_router = app
        .post_empty_as("/api/v1/mikrotik/sessions/999-1/disconnect", &operator)
        .await;
    assert_eq!(no_router.status, 404);

    // A router that cannot be reached: 502 with the router's name.
    let dead = add_router(db, key, "dead", dead_address().await, PASSWORD).await;
    let unreachable = app
        .post_empty_as(
            &format!("/api/v1/mikrotik/sessions/{}-1/disconnect", dead.id),
            &operator,
        )
        .await;
    assert_eq!(unreachable.status, 502, "{}", unreachable.text());
    assert_eq!(unreachable.json()["error"]["code"], "router_unreachable");
}
crate::on_every_backend!(disconnect_through_the_api_removes_the_session_on_the_router);

async fn the_live_page_refreshes_itself_and_shows_buttons_by_role(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (db, key) = (app.db(), &app.state.app_key);
    let (mock, alice) = two_sessions().await;
    let router = add_router(db, key, "core", mock.addr(), PASSWORD).await;
    add_router(db, key, "dead", dead_address().await, PASSWORD).await;

    let mut viewer = app.signed_in("watcher", Role::Viewer).await;
    let page = viewer.get("/mikrotik/sessions").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Live Sessions"));
    assert!(html.contains("hx-trigger=\"every 5s\""));
    assert!(html.contains("AA:BB:CC:DD:EE:01"));
    assert!(
        html.contains("data-state=\"unreachable\""),
        "the dead router is shown"
    );
    assert!(!html.contains(">Disconnect<"), "viewers get no button");
    let refused = viewer
        .post(
            &format!("/mikrotik/sessions/{}-1/disconnect", router.id),
            &[],
        )
        .await;
    assert_eq!(refused.status, 403);

    // The htmx refresh gets only the list, with the filters kept.
    let fragment = app
        .send(
            Request::get("/mikrotik/sessions?q=bob")
                .header("HX-Request", "true")
                .header("cookie", viewer.cookie.clone().unwrap())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let text = fragment.text();
    assert!(!text.contains("<html"), "{text}");
    assert!(
        text.trim_start().starts_with("<section id=\"live\""),
        "{text}"
    );
    assert!(text.contains("hx-get=\"/mikrotik/sessions?q=bob\""));
    assert!(text.contains("AA:BB:CC:DD:EE:02") && !text.contains("AA:BB:CC:DD:EE:01"));
    assert_eq!(fragment.header("vary"), Some("HX-Request"));

    let mut operator = app.signed_in("noc", Role::Operator).await;
    let html = operator.get("/mikrotik/sessions").await.text();
    assert!(html.contains(">Disconnect<"));
    assert!(html.contains("data-confirm=\"Disconnect alice from core?"));
    let id = format!("{}-{}", router.id, alice.trim_start_matches('*'));
    let without_token = operator
        .post_raw(&format!("/mikrotik/sessions/{id}/disconnect"), &[])
        .await;
    assert_eq!(without_token.status, 403, "CSRF");
    assert_eq!(mock.rows("/ppp/active").len(), 2);
    let done = operator
        .post(&format!("/mikrotik/sessions/{id}/disconnect"), &[("q", "")])
        .await;
    assert_eq!(done.status, 303, "{}", done.text());
    assert_eq!(done.header("location"), Some("/mikrotik/sessions"));
    assert_eq!(mock.rows("/ppp/active").len(), 1);
    let after = operator.get("/mikrotik/sessions").await.text();
    assert!(after.contains("Disconnected “alice” from core."), "{after}");
    // Gone already: a message, not an error page.
    let again = operator
        .post(&format!("/mikrotik/sessions/{id}/disconnect"), &[])
        .await;
    assert_eq!(again.status, 303);
    let after = operator.get("/mikrotik/sessions").await.text();
    assert!(after.contains("has no active session"), "{after}");
}
crate::on_every_backend!(the_live_page_refreshes_itself_and_shows_buttons_by_role);

async fn sync_sessions_from_the_command_line(backend: Backend) {
    let Some((main, radius)) = TestDb::migrated_pair(backend).await else {
        return;
    };
    let key = AppKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &'static [&'static str]| {
        let mut cmd = ispd_command(dir.path());
        cmd.args(args)
            .env("DATABASE_URL", &main.url)
            .env("RADIUS_DATABASE_URL", &radius.url)
            .env("APP_KEY", key.to_base64())
            .env("MIKROTIK_API_TIMEOUT", "3");
        async move {
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };

    // No routers: nothing to do, success.
    let (code, out, _) = run(&["mikrotik", "sync-sessions"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("No routers to sync."), "{out}");

    // Every router down: exit 1.
    add_router(&main.conn, &key, "dead", dead_address().await, PASSWORD).await;
    let (code, out, err) = run(&["mikrotik", "sync-sessions"]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("no router could be synced"), "{err}");

    // One up, one down: exit 0 with a warning and the table.
    let mock = MockRouter::start(USER, PASSWORD).await.unwrap();
    mock.login_session("alice", "100.64.0.10", "AA:BB:CC:DD:EE:01");
    add_router(&main.conn, &key, "alive", mock.addr(), PASSWORD).await;
    let (code, out, err) = run(&["mikrotik", "sync-sessions", "--concurrency", "2"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let header = out.lines().next().unwrap();
    assert!(header.starts_with("ROUTER"), "{out}");
    assert!(header.contains("SESSIONS") && header.contains("CLOSED") && header.contains("ERROR"));
    let alive = out.lines().find(|l| l.starts_with("alive")).unwrap();
    let cells: Vec<&str> = alive.split_whitespace().collect();
    assert_eq!(cells, ["alive", "1", "1", "0", "-"], "{out}");
    assert!(out
        .lines()
        .any(|l| l.starts_with("dead") && l.contains("unreachable")));
    assert!(
        err.contains("1 of 2 router(s) could not be synced"),
        "{err}"
    );
    assert_eq!(active_rows(&main.conn).await.len(), 1);

    let (code, _, err) = run(&["mikrotik", "sync-sessions", "--concurrency", "0"]).await;
    assert_eq!(code, Some(2), "{err}");
}
crate::on_every_backend!(sync_sessions_from_the_command_line);
