//! Outbound webhooks, against a real HTTP receiver on a loopback port
//! that checks each request's signature the way a receiver would (its own
//! HMAC, not ispd's code): `/api/v1/webhooks`, events from enforcement,
//! retries with back-off, replay, and who may do what.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use chrono::{DateTime, Duration, Utc};
use ispd::staff::Role;
use ispd::webhooks::delivery::{deliver_due, DeliveryReport};
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{json, Value};

use crate::helpers::{assert_error, home_20, pppoe_user, Backend, TestApp};

const SECRET: &str = "receiver-shared-secret-0123456789";

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The receiver's check: HMAC-SHA256 of "{timestamp}.{body}" with the
    /// shared secret, compared in constant time, and a timestamp within
    /// five minutes of its own clock.
    fn signed_with(&self, secret: &str) -> bool {
        let Ok(timestamp) = self.header("x-ispd-timestamp").parse::<i64>() else {
            return false;
        };
        if (Utc::now().timestamp() - timestamp).abs() > 300 {
            return false;
        }
        let Some(tag) = self
            .header("x-ispd-signature")
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(&self.body);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        ring::hmac::verify(&key, &signed, &tag).is_ok()
    }
}

#[derive(Clone, Default)]
struct Inbox {
    received: Arc<Mutex<Vec<Received>>>,
    /// The statuses of the next answers; 200 when empty.
    answers: Arc<Mutex<VecDeque<u16>>>,
}

/// A small HTTP server on 127.0.0.1, standing for a billing system.
struct Receiver {
    base: String,
    inbox: Inbox,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn take(
    State(inbox): State<Inbox>,
    uri: Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> (StatusCode, &'static str) {
    inbox.received.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body,
    });
    let status = inbox.answers.lock().unwrap().pop_front().unwrap_or(200);
    let status = StatusCode::from_u16(status).unwrap();
    let text = if status.is_success() {
        "ok"
    } else {
        "billing is down for maintenance"
    };
    (status, text)
}

impl Receiver {
    async fn start() -> Self {
        let inbox = Inbox::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .fallback(axum::routing::post(take))
            .with_state(inbox.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { base, inbox, task }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next answers, in order (then 200 again).
    fn answer(&self, statuses: &[u16]) {
        self.inbox.answers.lock().unwrap().extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.inbox.received.lock().unwrap().clone()
    }
}

struct Fixture {
    app: TestApp,
    admin: String,
    operator: String,
    viewer: String,
    receiver: Receiver,
}

async fn spawn(backend: Backend) -> Option<Fixture> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.create_token(Role::Admin).await;
    let operator = app.create_token(Role::Operator).await;
    let viewer = app.create_token(Role::Viewer).await;
    let receiver = Receiver::start().await;
    Some(Fixture {
        app,
        admin,
        operator,
        viewer,
        receiver,
    })
}

impl Fixture {
    /// Creates an endpoint as the admin; returns its answer.
    async fn endpoint(&self, name: &str, path: &str, events: Value) -> Value {
        let response = self
            .app
            .post_as(
                "/api/v1/webhooks",
                &self.admin,
                json!({"name": name, "url": self.receiver.url(path), "secret": SECRET,
                    "events": events}),
            )
            .await;
        assert_eq!(response.status, 201, "{}", response.text());
        assert!(!response.text().contains(SECRET), "{}", response.text());
        response.json()
    }

    /// A subscriber on a package without a policy; returns its id.
    async fn subscriber(&self, username: &str) -> i32 {
        let package = self.app.create_package(&home_20()).await.unwrap();
        self.app
            .create_user(&pppoe_user(username, "Pass-word-1", package.id))
            .await
            .unwrap()
            .id
    }

