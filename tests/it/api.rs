//! The JSON API under /api/v1: authentication, the error shape for every
//! status, pagination, sorting, filters, rate limits, request ids, the
//! OpenAPI document, and /metrics.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request};
use ispd::staff::Role;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{json, Value};

use crate::helpers::{assert_error_says, Backend, TestApp, TestResponse};

/// Sends `method path` with an optional bearer token and JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> TestResponse {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(value) => {
            request = request.header("content-type", "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    app.send(request.body(body).unwrap()).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> TestResponse {
    call(app, Method::GET, path, Some(token), None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> TestResponse {
    call(app, Method::POST, path, Some(token), Some(body)).await
}

/// Asserts the one error shape, and returns the error object.
/// [`crate::helpers::assert_error`], plus the JSON content type and a
/// non-empty message.
fn assert_error(response: &TestResponse, status: u16, code: &str) -> Value {
    let error = crate::helpers::assert_error(response, status, code);
    assert!(
        response
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "JSON content type: {:?}",
        response.header("content-type")
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a message: {error}"
    );
    error
}

async fn spawn(backend: Backend) -> Option<(TestApp, String)> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.create_token(Role::Admin).await;
    Some((app, admin))
}

// ---------------------------------------------------------------- health, me

async fn health_is_public_and_checks_both_databases(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app.get("/api/v1/health").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["radius_database"], "ok");
    assert!(body["checks"].get("redis").is_none(), "REDIS_URL is unset");
}
crate::on_every_backend!(health_is_public_and_checks_both_databases);

#[tokio::test]
async fn health_checks_redis_when_it_is_configured() {
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[("REDIS_URL", "redis://127.0.0.1:1/")], // nothing listens on port 1
    )
    .await
    else {
        return;
    };
    let response = app.get("/api/v1/health").await;
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.json()["status"], "degraded");
    assert_eq!(response.json()["checks"]["redis"], "unreachable");
    assert!(!ispd::db::redis_ready("redis://127.0.0.1:1/").await);
    if let Ok(url) = std::env::var("TEST_REDIS_URL") {
        assert!(ispd::db::redis_ready(&url).await, "{url} answers");
        let app = TestApp::spawn_with(Backend::Sqlite, &[("REDIS_URL", url.as_str())])
            .await
            .unwrap();
        let response = app.get("/api/v1/health").await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json()["checks"]["redis"], "ok");
    }
}

async fn me_describes_a_token_or_a_staff_member(backend: Backend) {
    let Some((app, token)) = TestApp::with_token(backend, Role::Operator).await else {
        return;
    };
    let me = get(&app, "/api/v1/me", &token).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["kind"], "token");
    assert_eq!(me.json()["role"], "operator");
    assert_eq!(me.json()["name"], "test operator");

    let mut browser = app.signed_in("noc", Role::Viewer).await;
    let me = browser.get("/api/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["kind"], "staff");
    assert_eq!(me.json()["name"], "noc");
    assert_eq!(me.json()["role"], "viewer");
}
crate::on_every_backend!(me_describes_a_token_or_a_staff_member);

// ------------------------------------------------------------ authentication

async fn requests_without_valid_credentials_get_401(backend: Backend) {
    let Some((app, _admin)) = spawn(backend).await else {
        return;
    };
    let cases: &[(&str, Option<&str>)] = &[
        ("no header", None),
        ("unknown token", Some("Bearer ispd_not-a-real-token")),
        ("empty bearer", Some("Bearer ")),
        ("another scheme", Some("Basic YWRtaW46YWRtaW4=")),
    ];
    for (case, header) in cases {
        let mut request = Request::get("/api/v1/me");
        if let Some(value) = header {
            request = request.header("authorization", *value);
        }
        let response = app.send(request.body(Body::empty()).unwrap()).await;
        assert_error(&response, 401, "unauthenticated");
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer realm=\"ispd\""),
            "{case}"
        );
    }
    // A write without credentials is a 401 too, not a CSRF refusal.
    let response = call(
        &app,
        Method::POST,
        "/api/v1/tokens",
        None,
        Some(json!({"name": "x", "role": "viewer"})),
    )
    .await;
    assert_error(&response, 401, "unauthenticated");
}
crate::on_every_backend!(requests_without_valid_credentials_get_401);

