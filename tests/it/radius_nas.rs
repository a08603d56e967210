//! NAS management: the service, `/api/v1/nas` and the `/radius/nas` pages,
//! on every backend. Field validation, 409 on a duplicate nasname, roles,
//! audit entries, and a shared secret that is stored in clear for
//! FreeRADIUS but never appears in an answer, a page, a CSV or the audit log.

use axum::http::Method;
use ispd::audit::Actor;
use ispd::crypto::Secret;
use ispd::radius::entities::nas;
use ispd::radius::nas::{NasError, NasInput};
use ispd::staff::Role;
use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::helpers::{
    assert_created, assert_error, assert_error_says, assert_inline, with, ApiFixture, Backend,
    TestApp, TestResponse,
};

const SECRET: &str = "Sh4red-secret-for-nas";
const NEW_SECRET: &str = "An0ther-shared-secret";

/// No answer ever carries a secret.
fn assert_no_secret(response: &TestResponse) {
    let text = response.text();
    for secret in [SECRET, NEW_SECRET] {
        assert!(!text.contains(secret), "a secret leaked: {text}");
    }
    assert!(!text.contains("\"secret\""), "a secret field: {text}");
}

fn nas_body(nasname: &str) -> Value {
    json!({"nasname": nasname, "shortname": "bras-1", "type": "mikrotik", "secret": SECRET,
           "description": "Core BRAS"})
}

async fn stored(app: &TestApp, id: i64) -> Option<nas::Model> {
    nas::Entity::find_by_id(id as i32)
        .one(&app.state.db.radius)
        .await
        .unwrap()
}