    async fn suspend(&self, id: i32) {
        let response = self
            .app
            .post_as(
                &format!("/api/v1/users/{id}/suspend"),
                &self.operator,
                json!({"reason": "invoice 117 unpaid"}),
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
    }

    async fn pass(&self, now: DateTime<Utc>) -> DeliveryReport {
        deliver_due(self.app.db(), &self.app.state.app_key, now)
            .await
            .expect("a delivery pass")
    }

    async fn deliveries(&self, endpoint_id: &Value) -> Vec<Value> {
        let response = self
            .app
            .get_as(
                &format!("/api/v1/webhooks/{endpoint_id}/deliveries"),
                &self.admin,
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert!(!response.text().contains(SECRET));
        response.json()["data"].as_array().unwrap().clone()
    }
}

async fn a_suspension_through_the_api_reaches_a_subscribed_endpoint_signed(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let billing = f
        .endpoint(
            "billing",
            "/hooks/billing",
            json!(["subscriber.state_changed"]),
        )
        .await;
    assert_eq!(billing["events"], json!(["subscriber.state_changed"]));
    assert_eq!(billing["has_secret"], true);
    assert_eq!(billing["active"], true);
    // Neither of these takes the event.
    f.endpoint("crm", "/hooks/crm", json!(["enforcement.confirmed"]))
        .await;
    let paused = f.endpoint("paused", "/hooks/paused", json!(["*"])).await;
    let response = f
        .app
        .put_as(
            &format!("/api/v1/webhooks/{}", paused["id"]),
            &f.admin,
            json!({"name": "paused", "url": f.receiver.url("/hooks/paused"), "active": false}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["active"], false);

    let alice = f.subscriber("alice").await;
    f.suspend(alice).await;
    let report = f.pass(Utc::now()).await;
    assert_eq!(report.delivered, 1, "{report:?}");

    let received = f.receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request.path, "/hooks/billing");
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("x-ispd-event"), "subscriber.state_changed");
    assert!(request.signed_with(SECRET), "the signature verifies");
    assert!(!request.signed_with("another secret"));
    let event = request.json();
    assert_eq!(request.header("x-ispd-delivery"), event["id"]);
    assert!(event["id"].as_str().unwrap().starts_with("evt_"), "{event}");
    assert_eq!(event["type"], "subscriber.state_changed");
    assert!(event["created_at"].is_string());
    let data = &event["data"];
    assert_eq!(data["user_id"], alice);
    assert_eq!(data["username"], "alice");
    assert_eq!(data["from"], Value::Null, "never enforced before");
    assert_eq!(data["to"], "suspended");
    assert_eq!(data["reason"], "suspended");
    assert_eq!(data["target"], "reject", "no policy: refused");
    assert!(data["changed_at"].is_string());

    let deliveries = f.deliveries(&billing["id"]).await;
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status_code"], 200);
    assert_eq!(delivery["event_id"], event["id"]);
    assert_eq!(delivery["payload"], event);
    assert!(delivery["delivered_at"].is_string());
    assert!(f.deliveries(&paused["id"]).await.is_empty());

    // The same state again is no change: nothing more is sent.
    f.suspend(alice).await;
    assert_eq!(f.pass(Utc::now()).await, DeliveryReport::default());
    assert_eq!(f.receiver.received().len(), 1);
}
crate::on_every_backend!(a_suspension_through_the_api_reaches_a_subscribed_endpoint_signed);

async fn a_receiver_down_for_a_while_still_gets_the_event_delivered_once(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let billing = f
        .endpoint("billing", "/hooks", json!(["subscriber.state_changed"]))
        .await;
    f.receiver.answer(&[500, 500]);
    let bob = f.subscriber("bob").await;
    f.suspend(bob).await;

    let t0 = Utc::now();
    let first = f.pass(t0).await;
    assert_eq!((first.retrying, first.delivered), (1, 0), "{first:?}");
    let deliveries = f.deliveries(&billing["id"]).await;
    assert_eq!(deliveries[0]["status"], "pending");
    assert_eq!(deliveries[0]["attempts"], 1);
    assert_eq!(deliveries[0]["last_status_code"], 500);
    let error = deliveries[0]["last_error"].as_str().unwrap();
    assert!(error.contains("answered 500"), "{error}");
    assert!(error.contains("billing is down"), "{error}");

    // Not due yet: the first back-off is 30 s.
    assert_eq!(
        f.pass(t0 + Duration::seconds(20)).await,
        DeliveryReport::default()
    );
    assert_eq!(f.receiver.received().len(), 1);

    let second = f.pass(t0 + Duration::seconds(31)).await;
    assert_eq!(second.retrying, 1, "{second:?}");
    // The second back-off is 60 s.
    assert_eq!(
        f.pass(t0 + Duration::seconds(80)).await,
        DeliveryReport::default()
    );
    let third = f.pass(t0 + Duration::seconds(92)).await;
    assert_eq!(third.delivered, 1, "{third:?}");
    // Delivered is final: later passes send nothing.
    assert_eq!(
        f.pass(t0 + Duration::days(1)).await,
        DeliveryReport::default()
    );

    let received = f.receiver.received();
    assert_eq!(received.len(), 3, "two refusals, then the one delivery");
    let id = received[0].header("x-ispd-delivery").to_string();
    for request in &received {
        assert_eq!(request.header("x-ispd-delivery"), id, "one event id");
        assert_eq!(request.body, received[0].body, "the same payload");
        assert!(request.signed_with(SECRET));
    }
    let deliveries = f.deliveries(&billing["id"]).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["status"], "delivered");
    assert_eq!(deliveries[0]["attempts"], 3);
    assert_eq!(deliveries[0]["last_status_code"], 200);
    assert_eq!(deliveries[0]["last_error"], Value::Null);
}
crate::on_every_backend!(a_receiver_down_for_a_while_still_gets_the_event_delivered_once);

async fn a_delivery_refused_twelve_times_fails_and_a_replay_sends_the_same_event_again(
    backend: Backend,
) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let billing = f.endpoint("billing", "/hooks", json!(["*"])).await;
    f.receiver.answer(&[503; 12]);
    let carol = f.subscriber("carol").await;
    f.suspend(carol).await;