async fn revoked_and_expired_tokens_are_refused(backend: Backend) {
    let Some((app, admin)) = spawn(backend).await else {
        return;
    };
    let created = post(
        &app,
        "/api/v1/tokens",
        &admin,
        json!({"name": "short-lived", "role": "viewer"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let token = created.json()["token"].as_str().unwrap().to_string();
    let id = created.json()["id"].as_i64().unwrap();
    assert_eq!(get(&app, "/api/v1/me", &token).await.status, 200);

    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/tokens/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(revoked.json()["active"], false);
    assert!(revoked.json()["revoked_at"].is_string());
    assert_error(
        &get(&app, "/api/v1/me", &token).await,
        401,
        "unauthenticated",
    );

    let expired = ispd::staff::service::create_token(
        app.db(),
        &ispd::audit::Actor::system(),
        "expired",
        Role::Admin,
        Some(chrono::Utc::now() - chrono::Duration::hours(1)),
    )
    .await
    .unwrap();
    assert_error(
        &get(&app, "/api/v1/me", expired.plaintext.expose()).await,
        401,
        "unauthenticated",
    );
}
crate::on_every_backend!(revoked_and_expired_tokens_are_refused);

async fn token_use_is_recorded_at_most_once_a_minute(backend: Backend) {
    use ispd::staff::entities::api_token;
    use sea_orm::{ActiveModelTrait, Set};
    let Some((app, token)) = TestApp::with_token(backend, Role::Viewer).await else {
        return;
    };
    let row = || async {
        api_token::Entity::find()
            .one(app.db())
            .await
            .unwrap()
            .expect("the token")
    };
    assert!(row().await.last_used_at.is_none());

    assert_eq!(get(&app, "/api/v1/me", &token).await.status, 200);
    let first = row().await.last_used_at.expect("recorded");
    assert!((chrono::Utc::now() - first.to_utc()).num_seconds() < 10);

    // Used again within the minute: no write.
    let recent = chrono::Utc::now() - chrono::Duration::seconds(30);
    let mut active: api_token::ActiveModel = row().await.into();
    active.last_used_at = Set(Some(recent.into()));
    active.update(app.db()).await.unwrap();
    assert_eq!(get(&app, "/api/v1/me", &token).await.status, 200);
    let unchanged = row().await.last_used_at.unwrap();
    assert!(
        (unchanged.to_utc() - recent).num_milliseconds().abs() < 5,
        "{unchanged} vs {recent}"
    );

    // Older than a minute: written again.
    let old = chrono::Utc::now() - chrono::Duration::seconds(120);
    let mut active: api_token::ActiveModel = row().await.into();
    active.last_used_at = Set(Some(old.into()));
    active.update(app.db()).await.unwrap();
    assert_eq!(get(&app, "/api/v1/me", &token).await.status, 200);
    let renewed = row().await.last_used_at.unwrap();
    assert!(
        (chrono::Utc::now() - renewed.to_utc()).num_seconds() < 10,
        "{renewed}"
    );
}
crate::on_every_backend!(token_use_is_recorded_at_most_once_a_minute);

async fn roles_limit_what_a_caller_may_do(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let viewer = app.create_token(Role::Viewer).await;
    let operator = app.create_token(Role::Operator).await;
    let admin = app.create_token(Role::Admin).await;
    let new_token = json!({"name": "x", "role": "viewer"});
    let cases: Vec<(&str, Method, &str, Option<Value>, u16)> = vec![
        (
            &viewer,
            Method::POST,
            "/api/v1/tokens",
            Some(new_token.clone()),
            403,
        ),
        (
            &operator,
            Method::POST,
            "/api/v1/tokens",
            Some(new_token.clone()),
            403,
        ),
        (&admin, Method::POST, "/api/v1/tokens", Some(new_token), 201),
        (&viewer, Method::GET, "/api/v1/tokens", None, 403),
        (&operator, Method::GET, "/api/v1/tokens", None, 403),
        (&admin, Method::GET, "/api/v1/tokens", None, 200),
        (&operator, Method::GET, "/api/v1/tokens/1", None, 403),
        (&operator, Method::DELETE, "/api/v1/tokens/1", None, 403),
        (&operator, Method::GET, "/api/v1/staff", None, 403),
        (&admin, Method::GET, "/api/v1/staff", None, 200),
        (&viewer, Method::GET, "/api/v1/audit-log", None, 200),
        (&viewer, Method::GET, "/api/v1/me", None, 200),
        (&viewer, Method::GET, "/metrics", None, 200),
    ];
    for (token, method, path, body, status) in cases {
        let response = call(&app, method.clone(), path, Some(token), body).await;
        if status == 403 {
            let error = assert_error(&response, 403, "forbidden");
            assert_eq!(error["message"], "your role does not allow this");
        } else {
            assert_eq!(
                response.status,
                status,
                "{method} {path}: {}",
                response.text()
            );
        }
    }
}
crate::on_every_backend!(roles_limit_what_a_caller_may_do);

#[tokio::test]
async fn cookie_authenticated_writes_need_the_csrf_token() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let browser = app.signed_in("boss", Role::Admin).await;
    let send = |csrf: Option<String>| {
        let mut request = Request::post("/api/v1/tokens")
            .header("content-type", "application/json")
            .header("cookie", browser.cookie.clone().unwrap());
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        app.send(
            request
                .body(Body::from(
                    json!({"name": "ui", "role": "viewer"}).to_string(),
                ))
                .unwrap(),
        )
    };
    assert_error(&send(None).await, 403, "forbidden");
    let created = send(browser.csrf_token.clone()).await;
    assert_eq!(created.status, 201, "{}", created.text());
    // The audit log names the staff member, not a token.
    let log = ispd::audit::entities::audit_log::Entity::find()
        .all(app.db())
        .await
        .unwrap();
    let entry = log.iter().find(|e| e.action == "token.create").unwrap();
    assert_eq!(entry.actor_kind, "staff");
    assert_eq!(entry.actor_name, "boss");
}

// ------------------------------------------------------------- error shapes

#[tokio::test]
async fn malformed_json_is_a_400() {
    let (app, admin) = spawn(Backend::Sqlite).await.unwrap();
    for body in ["{\"name\": ", "not json", "{\"name\": \"x\"} trailing"] {
        let response = app.post_raw_json("/api/v1/tokens", &admin, body).await;
        let error = assert_error(&response, 400, "bad_request");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("the body is not valid JSON"),
            "{error}"
        );
    }
    let bad_query = get(&app, "/api/v1/tokens?name=a&name=b", &admin).await;
    assert_error(&bad_query, 400, "bad_request");
}

#[tokio::test]
async fn json_without_its_content_type_is_a_415() {
    let (app, admin) = spawn(Backend::Sqlite).await.unwrap();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request =
            Request::post("/api/v1/tokens").header("authorization", format!("Bearer {admin}"));
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        let response = app
            .send(
                request
                    .body(Body::from(r#"{"name": "x", "role": "viewer"}"#))
                    .unwrap(),
            )
            .await;
        assert_error(&response, 415, "unsupported_media_type");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let (app, admin) = spawn(Backend::Sqlite).await.unwrap();
    let huge = "x".repeat(ispd::api::MAX_BODY_BYTES + 1);
    let response = post(
        &app,
        "/api/v1/tokens",
        &admin,
        json!({"name": huge, "role": "viewer"}),
    )
    .await;
    assert_error_says(&response, 413, "payload_too_large", "65536");
}

async fn invalid_fields_are_a_422_naming_each_field(backend: Backend) {
    let Some((app, admin)) = spawn(backend).await else {
        return;
    };
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({}), &["name", "role"]),
        (json!({"name": "", "role": "viewer"}), &["name"]),
        (
            json!({"name": "x".repeat(101), "role": "viewer"}),
            &["name"],
        ),
        (json!({"name": "ok", "role": "root"}), &["role"]),
        (
            json!({"name": "ok", "role": "viewer", "expires_in_days": 0}),
            &["expires_in_days"],
        ),
        (
            json!({"name": " ", "role": "", "expires_in_days": 4000}),
            &["expires_in_days", "name", "role"],
        ),
        // The wrong JSON type: named by the field's path.
        (json!({"name": 5, "role": "viewer"}), &["name"]),
        (
            json!({"name": "ok", "role": "viewer", "expires_in_days": "soon"}),
            &["expires_in_days"],
        ),
    ];
    for (body, fields) in cases {
        let response = post(&app, "/api/v1/tokens", &admin, body.clone()).await;
        let error = assert_error(&response, 422, "validation_failed");
        let named: Vec<&str> = error["fields"]
            .as_object()
            .unwrap_or_else(|| panic!("fields for {body}: {error}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(named, fields, "{body}: {error}");
    }
    let staff = post(
        &app,
        "/api/v1/staff",
        &admin,
        json!({"username": "a b", "role": "boss", "password": "short"}),
    )
    .await;
    let error = assert_error(&staff, 422, "validation_failed");
    assert_eq!(
        error["fields"].as_object().unwrap().len(),
        3,
        "username, role and password: {error}"
    );
}
crate::on_every_backend!(invalid_fields_are_a_422_naming_each_field);

async fn missing_things_are_a_json_404(backend: Backend) {
    let Some((app, admin)) = spawn(backend).await else {
        return;
    };
    for (method, path) in [
        (Method::GET, "/api/v1/nothing-here"),
        (Method::GET, "/api/v1/tokens/99999"),
        (Method::DELETE, "/api/v1/tokens/99999"),
        (Method::GET, "/api/v1/tokens/not-a-number"),
        (Method::POST, "/api/v1/staff/1/whatever"),
    ] {
        let response = call(&app, method.clone(), path, Some(&admin), None).await;
        assert_error(&response, 404, "not_found");
    }
    let response = get(&app, "/api/v1/tokens/99999", &admin).await;
    assert_eq!(
        response.json()["error"]["message"],
        "no API token with id 99999"
    );
}
crate::on_every_backend!(missing_things_are_a_json_404);

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let (app, admin) = spawn(Backend::Sqlite).await.unwrap();
    for (method, path) in [
        (Method::PUT, "/api/v1/tokens"),
        (Method::DELETE, "/api/v1/me"),
        (Method::POST, "/api/v1/health"),
    ] {
        let response = call(&app, method, path, Some(&admin), None).await;
        assert_error(&response, 405, "method_not_allowed");
    }
}

async fn a_taken_username_is_a_409(backend: Backend) {
    let Some((app, admin)) = spawn(backend).await else {
        return;
    };
    let body = json!({"username": "noc", "role": "operator", "password": "a long enough password"});
    let first = post(&app, "/api/v1/staff", &admin, body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.json()["username"], "noc");
    assert!(first.json().get("password_hash").is_none());
    let again = post(&app, "/api/v1/staff", &admin, body).await;
    let error = assert_error(&again, 409, "username_taken");
    assert_eq!(
        error["message"],
        "a staff member named \"noc\" already exists"
    );
}
crate::on_every_backend!(a_taken_username_is_a_409);

#[tokio::test]
async fn too_many_requests_are_a_429_with_retry_after() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "2")],
    )
    .await
    .unwrap();
    assert_eq!(app.get("/api/v1/health").await.status, 200);
    assert_eq!(app.get("/api/v1/health").await.status, 200);
    let refused = app.get("/api/v1/health").await;
    let error = assert_error(&refused, 429, "rate_limited");
    let retry_after: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert!(error["message"].as_str().unwrap().contains("try again"));

    // A token is a client of its own, with its own bucket.
    let token = app.create_token(Role::Viewer).await;
    assert_eq!(get(&app, "/api/v1/me", &token).await.status, 200);
    // /metrics counts against the same limits.
    assert_eq!(get(&app, "/metrics", &token).await.status, 200);
    assert_error(&get(&app, "/metrics", &token).await, 429, "rate_limited");
    // The pages are not limited here (sign-in has its own throttle).
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn rate_limiting_can_be_turned_off() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("RATE_LIMIT_PER_SECOND", "0"), ("RATE_LIMIT_BURST", "1")],
    )
    .await
    .unwrap();
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/health").await.status, 200);
    }
}

