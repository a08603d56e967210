//! The security review's findings (sign-in, rate limits, sessions, tokens,
//! write-only values, what viewers see, probes), one test each, named for
//! the finding. The RADIUS value and least-privilege findings are tested
//! against the real FreeRADIUS (tests/it/freeradius.rs), the router and
//! NAS endpoint ones in mikrotik_routers.rs and radius_nas.rs.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use ispd::audit::Actor;
use ispd::staff::entities::{staff_session, staff_user};
use ispd::staff::Role;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{json, Value};

use crate::helpers::{assert_error, Backend, LogCapture, TestApp, TestBrowser, TestResponse};

/// A sign-in POST from `address` (through a trusted proxy's
/// X-Forwarded-For), with the login page's CSRF token.
async fn sign_in_from(
    browser: &mut TestBrowser<'_>,
    address: &str,
    username: &str,
    password: &str,
) -> TestResponse {
    let token = browser.csrf_token.clone().unwrap_or_default();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("username", username),
            ("password", password),
            ("csrf_token", token.as_str()),
        ])
        .finish();
    let mut request = Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-for", address);
    if let Some(cookie) = &browser.cookie {
        request = request.header("cookie", cookie);
    }
    browser
        .app
        .send(request.body(Body::from(body)).unwrap())
        .await
}

async fn behind_proxy() -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, &[("TRUST_PROXY", "true")])
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sign_ins_are_each_counted_before_the_password_is_checked() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.create_staff("admin", Role::Admin).await;
    let mut browser = TestBrowser::new(&app);
    browser.get("/login").await;
    let browser = &browser;
    let attempts = (0..12).map(|_| async move {
        let token = browser.csrf_token.clone().unwrap_or_default();
        let body = format!("username=admin&password=wrong-guess&csrf_token={token}");
        let request = Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", browser.cookie.clone().unwrap())
            .body(Body::from(body))
            .unwrap();
        browser.app.send(request).await.status
    });
    let statuses = join_all(attempts).await;
    let verified = statuses.iter().filter(|s| s.as_u16() == 401).count();
    let refused = statuses.iter().filter(|s| s.as_u16() == 429).count();
    assert_eq!(
        (verified, refused),
        (5, 7),
        "only five guesses may reach the password check: {statuses:?}"
    );
}

/// Runs the futures together on this task (no futures crate here) and
/// returns their outputs in order.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futures: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

#[tokio::test]
async fn a_guesser_elsewhere_cannot_lock_the_admin_out() {
    let app = behind_proxy().await;
    let password = app.create_staff("admin", Role::Admin).await;
    let mut browser = TestBrowser::new(&app);
    browser.get("/login").await;
    for _ in 0..5 {
        let guess = sign_in_from(&mut browser, "203.0.113.9", "admin", "guess").await;
        assert_eq!(guess.status, 401);
    }
    let refused = sign_in_from(&mut browser, "203.0.113.9", "admin", "guess").await;
    assert_eq!(refused.status, 429, "the guesser backs off");
    let admin = sign_in_from(&mut browser, "198.51.100.7", "admin", &password).await;
    assert_eq!(admin.status, 303, "the admin, elsewhere, still gets in");
}

#[tokio::test]
async fn ipv6_sign_in_failures_count_by_the_64() {
    let app = behind_proxy().await;
    app.create_staff("admin", Role::Admin).await;
    let mut browser = TestBrowser::new(&app);
    browser.get("/login").await;
    for host in 1..=5 {
        let address = format!("2001:db8:7:1::{host}");
        let guess = sign_in_from(&mut browser, &address, "admin", "guess").await;
        assert_eq!(guess.status, 401);
    }
    let same_64 = sign_in_from(&mut browser, "2001:db8:7:1:ffff::9", "admin", "guess").await;
    assert_eq!(same_64.status, 429, "another host of the same /64");
    let other_64 = sign_in_from(&mut browser, "2001:db8:7:2::1", "admin", "guess").await;
    assert_eq!(other_64.status, 401, "another /64 is another client");
}

#[tokio::test]
async fn the_login_form_is_rate_limited_per_address() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("TRUST_PROXY", "true"),
            ("LOGIN_RATE_LIMIT_PER_MINUTE", "3"),
        ],
    )
    .await
    .unwrap();
    let mut browser = TestBrowser::new(&app);
    browser.get("/login").await;
    // Different usernames: the per-username back-off plays no part.
    for name in ["a1", "a2", "a3"] {
        let tried = sign_in_from(&mut browser, "192.0.2.50", name, "x").await;
        assert_eq!(tried.status, 401, "{}", tried.text());
    }
    let limited = sign_in_from(&mut browser, "192.0.2.50", "a4", "x").await;
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    let elsewhere = sign_in_from(&mut browser, "192.0.2.51", "a4", "x").await;
    assert_eq!(elsewhere.status, 401);
}

