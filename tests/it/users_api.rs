//! The users and packages API: CRUD, validation field by field, the
//! write-only password and its audited reveal, packages in use, roles.

use axum::body::Body;
use axum::http::{Method, Request};
use ispd::audit::entities::audit_log;
use ispd::radius::service::{current_user_rows, AttrRow, UserRows};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{
    assert_created, assert_error, assert_error_says, ApiFixture, Backend, TestResponse,
};

const PASSWORD: &str = "Sup3r-secret pass";

fn assert_invalid(response: &TestResponse, field: &str, part: &str) {
    let error = assert_error(response, 422, "validation_failed");
    let message = error["fields"][field]
        .as_str()
        .unwrap_or_else(|| panic!("no message for {field}: {error}"));
    assert!(
        message.contains(part),
        "{field}: {message:?} lacks {part:?}"
    );
}

/// No answer ever carries the password or its ciphertext.
fn assert_no_password(response: &TestResponse) {
    let text = response.text();
    assert!(!text.contains(PASSWORD), "password leaked: {text}");
    assert!(!text.contains("password"), "a password field: {text}");
}

async fn spawn(backend: Backend) -> Option<ApiFixture> {
    ApiFixture::spawn(backend).await
}

fn package_body(name: &str, group: &str) -> Value {
    json!({"name": name, "download_rate": "20M", "upload_rate": "5M", "radius_group": group,
           "simultaneous_use": 1, "mikrotik_profile": "home"})
}

async fn add_package(f: &ApiFixture, name: &str, group: &str) -> i64 {
    f.created_id("/api/v1/packages", package_body(name, group))
        .await
}

async fn subnet(f: &ApiFixture) -> i64 {
    let pool = f
        .created_id(
            "/api/v1/ipam/pools",
            json!({"name": "static", "start_ip": "100.64.0.0", "end_ip": "100.64.0.255"}),
        )
        .await;
    f.created_id(
        "/api/v1/ipam/subnets",
        json!({"pool_id": pool, "network": "100.64.0.0/29", "gateway": "100.64.0.1"}),
    )
    .await
}

async fn packages_can_be_created_read_listed_changed_and_deleted(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let created = f
        .post(
            "/api/v1/packages",
            json!({"name": "Home 20M", "download_rate": "20M", "upload_rate": "5M",
                "burst_download_rate": "30M", "burst_upload_rate": "8M",
                "burst_threshold_download": "15M", "burst_threshold_upload": "4M",
                "burst_time_secs": 10, "session_timeout_secs": 86400, "simultaneous_use": 1,
                "radius_group": "home-20m", "mikrotik_profile": "home-20m"}),
        )
        .await;
    let (package, id) = assert_created(&created, "/api/v1/packages");
    assert_eq!(package["rate_limit"], "5M/20M 8M/30M 4M/15M 10/10");
    assert_eq!(package["download_rate_kbps"], 20000);
    assert_eq!(package["burst"]["time_secs"], 10);

    let got = f
        .app
        .get_as(&format!("/api/v1/packages/{id}"), &f.viewer)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["name"], "Home 20M");

    let listed = f
        .app
        .get_as("/api/v1/packages?q=home&sort=-name", &f.viewer)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["meta"]["total"], 1);

    let updated = f
        .put(
            &format!("/api/v1/packages/{id}"),
            package_body("Home 50M", "home-50m"),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    let updated = updated.json();
    assert_eq!(updated["name"], "Home 50M");
    assert_eq!(updated["burst"], Value::Null, "an omitted burst is cleared");
    assert_eq!(updated["rate_limit"], "5M/20M");

    let deleted = f.delete(&format!("/api/v1/packages/{id}")).await;
    assert_eq!(deleted.status, 204);
    let gone = f
        .send(Method::GET, &format!("/api/v1/packages/{id}"), None)
        .await;
    assert_error(&gone, 404, "not_found");
    let bad_sort = f
        .send(Method::GET, "/api/v1/packages?sort=nope", None)
        .await;
    assert_invalid(&bad_sort, "sort", "cannot be sorted");
}
crate::on_every_backend!(packages_can_be_created_read_listed_changed_and_deleted);