async fn internal_errors_are_a_500_that_tells_nothing(backend: Backend) {
    let Some((app, viewer)) = TestApp::with_token(backend, Role::Viewer).await else {
        return;
    };
    app.db()
        .execute_unprepared("DROP TABLE audit_log")
        .await
        .unwrap();
    let response = get(&app, "/api/v1/audit-log", &viewer).await;
    let error = assert_error(&response, 500, "internal");
    assert_eq!(
        error["message"],
        "something went wrong on our side; it has been logged"
    );
    let text = response.text().to_lowercase();
    for leak in ["audit_log", "table", "sql", "select", "relation", "exist"] {
        assert!(!text.contains(leak), "the body mentions {leak}: {text}");
    }
}
crate::on_every_backend!(internal_errors_are_a_500_that_tells_nothing);

// ----------------------------------------------------- lists: pages and order

async fn lists_are_paged_with_meta_and_link_headers(backend: Backend) {
    let Some((app, admin)) = spawn(backend).await else {
        return;
    };
    for i in 1..=6 {
        let role = if i % 2 == 0 { "viewer" } else { "operator" };
        let created = post(
            &app,
            "/api/v1/tokens",
            &admin,
            json!({"name": format!("script {i}"), "role": role}),
        )
        .await;
        assert_eq!(created.status, 201);
    }
    // Seven tokens: the admin's and six scripts.
    let response = get(&app, "/api/v1/tokens?per_page=3&page=2", &admin).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["meta"], json!({"total": 7, "page": 2, "per_page": 3}));
    let ids: Vec<i64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "by id: {ids:?}");
    assert_eq!(
        response.header("link"),
        Some(
            "</api/v1/tokens?page=1&per_page=3>; rel=\"first\", \
             </api/v1/tokens?page=1&per_page=3>; rel=\"prev\", \
             </api/v1/tokens?page=3&per_page=3>; rel=\"next\", \
             </api/v1/tokens?page=3&per_page=3>; rel=\"last\""
        )
    );

    // Filters carry over into the links; defaults apply.
    let filtered = get(&app, "/api/v1/tokens?role=viewer&name=SCRIPT", &admin).await;
    assert_eq!(
        filtered.json()["meta"],
        json!({"total": 3, "page": 1, "per_page": 50})
    );
    assert_eq!(
        filtered.header("link"),
        Some(
            "</api/v1/tokens?role=viewer&name=SCRIPT&page=1&per_page=50>; rel=\"first\", \
             </api/v1/tokens?role=viewer&name=SCRIPT&page=1&per_page=50>; rel=\"last\""
        )
    );

    // Past the end: an empty page, still with its links.
    let beyond = get(&app, "/api/v1/tokens?per_page=5&page=4", &admin).await;
    assert_eq!(beyond.status, 200);
    assert_eq!(beyond.json()["data"], json!([]));
    assert!(beyond
        .header("link")
        .unwrap()
        .contains("</api/v1/tokens?page=2&per_page=5>; rel=\"prev\""));

    // Walking every page with per_page=2 sees each token once.
    let mut seen = BTreeSet::new();
    for page in 1..=4 {
        let response = get(
            &app,
            &format!("/api/v1/tokens?per_page=2&page={page}&sort=role"),
            &admin,
        )
        .await;
        for token in response.json()["data"].as_array().unwrap() {
            assert!(seen.insert(token["id"].as_i64().unwrap()), "seen twice");
        }
    }
    assert_eq!(seen.len(), 7);
}
crate::on_every_backend!(lists_are_paged_with_meta_and_link_headers);

