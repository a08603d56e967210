//! Probes of every page and every API read: secrets never come back (nor
//! reach a log or a CSV export), stored markup comes back escaped,
//! injection strings in searches and filters are data, and hostile bodies
//! are refused cheaply.
//!
//! The pages are found by crawling: from the dashboard, every same-origin
//! link and htmx `hx-get` is followed (each path with each set of query
//! parameter names once), so a page added later is probed without being
//! listed here. The API reads are every GET of the OpenAPI document.

use std::collections::{BTreeSet, VecDeque};

use axum::http::Method;
use ispd::mikrotik::routeros::MockRouter;
use ispd::staff::Role;
use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::helpers::{Backend, LogCapture, TestApp, TestBrowser, TestResponse};

const STAFF: &str = "probe-admin";
const SUBSCRIBER_PASSWORD: &str = "Subscriber-Secret-5e1f";
const PPPOE_PASSWORD: &str = "Pppoe-Secret-77ab";
const ROUTER_USER: &str = "ispd-api";
const ROUTER_PASSWORD: &str = "Router-Secret-c0de";
const NAS_SECRET: &str = "Nas-Shared-Secret-9d2";

/// Pages to visit at most: far above what the crawl finds today, a bound
/// in case links ever multiply.
const MAX_PAGES: usize = 600;

async fn created(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let response = app.post_as(path, token, body).await;
    assert!(
        response.status.is_success(),
        "POST {path}: {} {}",
        response.status,
        response.text()
    );
    response.json()
}

/// What the probes run over: every kind of record, with the given text in
/// its free-text fields, and a router on a mock that answers.
pub struct Populated {
    pub admin_token: String,
    pub user_id: i64,
    _router: MockRouter,
}

pub async fn populate(app: &TestApp, text: &str) -> Populated {
    let admin_token = app.create_token(Role::Admin).await;
    let token = admin_token.as_str();
    let router = MockRouter::start(ROUTER_USER, ROUTER_PASSWORD)
        .await
        .unwrap();

    let pool = created(
        app,
        "/api/v1/ipam/pools",
        token,
        json!({"name": format!("pool {text}"), "description": text, "start_ip": "100.64.0.0",
               "end_ip": "100.64.0.255"}),
    )
    .await;
    let subnet = created(
        app,
        "/api/v1/ipam/subnets",
        token,
        json!({"pool_id": pool["id"], "network": "100.64.0.0/29", "description": text}),
    )
    .await;
    created(
        app,
        "/api/v1/ipam/allocate",
        token,
        json!({"subnet_id": subnet["id"], "username": "dave", "mac_address": "AA-BB-CC-DD-EE-02"}),
    )
    .await;
    let package = created(
        app,
        "/api/v1/packages",
        token,
        json!({"name": text, "description": text, "download_rate": "20M",
               "upload_rate": "5M", "radius_group": "home-20m", "mikrotik_profile": "default"}),
    )
    .await;
    let user = created(
        app,
        "/api/v1/users",
        token,
        json!({"username": "alice", "password": SUBSCRIBER_PASSWORD, "service_type": "pppoe",
               "package_id": package["id"], "full_name": text, "notes": text}),
    )
    .await;
    created(
        app,
        "/api/v1/users",
        token,
        json!({"username": "bob", "password": SUBSCRIBER_PASSWORD, "service_type": "static",
               "package_id": package["id"], "static_subnet_id": subnet["id"], "notes": text}),
    )
    .await;
    let router_row = created(
        app,
        "/api/v1/mikrotik/routers",
        token,
        json!({"name": format!("r {text}"), "ip_address": "127.0.0.1", "api_port": router.addr().port(),
               "username": ROUTER_USER, "password": ROUTER_PASSWORD}),
    )
    .await;
    let router_id = router_row["id"].as_i64().unwrap();
    created(
        app,
        "/api/v1/mikrotik/pppoe-users",
        token,
        json!({"router_id": router_id, "network_user_id": user["id"], "username": "alice",
               "password": SUBSCRIBER_PASSWORD}),
    )
    .await;
    created(
        app,
        "/api/v1/mikrotik/pppoe-users",
        token,
        json!({"router_id": router_id, "username": "carol", "password": PPPOE_PASSWORD}),
    )
    .await;
    router.login_session("alice", "100.64.1.10", "AA:BB:CC:DD:EE:01");
    created(
        app,
        &format!("/api/v1/mikrotik/routers/{router_id}/test"),
        token,
        json!({}),
    )
    .await;
    created(
        app,
        "/api/v1/nas",
        token,
        json!({"nasname": "192.0.2.1", "secret": NAS_SECRET, "description": text}),
    )
    .await;
    Populated {
        admin_token,
        user_id: user["id"].as_i64().unwrap(),
        _router: router,
    }
}

