//! The network users and packages pages: forms with CSRF and inline
//! messages, the audited password reveal, roles, and a password that never
//! shows except on the reveal's answer.

use ispd::audit::entities::audit_log;
use ispd::staff::Role;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::helpers::{assert_inline, location_id, with, Backend, TestApp, TestBrowser};

const PASSWORD: &str = "Sup3r-secret pass";

const PACKAGE: &[(&str, &str)] = &[
    ("name", "Home 20M"),
    ("download_rate", "20M"),
    ("upload_rate", "5M"),
    ("radius_group", "home-20m"),
    ("mikrotik_profile", "home"),
    ("simultaneous_use", "1"),
    ("session_timeout_secs", ""),
    ("burst_download_rate", ""),
    ("burst_upload_rate", ""),
    ("burst_threshold_download", ""),
    ("burst_threshold_upload", ""),
    ("burst_time_secs", ""),
    ("description", ""),
];

async fn an_operator_manages_packages_through_the_forms(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    let list = op.get("/packages").await;
    assert_eq!(list.status, 200);
    assert!(list.text().contains("id=\"new-package\""));

    let id = location_id(&op.post("/packages", PACKAGE).await);
    let page = op.get(&format!("/packages/{id}")).await;
    let html = page.text();
    assert!(html.contains("Package “Home 20M” created."), "flash");
    assert!(
        html.contains("<code>5M/20M</code>"),
        "the rate limit: {html}"
    );
    let list = op.get("/packages").await.text();
    assert!(list.contains("5M/20M") && list.contains("home-20m"));

    // Inline messages, one per field, and the form kept.
    for (changes, field, part) in [
        (
            &[("download_rate", "20X")][..],
            "download_rate",
            "is not a rate",
        ),
        (&[("name", "")][..], "name", "1 to 64"),
        (
            &[("radius_group", "bad group")][..],
            "radius_group",
            "may contain only",
        ),
        (
            &[("simultaneous_use", "two")][..],
            "simultaneous_use",
            "whole number",
        ),
        (
            &[("burst_time_secs", "10")][..],
            "burst_download_rate",
            "required",
        ),
        (&[("name", "Home 20M")][..], "name", "exists already"),
    ] {
        let response = op.post("/packages", &with(PACKAGE, changes)).await;
        assert_eq!(response.status, 422, "{field}");
        assert_inline(&response.text(), "package", field, part);
    }
    let bad_edit = op
        .post(
            &format!("/packages/{id}"),
            &with(PACKAGE, &[("upload_rate", "0")]),
        )
        .await;
    assert_eq!(bad_edit.status, 422);
    assert_inline(&bad_edit.text(), "package", "upload_rate", "above zero");

    let saved = op
        .post(
            &format!("/packages/{id}"),
            &with(
                PACKAGE,
                &[
                    ("name", "Home 50M"),
                    ("download_rate", "50M"),
                    ("burst_download_rate", "60M"),
                    ("burst_upload_rate", "8M"),
                    ("burst_threshold_download", "40M"),
                    ("burst_threshold_upload", "4M"),
                    ("burst_time_secs", "10"),
                ],
            ),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let html = op.get(&format!("/packages/{id}")).await.text();
    assert!(html.contains("5M/50M 8M/60M 4M/40M 10/10"), "{html}");

    // Without the CSRF token: refused.
    let forged = op
        .post_raw(&format!("/packages/{id}/delete"), &[("x", "y")])
        .await;
    assert_eq!(forged.status, 403);
    let deleted = op.post(&format!("/packages/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(deleted.header("location"), Some("/packages"));
    assert_eq!(op.get(&format!("/packages/{id}")).await.status, 404);
}
crate::on_every_backend!(an_operator_manages_packages_through_the_forms);

async fn create_package(op: &mut TestBrowser<'_>) -> String {
    location_id(&op.post("/packages", PACKAGE).await)
}

async fn create_subnet(op: &mut TestBrowser<'_>) -> String {
    let pool = location_id(
        &op.post(
            "/ipam/pools",
            &[
                ("name", "Static"),
                ("start_ip", "100.64.0.0"),
                ("end_ip", "100.64.0.255"),
                ("status", "active"),
            ],
        )
        .await,
    );
    location_id(
        &op.post(
            &format!("/ipam/pools/{pool}/subnets"),
            &[
                ("network", "100.64.0.0/29"),
                ("gateway", "100.64.0.1"),
                ("status", "active"),
            ],
        )
        .await,
    )
}

fn user_form<'a>(package: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    with(
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("service_type", "pppoe"),
            ("package_id", package),
            ("status", "active"),
            ("static_subnet_id", ""),
            ("static_ip", ""),
            ("mac_address", ""),
            ("expires_at", ""),
            ("full_name", "Alice Example"),
            ("notes", ""),
        ],
        changes,
    )
}