#[tokio::test]
async fn bad_list_parameters_are_a_422_naming_the_parameter() {
    let (app, admin) = spawn(Backend::Sqlite).await.unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("/api/v1/tokens?page=0", &["page"]),
        ("/api/v1/tokens?page=two", &["page"]),
        ("/api/v1/tokens?per_page=501", &["per_page"]),
        ("/api/v1/tokens?per_page=0&page=-1", &["page", "per_page"]),
        ("/api/v1/tokens?sort=token_hash", &["sort"]),
        ("/api/v1/tokens?sort=name,-nope", &["sort"]),
        ("/api/v1/tokens?active=maybe", &["active"]),
        ("/api/v1/tokens?role=root", &["role"]),
        ("/api/v1/staff?sort=password_hash", &["sort"]),
        ("/api/v1/staff?active=1", &["active"]),
        ("/api/v1/audit-log?sort=details", &["sort"]),
        ("/api/v1/audit-log?per_page=1000", &["per_page"]),
    ];
    for (path, fields) in cases {
        let response = get(&app, path, &admin).await;
        let error = assert_error(&response, 422, "validation_failed");
        let named: Vec<&str> = error["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(&named, fields, "{path}: {error}");
    }
    let sort = get(&app, "/api/v1/tokens?sort=secret", &admin).await;
    assert_eq!(
        sort.json()["error"]["fields"]["sort"],
        "\"secret\" cannot be sorted on; use id, name, role, created_at, expires_at, last_used_at (prefix - for descending)"
    );
}