#[tokio::test]
async fn made_up_bearer_tokens_count_against_the_address() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "3")],
    )
    .await
    .unwrap();
    let valid = app.create_token(Role::Viewer).await;
    for i in 0..3 {
        let invented = app.get_as("/api/v1/me", &format!("ispd_made_up_{i}")).await;
        assert_error(&invented, 401, "unauthenticated");
    }
    let fourth = app.get_as("/api/v1/me", "ispd_made_up_again").await;
    assert_error(&fourth, 429, "rate_limited");
    // A valid token has a bucket of its own.
    let me = app.get_as("/api/v1/me", &valid).await;
    assert_eq!(me.status, 200, "{}", me.text());
}

#[tokio::test]
async fn a_long_or_multiline_username_is_capped_and_logged_escaped() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let logs = LogCapture::start();
    let mut browser = TestBrowser::new(&app);
    browser.get("/login").await;
    let forged = format!(
        "intruder\n2026-12-03T00:00:00Z  INFO signed in username=admin{}",
        "x".repeat(5000)
    );
    let response = browser
        .post("/login", &[("username", &forged), ("password", "x")])
        .await;
    assert_eq!(response.status, 401);
    let text = logs.text();
    assert!(text.contains("sign-in failed"), "{text}");
    assert!(
        !text
            .lines()
            .any(|line| line.starts_with("2026-12-03T00:00:00Z")),
        "a forged log line: {text}"
    );
    assert!(text.contains("intruder\\n"), "escaped: {text}");
    assert!(!text.contains(&"x".repeat(100)), "not capped: {text}");
}

#[tokio::test]
async fn an_anonymous_page_view_creates_no_session() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for path in [
        "/",
        "/ipam/pools",
        "/no/such/page",
        "/healthz",
        "/readyz",
        "/api/v1/health",
        "/api/v1/ipam/pools",
        "/api/docs/",
    ] {
        let response = app.get(path).await;
        assert!(
            response.header("set-cookie").is_none(),
            "{path} set a cookie: {:?}",
            response.header("set-cookie")
        );
    }
    assert_eq!(
        staff_session::Entity::find().count(app.db()).await.unwrap(),
        0
    );
    let login = app.get("/login").await;
    assert!(
        login.header("set-cookie").is_some(),
        "the login form needs its token"
    );
    assert_eq!(
        staff_session::Entity::find().count(app.db()).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut browser = app.signed_in("noc", Role::Operator).await;
    assert_eq!(browser.get("/ipam/pools").await.status, 200);
    // Signed in 25 hours ago, busy ever since (the idle limit never hit).
    let row = staff_session::Entity::find()
        .filter(staff_session::Column::StaffUserId.is_not_null())
        .one(app.db())
        .await
        .unwrap()
        .expect("the session");
    let mut data: serde_json::Map<String, Value> = serde_json::from_slice(&row.data).unwrap();
    let day_ago = chrono::Utc::now().timestamp() - 25 * 3600;
    assert!(data.contains_key("signed_in_at"), "{data:?}");
    data.insert("signed_in_at".into(), json!(day_ago));
    let mut active: staff_session::ActiveModel = row.into();
    active.data = Set(serde_json::to_vec(&data).unwrap());
    active.update(app.db()).await.unwrap();
    let page = browser.get("/ipam/pools").await;
    assert_eq!(page.status, 303, "sent to sign in again");
    assert!(page.header("location").unwrap().starts_with("/login"));
}

#[tokio::test]
async fn pages_and_answers_with_one_time_secrets_are_not_cached() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut browser = app.signed_in("boss", Role::Admin).await;
    let page = browser
        .post(
            "/tokens",
            &[
                ("name", "billing"),
                ("role", "operator"),
                ("expires", "30d"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("ispd_"), "the new token is shown");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let admin = app.create_token(Role::Admin).await;
    let created = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "script", "role": "viewer"}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    // Assets keep their long cache.
    assert_ne!(
        app.get("/static/favicon.svg").await.header("cache-control"),
        Some("no-store")
    );
}

#[tokio::test]
async fn an_authorization_header_does_not_skip_the_csrf_check_of_html_forms() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let browser = app.signed_in("boss", Role::Admin).await;
    let request = Request::post("/tokens")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", browser.cookie.clone().unwrap())
        .header("authorization", "Bearer anything")
        .body(Body::from("name=sneaky&role=admin&expires=30d"))
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status, 403, "{}", response.text());
    assert!(response.text().contains("CSRF"));
}