    let mut now = Utc::now();
    for attempt in 1..=12 {
        let report = f.pass(now).await;
        let expected = if attempt < 12 { (1, 0) } else { (0, 1) };
        assert_eq!(
            (report.retrying, report.failed),
            expected,
            "attempt {attempt}"
        );
        now += Duration::hours(1) + Duration::seconds(1);
    }
    assert_eq!(
        f.pass(now).await,
        DeliveryReport::default(),
        "failed for good"
    );
    let delivery = f.deliveries(&billing["id"]).await[0].clone();
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempts"], 12);
    assert_eq!(delivery["last_status_code"], 503);
    assert_eq!(delivery["next_attempt_at"], Value::Null);

    // Only admins replay.
    let path = format!("/api/v1/webhooks/deliveries/{}/replay", delivery["id"]);
    assert_error(
        &f.app.post_empty_as(&path, &f.operator).await,
        403,
        "forbidden",
    );
    let replayed = f.app.post_empty_as(&path, &f.admin).await;
    assert_eq!(replayed.status, 200, "{}", replayed.text());
    let replayed = replayed.json();
    assert_eq!(replayed["status"], "pending");
    assert_eq!(replayed["attempts"], 0);
    assert_eq!(replayed["event_id"], delivery["event_id"]);

    let report = f.pass(Utc::now()).await;
    assert_eq!(report.delivered, 1, "{report:?}");
    let received = f.receiver.received();
    assert_eq!(received.len(), 13);
    let last = received.last().unwrap();
    assert_eq!(last.header("x-ispd-delivery"), delivery["event_id"]);
    assert_eq!(last.body, received[0].body);
    assert!(last.signed_with(SECRET));
    let delivery = f.deliveries(&billing["id"]).await[0].clone();
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"], 1);

    // A delivered event can be replayed too: same id, again.
    f.app.post_empty_as(&path, &f.admin).await;
    f.pass(Utc::now()).await;
    let received = f.receiver.received();
    assert_eq!(received.len(), 14);
    assert_eq!(received[13].header("x-ispd-delivery"), delivery["event_id"]);
    let audit = f.app.audit_entries("webhook_delivery.replay").await;
    assert_eq!(audit.len(), 2);
    assert_error(
        &f.app
            .post_empty_as("/api/v1/webhooks/deliveries/999999/replay", &f.admin)
            .await,
        404,
        "not_found",
    );
}
crate::on_every_backend!(
    a_delivery_refused_twelve_times_fails_and_a_replay_sends_the_same_event_again
);

/// Opens a session in the RADIUS database's radacct, as FreeRADIUS's
/// accounting would, on a NAS that ispd does not know.
async fn open_session_on_unknown_nas(app: &TestApp, username: &str) {
    app.state
        .db
        .radius
        .execute_unprepared(&format!(
            "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress) \
             VALUES ('s-{username}', 'u-{username}', '{username}', '192.0.2.99')"
        ))
        .await
        .expect("inserting a radacct row");
}

async fn a_session_change_that_cannot_be_applied_is_told_as_not_applied(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let crm = f
        .endpoint(
            "crm",
            "/hooks/crm",
            json!(["subscriber.state_changed", "enforcement.not_applied"]),
        )
        .await;
    let dave = f.subscriber("dave").await;
    open_session_on_unknown_nas(&f.app, "dave").await;
    f.suspend(dave).await;
    let report = f.pass(Utc::now()).await;
    assert_eq!(report.delivered, 2, "{report:?}");

    let mut types: Vec<(String, Value)> = f
        .receiver
        .received()
        .iter()
        .map(|r| (r.header("x-ispd-event").to_string(), r.json()))
        .collect();
    types.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(types[0].0, "enforcement.not_applied");
    assert_eq!(types[1].0, "subscriber.state_changed");
    let data = &types[0].1["data"];
    assert_eq!(data["user_id"], dave);
    assert_eq!(data["username"], "dave");
    assert_eq!(data["session_id"], "s-dave");
    assert_eq!(data["nas"], "192.0.2.99");
    assert_eq!(data["outcome"], "nas_not_registered");
    assert_eq!(data["reason"], "suspended");
    assert!(data["action_id"].is_i64());
    assert!(data["request"].is_string());
    assert_eq!(f.deliveries(&crm["id"]).await.len(), 2);
}
crate::on_every_backend!(a_session_change_that_cannot_be_applied_is_told_as_not_applied);