async fn sorting_and_filters_choose_and_order_rows(backend: Backend) {
    let Some((app, admin)) = spawn(backend).await else {
        return;
    };
    let names = ["bravo", "alpha", "charlie"];
    for name in names {
        // charlie never expires.
        let days = (name != "charlie").then_some(30);
        post(
            &app,
            "/api/v1/tokens",
            &admin,
            json!({"name": name, "role": "viewer", "expires_in_days": days}),
        )
        .await;
    }
    let list = |path: String| {
        let app = &app;
        let admin = &admin;
        async move {
            let response = get(app, &path, admin).await;
            assert_eq!(response.status, 200, "{path}: {}", response.text());
            response.json()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    row.get("name")
                        .or_else(|| row.get("username"))
                        .or_else(|| row.get("action"))
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list("/api/v1/tokens?sort=name&role=viewer".into()).await,
        ["alpha", "bravo", "charlie"]
    );
    assert_eq!(
        list("/api/v1/tokens?sort=-name&role=viewer".into()).await,
        ["charlie", "bravo", "alpha"]
    );
    assert_eq!(
        list("/api/v1/tokens?sort=role,-name".into()).await,
        ["test admin", "charlie", "bravo", "alpha"]
    );
    assert_eq!(list("/api/v1/tokens?name=RAV".into()).await, ["bravo"]);
    // Nulls last either way: charlie has no expiry (an admin token always
    // has one, 90 days here, the latest).
    let by_expiry = list("/api/v1/tokens?sort=-expires_at".into()).await;
    assert_eq!(
        (
            by_expiry.first().unwrap().as_str(),
            by_expiry.last().unwrap().as_str()
        ),
        ("test admin", "charlie")
    );

    // Revoke bravo: active=true/false split the list.
    let tokens = get(&app, "/api/v1/tokens?name=bravo", &admin).await.json();
    let bravo = tokens["data"][0]["id"].as_i64().unwrap();
    call(
        &app,
        Method::DELETE,
        &format!("/api/v1/tokens/{bravo}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(list("/api/v1/tokens?active=false".into()).await, ["bravo"]);
    assert_eq!(
        list("/api/v1/tokens?active=true&sort=name".into()).await,
        ["alpha", "charlie", "test admin"]
    );

    // Staff: by username by default; role and q filter.
    for (name, role) in [
        ("zed", Role::Viewer),
        ("amy", Role::Admin),
        ("noc-1", Role::Operator),
    ] {
        app.create_staff(name, role).await;
    }
    assert_eq!(list("/api/v1/staff".into()).await, ["amy", "noc-1", "zed"]);
    assert_eq!(list("/api/v1/staff?role=operator".into()).await, ["noc-1"]);
    assert_eq!(list("/api/v1/staff?q=Z".into()).await, ["zed"]);
    assert_eq!(
        list("/api/v1/staff?q=%25".into()).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list("/api/v1/staff?sort=-created_at&per_page=1".into()).await,
        ["noc-1"]
    );

    // The audit log: newest first, filtered by action, entity and actor.
    let actions = list("/api/v1/audit-log".into()).await;
    assert_eq!(actions.first().unwrap(), "staff.create", "{actions:?}");
    assert_eq!(actions.last().unwrap(), "token.create", "{actions:?}");
    assert_eq!(
        list("/api/v1/audit-log?action=token.revoke".into()).await,
        ["token.revoke"]
    );
    assert_eq!(
        list("/api/v1/audit-log?entity_type=staff_user".into())
            .await
            .len(),
        3
    );
    let by_token = get(&app, "/api/v1/audit-log?actor=test%20admin", &admin)
        .await
        .json();
    assert_eq!(
        by_token["meta"]["total"], 4,
        "three creations, one revocation"
    );
    let entry = &by_token["data"][0];
    assert_eq!(entry["actor"]["kind"], "token");
    assert_eq!(entry["action"], "token.revoke");
    assert_eq!(entry["entity_id"], bravo.to_string());
    assert_eq!(entry["details"]["name"], "bravo");
    assert_eq!(
        list("/api/v1/audit-log?sort=id&per_page=1".into()).await,
        ["token.create"]
    );
}
crate::on_every_backend!(sorting_and_filters_choose_and_order_rows);

async fn secrets_never_appear_in_lists(backend: Backend) {
    let Some((app, admin)) = spawn(backend).await else {
        return;
    };
    let created = post(
        &app,
        "/api/v1/tokens",
        &admin,
        json!({"name": "billing", "role": "operator", "expires_in_days": 90}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    let plaintext = body["token"].as_str().unwrap().to_string();
    assert!(plaintext.starts_with("ispd_"));
    assert!(body["prefix"]
        .as_str()
        .is_some_and(|p| plaintext.starts_with(p)));
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/tokens/{}", body["id"]).as_str())
    );
    // The new token works, with the role it was given.
    assert_eq!(
        get(&app, "/api/v1/me", &plaintext).await.json()["role"],
        "operator"
    );

    app.create_staff("noc", Role::Operator).await;
    let hashes: Vec<String> = [&plaintext, &admin]
        .iter()
        .map(|t| ispd::staff::service::hash_token(t))
        .collect();
    for path in [
        "/api/v1/tokens",
        &format!("/api/v1/tokens/{}", body["id"]),
        "/api/v1/staff",
        "/api/v1/audit-log",
        "/api/v1/me",
    ] {
        let response = get(&app, path, &admin).await;
        assert_eq!(response.status, 200, "{path}");
        let text = response.text();
        for secret in [&plaintext, &admin].into_iter().chain(&hashes) {
            assert!(!text.contains(secret.as_str()), "{path} shows a secret");
        }
        for word in ["token_hash", "password_hash", "$argon2"] {
            assert!(!text.contains(word), "{path} mentions {word}");
        }
    }
}
crate::on_every_backend!(secrets_never_appear_in_lists);

// ------------------------------------------------ request ids, docs, metrics

#[tokio::test]
async fn request_ids_are_generated_or_passed_on() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let generated = app.get("/api/v1/health").await;
    let id = generated.header("x-request-id").expect("a request id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let other = app.get("/api/v1/nope").await;
    assert_ne!(other.header("x-request-id"), Some(id), "one per request");

    let given = app
        .send(
            Request::get("/healthz")
                .header("x-request-id", "lb-7f3a")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(given.header("x-request-id"), Some("lb-7f3a"));

    // Ids that would clutter the logs are replaced.
    for unusable in ["has space", "quote\"", &"x".repeat(129)] {
        let response = app
            .send(
                Request::get("/healthz")
                    .header("x-request-id", unusable)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let id = response.header("x-request-id").unwrap();
        assert_eq!(id.len(), 36, "{unusable:?} was replaced by a UUID: {id}");
    }
}

/// Follows a JSON pointer such as `#/components/schemas/TokenView`.
fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    document.pointer(pointer)
}

fn collect_refs(value: &Value, refs: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref" {
                    if let Some(r) = value.as_str() {
                        refs.insert(r.to_string());
                    }
                }
                collect_refs(value, refs);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3_1() {
    let (app, admin) = spawn(Backend::Sqlite).await.unwrap();
    assert_error(
        &app.get("/api/v1/openapi.json").await,
        401,
        "unauthenticated",
    );
    let response = get(&app, "/api/v1/openapi.json", &admin).await;
    assert_eq!(response.status, 200);
    let document = response.json();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    // A full parse by an OpenAPI 3.1 model.
    let spec = oas3::from_json(response.text()).expect("parses as OpenAPI 3.1");
    assert_eq!(spec.info.title, "ispd API");

    let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
    let paths = document["paths"].as_object().unwrap();
    let expected: BTreeSet<&str> = [
        "/api/v1/health",
        "/api/v1/me",
        "/api/v1/openapi.json",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/staff",
        "/api/v1/audit-log",
        "/api/v1/ipam/pools",
        "/api/v1/ipam/pools/{id}",
        "/api/v1/ipam/pools/{id}/utilization",
        "/api/v1/ipam/subnets",
        "/api/v1/ipam/subnets/{id}",
        "/api/v1/ipam/subnets/{id}/available-ips",
        "/api/v1/ipam/allocate",
        "/api/v1/ipam/release",
        "/api/v1/ipam/allocations",
        "/api/v1/ipam/allocations/{id}",
        "/api/v1/ipam/history",
        "/api/v1/packages",
        "/api/v1/packages/{id}",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/reveal-password",
        "/api/v1/users/{id}/sync-radius",
        "/api/v1/nas",
        "/api/v1/nas/{id}",
        "/api/v1/radius/sessions/{radacctid}/disconnect",
        "/api/v1/radius/sessions/{radacctid}/coa",
        "/api/v1/users/{id}/accounting",
        "/api/v1/radius/online",
        "/api/v1/radius/usage",
        "/api/v1/radius/close-stale",
        "/api/v1/mikrotik/sessions",
        "/api/v1/mikrotik/sessions/{id}/disconnect",
        "/api/v1/mikrotik/routers",
        "/api/v1/mikrotik/routers/{id}",
        "/api/v1/mikrotik/routers/{id}/test",
        "/api/v1/mikrotik/pppoe-users",
        "/api/v1/mikrotik/pppoe-users/{id}",
        "/api/v1/jobs",
        "/api/v1/jobs/runs",
        "/api/v1/jobs/runs/{id}",
        "/api/v1/jobs/{name}/run",
        "/api/v1/policies",
        "/api/v1/policies/{id}",
        "/api/v1/users/suspend",
        "/api/v1/users/resume",
        "/api/v1/users/{id}/suspend",
        "/api/v1/users/{id}/resume",
        "/api/v1/users/{id}/enforcement",
        "/api/v1/users/{id}/quota",
        "/api/v1/users/{id}/quota/top-ups",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/{id}/deliveries",
        "/api/v1/webhooks/deliveries/{id}/replay",
    ]
    .into();
    assert_eq!(
        paths.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        expected
    );
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        let operations: Vec<(&String, &Value)> = item
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| methods.contains(&k.as_str()))
            .collect();
        assert!(!operations.is_empty(), "{path} has no operation");
        for (method, operation) in operations {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: a success"
            );
            assert!(responses.contains_key("429"), "{method} {path}: 429");
            assert!(operation_ids.insert(operation["operationId"].as_str().unwrap().to_string()));
            let security = operation["security"].as_array().expect("security");
            if path == "/api/v1/health" {
                assert_eq!(security, &vec![json!({})], "public");
            } else {
                assert!(security.contains(&json!({"bearer": []})), "{method} {path}");
                assert!(responses.contains_key("401"), "{method} {path}: 401");
            }
            // An action without a body (revealing a password, syncing a
            // user, disconnecting a session) reads none.
            let bodyless = [
                "/reveal-password",
                "/sync-radius",
                "/disconnect",
                "/test",
                "/run",
                "/close-stale",
                "/replay",
            ];
            if method == "post" && !bodyless.iter().any(|end| path.ends_with(end)) {
                for status in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
                assert!(operation["requestBody"]["content"]["application/json"].is_object());
            }
        }
    }
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");

    let mut refs = BTreeSet::new();
    collect_refs(&document, &mut refs);
    assert!(refs.contains("#/components/schemas/TokenView"), "{refs:?}");
    assert!(
        refs.contains("#/components/responses/ValidationFailed"),
        "{refs:?}"
    );
    for reference in &refs {
        assert!(
            resolve(&document, reference).is_some(),
            "{reference} does not resolve"
        );
    }
    // Every error response has the one error shape, with an example.
    for (name, response) in document["components"]["responses"].as_object().unwrap() {
        let content = &response["content"]["application/json"];
        assert_eq!(
            content["schema"]["$ref"], "#/components/schemas/ErrorBody",
            "{name}"
        );
        assert!(content["example"]["error"]["code"].is_string(), "{name}");
    }
    let text = response.text();
    assert!(!text.contains("token_hash") && !text.contains("password_hash"));
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    // The UI loads the document with the session: sign in first.
    let anonymous = app.get("/api/docs/").await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(
        anonymous.header("location"),
        Some("/login?next=%2Fapi%2Fdocs%2F")
    );

    let mut browser = app.signed_in("reader", Role::Viewer).await;
    let redirect = browser.get("/api/docs").await;
    assert!(redirect.status.is_redirection(), "{}", redirect.status);
    let page = browser.get("/api/docs/").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("swagger-ui"), "{}", page.text());
    let config = browser.get("/api/docs/swagger-initializer.js").await;
    assert_eq!(config.status, 200);
    assert!(
        config.text().contains("/api/v1/openapi.json"),
        "{}",
        config.text()
    );
    let document = browser.get("/api/v1/openapi.json").await;
    assert_eq!(document.status, 200, "the session is enough");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let response = browser.get(&format!("/api/docs/{asset}")).await;
        assert_eq!(response.status, 200, "{asset}");
        assert!(response.body.len() > 10_000, "{asset} is the real file");
    }
}