/// Decodes the few entities askama writes into attribute values.
fn unescape_attribute(value: &str) -> String {
    value
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&#x3d;", "=")
        .replace("&#61;", "=")
}

/// Same-origin GET targets in a page: links and htmx reads.
fn targets(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["href=\"", "hx-get=\""] {
        for (start, _) in html.match_indices(attribute) {
            let rest = &html[start + attribute.len()..];
            let Some(end) = rest.find('"') else { continue };
            let target = unescape_attribute(&rest[..end]);
            let target = target.split('#').next().unwrap_or_default().to_string();
            if target.starts_with('/')
                && !target.starts_with("//")
                && !target.starts_with("/static/")
                && target != "/logout"
            {
                found.push(target);
            }
        }
    }
    found
}

/// A page's identity for the crawl: its path and its query's names.
fn shape(target: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let names: BTreeSet<&str> = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .filter(|name| !name.is_empty())
        .collect();
    format!("{path}?{names:?}")
}

/// Every page reachable from the dashboard, with its response.
async fn crawl(browser: &mut TestBrowser<'_>) -> Vec<(String, TestResponse)> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([String::from("/")]);
    let mut pages = Vec::new();
    while let Some(target) = queue.pop_front() {
        if !seen.insert(shape(&target)) {
            continue;
        }
        assert!(pages.len() < MAX_PAGES, "more than {MAX_PAGES} pages");
        let response = browser.get(&target).await;
        assert!(
            !response.status.is_server_error(),
            "GET {target}: {} {}",
            response.status,
            response.text()
        );
        let is_html = response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"));
        if is_html {
            queue.extend(targets(&response.text()));
        }
        pages.push((target, response));
    }
    pages
}

/// Every GET of the OpenAPI document, with each path parameter set to 1
/// and to 2 (the records [`populate`] made have those ids).
async fn read_every_api_endpoint(app: &TestApp, token: &str) -> Vec<(String, TestResponse)> {
    let document = serde_json::to_value(ispd::api::openapi()).unwrap();
    let mut reads = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        if operations.get("get").is_none() {
            continue;
        }
        let mut concrete = BTreeSet::new();
        for id in ["1", "2"] {
            let mut filled = path.clone();
            while let (Some(open), Some(close)) = (filled.find('{'), filled.find('}')) {
                filled.replace_range(open..=close, id);
            }
            concrete.insert(filled);
        }
        for target in concrete {
            let response = app.get_as(&target, token).await;
            assert!(
                !response.status.is_server_error(),
                "GET {target}: {} {}",
                response.status,
                response.text()
            );
            reads.push((target, response));
        }
    }
    reads
}