async fn each_bad_package_field_is_a_422_naming_it(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    add_package(&f, "Taken", "taken").await;
    let cases: &[(Value, &str, &str)] = &[
        (json!({"name": ""}), "name", "1 to 64"),
        (json!({"name": "Taken"}), "name", "exists already"),
        (
            json!({"download_rate": "20X"}),
            "download_rate",
            "is not a rate",
        ),
        (json!({"upload_rate": "0"}), "upload_rate", "above zero"),
        (
            json!({"radius_group": "has space"}),
            "radius_group",
            "may contain only",
        ),
        (
            json!({"radius_group": "taken"}),
            "radius_group",
            "exists already",
        ),
        (
            json!({"mikrotik_profile": "a\"b"}),
            "mikrotik_profile",
            "quotes",
        ),
        (json!({"simultaneous_use": 0}), "simultaneous_use", "from 1"),
        (
            json!({"session_timeout_secs": -5}),
            "session_timeout_secs",
            "from 1",
        ),
        (
            json!({"burst_download_rate": "30M"}),
            "burst_time_secs",
            "required",
        ),
        (
            json!({"burst_download_rate": "10M", "burst_upload_rate": "8M",
                   "burst_threshold_download": "15M", "burst_threshold_upload": "4M",
                   "burst_time_secs": 10}),
            "burst_download_rate",
            "must be above",
        ),
        (
            json!({"simultaneous_use": "two"}),
            "simultaneous_use",
            "invalid type",
        ),
    ];
    for (change, field, part) in cases {
        let mut body = package_body("Fresh", "fresh");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = f.post("/api/v1/packages", body).await;
        assert_invalid(&response, field, part);
    }
    let missing = f
        .post(
            "/api/v1/packages",
            json!({"name": "x", "upload_rate": "1M", "radius_group": "x"}),
        )
        .await;
    assert_invalid(&missing, "download_rate", "is required");
}
crate::on_every_backend!(each_bad_package_field_is_a_422_naming_it);