async fn metrics_count_requests_per_route(backend: Backend) {
    let Some((app, viewer)) = TestApp::with_token(backend, Role::Viewer).await else {
        return;
    };
    assert_error(&app.get("/metrics").await, 401, "unauthenticated");
    get(&app, "/api/v1/me", &viewer).await;
    get(&app, "/api/v1/me", &viewer).await;
    get(&app, "/api/v1/tokens/5", &viewer).await;
    get(&app, "/api/v1/no/such/thing", &viewer).await;
    app.get("/no-such-page").await;

    let response = get(&app, "/metrics", &viewer).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.text();
    for line in [
        "# TYPE ispd_http_requests_total counter",
        "# TYPE ispd_http_request_duration_seconds histogram",
        "ispd_http_requests_total{route=\"/api/v1/me\",method=\"GET\",status=\"200\"} 2",
        "ispd_http_requests_total{route=\"/api/v1/tokens/{id}\",method=\"GET\",status=\"403\"} 1",
        "ispd_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"401\"} 1",
        "ispd_http_request_duration_seconds_count{route=\"/api/v1/me\",method=\"GET\",status=\"200\"} 2",
        "ispd_http_request_duration_seconds_bucket{route=\"/api/v1/me\",method=\"GET\",status=\"200\",le=\"+Inf\"} 2",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        !text.contains("no/such/thing"),
        "raw paths are never labels"
    );
    assert!(!text.contains("no-such-page"), "raw paths are never labels");
    assert!(text.contains("route=\"unmatched\""), "{text}");
}
crate::on_every_backend!(metrics_count_requests_per_route);