async fn signed_in(app: &TestApp) -> (TestBrowser<'_>, String) {
    let password = app.create_staff(STAFF, Role::Admin).await;
    let mut browser = TestBrowser::new(app);
    browser.sign_in(STAFF, &password).await;
    (browser, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_page_an_api_answer_a_csv_export_or_a_log() {
    let logs = LogCapture::start();
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let populated = populate(&app, "plain notes").await;
    let (mut browser, staff_password) = signed_in(&app).await;

    // A second token, issued through the API and used once.
    let issued = created(
        &app,
        "/api/v1/tokens",
        &populated.admin_token,
        json!({"name": "billing", "role": "viewer"}),
    )
    .await;
    let new_token = issued["token"].as_str().unwrap().to_string();
    assert_eq!(app.get_as("/api/v1/me", &new_token).await.status, 200);

    // The one place a secret may come back: the explicit, audited reveal.
    let revealed = app
        .api(
            Method::POST,
            &format!("/api/v1/users/{}/reveal-password", populated.user_id),
            &populated.admin_token,
            None,
        )
        .await;
    assert_eq!(revealed.status, 200, "{}", revealed.text());
    assert!(revealed.text().contains(SUBSCRIBER_PASSWORD));

    // The stored ciphertexts are as secret as what they hide.
    let mut secrets = vec![
        SUBSCRIBER_PASSWORD.to_string(),
        PPPOE_PASSWORD.to_string(),
        ROUTER_PASSWORD.to_string(),
        NAS_SECRET.to_string(),
        staff_password,
        populated.admin_token.clone(),
        new_token,
        app.state.app_key.to_base64(),
    ];
    for user in ispd::users::entities::network_user::Entity::find()
        .all(app.db())
        .await
        .unwrap()
    {
        secrets.push(user.password_encrypted);
    }
    for router in ispd::mikrotik::entities::mikrotik_router::Entity::find()
        .all(app.db())
        .await
        .unwrap()
    {
        secrets.push(router.password_encrypted);
    }

    let pages = crawl(&mut browser).await;
    let csv_exports = pages
        .iter()
        .filter(|(_, r)| {
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/csv"))
        })
        .count();
    assert!(pages.len() >= 40, "the crawl found {} pages", pages.len());
    assert!(
        csv_exports >= 6,
        "the crawl found {csv_exports} CSV exports"
    );
    let reads = read_every_api_endpoint(&app, &populated.admin_token).await;

    for (target, response) in pages.iter().chain(&reads) {
        let body = response.text();
        let headers = format!("{:?}", response.headers);
        for secret in &secrets {
            assert!(
                !body.contains(secret.as_str()) && !headers.contains(secret.as_str()),
                "GET {target} shows a secret ({}…)",
                &secret[..4]
            );
        }
    }
    let audit = ispd::audit::entities::audit_log::Entity::find()
        .all(app.db())
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action.contains("reveal")));
    let audit = format!("{audit:?}");
    let logs = logs.text();
    assert!(logs.contains("INFO"), "the logs were captured");
    for secret in &secrets {
        assert!(
            !audit.contains(secret.as_str()),
            "the audit log shows a secret"
        );
        assert!(!logs.contains(secret.as_str()), "the logs show a secret");
    }
}

const XSS_PAYLOADS: [&str; 2] = [
    "<script>alert('xss')</script>",
    "\"><img src=x onerror=alert(1)>",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_markup_comes_back_escaped_on_every_page() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let text = XSS_PAYLOADS.join(" ");
    let _populated = populate(&app, &text).await;
    let (mut browser, _) = signed_in(&app).await;

    let pages = crawl(&mut browser).await;
    let mut shown_escaped = 0;
    for (target, response) in &pages {
        let is_html = response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"));
        if !is_html {
            continue;
        }
        let html = response.text();
        for payload in XSS_PAYLOADS {
            assert!(
                !html.contains(payload),
                "GET {target} shows {payload} unescaped"
            );
        }
        // askama writes `<` as `&#60;`.
        if html.contains("&#60;script&#62;alert(") && html.contains("&#60;img src=x onerror") {
            shown_escaped += 1;
        }
    }
    // The payloads were shown (escaped), or the probe proved nothing.
    assert!(
        shown_escaped >= 5,
        "only {shown_escaped} pages show the stored text"
    );
}

const INJECTIONS: [&str; 4] = [
    "' OR '1'='1",
    "1; DROP TABLE network_users; --",
    "%' UNION SELECT password_encrypted FROM network_users --",
    "\\'; SELECT pg_sleep(5); --",
];

