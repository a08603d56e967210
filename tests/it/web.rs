//! The HTML shell: probes, sign-in, sessions, CSRF, roles, pages, errors.

use ispd::staff::Role;

use crate::helpers::{Backend, TestApp, TestBrowser};

async fn probes_answer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let health = app.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["checks"]["radius_database"], "ok");
}
crate::on_every_backend!(probes_answer);

#[tokio::test]
async fn pages_redirect_to_the_login_page_which_is_public() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let page = app.get("/ipam/pools?page=2").await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.header("location"),
        Some("/login?next=%2Fipam%2Fpools%3Fpage%3D2")
    );
    let login = app.get("/login").await;
    assert_eq!(login.status, 200);
    let html = login.text();
    assert!(
        html.contains("<label class=\"label\" for=\"username\">"),
        "labelled inputs"
    );
    assert!(html.contains("name=\"csrf_token\""));
    assert!(!html.contains("IP Pools"), "no navigation before sign-in");
}

#[tokio::test]
async fn signing_in_rotates_the_session_and_sets_a_safe_cookie() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let password = app.create_staff("noc", Role::Operator).await;
    let mut browser = TestBrowser::new(&app);
    browser.get("/login").await;
    let before = browser
        .cookie
        .clone()
        .expect("the login page starts a session");
    let response = browser
        .post(
            "/login",
            &[
                ("username", "noc"),
                ("password", &password),
                ("next", "/ipam/pools"),
            ],
        )
        .await;
    assert_eq!(response.status, 303, "{}", response.text());
    assert_eq!(response.header("location"), Some("/ipam/pools"));
    let set_cookie = response
        .header("set-cookie")
        .expect("a new cookie")
        .to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    assert_ne!(
        browser.cookie.as_deref(),
        Some(before.as_str()),
        "the session id rotates"
    );

    let dashboard = browser.get("/").await;
    assert_eq!(dashboard.status, 200);
    let html = dashboard.text();
    assert!(
        html.contains("noc") && html.contains("(operator)"),
        "the top bar names the member"
    );
    for label in [
        "Dashboard",
        "IP Pools",
        "Subnets",
        "Allocations",
        "Network Users",
        "Packages",
        "Policies",
        "RADIUS Accounting",
        "Routers",
        "PPPoE Users",
        "Jobs",
        "Audit log",
    ] {
        assert!(html.contains(label), "navigation has {label}");
    }
    assert!(
        !html.contains(">API tokens<") && !html.contains(">Staff<"),
        "admin items hidden from an operator"
    );
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_app_url_is_https() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("APP_URL", "https://ispd.example.net")])
        .await
        .unwrap();
    let login = app.get("/login").await;
    let cookie = login.header("set-cookie").unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn pages_carry_security_headers_and_hsts_only_under_https() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let login = app.get("/login").await;
    let policy = login.header("content-security-policy").expect("a CSP");
    assert_eq!(policy, ispd::web::security_headers::PAGE_POLICY);
    for directive in ["script-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(login.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(login.header("referrer-policy"), Some("same-origin"));
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
    assert_eq!(login.header("strict-transport-security"), None);
    // Our pages hold no inline script the policy would block.
    let html = login.text();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("<script type=\"module\" src=\"/static/"),
        "{html}"
    );

    // JSON gets nosniff but no page policy.
    let health = app.get("/healthz").await;
    assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(health.header("content-security-policy"), None);

    let https = TestApp::spawn_with(Backend::Sqlite, &[("APP_URL", "https://ispd.example.net")])
        .await
        .unwrap();
    let login = https.get("/login").await;
    assert_eq!(
        login.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_throttled_after_five_attempts() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.create_staff("admin", Role::Admin).await;
    let mut browser = TestBrowser::new(&app);
    browser.get("/login").await;
    for _ in 0..5 {
        let response = browser
            .post(
                "/login",
                &[("username", "admin"), ("password", "not-the-password")],
            )
            .await;
        assert_eq!(response.status, 401);
        assert!(response.text().contains("Wrong username or password."));
    }
    let refused = browser
        .post(
            "/login",
            &[("username", "admin"), ("password", "not-the-password")],
        )
        .await;
    assert_eq!(refused.status, 429);
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after > 0);
    assert!(refused.text().contains("Too many attempts"));
}