/// docs/API.md shows every operation of the OpenAPI document in its own
/// section: a `### METHOD /api/v1/path` heading followed, before the next
/// heading, by a fenced block with the `curl` request and a later fenced
/// block with the answer (taken from a real run). A heading may name a
/// sibling by its last segment, as in
/// `### POST /api/v1/radius/sessions/{radacctid}/disconnect and /coa`.
#[test]
fn every_endpoint_of_the_openapi_document_is_in_api_md() {
    /// A `##` or `###` heading and the fenced blocks under it.
    struct Section<'a> {
        heading: &'a str,
        blocks: Vec<String>,
    }

    /// The operations a `### METHOD path [and /sibling]` heading names.
    fn operations_named(heading: &str) -> Vec<(String, String)> {
        let Some(rest) = heading.strip_prefix("### ") else {
            return Vec::new();
        };
        let mut words = rest.split_whitespace();
        let Some(method) = words.next() else {
            return Vec::new();
        };
        let mut named = Vec::new();
        let mut last_path: Option<String> = None;
        for word in words {
            if word.starts_with("/api/v1/") {
                last_path = Some(word.to_string());
                named.push((method.to_string(), word.to_string()));
            } else if let (Some(sibling), Some(path)) = (word.strip_prefix('/'), &last_path) {
                let parent = &path[..path.rfind('/').expect("a path has a slash")];
                named.push((method.to_string(), format!("{parent}/{sibling}")));
            }
        }
        named
    }

    let api_md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md"))
        .expect("docs/API.md");
    let mut sections: Vec<Section> = Vec::new();
    let mut open_block: Option<Vec<&str>> = None;
    for line in api_md.lines() {
        if line.trim_start().starts_with("```") {
            match open_block.take() {
                Some(block) => {
                    if let Some(section) = sections.last_mut() {
                        section.blocks.push(block.join("\n"));
                    }
                }
                None => open_block = Some(Vec::new()),
            }
        } else if let Some(block) = open_block.as_mut() {
            block.push(line);
        } else if line.starts_with("## ") || line.starts_with("### ") {
            sections.push(Section {
                heading: line,
                blocks: Vec::new(),
            });
        }
    }
    assert!(
        open_block.is_none(),
        "docs/API.md has an unclosed code block"
    );

    let document = serde_json::to_value(ispd::api::openapi()).unwrap();
    let mut missing = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let operation = (method.clone(), path.clone());
            let headed: Vec<&Section> = sections
                .iter()
                .filter(|section| operations_named(section.heading).contains(&operation))
                .collect();
            if headed.is_empty() {
                missing.push(format!("{method} {path}: no `### {method} {path}` heading"));
                continue;
            }
            let shows_request_and_answer = headed.iter().any(|section| {
                section
                    .blocks
                    .iter()
                    .position(|block| block.contains("curl"))
                    .is_some_and(|request| section.blocks.len() > request + 1)
            });
            if !shows_request_and_answer {
                missing.push(format!(
                    "{method} {path}: its section has no `curl` block followed by the answer"
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/API.md does not show {} endpoint(s) with a request and its answer:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

/// Whether a media type (or the schema it refers to) carries an example.
fn has_example(document: &Value, media: &Value) -> bool {
    if media["example"] != Value::Null || media["examples"].is_object() {
        return true;
    }
    let mut schema = &media["schema"];
    while let Some(reference) = schema["$ref"].as_str() {
        match resolve(document, reference) {
            Some(target) => schema = target,
            None => return false,
        }
    }
    schema["example"] != Value::Null || schema["examples"].is_array()
}

/// Every operation shows a request example (when it takes a body) and an
/// example of each success answer that has a body.
#[test]
fn every_operation_has_request_and_response_examples() {
    let document = serde_json::to_value(ispd::api::openapi()).unwrap();
    let mut missing = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let label = format!("{} {path}", method.to_uppercase());
            if let Some(content) = operation["requestBody"]["content"].as_object() {
                for (media_type, media) in content {
                    if !has_example(&document, media) {
                        missing.push(format!("{label}: request {media_type}"));
                    }
                }
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !status.starts_with('2') {
                    continue;
                }
                let mut response = response;
                if let Some(reference) = response["$ref"].as_str() {
                    response = resolve(&document, reference).unwrap();
                }
                for (media_type, media) in response["content"].as_object().into_iter().flatten() {
                    if !has_example(&document, media) {
                        missing.push(format!("{label}: {status} {media_type}"));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} example(s) missing:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

/// A JSON value with every object's keys sorted and every array's items in
/// the order of their own canonical text, so that two documents that differ
/// only in ordering compare equal.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, Value> = map
                .iter()
                .map(|(key, item)| (key, canonical(item)))
                .collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical).collect();
            items.sort_by_cached_key(|item| item.to_string());
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// The OpenAPI document is the recorded one (tests/it/openapi.json), apart
/// from ordering: refactoring how routes declare their responses must not
/// change what clients are told. After a deliberate change to the API, run
/// this test with `ISPD_RECORD_OPENAPI=1` and commit the new file.
#[test]
fn the_openapi_document_is_the_recorded_one() {
    let recorded_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/openapi.json");
    let document = canonical(&serde_json::to_value(ispd::api::openapi()).unwrap());
    if std::env::var_os("ISPD_RECORD_OPENAPI").is_some() {
        let text = serde_json::to_string_pretty(&document).unwrap() + "\n";
        std::fs::write(recorded_path, text).expect("write the recorded document");
        return;
    }
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(recorded_path).expect("tests/it/openapi.json"),
    )
    .expect("the recorded document is JSON");
    let recorded = canonical(&recorded);
    if document != recorded {
        let (now, then) = (document["paths"].as_object(), recorded["paths"].as_object());
        let mut differing: Vec<String> = Vec::new();
        if let (Some(now), Some(then)) = (now, then) {
            let paths: BTreeSet<&String> = now.keys().chain(then.keys()).collect();
            for path in paths {
                if now.get(path) != then.get(path) {
                    differing.push(path.clone());
                }
            }
        }
        let components_differ = document["components"] != recorded["components"];
        panic!(
            "the OpenAPI document differs from tests/it/openapi.json; paths: {differing:?}; \
             components differ: {components_differ}"
        );
    }
}