async fn a_disabled_staff_members_tokens_stop_working(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = app.signed_in("scripts", Role::Admin).await;
    let page = browser
        .post(
            "/tokens",
            &[
                ("name", "nightly"),
                ("role", "operator"),
                ("expires", "30d"),
            ],
        )
        .await;
    let text = page.text();
    let start = text.find("ispd_").expect("the token is shown");
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert_eq!(app.get_as("/api/v1/me", &token).await.status, 200);
    let member = staff_user::Entity::find()
        .filter(staff_user::Column::Username.eq("scripts"))
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    ispd::staff::service::set_staff_active(app.db(), &Actor::system(), member.id, false)
        .await
        .unwrap();
    let refused = app.get_as("/api/v1/me", &token).await;
    assert_error(&refused, 401, "unauthenticated");
    ispd::staff::service::set_staff_active(app.db(), &Actor::system(), member.id, true)
        .await
        .unwrap();
    assert_eq!(app.get_as("/api/v1/me", &token).await.status, 200);
}
crate::on_every_backend!(a_disabled_staff_members_tokens_stop_working);

#[tokio::test]
async fn admin_tokens_expire_within_ninety_days() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let admin = app.create_token(Role::Admin).await;
    let forever = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "root", "role": "admin"}),
        )
        .await;
    assert_eq!(forever.status, 201, "{}", forever.text());
    let expires = forever.json()["expires_at"].as_str().map(str::to_string);
    let expires = chrono::DateTime::parse_from_rfc3339(&expires.expect("an expiry")).unwrap();
    let days = (expires.to_utc() - chrono::Utc::now()).num_days();
    assert!((89..=90).contains(&days), "{days}");
    let too_long = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "root", "role": "admin", "expires_in_days": 365}),
        )
        .await;
    let error = assert_error(&too_long, 422, "validation_failed");
    assert!(
        error["fields"]["expires_in_days"]
            .as_str()
            .unwrap()
            .contains("at most 90 days"),
        "{error}"
    );
    let viewer = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "dash", "role": "viewer", "expires_in_days": 365}),
        )
        .await;
    assert_eq!(viewer.status, 201, "other roles choose freely");
}

#[tokio::test]
async fn huge_lifetimes_are_a_422_not_a_panic() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let admin = app.create_token(Role::Admin).await;
    let huge = app
        .post_as(
            "/api/v1/tokens",
            &admin,
            json!({"name": "x", "role": "viewer", "expires_in_days": i64::MAX}),
        )
        .await;
    assert_error(&huge, 422, "validation_failed");
    let mut browser = app.signed_in("boss", Role::Admin).await;
    for lifetime in [
        "9223372036854775807w",
        "99999999999999999999d",
        "15250284452w",
    ] {
        let page = browser
            .post(
                "/tokens",
                &[("name", "x"), ("role", "viewer"), ("expires", lifetime)],
            )
            .await;
        assert_eq!(page.status, 422, "{lifetime}: {}", page.text());
    }
}

#[tokio::test]
async fn the_nas_snmp_community_is_write_only() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let op = app.create_token(Role::Operator).await;
    let community = "c0mmunity-s3cret";
    let created = app
        .post_as(
            "/api/v1/nas",
            &op,
            json!({"nasname": "192.0.2.1", "secret": "a-long-shared-secret",
                        "community": community}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert!(!created.text().contains(community), "{}", created.text());
    assert_eq!(created.json()["has_community"], true);
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/nas/{id}");
    for read in [
        app.get_as(&path, &op).await,
        app.get_as("/api/v1/nas", &op).await,
    ] {
        assert!(!read.text().contains(community), "{}", read.text());
    }
    // An update without it keeps it; clear_community removes it.
    let kept = app
        .put_as(&path, &op, json!({"nasname": "192.0.2.1"}))
        .await;
    assert_eq!(kept.json()["has_community"], true, "{}", kept.text());
    let stored = ispd::radius::entities::nas::Entity::find_by_id(id as i32)
        .one(&app.state.db.radius)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.community.as_deref(), Some(community));
    let cleared = app
        .put_as(
            &path,
            &op,
            json!({"nasname": "192.0.2.1", "clear_community": true}),
        )
        .await;
    assert_eq!(cleared.json()["has_community"], false, "{}", cleared.text());
    // The page shows only that it is set.
    let mut browser = app.signed_in("noc", Role::Operator).await;
    app.put_as(
        &path,
        &op,
        json!({"nasname": "192.0.2.1", "community": community}),
    )
    .await;
    let page = browser.get(&format!("/radius/nas/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.text().contains(community));
    assert!(page.text().contains("set (never shown)"));
}

#[tokio::test]
async fn new_nas_secrets_need_sixteen_characters() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let op = app.create_token(Role::Operator).await;
    let short = app
        .post_as(
            "/api/v1/nas",
            &op,
            json!({"nasname": "192.0.2.1", "secret": "fifteen-chars15"}),
        )
        .await;
    let error = assert_error(&short, 422, "validation_failed");
    assert!(
        error["fields"]["secret"]
            .as_str()
            .unwrap()
            .contains("at least 16 characters"),
        "{error}"
    );
    let long = app
        .post_as(
            "/api/v1/nas",
            &op,
            json!({"nasname": "192.0.2.1", "secret": "sixteen-chars-16"}),
        )
        .await;
    assert_eq!(long.status, 201, "{}", long.text());
}

#[tokio::test]
async fn viewers_see_a_generic_router_error() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("MIKROTIK_API_TIMEOUT", "1")])
        .await
        .unwrap();
    let op = app.create_token(Role::Operator).await;
    let viewer = app.create_token(Role::Viewer).await;
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let created = app
        .post_as(
            "/api/v1/mikrotik/routers",
            &op,
            json!({"name": "core-1", "ip_address": "127.0.0.1", "api_port": closed.port(),
                        "username": "api", "password": "pw"}),
        )
        .await;
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/mikrotik/routers/{id}");
    let tested = app
        .api(Method::POST, &format!("{path}/test"), &op, None)
        .await;
    assert_eq!(tested.status, 502);
    let detailed = app.get_as(&path, &op).await.json();
    let detail = detailed["last_error"].as_str().unwrap();
    assert!(detail.contains(&closed.port().to_string()), "{detail}");
    for answer in [
        app.get_as(&path, &viewer).await.json(),
        app.get_as("/api/v1/mikrotik/routers", &viewer).await.json()["data"][0].clone(),
    ] {
        assert_eq!(
            answer["last_error"],
            ispd::mikrotik::service::ROUTER_ERROR_FOR_VIEWERS,
            "{answer}"
        );
    }
    let mut browser = app.signed_in("watcher", Role::Viewer).await;
    for page in [
        browser.get(&format!("/mikrotik/routers/{id}")).await,
        browser.get("/mikrotik/routers").await,
    ] {
        assert!(!page.text().contains(detail), "{}", page.text());
    }
}