async fn endpoints_are_validated_admin_only_and_never_show_their_secret(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let good = || {
        json!({"name": "billing", "url": f.receiver.url("/hooks"), "secret": SECRET,
            "events": ["subscriber.state_changed"]})
    };
    // Table-driven: one bad field at a time, named in the 422.
    for (field, value, says) in [
        (
            "url",
            json!("ftp://billing.example.net/hooks"),
            "http or https",
        ),
        ("url", json!("billing.example.net/hooks"), "absolute"),
        (
            "url",
            json!("https://user:pw@billing.example.net/"),
            "password",
        ),
        (
            "events",
            json!(["subscriber.suspended"]),
            "\"subscriber.suspended\"",
        ),
        ("events", json!([]), "at least one"),
        ("secret", json!("short"), "16 to 256"),
        ("secret", Value::Null, "is required"),
        ("name", json!(""), "1 to 64"),
    ] {
        let mut body = good();
        body[field] = value.clone();
        let response = f.app.post_as("/api/v1/webhooks", &f.admin, body).await;
        let error = assert_error(&response, 422, "validation_failed");
        let message = error["fields"][field].as_str().unwrap_or_default();
        assert!(message.contains(says), "{field}={value}: {error}");
    }

    for token in [&f.viewer, &f.operator] {
        assert_error(
            &f.app.post_as("/api/v1/webhooks", token, good()).await,
            403,
            "forbidden",
        );
        assert_error(
            &f.app.get_as("/api/v1/webhooks", token).await,
            403,
            "forbidden",
        );
    }

    let created = f.app.post_as("/api/v1/webhooks", &f.admin, good()).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_i64().unwrap();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/webhooks/{id}").as_str())
    );
    let duplicate = f.app.post_as("/api/v1/webhooks", &f.admin, good()).await;
    let error = assert_error(&duplicate, 422, "validation_failed");
    assert!(error["fields"]["name"].is_string(), "{error}");

    let path = format!("/api/v1/webhooks/{id}");
    // A change without a secret keeps the stored one.
    let changed = f
        .app
        .put_as(
            &path,
            &f.admin,
            json!({"name": "billing-2", "url": f.receiver.url("/v2"), "events": ["*"]}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json()["events"], json!(["*"]));
    assert_eq!(changed.json()["has_secret"], true);
    let stored = ispd::webhooks::entities::webhook_endpoint::Entity::find_by_id(id as i32)
        .one(f.app.db())
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.secret_encrypted.contains(SECRET), "sealed");
    assert_eq!(f.app.decrypt(&stored.secret_encrypted), SECRET);
    let new_secret = "a-new-secret-of-enough-length";
    let changed = f
        .app
        .put_as(
            &path,
            &f.admin,
            json!({"name": "billing-2", "url": f.receiver.url("/v2"), "secret": new_secret}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    let stored = ispd::webhooks::entities::webhook_endpoint::Entity::find_by_id(id as i32)
        .one(f.app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.app.decrypt(&stored.secret_encrypted), new_secret);

    // The secret is in no answer and no audit entry.
    for (method, path) in [
        (Method::GET, "/api/v1/webhooks".to_string()),
        (Method::GET, path.clone()),
        (Method::GET, format!("{path}/deliveries")),
        (Method::GET, "/api/v1/audit-log".to_string()),
    ] {
        let response = f.app.api(method, &path, &f.admin, None).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let text = response.text();
        assert!(
            !text.contains(SECRET) && !text.contains(new_secret),
            "{path}: {text}"
        );
        assert!(!text.contains("secret_encrypted"), "{path}: {text}");
    }
    assert_eq!(
        f.app.audit_entries("webhook_endpoint.create").await.len(),
        1
    );
    assert_eq!(
        f.app.audit_entries("webhook_endpoint.update").await.len(),
        2
    );

    assert_error(&f.app.delete_as(&path, &f.operator).await, 403, "forbidden");
    assert_eq!(f.app.delete_as(&path, &f.admin).await.status, 204);
    assert_error(&f.app.get_as(&path, &f.admin).await, 404, "not_found");
    assert_error(
        &f.app.get_as(&format!("{path}/deliveries"), &f.admin).await,
        404,
        "not_found",
    );
}
crate::on_every_backend!(endpoints_are_validated_admin_only_and_never_show_their_secret);