async fn users_are_managed_and_their_password_is_never_returned(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let subnet = subnet(&f).await;
    let created = f
        .post(
            "/api/v1/users",
            json!({"username": "alice", "password": PASSWORD, "service_type": "static",
                "package_id": package, "static_subnet_id": subnet,
                "mac_address": "AA-BB-CC-DD-EE-FF", "full_name": "Alice"}),
        )
        .await;
    let (user, id) = assert_created(&created, "/api/v1/users");
    assert_no_password(&created);
    assert_eq!(user["static_ip"], "100.64.0.2");
    assert_eq!(user["mac_address"], "aa:bb:cc:dd:ee:ff");
    assert_eq!(user["status"], "active");
    // Written to the RADIUS DB by the create itself.
    assert_eq!(user["radius_sync_pending"], false);

    let got = f
        .app
        .get_as(&format!("/api/v1/users/{id}"), &f.viewer)
        .await;
    assert_eq!(got.status, 200);
    assert_no_password(&got);

    let listed = f
        .app
        .get_as(
            &format!("/api/v1/users?service_type=static&status=active&package_id={package}&q=ali"),
            &f.viewer,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_no_password(&listed);
    assert_eq!(listed.json()["meta"]["total"], 1);
    let none = f
        .send(Method::GET, "/api/v1/users?status=suspended", None)
        .await;
    assert_eq!(none.json()["meta"]["total"], 0);
    for (query, field) in [
        ("status=gone", "status"),
        ("service_type=dhcp", "service_type"),
        ("package_id=x", "package_id"),
        ("sort=password", "sort"),
    ] {
        let response = f
            .send(Method::GET, &format!("/api/v1/users?{query}"), None)
            .await;
        assert_error(&response, 422, "validation_failed");
        assert!(response.json()["error"]["fields"][field].is_string());
    }

    // Leaving static service releases the address; without a password the
    // old one stays.
    let updated = f
        .put(
            &format!("/api/v1/users/{id}"),
            json!({"username": "alice", "service_type": "pppoe", "package_id": package,
                "status": "suspended"}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_no_password(&updated);
    assert_eq!(updated.json()["static_ip"], Value::Null);
    assert_eq!(updated.json()["status"], "suspended");
    let revealed = f
        .send(
            Method::POST,
            &format!("/api/v1/users/{id}/reveal-password"),
            None,
        )
        .await;
    assert_eq!(revealed.json()["password"], PASSWORD);

    let changed = f
        .put(
            &format!("/api/v1/users/{id}"),
            json!({"username": "alice", "password": "An0ther-password",
                "service_type": "pppoe", "package_id": package}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert!(!changed.text().contains("An0ther-password"));

    let deleted = f.delete(&format!("/api/v1/users/{id}")).await;
    assert_eq!(deleted.status, 204);
    let gone = f
        .send(Method::GET, &format!("/api/v1/users/{id}"), None)
        .await;
    assert_error(&gone, 404, "not_found");
    let gone = f.delete(&format!("/api/v1/users/{id}")).await;
    assert_error(&gone, 404, "not_found");
    let not_a_user = f.send(Method::GET, "/api/v1/users/abc", None).await;
    assert_error(&not_a_user, 404, "not_found");
}
crate::on_every_backend!(users_are_managed_and_their_password_is_never_returned);

async fn an_update_without_a_subnet_keeps_a_static_users_address(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let subnet = subnet(&f).await;
    let created = f
        .post(
            "/api/v1/users",
            json!({"username": "alice", "password": PASSWORD, "service_type": "static",
                "package_id": package, "static_subnet_id": subnet}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let user = created.json();
    let id = user["id"].as_i64().unwrap();
    // The same change the user's page sends: no subnet named.
    let updated = f
        .put(
            &format!("/api/v1/users/{id}"),
            json!({"username": "alice", "service_type": "static", "package_id": package,
                "full_name": "Alice Example"}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    let updated = updated.json();
    assert_eq!(updated["full_name"], "Alice Example");
    assert_eq!(updated["static_ip"], user["static_ip"]);
    assert_eq!(
        updated["static_allocation_id"],
        user["static_allocation_id"]
    );
}
crate::on_every_backend!(an_update_without_a_subnet_keeps_a_static_users_address);

async fn each_bad_user_field_is_a_422_naming_it(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let subnet = subnet(&f).await;
    let base = json!({"username": "bob", "password": PASSWORD, "service_type": "pppoe",
                      "package_id": package});
    let taken = f.post("/api/v1/users", base.clone()).await;
    assert_eq!(taken.status, 201, "{}", taken.text());
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"username": "carol", "password": null}),
            "password",
            "required",
        ),
        (
            json!({"username": "carol", "password": "short"}),
            "password",
            "8 to 128",
        ),
        (json!({"username": ""}), "username", ""),
        (json!({"username": "has space"}), "username", ""),
        (json!({"username": "bob"}), "username", "exists already"),
        (
            json!({"username": "carol", "service_type": "dhcp"}),
            "service_type",
            "not a service type",
        ),
        (
            json!({"username": "carol", "package_id": 9999}),
            "package_id",
            "no service package",
        ),
        (
            json!({"username": "carol", "package_id": null}),
            "package_id",
            "required",
        ),
        (
            json!({"username": "carol", "status": "gone"}),
            "status",
            "not a status",
        ),
        (
            json!({"username": "carol", "mac_address": "zz"}),
            "mac_address",
            "",
        ),
        (
            json!({"username": "carol", "expires_at": "2000-01-01T00:00:00Z"}),
            "expires_at",
            "future",
        ),
        (
            json!({"username": "carol", "expires_at": "tomorrow"}),
            "expires_at",
            "",
        ),
        (
            json!({"username": "carol", "service_type": "static"}),
            "static_subnet_id",
            "required",
        ),
        (
            json!({"username": "carol", "static_subnet_id": subnet}),
            "static_subnet_id",
            "only for",
        ),
        (
            json!({"username": "carol", "static_ip": "100.64.0.3"}),
            "static_ip",
            "only for",
        ),
        (
            json!({"username": "carol", "service_type": "static", "static_subnet_id": 9999}),
            "static_subnet_id",
            "no IPAM subnet",
        ),
        (
            json!({"username": "carol", "service_type": "static", "static_subnet_id": subnet,
                   "static_ip": "10.9.9.9"}),
            "static_ip",
            "",
        ),
        (
            json!({"username": "carol", "full_name": "x".repeat(129)}),
            "full_name",
            "128",
        ),
    ];
    for (change, field, part) in cases {
        let mut body = base.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = f.post("/api/v1/users", body).await;
        assert_invalid(&response, field, part);
        assert!(!response.text().contains(PASSWORD));
    }
    let missing = f.put("/api/v1/users/9999", base.clone()).await;
    assert_error(&missing, 404, "not_found");
}
crate::on_every_backend!(each_bad_user_field_is_a_422_naming_it);

async fn revealing_a_password_is_audited_and_needs_an_operator(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let created = f
        .post(
            "/api/v1/users",
            json!({"username": "dave", "password": PASSWORD, "service_type": "hotspot",
                "package_id": package}),
        )
        .await;
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/users/{id}/reveal-password");

    let refused = f.app.api(Method::POST, &path, &f.viewer, None).await;
    assert_error(&refused, 403, "forbidden");
    let audited = || async {
        audit_log::Entity::find()
            .filter(audit_log::Column::Action.eq("network_user.reveal_password"))
            .all(f.app.db())
            .await
            .unwrap()
    };
    assert!(audited().await.is_empty(), "a refused reveal is no reveal");

    let revealed = f.send(Method::POST, &path, None).await;
    assert_eq!(revealed.status, 200, "{}", revealed.text());
    assert_eq!(revealed.header("cache-control"), Some("no-store"));
    assert_eq!(revealed.json()["password"], PASSWORD);
    assert_eq!(revealed.json()["username"], "dave");
    let entries = audited().await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].entity_id.as_deref(),
        Some(id.to_string().as_str())
    );
    // The audit log never holds the password.
    let all = audit_log::Entity::find().all(f.app.db()).await.unwrap();
    for entry in all {
        assert!(!format!("{entry:?}").contains(PASSWORD), "{entry:?}");
    }
    let missing = f
        .send(Method::POST, "/api/v1/users/9999/reveal-password", None)
        .await;
    assert_error(&missing, 404, "not_found");
}
crate::on_every_backend!(revealing_a_password_is_audited_and_needs_an_operator);

async fn a_package_in_use_is_a_409_and_viewers_change_nothing(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let created = f
        .post(
            "/api/v1/users",
            json!({"username": "erin", "password": PASSWORD, "service_type": "pppoe",
                "package_id": package}),
        )
        .await;
    let user = created.json()["id"].as_i64().unwrap();
    let in_use = f.delete(&format!("/api/v1/packages/{package}")).await;
    assert_error_says(&in_use, 409, "package_in_use", "1 user");

    let v = &f.viewer;
    let attempts = [
        (
            Method::POST,
            "/api/v1/packages".to_string(),
            Some(package_body("V", "v")),
        ),
        (
            Method::PUT,
            format!("/api/v1/packages/{package}"),
            Some(package_body("V", "v")),
        ),
        (Method::DELETE, format!("/api/v1/packages/{package}"), None),
        (
            Method::POST,
            "/api/v1/users".to_string(),
            Some(
                json!({"username": "v", "password": PASSWORD, "service_type": "pppoe",
                "package_id": package}),
            ),
        ),
        (
            Method::PUT,
            format!("/api/v1/users/{user}"),
            Some(json!({"username": "v", "service_type": "pppoe", "package_id": package})),
        ),
        (Method::DELETE, format!("/api/v1/users/{user}"), None),
    ];
    for (method, path, body) in attempts {
        let response = f.app.api(method.clone(), &path, v, body).await;
        assert_error(&response, 403, "forbidden");
    }
    let unauthenticated = f
        .app
        .send(Request::get("/api/v1/users").body(Body::empty()).unwrap())
        .await;
    assert_error(&unauthenticated, 401, "unauthenticated");
    // Moving the user away frees the package.
    let other = add_package(&f, "Other", "other").await;
    let moved = f
        .put(
            &format!("/api/v1/users/{user}"),
            json!({"username": "erin", "service_type": "pppoe", "package_id": other}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text());
    let deleted = f.delete(&format!("/api/v1/packages/{package}")).await;
    assert_eq!(deleted.status, 204);
}
crate::on_every_backend!(a_package_in_use_is_a_409_and_viewers_change_nothing);

/// A static user with every optional field set, made through the API: its
/// view and id.
async fn full_static_user(f: &ApiFixture, package: i64, subnet: i64) -> (Value, i64) {
    let created = f
        .post(
            "/api/v1/users",
            json!({"username": "alice", "password": PASSWORD, "service_type": "static",
                "package_id": package, "static_subnet_id": subnet,
                "mac_address": "aa:bb:cc:dd:ee:ff", "expires_at": "2099-01-02T03:04:05Z",
                "full_name": "Alice", "notes": "Flat 4B"}),
        )
        .await;
    assert_created(&created, "/api/v1/users")
}

/// The user's rows in the RADIUS database.
async fn radius_rows(f: &ApiFixture, username: &str) -> UserRows {
    current_user_rows(&f.app.state.db.radius, username)
        .await
        .unwrap()
}

async fn patching_only_the_status_suspends_the_user_and_keeps_everything_else(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let subnet = subnet(&f).await;
    let (before, id) = full_static_user(&f, package, subnet).await;
    let reject = AttrRow::set("Auth-Type", "Reject");
    assert!(!radius_rows(&f, "alice").await.check.contains(&reject));

    let patched = f
        .patch(
            &format!("/api/v1/users/{id}"),
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_no_password(&patched);
    let after = patched.json();
    assert_eq!(after["status"], "suspended");
    for field in [
        "username",
        "service_type",
        "package_id",
        "mac_address",
        "expires_at",
        "static_ip",
        "static_allocation_id",
        "full_name",
        "notes",
    ] {
        assert_eq!(after[field], before[field], "{field} changed");
    }
    assert_eq!(after["radius_sync_pending"], false, "written to RADIUS");
    let got = f.view(&format!("/api/v1/users/{id}")).await.json();
    assert_eq!(got, after, "the answer is what was stored");

    // Without a password in the patch, the password stays.
    let revealed = f
        .send(
            Method::POST,
            &format!("/api/v1/users/{id}/reveal-password"),
            None,
        )
        .await;
    assert_eq!(revealed.json()["password"], PASSWORD);
    let rows = radius_rows(&f, "alice").await;
    assert!(rows.check.contains(&reject), "{rows:?}");
    assert!(
        rows.check
            .contains(&AttrRow::set("Expiration", "Jan 02 2099 03:04:05")),
        "{rows:?}"
    );
    assert!(
        rows.reply
            .contains(&AttrRow::set("Framed-IP-Address", "100.64.0.2")),
        "{rows:?}"
    );
    let audited = f.app.audit_entries("network_user.update").await;
    assert_eq!(audited.len(), 1);
}
crate::on_every_backend!(patching_only_the_status_suspends_the_user_and_keeps_everything_else);

async fn a_null_expiry_in_a_patch_clears_it_and_a_missing_one_keeps_it(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let id = f
        .created_id(
            "/api/v1/users",
            json!({"username": "bob", "password": PASSWORD, "service_type": "pppoe",
                "package_id": package, "expires_at": "2099-01-02T03:04:05Z"}),
        )
        .await;
    let path = format!("/api/v1/users/{id}");

    let kept = f.patch(&path, json!({"full_name": "Bob"})).await;
    assert_eq!(kept.status, 200, "{}", kept.text());
    assert_eq!(kept.json()["expires_at"], "2099-01-02T03:04:05Z");
    assert_eq!(kept.json()["full_name"], "Bob");

    let cleared = f.patch(&path, json!({"expires_at": null})).await;
    assert_eq!(cleared.status, 200, "{}", cleared.text());
    assert_eq!(cleared.json()["expires_at"], Value::Null);
    assert_eq!(cleared.json()["full_name"], "Bob", "left out, so kept");
    let rows = radius_rows(&f, "bob").await;
    assert!(
        !rows.check.iter().any(|row| row.attribute == "Expiration"),
        "{rows:?}"
    );

    // RFC 7396's own media type is taken as well as application/json.
    let set = f
        .app
        .send(
            Request::patch(&path)
                .header("authorization", format!("Bearer {}", f.op))
                .header("content-type", "application/merge-patch+json")
                .body(Body::from(r#"{"expires_at": "2098-05-06T07:08:09Z"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(set.json()["expires_at"], "2098-05-06T07:08:09Z");
    assert_eq!(set.json()["full_name"], "Bob");
}
crate::on_every_backend!(a_null_expiry_in_a_patch_clears_it_and_a_missing_one_keeps_it);

async fn an_invalid_patch_is_a_422_naming_the_field_and_changes_nothing(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let subnet = subnet(&f).await;
    f.created_id(
        "/api/v1/users",
        json!({"username": "bob", "password": PASSWORD, "service_type": "pppoe",
            "package_id": package}),
    )
    .await;
    let (_, id) = full_static_user(&f, package, subnet).await;
    let path = format!("/api/v1/users/{id}");
    let before = f.view(&path).await.json();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"status": "paused"}), "status", "not a status"),
        (json!({"package_id": null}), "package_id", "required"),
        (
            json!({"package_id": 9999}),
            "package_id",
            "no service package",
        ),
        (json!({"username": null}), "username", ""),
        (json!({"username": "bob"}), "username", "exists already"),
        (json!({"service_type": null}), "service_type", ""),
        (json!({"password": "short"}), "password", "8 to 128"),
        (json!({"mac_address": "zz"}), "mac_address", ""),
        (json!({"full_name": "x".repeat(129)}), "full_name", "128"),
        (
            json!({"static_ip": "100.64.0.3"}),
            "static_ip",
            "the user holds 100.64.0.2",
        ),
        (
            json!({"service_type": "pppoe", "static_subnet_id": subnet}),
            "static_subnet_id",
            "only for",
        ),
        (json!({"expires_at": "tomorrow"}), "expires_at", ""),
        (json!({"status": 5}), "status", "invalid type"),
        (json!({"nickname": "al"}), "nickname", "unknown field"),
    ];
    for (patch, field, part) in cases {
        let response = f.patch(&path, patch.clone()).await;
        assert_invalid(&response, field, part);
        assert_eq!(f.view(&path).await.json(), before, "{patch} changed it");
    }
    assert!(f.app.audit_entries("network_user.update").await.is_empty());
}
crate::on_every_backend!(an_invalid_patch_is_a_422_naming_the_field_and_changes_nothing);

async fn patching_a_static_users_full_name_keeps_its_address(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let subnet = subnet(&f).await;
    let (before, id) = full_static_user(&f, package, subnet).await;
    let patched = f
        .patch(
            &format!("/api/v1/users/{id}"),
            json!({"full_name": "Alice Example"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    let after = patched.json();
    assert_eq!(after["full_name"], "Alice Example");
    assert_eq!(after["static_ip"], "100.64.0.2");
    assert_eq!(
        after["static_allocation_id"],
        before["static_allocation_id"]
    );
    let active = f
        .view(&format!(
            "/api/v1/ipam/allocations?subnet_id={subnet}&status=active"
        ))
        .await
        .json();
    assert_eq!(active["meta"]["total"], 1, "{active}");
    assert_eq!(active["data"][0]["id"], before["static_allocation_id"]);
}
crate::on_every_backend!(patching_a_static_users_full_name_keeps_its_address);

async fn patching_only_the_service_type_moves_a_static_user_off_its_address(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let subnet = subnet(&f).await;
    let (_, id) = full_static_user(&f, package, subnet).await;
    let patched = f
        .patch(
            &format!("/api/v1/users/{id}"),
            json!({"service_type": "pppoe"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["static_ip"], Value::Null);
    assert_eq!(patched.json()["mac_address"], "aa:bb:cc:dd:ee:ff");
    let active = f
        .view(&format!(
            "/api/v1/ipam/allocations?subnet_id={subnet}&status=active"
        ))
        .await
        .json();
    assert_eq!(active["meta"]["total"], 0, "released: {active}");
}
crate::on_every_backend!(patching_only_the_service_type_moves_a_static_user_off_its_address);

async fn patching_an_unknown_user_is_a_404(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let response = f
        .patch("/api/v1/users/9999", json!({"status": "suspended"}))
        .await;
    assert_error(&response, 404, "not_found");
}
crate::on_every_backend!(patching_an_unknown_user_is_a_404);

async fn a_viewer_may_not_patch_a_user(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = add_package(&f, "Home", "home").await;
    let id = f
        .created_id(
            "/api/v1/users",
            json!({"username": "erin", "password": PASSWORD, "service_type": "pppoe",
                "package_id": package}),
        )
        .await;
    let path = format!("/api/v1/users/{id}");
    let before = f.view(&path).await.json();
    let refused = f
        .app
        .api(
            Method::PATCH,
            &path,
            &f.viewer,
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_error(&refused, 403, "forbidden");
    assert_eq!(f.view(&path).await.json(), before);
}
crate::on_every_backend!(a_viewer_may_not_patch_a_user);