#[tokio::test]
async fn login_redirects_only_to_local_paths() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let password = app.create_staff("noc", Role::Viewer).await;
    for (next, expected) in [
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/audit", "/audit"),
    ] {
        let mut browser = TestBrowser::new(&app);
        browser.get("/login").await;
        let response = browser
            .post(
                "/login",
                &[("username", "noc"), ("password", &password), ("next", next)],
            )
            .await;
        assert_eq!(response.header("location"), Some(expected), "next={next}");
    }
}

#[tokio::test]
async fn state_changing_requests_need_the_csrf_token() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut browser = app.signed_in("boss", Role::Admin).await;

    let missing = browser
        .post_raw(
            "/tokens",
            &[("name", "x"), ("role", "viewer"), ("expires", "never")],
        )
        .await;
    assert_eq!(missing.status, 403);
    assert!(
        missing
            .text()
            .contains("security token of this form is missing"),
        "{}",
        missing.text()
    );

    let wrong = browser
        .post_raw(
            "/tokens",
            &[
                ("name", "x"),
                ("role", "viewer"),
                ("expires", "never"),
                ("csrf_token", "forged"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.text().contains("is wrong"));

    // htmx sends it as a header instead.
    let token = browser.csrf_token.clone().unwrap();
    let mut request = axum::http::Request::post("/logout")
        .header("x-csrf-token", token)
        .header("hx-request", "true")
        .body(axum::body::Body::empty())
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", browser.cookie.clone().unwrap().parse().unwrap());
    let logout = app.send(request).await;
    assert_eq!(logout.status, 303, "{}", logout.text());
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut browser = app.signed_in("noc", Role::Viewer).await;
    let stolen_cookie = browser.cookie.clone();
    let out = browser.post("/logout", &[]).await;
    assert_eq!(out.header("location"), Some("/login?signed_out=1"));
    browser.cookie = stolen_cookie;
    assert_eq!(
        browser.get("/").await.status,
        303,
        "the old cookie no longer works"
    );
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let password = app.create_staff("noc", Role::Viewer).await;
    let cookie = {
        let mut browser = TestBrowser::new(&app);
        browser.sign_in("noc", &password).await;
        browser.cookie.clone()
    };
    // A new router (and session layer) over the same database.
    let mut app = app;
    app.router = ispd::app::build_router(app.state.clone());
    let mut same_browser = TestBrowser::new(&app);
    same_browser.cookie = cookie;
    assert_eq!(same_browser.get("/").await.status, 200);
}

async fn changing_the_password_ends_the_other_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let password = app.create_staff("noc", Role::Operator).await;
    let mut laptop = TestBrowser::new(&app);
    laptop.sign_in("noc", &password).await;
    let mut phone = TestBrowser::new(&app);
    phone.sign_in("noc", &password).await;

    let refused = laptop
        .post(
            "/account/password",
            &[
                ("current_password", "wrong"),
                ("new_password", "short"),
                ("confirm_password", "other"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    let html = refused.text();
    assert!(html.contains("This is not your current password."));
    assert!(html.contains("at least 12 characters"));
    assert!(html.contains("The two new passwords differ."));

    let new_password = "a-much-better-password";
    let changed = laptop
        .post(
            "/account/password",
            &[
                ("current_password", &password),
                ("new_password", new_password),
                ("confirm_password", new_password),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.text());
    let dashboard = laptop.get("/").await;
    assert_eq!(dashboard.status, 200, "this session stays signed in");
    assert!(dashboard
        .text()
        .contains("Password changed. 1 other session(s) signed out."));
    assert_eq!(
        phone.get("/").await.status,
        303,
        "the other session has ended"
    );

    let mut fresh = TestBrowser::new(&app);
    fresh.sign_in("noc", new_password).await;
}
crate::on_every_backend!(changing_the_password_ends_the_other_sessions);

async fn every_page_renders_for_its_roles(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    ispd::seed::load_demo_data(app.db(), &app.state.app_key)
        .await
        .unwrap();
    let alice = ispd::users::service::ids_by_username(app.db(), vec!["alice".into()])
        .await
        .unwrap()["alice"];
    let (user_page, enforcement_panel) = (
        format!("/users/{alice}"),
        format!("/users/{alice}/enforcement"),
    );
    let pages = [
        "/",
        "/dashboard/figures",
        "/ipam/pools",
        "/ipam/subnets",
        "/ipam/allocations",
        "/users",
        user_page.as_str(),
        enforcement_panel.as_str(),
        "/packages",
        "/policies",
        "/radius/accounting",
        "/radius/online",
        "/mikrotik/sessions",
        "/radius/nas",
        "/mikrotik/routers",
        "/mikrotik/pppoe",
        "/jobs",
        "/audit",
        "/account/password",
    ];
    for role in [Role::Viewer, Role::Operator, Role::Admin] {
        let username = format!("member-{role}");
        let mut browser = app.signed_in(&username, role).await;
        for page in pages {
            let response = browser.get(page).await;
            assert_eq!(
                response.status,
                200,
                "{role} on {page}: {}",
                response.text()
            );
        }
        for admin_page in ["/tokens", "/staff"] {
            let response = browser.get(admin_page).await;
            let expected = if role == Role::Admin { 200 } else { 403 };
            assert_eq!(response.status, expected, "{role} on {admin_page}");
        }
    }
    let mut admin = TestBrowser::new(&app);
    let password = app.create_staff("chief", Role::Admin).await;
    admin.sign_in("chief", &password).await;
    let pools = admin.get("/ipam/pools").await.text();
    assert!(pools.contains("Residential CGNAT") && pools.contains("100.64.0.0 – 100.64.255.255"));
    let searched = admin.get("/ipam/pools?q=business").await.text();
    assert!(searched.contains("Business static") && !searched.contains("Residential CGNAT"));
    let nothing = admin.get("/ipam/pools?q=%25").await.text();
    assert!(
        nothing.contains("Nothing matches"),
        "% is matched literally"
    );
    let subnets = admin.get("/ipam/subnets").await.text();
    assert!(subnets.contains("2001:db8:0:1::/64"));
    let accounting = admin.get("/radius/accounting").await.text();
    assert!(accounting.contains("No accounting records in this range."));
}
crate::on_every_backend!(every_page_renders_for_its_roles);

#[tokio::test]
async fn a_viewer_cannot_use_admin_forms() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut browser = app.signed_in("watcher", Role::Viewer).await;
    let response = browser
        .post(
            "/tokens",
            &[("name", "sneaky"), ("role", "admin"), ("expires", "never")],
        )
        .await;
    assert_eq!(response.status, 403);
    assert!(response.text().contains("your role does not allow this"));
    let response = browser
        .post("/staff", &[("username", "sneaky"), ("role", "admin")])
        .await;
    assert_eq!(response.status, 403);
}

#[tokio::test]
async fn unknown_pages_get_a_helpful_404() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut browser = app.signed_in("noc", Role::Viewer).await;
    let response = browser.get("/no/such/page").await;
    assert_eq!(response.status, 404);
    let html = response.text();
    assert!(html.contains("Page not found") && html.contains("Go to the dashboard"));
    assert!(html.contains("IP Pools"), "inside the usual layout");
}

async fn admins_issue_and_revoke_tokens_in_the_ui(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = app.signed_in("boss", Role::Admin).await;

    let invalid = browser
        .post(
            "/tokens",
            &[("name", "  "), ("role", "root"), ("expires", "90d")],
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert!(invalid.text().contains("Give the token a name"));

    let created = browser
        .post(
            "/tokens",
            &[
                ("name", "<script>alert(1)</script>"),
                ("role", "operator"),
                ("expires", "90d"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let html = created.text();
    let start = html.find("value=\"ispd_").expect("the token is shown once") + 7;
    let token = &html[start..start + html[start..].find('"').unwrap()];
    assert!(
        !html.contains("<script>alert(1)</script>"),
        "names are escaped"
    );

    let list = browser.get("/tokens").await.text();
    assert!(!list.contains(token), "the token is never shown again");
    assert!(list.contains("&#60;script&#62;alert(1)"), "escaped: {list}");
    let audit = browser.get("/audit").await.text();
    assert!(audit.contains("token.create") && !audit.contains("<script>alert"));

    use ispd::staff::entities::api_token;
    use sea_orm::EntityTrait;
    let id = api_token::Entity::find()
        .one(app.db())
        .await
        .unwrap()
        .expect("the token exists")
        .id;
    let revoked = browser.post(&format!("/tokens/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, 303);
    let list = browser.get("/tokens").await.text();
    assert!(list.contains("revoked"));
    assert!(list.contains("Token “&#60;script&#62;alert(1)&#60;/script&#62;” revoked."));
}
crate::on_every_backend!(admins_issue_and_revoke_tokens_in_the_ui);

async fn admins_manage_staff_in_the_ui(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = app.signed_in("boss", Role::Admin).await;

    let created = browser
        .post(
            "/staff",
            &[("username", "night-shift"), ("role", "operator")],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let html = created.text();
    let marker = "id=\"new-password\" readonly value=\"";
    let start = html.find(marker).expect("the password is shown once") + marker.len();
    let new_password = html[start..start + html[start..].find('"').unwrap()].to_string();

    let duplicate = browser
        .post("/staff", &[("username", "night-shift"), ("role", "viewer")])
        .await;
    assert_eq!(duplicate.status, 409);
    assert!(duplicate.text().contains("is taken"));
    let invalid = browser
        .post("/staff", &[("username", "a b"), ("role", "viewer")])
        .await;
    assert_eq!(invalid.status, 422);

    let mut night = TestBrowser::new(&app);
    night.sign_in("night-shift", &new_password).await;
    let member = ispd::staff::service::find_by_username(app.db(), "night-shift")
        .await
        .unwrap()
        .unwrap();
    let disabled = browser
        .post(&format!("/staff/{}/disable", member.id), &[])
        .await;
    assert_eq!(disabled.status, 303);
    assert_eq!(
        night.get("/").await.status,
        303,
        "a disabled member is signed out"
    );

    let boss = ispd::staff::service::find_by_username(app.db(), "boss")
        .await
        .unwrap()
        .unwrap();
    let refused = browser
        .post(&format!("/staff/{}/disable", boss.id), &[])
        .await;
    assert_eq!(refused.status, 409);
}
crate::on_every_backend!(admins_manage_staff_in_the_ui);

#[tokio::test]
async fn hashed_assets_are_cached_for_a_year_and_compressed() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/static/.vite/manifest.json"
    ))
    .expect("front-end assets are built (make assets; make test does it)");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let css = manifest["main.js"]["css"][0].as_str().unwrap();
    let js = manifest["main.js"]["file"].as_str().unwrap();

    let login = app.get("/login").await.text();
    assert!(login.contains(&format!("/static/{css}")) && login.contains(&format!("/static/{js}")));
    assert!(
        !login.contains("http://") && !login.contains("https://"),
        "no CDN: every asset is ours"
    );
    assert!(!login.contains("<script>"), "no inline scripts");

    for encoding in ["br", "gzip"] {
        let response = app
            .send(
                axum::http::Request::get(format!("/static/{js}"))
                    .header("accept-encoding", encoding)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-encoding"), Some(encoding));
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
    }
    let favicon = app.get("/static/favicon.svg").await;
    assert_eq!(favicon.status, 200);
    assert_eq!(
        favicon.header("cache-control"),
        Some("public, max-age=3600")
    );
}

#[tokio::test]
async fn a_failure_inside_shows_the_500_page_without_details() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut browser = app.signed_in("noc", Role::Viewer).await;
    sea_orm::ConnectionTrait::execute_unprepared(app.db(), "DROP TABLE ip_pools")
        .await
        .unwrap();
    let response = browser.get("/ipam/pools").await;
    assert_eq!(response.status, 500);
    let html = response.text();
    assert!(html.contains("Something went wrong") && html.contains("it has been logged"));
    for leak in ["ip_pools", "no such table", "SELECT"] {
        assert!(!html.contains(leak), "the page mentions {leak}");
    }
}