#[test]
fn production_over_http_warns_loudly() {
    let config = |vars: &[(&str, &str)]| {
        let vars: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ispd::config::Config::from_lookup(|name| vars.get(name).cloned()).unwrap()
    };
    let key = ispd::crypto::AppKey::generate().to_base64();
    let http = config(&[
        ("APP_ENV", "production"),
        ("APP_KEY", &key),
        ("APP_URL", "http://ispd.example.net"),
    ]);
    let warnings = http.security_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("not marked Secure") && warnings[0].contains("HSTS"));
    let https = config(&[
        ("APP_ENV", "production"),
        ("APP_KEY", &key),
        ("APP_URL", "https://ispd.example.net"),
    ]);
    assert!(https.security_warnings().is_empty());
    assert!(
        config(&[]).security_warnings().is_empty(),
        "development over http is fine"
    );
}

#[tokio::test]
async fn readyz_is_cached_so_it_cannot_open_connections_at_will() {
    // A "Redis" that counts the connections made to it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let url = format!("redis://{addr}");
    let app = TestApp::spawn_with(Backend::Sqlite, &[("REDIS_URL", url.as_str())])
        .await
        .unwrap();
    let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..20 {
        assert_eq!(app.get("/readyz").await.status, 503);
        app.get("/api/v1/health").await;
    }
    let opened = accepted.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(opened <= 2, "{opened} connections for 40 probes");
    tokio::time::sleep(ispd::api::system::HEALTH_CACHE_FOR + Duration::from_millis(200)).await;
    app.get("/readyz").await;
    assert!(
        accepted.load(std::sync::atomic::Ordering::SeqCst) - before > opened,
        "checked again once the answer is old"
    );
}

#[tokio::test]
async fn an_api_call_with_a_token_is_judged_by_the_token_whatever_cookie_it_carries() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let browser = app.signed_in("boss", Role::Admin).await;
    let cookie = browser.cookie.clone().unwrap();
    let token = app.create_token(Role::Operator).await;
    let post = |bearer: String| {
        let cookie = cookie.clone();
        let app = &app;
        async move {
            let request = Request::post("/api/v1/packages")
                .header("content-type", "application/json")
                .header("cookie", cookie)
                .header("authorization", format!("Bearer {bearer}"))
                .body(Body::from(
                    json!({"name": format!("p-{}", bearer.len()), "download_rate": "10M",
                           "upload_rate": "2M", "radius_group": format!("p-{}", bearer.len())})
                    .to_string(),
                ))
                .unwrap();
            app.send(request).await
        }
    };
    let with_token = post(token).await;
    assert_eq!(with_token.status, 201, "{}", with_token.text());
    // A wrong token is refused, although the cookie is an admin's.
    let wrong = post("ispd_wrong".into()).await;
    assert_error(&wrong, 401, "unauthenticated");
}