async fn nas_entries_are_created_read_listed_changed_and_deleted_through_the_api(backend: Backend) {
    let Some((app, op)) = TestApp::with_token(backend, Role::Operator).await else {
        return;
    };

    let created = app.post_as("/api/v1/nas", &op, nas_body("192.0.2.1")).await;
    let (body, id) = assert_created(&created, "/api/v1/nas");
    assert_no_secret(&created);
    assert_eq!(body["nasname"], "192.0.2.1");
    assert_eq!(body["type"], "mikrotik");
    assert_eq!(body["coa_port"], 3799);
    // FreeRADIUS reads the secret as stored: it is there, in clear.
    assert_eq!(stored(&app, id).await.unwrap().secret, SECRET);

    let got = app.get_as(&format!("/api/v1/nas/{id}"), &op).await;
    assert_eq!(got.status, 200);
    assert_no_secret(&got);
    assert_eq!(got.json()["shortname"], "bras-1");

    app.post_as("/api/v1/nas", &op, nas_body("nas2.example.net"))
        .await;
    let listed = app.get_as("/api/v1/nas?q=EXAMPLE", &op).await;
    assert_eq!(listed.status, 200);
    assert_no_secret(&listed);
    assert_eq!(listed.json()["meta"]["total"], 1);
    assert_eq!(listed.json()["data"][0]["nasname"], "nas2.example.net");
    let sorted = app.get_as("/api/v1/nas?sort=-nasname", &op).await;
    assert_eq!(sorted.json()["data"][0]["nasname"], "nas2.example.net");
    assert_eq!(sorted.json()["data"][1]["nasname"], "192.0.2.1");

    // Without a secret, an update keeps the stored one.
    let changed = app
        .put_as(
            &format!("/api/v1/nas/{id}"),
            &op,
            json!({"nasname": "192.0.2.1", "type": "cisco", "ports": 1700}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_no_secret(&changed);
    assert_eq!(changed.json()["type"], "cisco");
    assert_eq!(changed.json()["coa_port"], 1700);
    assert_eq!(
        changed.json()["shortname"],
        "192.0.2.1",
        "omitted: the nasname"
    );
    assert_eq!(
        changed.json()["description"],
        Value::Null,
        "omitted: cleared"
    );
    assert_eq!(stored(&app, id).await.unwrap().secret, SECRET);

    let rekeyed = app
        .put_as(
            &format!("/api/v1/nas/{id}"),
            &op,
            json!({"nasname": "192.0.2.1", "secret": NEW_SECRET}),
        )
        .await;
    assert_eq!(rekeyed.status, 200, "{}", rekeyed.text());
    assert_no_secret(&rekeyed);
    assert_eq!(stored(&app, id).await.unwrap().secret, NEW_SECRET);

    let deleted = app.delete_as(&format!("/api/v1/nas/{id}"), &op).await;
    assert_eq!(deleted.status, 204);
    assert!(stored(&app, id).await.is_none());
    let gone = app.get_as(&format!("/api/v1/nas/{id}"), &op).await;
    assert_error(&gone, 404, "not_found");

    // Every change is audited, without the secret.
    let creates = app.audit_entries("nas.create").await;
    let updates = app.audit_entries("nas.update").await;
    let deletes = app.audit_entries("nas.delete").await;
    assert_eq!((creates.len(), updates.len(), deletes.len()), (2, 2, 1));
    assert_eq!(
        creates[0].entity_id.as_deref(),
        Some(id.to_string().as_str())
    );
    let details: Vec<Value> = updates
        .iter()
        .map(|e| serde_json::from_str(e.details.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(details[0]["secret_changed"], false);
    assert_eq!(details[1]["secret_changed"], true);
    for entry in creates.iter().chain(&updates).chain(&deletes) {
        let text = entry.details.clone().unwrap_or_default();
        assert!(
            !text.contains(SECRET) && !text.contains(NEW_SECRET),
            "{text}"
        );
    }
}
crate::on_every_backend!(nas_entries_are_created_read_listed_changed_and_deleted_through_the_api);

/// The stored secret is used only with the address it was stored for: a new
/// nasname without the secret again is a 422 that says why, and nothing
/// changes.
async fn a_nas_moved_to_a_new_address_needs_its_secret_again(backend: Backend) {
    let Some((app, op)) = TestApp::with_token(backend, Role::Operator).await else {
        return;
    };
    let created = app.post_as("/api/v1/nas", &op, nas_body("192.0.2.1")).await;
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/nas/{id}");
    for body in [
        json!({"nasname": "192.0.2.99"}),
        json!({"nasname": "nas.example.net", "secret": ""}),
    ] {
        let refused = app.put_as(&path, &op, body).await;
        let error = assert_error(&refused, 422, "validation_failed");
        let message = error["fields"]["secret"].as_str().unwrap_or_default();
        assert!(
            message.contains("required again because the address changed")
                && message.contains("192.0.2.1"),
            "{error}"
        );
    }
    let row = stored(&app, id).await.unwrap();
    assert_eq!(
        (row.nasname.as_str(), row.secret.as_str()),
        ("192.0.2.1", SECRET)
    );

    let moved = app
        .put_as(
            &path,
            &op,
            json!({"nasname": "192.0.2.99", "secret": NEW_SECRET}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text());
    let row = stored(&app, id).await.unwrap();
    assert_eq!(
        (row.nasname.as_str(), row.secret.as_str()),
        ("192.0.2.99", NEW_SECRET)
    );
}
crate::on_every_backend!(a_nas_moved_to_a_new_address_needs_its_secret_again);

async fn invalid_nas_fields_are_422_naming_each_field(backend: Backend) {
    let Some((app, op)) = TestApp::with_token(backend, Role::Operator).await else {
        return;
    };
    let cases: &[(Value, &str, &str)] = &[
        (
            json!({"nasname": "10.0.0.300", "secret": SECRET}),
            "nasname",
            "neither an IP address",
        ),
        (
            json!({"nasname": "", "secret": SECRET}),
            "nasname",
            "is required",
        ),
        (
            json!({"nasname": "nas one", "secret": SECRET}),
            "nasname",
            "neither an IP address",
        ),
        (json!({"nasname": "10.0.0.1"}), "secret", "is required"),
        (
            json!({"nasname": "10.0.0.1", "secret": "short"}),
            "secret",
            "8 to 60",
        ),
        (
            json!({"nasname": "10.0.0.1", "secret": "x".repeat(61)}),
            "secret",
            "8 to 60",
        ),
        (
            json!({"nasname": "10.0.0.1", "secret": "geheim-schlüssel"}),
            "secret",
            "printable ASCII",
        ),
        (
            json!({"nasname": "10.0.0.1", "secret": SECRET, "type": "router9000"}),
            "type",
            "mikrotik",
        ),
        (
            json!({"nasname": "10.0.0.1", "secret": SECRET, "ports": 0}),
            "ports",
            "between 1 and 65535",
        ),
        (
            json!({"nasname": "10.0.0.1", "secret": SECRET, "ports": 70000}),
            "ports",
            "between 1 and 65535",
        ),
        (
            json!({"nasname": "10.0.0.1", "secret": SECRET, "shortname": "bras 1!"}),
            "shortname",
            "letters, digits",
        ),
        (
            json!({"nasname": "10.0.0.1", "secret": SECRET, "server": "a b"}),
            "server",
            "letters, digits",
        ),
        (
            json!({"nasname": "10.0.0.1", "secret": SECRET, "description": "d".repeat(201)}),
            "description",
            "at most 200",
        ),
        (
            json!({"nasname": "10.0.0.1", "secret": SECRET, "community": "c".repeat(51)}),
            "community",
            "at most 50",
        ),
    ];
    for (body, field, part) in cases {
        let response = app.post_as("/api/v1/nas", &op, body.clone()).await;
        let error = assert_error(&response, 422, "validation_failed");
        let message = error["fields"][*field]
            .as_str()
            .unwrap_or_else(|| panic!("no message for {field} ({body}): {error}"));
        assert!(
            message.contains(part),
            "{field}: {message:?} lacks {part:?}"
        );
        assert!(!response.text().contains(SECRET), "the secret echoed back");
    }
    // A body of the wrong shape names the field too.
    let wrong = app
        .post_as(
            "/api/v1/nas",
            &op,
            json!({"nasname": "10.0.0.1", "secret": SECRET, "ports": "many"}),
        )
        .await;
    assert_error(&wrong, 422, "validation_failed");
    let bad_sort = app.get_as("/api/v1/nas?sort=secret", &op).await;
    assert_error(&bad_sort, 422, "validation_failed");
    assert!(nas::Entity::find()
        .all(&app.state.db.radius)
        .await
        .unwrap()
        .is_empty());
}
crate::on_every_backend!(invalid_nas_fields_are_422_naming_each_field);

async fn a_duplicate_nasname_is_a_409(backend: Backend) {
    let Some((app, op)) = TestApp::with_token(backend, Role::Operator).await else {
        return;
    };
    let first = app
        .post_as("/api/v1/nas", &op, nas_body("nas1.example.net"))
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    // Host names are compared without regard to case.
    let again = app
        .post_as("/api/v1/nas", &op, nas_body("NAS1.Example.net"))
        .await;
    assert_error_says(&again, 409, "nas_exists", "nas1.example.net");

    let second = app.post_as("/api/v1/nas", &op, nas_body("192.0.2.2")).await;
    let second_id = second.json()["id"].as_i64().unwrap();
    let renamed = app
        .put_as(
            &format!("/api/v1/nas/{second_id}"),
            &op,
            json!({"nasname": "nas1.example.net"}),
        )
        .await;
    assert_error(&renamed, 409, "nas_exists");
    // Keeping its own name is no conflict.
    let same = app
        .put_as(
            &format!("/api/v1/nas/{second_id}"),
            &op,
            json!({"nasname": "192.0.2.2"}),
        )
        .await;
    assert_eq!(same.status, 200, "{}", same.text());
    assert_eq!(
        nas::Entity::find()
            .all(&app.state.db.radius)
            .await
            .unwrap()
            .len(),
        2
    );
}
crate::on_every_backend!(a_duplicate_nasname_is_a_409);

async fn viewers_read_nas_entries_but_cannot_change_them(backend: Backend) {
    let Some(ApiFixture { app, op, viewer }) = ApiFixture::spawn(backend).await else {
        return;
    };
    let created = app.post_as("/api/v1/nas", &op, nas_body("192.0.2.1")).await;
    let id = created.json()["id"].as_i64().unwrap();
    let listed = app.get_as("/api/v1/nas", &viewer).await;
    assert_eq!(listed.status, 200);
    assert_no_secret(&listed);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/nas".to_string(),
            Some(nas_body("192.0.2.9")),
        ),
        (
            Method::PUT,
            format!("/api/v1/nas/{id}"),
            Some(nas_body("192.0.2.1")),
        ),
        (Method::DELETE, format!("/api/v1/nas/{id}"), None),
    ] {
        let response = app.api(method.clone(), &path, &viewer, body).await;
        assert_error(&response, 403, "forbidden");
    }
    let anonymous = app.get("/api/v1/nas").await;
    assert_eq!(anonymous.status, 401);
}
crate::on_every_backend!(viewers_read_nas_entries_but_cannot_change_them);

async fn the_service_validates_writes_and_audits(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (main, radius) = (&app.state.db.main, &app.state.db.radius);
    let actor = Actor::system();
    let input = NasInput {
        nasname: " 2001:DB8::1 ".into(),
        secret: Some(Secret::new(SECRET)),
        ..Default::default()
    };
    let created = ispd::radius::nas::create_nas(main, radius, &actor, &input)
        .await
        .unwrap();
    assert_eq!(created.nasname, "2001:db8::1", "canonical form");
    assert_eq!(created.shortname.as_deref(), Some("2001:db8::1"));
    assert_eq!(created.nas_type.as_deref(), Some("other"));
    assert_eq!(created.secret, SECRET);
    let found = ispd::radius::nas::find_by_nasname(radius, "2001:DB8::1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, created.id);
    match ispd::radius::nas::create_nas(main, radius, &actor, &input).await {
        Err(NasError::Duplicate(message)) => assert!(message.contains("2001:db8::1")),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    let missing = ispd::radius::nas::update_nas(main, radius, &actor, 9999, &input).await;
    assert!(matches!(missing, Err(NasError::NotFound(_))), "{missing:?}");
    let deleted = ispd::radius::nas::delete_nas(main, radius, &actor, created.id)
        .await
        .unwrap();
    assert_eq!(deleted.id, created.id);
    assert_eq!(app.audit_entries("nas.create").await.len(), 1);
    assert_eq!(app.audit_entries("nas.delete").await.len(), 1);
}
crate::on_every_backend!(the_service_validates_writes_and_audits);

// ------------------------------------------------------------------ pages

fn form<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let base = [
        ("nasname", "192.0.2.1"),
        ("shortname", "bras-1"),
        ("type", "mikrotik"),
        ("ports", ""),
        ("secret", SECRET),
        ("server", ""),
        ("community", ""),
        ("description", "Core BRAS"),
    ];
    with(&base, changes)
}

async fn an_operator_manages_nas_entries_through_the_pages(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    let empty = op.get("/radius/nas").await;
    assert_eq!(empty.status, 200);
    let html = empty.text();
    assert!(html.contains("No NAS registered yet."), "{html}");
    assert!(html.contains("id=\"new-nas\""));
    assert!(html.contains("href=\"/radius/nas\""), "the NAV entry");

    // Invalid: inline messages, and the secret is not sent back.
    let invalid = op
        .post(
            "/radius/nas",
            &form(&[
                ("nasname", "10.0.0.300"),
                ("ports", "many"),
                ("type", "toaster"),
            ]),
        )
        .await;
    assert_eq!(invalid.status, 422, "{}", invalid.text());
    let html = invalid.text();
    assert_inline(&html, "nas", "nasname", "neither an IP address");
    assert_inline(&html, "nas", "ports", "not a whole number");
    assert_inline(&html, "nas", "type", "is not a NAS type");
    assert!(!html.contains(SECRET), "the secret echoed back");
    let short = op.post("/radius/nas", &form(&[("secret", "short")])).await;
    assert_eq!(short.status, 422);
    assert_inline(&short.text(), "nas", "secret", "8 to 60");

    let created = op.post("/radius/nas", &form(&[])).await;
    assert_eq!(created.status, 303, "{}", created.text());
    let location = created.header("location").unwrap().to_string();
    let id = location.rsplit('/').next().unwrap().to_string();
    let page = op.get(&location).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("NAS “192.0.2.1” added."), "the flash: {html}");
    assert!(html.contains("bras-1") && html.contains("id=\"edit-nas\""));
    assert!(html.contains("data-confirm=\"Delete NAS 192.0.2.1?"));
    assert!(!html.contains(SECRET), "the secret on the page");

    // A duplicate: 409 with the message under the nasname.
    let duplicate = op
        .post("/radius/nas", &form(&[("shortname", "other")]))
        .await;
    assert_eq!(duplicate.status, 409);
    assert_inline(&duplicate.text(), "nas", "nasname", "already exists");

    // Edit: an empty secret keeps the stored one.
    let saved = op
        .post(&location, &form(&[("secret", ""), ("ports", "1700")]))
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let row = stored(&app, id.parse().unwrap()).await.unwrap();
    assert_eq!((row.secret.as_str(), row.ports), (SECRET, Some(1700)));
    let bad_edit = op.post(&location, &form(&[("nasname", "")])).await;
    assert_eq!(bad_edit.status, 422);
    assert_inline(&bad_edit.text(), "nas", "nasname", "is required");

    let list = op.get("/radius/nas?q=bras").await;
    assert!(list.text().contains("192.0.2.1") && list.text().contains("1700"));
    assert!(!list.text().contains(SECRET));
    let none = op.get("/radius/nas?q=nothing-like-this").await;
    assert!(none.text().contains("Nothing matches"));
    let csv = op.get("/radius/nas.csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv
        .text()
        .starts_with("id,nasname,shortname,type,ports,coa_port"));
    assert!(csv.text().contains("192.0.2.1") && !csv.text().contains(SECRET));

    let deleted = op.post(&format!("/radius/nas/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    assert!(op
        .get("/radius/nas")
        .await
        .text()
        .contains("NAS “192.0.2.1” deleted."));
    assert!(stored(&app, id.parse().unwrap()).await.is_none());
    // Without the CSRF token nothing happens.
    let forged = op.post_raw("/radius/nas", &form(&[])).await;
    assert_eq!(forged.status, 403);
    assert_eq!(app.audit_entries("nas.create").await.len(), 1);
    assert_eq!(app.audit_entries("nas.update").await.len(), 1);
    assert_eq!(app.audit_entries("nas.delete").await.len(), 1);
}
crate::on_every_backend!(an_operator_manages_nas_entries_through_the_pages);

async fn viewers_see_nas_entries_without_change_buttons(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let created = ispd::radius::nas::create_nas(
        &app.state.db.main,
        &app.state.db.radius,
        &Actor::system(),
        &NasInput {
            nasname: "192.0.2.1".into(),
            secret: Some(Secret::new(SECRET)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut viewer = app.signed_in("watcher", Role::Viewer).await;
    let list = viewer.get("/radius/nas").await;
    assert_eq!(list.status, 200);
    assert!(list.text().contains("192.0.2.1"));
    assert!(!list.text().contains("id=\"new-nas\""));
    let page = viewer.get(&format!("/radius/nas/{}", created.id)).await;
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("id=\"edit-nas\"") && !page.text().contains("Delete NAS"));
    assert!(!page.text().contains(SECRET));
    let refused = viewer
        .post("/radius/nas", &form(&[("nasname", "192.0.2.7")]))
        .await;
    assert_eq!(refused.status, 403);
    let missing = viewer.get("/radius/nas/99999").await;
    assert_eq!(missing.status, 404);
}
crate::on_every_backend!(viewers_see_nas_entries_without_change_buttons);

#[tokio::test]
async fn the_openapi_document_describes_the_nas_and_session_endpoints() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app.create_token(Role::Viewer).await;
    let document = app.get_as("/api/v1/openapi.json", &token).await.json();
    let operations = [
        ("/api/v1/nas", "get", None),
        ("/api/v1/nas", "post", Some("NasBody")),
        ("/api/v1/nas/{id}", "get", None),
        ("/api/v1/nas/{id}", "put", Some("NasBody")),
        ("/api/v1/nas/{id}", "delete", None),
        (
            "/api/v1/radius/sessions/{radacctid}/disconnect",
            "post",
            None,
        ),
        (
            "/api/v1/radius/sessions/{radacctid}/coa",
            "post",
            Some("CoaBody"),
        ),
        ("/api/v1/users/{id}/sync-radius", "post", None),
    ];
    for (path, method, body) in operations {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        let responses = operation["responses"].as_object().unwrap();
        for status in ["401", "429", "500"] {
            assert!(responses.contains_key(status), "{method} {path}: {status}");
        }
        assert!(operation["security"]
            .as_array()
            .unwrap()
            .contains(&json!({"bearer": []})));
        match body {
            Some(schema) => {
                assert_eq!(
                    operation["requestBody"]["content"]["application/json"]["schema"]["$ref"],
                    format!("#/components/schemas/{schema}"),
                    "{method} {path}"
                );
                for status in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
            }
            None => assert!(operation["requestBody"].is_null(), "{method} {path}"),
        }
    }
    // The upstream failures of Disconnect/CoA and of the sync.
    for path in [
        "/api/v1/radius/sessions/{radacctid}/disconnect",
        "/api/v1/radius/sessions/{radacctid}/coa",
    ] {
        let responses = &document["paths"][path]["post"]["responses"];
        assert!(
            responses["502"].is_object() && responses["504"].is_object(),
            "{path}"
        );
    }
    assert!(
        document["paths"]["/api/v1/users/{id}/sync-radius"]["post"]["responses"]["502"].is_object()
    );
    // The secret is write-only in the schema and absent from the view.
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["NasBody"]["properties"]["secret"]["writeOnly"],
        true
    );
    assert!(schemas["NasView"]["properties"]["secret"].is_null());
    let tags: Vec<&str> = document["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"nas") && tags.contains(&"radius"),
        "{tags:?}"
    );
}