async fn an_operator_manages_users_and_reveals_a_password_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    let package = create_package(&mut op).await;
    let subnet = create_subnet(&mut op).await;

    let new = op.get("/users/new").await;
    assert_eq!(new.status, 200);
    assert!(new.text().contains("100.64.0.0/29"), "the subnet select");

    // Inline messages; the password typed is not sent back.
    for (changes, field, part) in [
        (&[("username", "")][..], "username", ""),
        (&[("password", "short")][..], "password", "8 to 128"),
        (
            &[("service_type", "static")][..],
            "static_subnet_id",
            "required",
        ),
        (&[("package_id", "")][..], "package_id", "required"),
        (&[("expires_at", "soon")][..], "expires_at", "not a date"),
        (
            &[("expires_at", "2001-01-01T00:00")][..],
            "expires_at",
            "future",
        ),
        (&[("mac_address", "nope")][..], "mac_address", ""),
    ] {
        let response = op.post("/users", &user_form(&package, changes)).await;
        assert_eq!(response.status, 422, "{field}: {}", response.text());
        let html = response.text();
        assert_inline(&html, "user", field, part);
        assert!(!html.contains(PASSWORD), "the password came back");
    }

    let created = op
        .post(
            "/users",
            &user_form(
                &package,
                &[
                    ("service_type", "static"),
                    ("static_subnet_id", subnet.as_str()),
                ],
            ),
        )
        .await;
    let id = location_id(&created);
    let page = op.get(&format!("/users/{id}")).await;
    let html = page.text();
    assert!(html.contains("User “alice” created."));
    assert!(html.contains("100.64.0.2"), "the static address");
    assert!(html.contains("5M/20M"), "the package's rate limit");
    assert!(html.contains("id=\"edit-user\""));
    assert!(!html.contains(PASSWORD));
    let list = op.get("/users?service_type=static&q=ali").await.text();
    assert!(list.contains("/users/") && list.contains("alice"));
    assert!(!list.contains(PASSWORD));
    let none = op.get("/users?status=suspended").await.text();
    assert!(none.contains("No user matches"));
    let csv = op.get("/users.csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv
        .text()
        .contains("alice,Alice Example,static,Home 20M,active,100.64.0.2"));
    assert!(!csv.text().contains(PASSWORD));

    // htmx asks for the results only.
    let fragment = op
        .app
        .send(
            axum::http::Request::get("/users?q=alice")
                .header("hx-request", "true")
                .header("cookie", op.cookie.clone().unwrap())
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(fragment.header("vary"), Some("HX-Request"));
    assert!(fragment
        .text()
        .trim_start()
        .starts_with("<section id=\"results\""));

    // Edit: no subnet chosen keeps the address; the password stays.
    let saved = op
        .post(
            &format!("/users/{id}"),
            &user_form(
                &package,
                &[
                    ("password", ""),
                    ("service_type", "static"),
                    ("static_ip", "100.64.0.2"),
                    ("status", "suspended"),
                ],
            ),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let html = op.get(&format!("/users/{id}")).await.text();
    assert!(html.contains("suspended") && html.contains("100.64.0.2"));
    let bad = op
        .post(
            &format!("/users/{id}"),
            &user_form(&package, &[("password", "short")]),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_inline(&bad.text(), "user", "password", "8 to 128");

    // Reveal: a POST with CSRF, the password on that answer only, audited.
    let forged = op
        .post_raw(&format!("/users/{id}/reveal-password"), &[])
        .await;
    assert_eq!(forged.status, 403);
    let revealed = op.post(&format!("/users/{id}/reveal-password"), &[]).await;
    assert_eq!(revealed.status, 200, "{}", revealed.text());
    assert_eq!(revealed.header("cache-control"), Some("no-store"));
    assert!(revealed.text().contains(PASSWORD));
    assert!(!op
        .get(&format!("/users/{id}"))
        .await
        .text()
        .contains(PASSWORD));
    let entries = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("network_user.reveal_password"))
        .all(app.db())
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor_name, "noc");

    // A package in use cannot be deleted: 409 with the reason.
    let in_use = op.post(&format!("/packages/{package}/delete"), &[]).await;
    assert_eq!(in_use.status, 409);
    assert!(in_use.text().contains("still has 1 user"));

    let deleted = op.post(&format!("/users/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    assert!(op
        .get("/users")
        .await
        .text()
        .contains("User “alice” deleted."));
    assert_eq!(op.get(&format!("/users/{id}")).await.status, 404);
    let freed = op.post(&format!("/packages/{package}/delete"), &[]).await;
    assert_eq!(freed.status, 303);
}
crate::on_every_backend!(an_operator_manages_users_and_reveals_a_password_once);

async fn a_viewer_sees_no_forms_and_can_change_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    let package = create_package(&mut op).await;
    let id = location_id(&op.post("/users", &user_form(&package, &[])).await);

    let mut viewer = app.signed_in("eyes", Role::Viewer).await;
    for page in [
        "/users".to_string(),
        format!("/users/{id}"),
        "/packages".to_string(),
        format!("/packages/{package}"),
    ] {
        let response = viewer.get(&page).await;
        assert_eq!(response.status, 200, "{page}");
        let html = response.text();
        assert!(!html.contains("method=\"post\" action=\"/users"), "{page}");
        assert!(
            !html.contains("method=\"post\" action=\"/packages"),
            "{page}"
        );
        assert!(!html.contains("Reveal password"), "{page}");
        assert!(!html.contains("New user"), "{page}");
        assert!(!html.contains(PASSWORD), "{page}");
    }
    assert_eq!(viewer.get("/users/new").await.status, 403);
    for (path, fields) in [
        (
            "/users".to_string(),
            user_form(&package, &[("username", "v")]),
        ),
        (format!("/users/{id}"), user_form(&package, &[])),
        (format!("/users/{id}/delete"), vec![]),
        (format!("/users/{id}/reveal-password"), vec![]),
        ("/packages".to_string(), PACKAGE.to_vec()),
        (format!("/packages/{package}"), PACKAGE.to_vec()),
        (format!("/packages/{package}/delete"), vec![]),
    ] {
        let response = viewer.post(&path, &fields).await;
        assert_eq!(response.status, 403, "{path}");
        assert!(!response.text().contains(PASSWORD));
    }
    let entries = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("network_user.reveal_password"))
        .all(app.db())
        .await
        .unwrap();
    assert!(entries.is_empty());
}
crate::on_every_backend!(a_viewer_sees_no_forms_and_can_change_nothing);
