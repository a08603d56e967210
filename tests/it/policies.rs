//! Service policies: their API, their validation, and the RADIUS rows a
//! suspended or expired subscriber gets from them.

use serde_json::{json, Value};

use crate::helpers::{assert_created, assert_error, ApiFixture, Backend};

const PASSWORD: &str = "Sup3r-secret pass";

fn garden(name: &str, group: &str) -> Value {
    json!({"name": name, "action": "walled_garden", "download_rate": "1M",
           "upload_rate": "512k", "address_list": "unpaid", "radius_group": group})
}

async fn package(f: &ApiFixture, policy_id: Option<i64>) -> i64 {
    f.created_id(
        "/api/v1/packages",
        json!({"name": "Home 20M", "download_rate": "20M", "upload_rate": "5M",
               "radius_group": "home-20m", "policy_id": policy_id}),
    )
    .await
}

async fn subscriber(f: &ApiFixture, username: &str, package_id: i64, status: &str) -> Value {
    let response = f
        .post(
            "/api/v1/users",
            json!({"username": username, "password": PASSWORD, "service_type": "pppoe",
                   "package_id": package_id, "status": status}),
        )
        .await;
    assert_created(&response, "/api/v1/users").0
}

async fn set_status(f: &ApiFixture, user: &Value, status: &str) {
    let response = f
        .put(
            &format!("/api/v1/users/{}", user["id"]),
            json!({"username": user["username"], "service_type": "pppoe",
                   "package_id": user["package_id"], "status": status}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
}

/// The user's (check attributes, groups) as FreeRADIUS reads them.
async fn rows(f: &ApiFixture, username: &str) -> (Vec<String>, Vec<String>) {
    let rows = ispd::radius::service::current_user_rows(&f.app.state.db.radius, username)
        .await
        .unwrap();
    (
        rows.check
            .iter()
            .map(|r| format!("{} {} {}", r.attribute, r.op, r.value))
            .filter(|r| !r.starts_with("Cleartext-Password"))
            .collect(),
        rows.groups.iter().map(|(g, _)| g.clone()).collect(),
    )
}

async fn group_reply(f: &ApiFixture, group: &str) -> Vec<String> {
    ispd::radius::service::current_group_rows(&f.app.state.db.radius, group)
        .await
        .unwrap()
        .reply
        .iter()
        .map(|r| format!("{} {} {}", r.attribute, r.op, r.value))
        .collect()
}

async fn policies_can_be_created_read_listed_changed_and_deleted(backend: Backend) {
    let Some(f) = ApiFixture::spawn(backend).await else {
        return;
    };
    let created = f.post("/api/v1/policies", garden("Unpaid", "unpaid")).await;
    let (policy, id) = assert_created(&created, "/api/v1/policies");
    assert_eq!(policy["action"], "walled_garden");
    assert_eq!(
        policy["rate_limit"], "512k/1M",
        "upload first, as the router reads it"
    );
    assert_eq!(policy["address_list"], "unpaid");
    assert_eq!(policy["is_default"], false);

    let shown = f.view(&format!("/api/v1/policies/{id}")).await;
    assert_eq!(shown.json()["name"], "Unpaid");
    let listed = f.view("/api/v1/policies?q=unp").await.json();
    assert_eq!(listed["meta"]["total"], 1);

    // The default mark moves from one policy to the next.
    let mut first = garden("Unpaid", "unpaid");
    first["is_default"] = json!(true);
    let changed = f.put(&format!("/api/v1/policies/{id}"), first).await;
    assert_eq!(changed.json()["is_default"], true, "{}", changed.text());
    let second = f
        .created_id(
            "/api/v1/policies",
            json!({"name": "Slow", "action": "throttle", "download_rate": "256k",
                   "upload_rate": "256k", "radius_group": "slow", "is_default": true}),
        )
        .await;
    assert_eq!(
        f.view(&format!("/api/v1/policies/{id}")).await.json()["is_default"],
        false
    );
    assert_eq!(
        f.view(&format!("/api/v1/policies/{second}")).await.json()["is_default"],
        true
    );

    // Refused while a package names it; then deleted.
    let package = package(&f, Some(id)).await;
    assert_error(
        &f.delete(&format!("/api/v1/policies/{id}")).await,
        409,
        "policy_in_use",
    );
    let shown = f.view(&format!("/api/v1/packages/{package}")).await.json();
    assert_eq!(shown["policy_id"], id);
    f.delete(&format!("/api/v1/packages/{package}")).await;
    assert_eq!(
        f.delete(&format!("/api/v1/policies/{id}")).await.status,
        204
    );
    assert_error(
        &f.view(&format!("/api/v1/policies/{id}")).await,
        404,
        "not_found",
    );
    // A viewer reads but does not write.
    let refused = f
        .app
        .post_as("/api/v1/policies", &f.viewer, garden("X", "x"))
        .await;
    assert_error(&refused, 403, "forbidden");
}
crate::on_every_backend!(policies_can_be_created_read_listed_changed_and_deleted);

#[tokio::test]
async fn every_invalid_policy_field_gets_its_own_message() {
    let Some(f) = ApiFixture::spawn(Backend::Sqlite).await else {
        return;
    };
    package(&f, None).await;
    let cases = [
        (
            json!({"action": "pause"}),
            "action",
            "is not a policy action",
        ),
        (
            json!({"action": "throttle", "address_list": null, "download_rate": null, "upload_rate": null}),
            "download_rate",
            "is required for a throttle policy",
        ),
        (
            json!({"action": "throttle"}),
            "address_list",
            "only a walled-garden policy",
        ),
        (
            json!({"action": "reject"}),
            "download_rate",
            "a reject policy gives no service",
        ),
        (
            json!({"upload_rate": null}),
            "upload_rate",
            "is required with the other rate",
        ),
        (
            json!({"download_rate": "fast"}),
            "download_rate",
            "is not a rate",
        ),
        (
            json!({"download_rate": null, "upload_rate": null, "address_list": null}),
            "address_list",
            "a walled garden needs",
        ),
        (
            json!({"radius_group": "home-20m"}),
            "radius_group",
            "is a package's RADIUS group",
        ),
        (
            json!({"radius_group": "no spaces"}),
            "radius_group",
            "may contain only",
        ),
        (json!({"name": ""}), "name", "must be 1 to 64"),
        (
            json!({"address_list": "it's"}),
            "address_list",
            "must not contain quotes",
        ),
    ];
    for (change, field, says) in cases {
        let mut body = garden("Unpaid", "unpaid");
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let response = f.post("/api/v1/policies", body.clone()).await;
        let error = assert_error(&response, 422, "validation_failed");
        let message = error["fields"][field].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {field}: {error}");
    }
    // A package cannot take a policy's group, nor name a missing policy.
    f.created_id("/api/v1/policies", garden("Unpaid", "unpaid"))
        .await;
    let taken = f
        .post(
            "/api/v1/packages",
            json!({"name": "Other", "download_rate": "1M", "upload_rate": "1M",
                   "radius_group": "unpaid", "policy_id": 999, "grace_days": 400}),
        )
        .await;
    let error = assert_error(&taken, 422, "validation_failed");
    assert!(
        error["fields"]["grace_days"]
            .as_str()
            .unwrap()
            .contains("0 to 365"),
        "{error}"
    );
    let taken = f
        .post(
            "/api/v1/packages",
            json!({"name": "Other", "download_rate": "1M", "upload_rate": "1M",
                   "radius_group": "unpaid", "policy_id": 999}),
        )
        .await;
    let error = assert_error(&taken, 422, "validation_failed");
    assert!(
        error["fields"]["radius_group"]
            .as_str()
            .unwrap()
            .contains("is a policy's RADIUS group"),
        "{error}"
    );
    assert!(
        error["fields"]["policy_id"]
            .as_str()
            .unwrap()
            .contains("no service policy with id 999"),
        "{error}"
    );
}

async fn a_suspended_subscriber_gets_its_packages_policy_in_radius(backend: Backend) {
    let Some(f) = ApiFixture::spawn(backend).await else {
        return;
    };
    // No policy at all: refused, as before policies existed.
    let plain = package(&f, None).await;
    let alice = subscriber(&f, "alice", plain, "suspended").await;
    assert_eq!(
        rows(&f, "alice").await,
        (
            vec!["Auth-Type := Reject".to_string()],
            vec!["home-20m".into()]
        )
    );

    // The default policy: the walled garden's group, and no refusal.
    let mut default = garden("Unpaid", "unpaid");
    default["is_default"] = json!(true);
    f.created_id("/api/v1/policies", default).await;
    set_status(&f, &alice, "suspended").await;
    assert_eq!(rows(&f, "alice").await, (vec![], vec!["unpaid".into()]));
    assert_eq!(
        group_reply(&f, "unpaid").await,
        [
            "Acct-Interim-Interval := 300",
            "Mikrotik-Address-List := unpaid",
            "Mikrotik-Rate-Limit := 512k/1M",
        ]
    );

    // Resumed: the package again.
    set_status(&f, &alice, "active").await;
    assert_eq!(rows(&f, "alice").await, (vec![], vec!["home-20m".into()]));

    // Disabled is refused whatever the policy.
    set_status(&f, &alice, "disabled").await;
    assert_eq!(
        rows(&f, "alice").await.0,
        vec!["Auth-Type := Reject".to_string()]
    );

    // A package's own policy wins over the default; a reject policy refuses.
    let reject = f
        .created_id(
            "/api/v1/policies",
            json!({"name": "Cut", "action": "reject", "radius_group": "cut"}),
        )
        .await;
    let strict = f
        .created_id(
            "/api/v1/packages",
            json!({"name": "Strict", "download_rate": "10M", "upload_rate": "2M",
                   "radius_group": "strict", "policy_id": reject}),
        )
        .await;
    subscriber(&f, "bob", strict, "suspended").await;
    assert_eq!(
        rows(&f, "bob").await,
        (
            vec!["Auth-Type := Reject".to_string()],
            vec!["strict".into()]
        )
    );
}
crate::on_every_backend!(a_suspended_subscriber_gets_its_packages_policy_in_radius);

#[tokio::test]
async fn an_expired_subscriber_is_refused_at_expiry_only_when_its_policy_refuses() {
    let Some(f) = ApiFixture::spawn(Backend::Sqlite).await else {
        return;
    };
    let plain = package(&f, None).await;
    let expires = "2030-01-05T13:00:00Z";
    let response = f
        .post(
            "/api/v1/users",
            json!({"username": "carol", "password": PASSWORD, "service_type": "pppoe",
                   "package_id": plain, "expires_at": expires}),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(
        rows(&f, "carol").await.0,
        vec!["Expiration := Jan 05 2030 13:00:00".to_string()],
        "FreeRADIUS refuses at the second itself"
    );
    // With grace days the refusal moves by as many days.
    let mut body = f.view(&format!("/api/v1/packages/{plain}")).await.json();
    body["grace_days"] = json!(3);
    body["download_rate"] = json!("20M");
    let changed = f.put(&format!("/api/v1/packages/{plain}"), body).await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    ispd::radius::service::sync_all(
        &f.app.state.db.main,
        &f.app.state.db.radius,
        &f.app.state.app_key,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&f, "carol").await.0,
        vec!["Expiration := Jan 08 2030 13:00:00".to_string()]
    );
    // A walled-garden default: no Expiration, the minute job moves it.
    f.created_id(
        "/api/v1/policies",
        json!({"name": "Unpaid", "action": "walled_garden", "address_list": "unpaid",
               "radius_group": "unpaid", "is_default": true}),
    )
    .await;
    ispd::radius::service::sync_all(
        &f.app.state.db.main,
        &f.app.state.db.radius,
        &f.app.state.app_key,
        false,
    )
    .await
    .unwrap();
    assert_eq!(rows(&f, "carol").await.0, Vec::<String>::new());
}