/// `target` with `name` set to `value` (added or replaced).
fn with_parameter(target: &str, name: &str, value: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(k, _)| k != name)
        .collect();
    pairs.push((name.to_string(), value.to_string()));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{query}")
}

async fn injection_strings_in_searches_and_filters_are_data(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let populated = populate(&app, "plain notes").await;
    let (mut browser, _) = signed_in(&app).await;
    let users_before = ispd::users::entities::network_user::Entity::find()
        .all(app.db())
        .await
        .unwrap()
        .len();

    // Every query parameter any page links with, on the pages that use
    // it, plus `q` (the search box) on every page.
    let pages = crawl(&mut browser).await;
    let mut probes = BTreeSet::new();
    for (target, _) in &pages {
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let mut names: BTreeSet<String> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect();
        names.insert("q".into());
        for name in names {
            for injection in INJECTIONS {
                probes.insert(with_parameter(target, &name, injection));
            }
        }
    }
    assert!(probes.len() >= 150, "only {} probes", probes.len());
    for probe in &probes {
        let response = browser.get(probe).await;
        assert!(
            !response.status.is_server_error(),
            "GET {probe}: {} {}",
            response.status,
            response.text()
        );
    }
    // The API's lists, searched and filtered the same way.
    let document = serde_json::to_value(ispd::api::openapi()).unwrap();
    for (path, operations) in document["paths"].as_object().unwrap() {
        let Some(get) = operations.get("get") else {
            continue;
        };
        if path.contains('{') {
            continue;
        }
        let parameters = get["parameters"].as_array().cloned().unwrap_or_default();
        for parameter in parameters.iter().filter(|p| p["in"] == "query") {
            let name = parameter["name"].as_str().unwrap();
            for injection in INJECTIONS {
                let probe = with_parameter(path, name, injection);
                let response = app.get_as(&probe, &populated.admin_token).await;
                assert!(
                    !response.status.is_server_error(),
                    "GET {probe}: {} {}",
                    response.status,
                    response.text()
                );
                if response.status == 200 && name == "q" {
                    let body = response.json();
                    if let Some(items) = body["items"].as_array() {
                        assert!(items.is_empty(), "GET {probe} matched {items:?}");
                    }
                }
            }
        }
    }
    let users_after = ispd::users::entities::network_user::Entity::find()
        .all(app.db())
        .await
        .unwrap()
        .len();
    assert_eq!(users_before, users_after, "the users table is intact");
}
crate::on_every_backend!(injection_strings_in_searches_and_filters_are_data);

#[tokio::test]
async fn deep_or_huge_json_and_oversized_forms_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app.create_token(Role::Admin).await;

    // Nested far beyond serde_json's recursion limit, within the size limit.
    let depth = 20_000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let response = app.post_raw_json("/api/v1/users", &token, deep).await;
    assert!(
        response.status == 400 || response.status == 422,
        "{} {}",
        response.status,
        response.text()
    );
    assert!(response.json()["error"]["code"].is_string());

    // A huge body: refused by its length before it is read whole.
    let huge = format!(
        "{{\"username\": \"{}\"}}",
        "a".repeat(ispd::api::MAX_BODY_BYTES * 16)
    );
    let response = app.post_raw_json("/api/v1/users", &token, huge).await;
    assert_eq!(response.status, 413, "{}", response.text());

    // Many small keys: as many as fit in the limit, an object serde
    // refuses as the wrong shape rather than building a huge map for.
    let many: String = (0..3_000)
        .map(|i| format!("\"k{i}\":{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let response = app
        .post_as(
            "/api/v1/packages",
            &token,
            serde_json::from_str(&format!("{{{many}}}")).unwrap(),
        )
        .await;
    assert_eq!(response.status, 422, "{}", response.text());

    // The HTML forms have the same bound.
    let (mut browser, _) = signed_in(&app).await;
    let response = browser
        .post(
            "/users",
            &[("username", &"a".repeat(ispd::api::MAX_BODY_BYTES * 16))],
        )
        .await;
    assert_eq!(response.status, 413, "{}", response.text());
}
