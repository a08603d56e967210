//! Subscriber state enforced on live sessions, end to end with Debian's
//! FreeRADIUS: it authenticates the subscriber and records its accounting
//! in the app's RADIUS database, and its CoA listener (tests/it/freeradius/
//! nas-coa.conf) plays the NAS: it ACKs a CoA or Disconnect for a session
//! open in radacct, and a Disconnect ends that session as a router's
//! Accounting-Stop would.

use axum::http::Method;
use ispd::audit::Actor;
use ispd::crypto::Secret;
use ispd::radius::coa::CoaSettings;
use ispd::radius::nas::NasInput;
use serde_json::{json, Value};

use crate::freeradius::FreeRadius;
use crate::helpers::{assert_error, free_port, ApiFixture, Backend};

pub(crate) const PASSWORD: &str = "Walled-garden 1 pass";

pub(crate) struct Fixture {
    // Dropped first: FreeRADIUS stops before its database is dropped.
    pub(crate) radius: FreeRadius,
    pub(crate) api: ApiFixture,
}

/// The app, FreeRADIUS over its RADIUS DB, and that FreeRADIUS's CoA
/// listener registered as the NAS at 127.0.0.1 (`coa_port`: the port ispd
/// sends to, the real one unless a test wants the NAS down).
pub(crate) async fn spawn(backend: Backend) -> Option<Fixture> {
    crate::freeradius::binaries()?;
    let api = ApiFixture::spawn(backend).await?;
    let radius = FreeRadius::start(&api.app).await?;
    let f = Fixture { radius, api };
    f.register_nas(f.radius.coa_port()).await;
    Some(f)
}

impl Fixture {
    async fn register_nas(&self, port: u16) {
        let app = &self.api.app;
        let existing = ispd::radius::nas::find_by_nasname(&app.state.db.radius, "127.0.0.1")
            .await
            .unwrap();
        let input = NasInput {
            nasname: "127.0.0.1".into(),
            ports: Some(port.into()),
            secret: Some(Secret::new(self.radius.secret())),
            ..Default::default()
        };
        match existing {
            Some(nas) => {
                ispd::radius::nas::update_nas(
                    &app.state.db.main,
                    &app.state.db.radius,
                    &Actor::system(),
                    nas.id,
                    &input,
                )
                .await
                .expect("moving the NAS");
            }
            None => {
                ispd::radius::nas::create_nas(
                    &app.state.db.main,
                    &app.state.db.radius,
                    &Actor::system(),
                    &input,
                )
                .await
                .expect("registering the NAS");
            }
        }
    }

    pub(crate) async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let response = self.api.send(method.clone(), path, body).await;
        assert!(
            response.status.is_success(),
            "{method} {path}: {} {}",
            response.status,
            response.text()
        );
        response.json()
    }

    async fn subscriber(&self, username: &str, policy: Option<Value>) -> Value {
        let policy_id = match policy {
            Some(body) => json!(self.ok(Method::POST, "/api/v1/policies", Some(body)).await["id"]),
            None => Value::Null,
        };
        let package = self
            .ok(
                Method::POST,
                "/api/v1/packages",
                Some(
                    json!({"name": format!("Home {username}"), "download_rate": "20M",
                    "upload_rate": "5M", "radius_group": format!("home-{username}"),
                    "policy_id": policy_id}),
                ),
            )
            .await;
        self.ok(
            Method::POST,
            "/api/v1/users",
            Some(
                json!({"username": username, "password": PASSWORD, "service_type": "pppoe",
                "package_id": package["id"]}),
            ),
        )
        .await
    }

    /// Logs the subscriber in and starts its accounting session, as a
    /// router would.
    async fn online(&self, username: &str, session: &str) {
        let reply = self.radius.authenticate_pap(username, PASSWORD).await;
        assert_eq!(reply.code, "Access-Accept", "{reply}");
        let now = chrono::Utc::now().timestamp().to_string();
        let reply = self
            .radius
            .send("acct", &accounting(username, session, "Start", &now))
            .await;
        assert_eq!(reply.code, "Accounting-Response", "{reply}");
    }

    async fn interim(&self, username: &str, session: &str) {
        // Event-Timestamp a second ahead: after the CoA's acknowledgement.
        let at = (chrono::Utc::now().timestamp() + 1).to_string();
        let reply = self
            .radius
            .send(
                "acct",
                &accounting(username, session, "Interim-Update", &at),
            )
            .await;
        assert_eq!(reply.code, "Accounting-Response", "{reply}");
    }

    pub(crate) async fn pass(&self, now: chrono::DateTime<chrono::Utc>) {
        let state = &self.api.app.state;
        ispd::enforcement::delivery::deliver_and_confirm(
            &state.db,
            &state.router_pool,
            coa_settings(),
            &Actor::system(),
            now,
        )
        .await
        .expect("an enforcement pass");
    }

    /// What the enforcement job reaches, with a quick NAS timeout.
    pub(crate) fn reach(&self) -> ispd::enforcement::Reach {
        let state = &self.api.app.state;
        let mut reach = ispd::enforcement::Reach::new(
            state.db.clone(),
            state.app_key.clone(),
            state.router_pool.clone(),
            &state.config,
        );
        reach.coa = coa_settings();
        reach
    }

    pub(crate) async fn enforcement(&self, user: &Value) -> Value {
        let response = self
            .api
            .view(&format!("/api/v1/users/{}/enforcement", user["id"]))
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }
}

fn coa_settings() -> CoaSettings {
    CoaSettings {
        attempts: 2,
        timeout: std::time::Duration::from_millis(500),
    }
}

pub(crate) fn accounting<'a>(
    username: &'a str,
    session: &'a str,
    status: &'a str,
    at: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("User-Name", username),
        ("Acct-Session-Id", session),
        ("Acct-Status-Type", status),
        ("Event-Timestamp", at),
        ("NAS-IP-Address", "127.0.0.1"),
        ("NAS-Port-Id", "pppoe-ether2"),
        ("Framed-IP-Address", "100.64.9.7"),
        ("Framed-Protocol", "PPP"),
    ]
}

fn only_session(view: &Value) -> &Value {
    let sessions = view["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{view}");
    &sessions[0]
}

/// A webhook endpoint named `name` that takes `events` (its URL is never
/// called here: no delivery pass runs); returns its id.
pub(crate) async fn webhook_endpoint(f: &Fixture, name: &str, events: &[&str]) -> i32 {
    let app = &f.api.app;
    ispd::webhooks::service::create_endpoint(
        app.db(),
        &app.state.app_key,
        &Actor::system(),
        &ispd::webhooks::service::EndpointInput {
            name: name.into(),
            url: "http://127.0.0.1:9/hooks".into(),
            secret: Some(Secret::new(format!("{name}-secret-0123456789"))),
            events: Some(events.iter().map(|e| e.to_string()).collect()),
            active: true,
        },
    )
    .await
    .expect("a webhook endpoint")
    .id
}

/// An endpoint that takes `enforcement.confirmed`.
async fn confirmations_endpoint(f: &Fixture) -> i32 {
    webhook_endpoint(f, "billing", &["enforcement.confirmed"]).await
}

/// The payloads queued for an endpoint, oldest first.
pub(crate) async fn queued_events(f: &Fixture, endpoint_id: i32) -> Vec<Value> {
    let page = ispd::query::PageRequest {
        page: 1,
        per_page: 50,
    };
    let (deliveries, _) =
        ispd::webhooks::service::list_deliveries(f.api.app.db(), endpoint_id, page)
            .await
            .unwrap();
    deliveries
        .iter()
        .rev()
        .map(|d| serde_json::from_str(&d.payload).unwrap())
        .collect()
}

async fn a_suspension_moves_the_live_session_into_the_walled_garden_and_is_confirmed(
    backend: Backend,
) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let user = f
        .subscriber(
            "alice",
            Some(
                json!({"name": "Unpaid", "action": "walled_garden", "download_rate": "1M",
                "upload_rate": "512k", "address_list": "unpaid", "radius_group": "unpaid"}),
            ),
        )
        .await;
    f.online("alice", "a1000001").await;
    let billing = confirmations_endpoint(&f).await;

    let suspended = f
        .ok(
            Method::POST,
            &format!("/api/v1/users/{}/suspend", user["id"]),
            Some(json!({"reason": "invoice 117 unpaid"})),
        )
        .await;
    assert_eq!(suspended["state"], "suspended");
    assert_eq!(suspended["target"], "walled_garden");
    assert_eq!(suspended["radius_written"], true);
    let change = only_session(&suspended);
    assert_eq!(change["request"], "coa", "changed in place: {change}");
    assert_eq!(change["outcome"], "ack", "{change}");
    assert_eq!(change["status"], "sent", "{change}");
    assert_eq!(change["acct_session_id"], "a1000001");

    // Not confirmed until the session shows it.
    let view = f.enforcement(&user).await;
    assert_eq!(view["confirmed"], false, "{view}");
    assert_eq!(view["policy"]["name"], "Unpaid");
    f.pass(chrono::Utc::now()).await;
    assert_eq!(only_session(&f.enforcement(&user).await)["status"], "sent");

    // The next interim update: the session lived on with the change.
    f.interim("alice", "a1000001").await;
    f.pass(chrono::Utc::now()).await;
    let view = f.enforcement(&user).await;
    assert_eq!(only_session(&view)["status"], "confirmed", "{view}");
    assert_eq!(view["confirmed"], true, "{view}");
    // Billing is told, once, as a webhook event.
    let told = queued_events(&f, billing).await;
    assert_eq!(told.len(), 1, "{told:?}");
    let data = &told[0]["data"];
    assert_eq!(told[0]["type"], "enforcement.confirmed");
    assert_eq!(data["username"], "alice");
    assert_eq!(data["session_id"], "a1000001");
    assert_eq!(data["request"], "coa");
    assert_eq!(data["outcome"], "ack");
    assert_eq!(data["target"], "walled_garden");

    // A new login gets the walled garden too.
    let reply = f.radius.authenticate_pap("alice", PASSWORD).await;
    assert_eq!(reply.code, "Access-Accept", "{reply}");
    assert_eq!(
        reply.get("Mikrotik-Address-List"),
        Some("unpaid"),
        "{reply}"
    );
    assert_eq!(reply.get("Mikrotik-Rate-Limit"), Some("512k/1M"), "{reply}");

    // Resumed: the address list cannot be taken back by CoA, so the
    // session is ended and logs in again into the full service.
    let resumed = f
        .ok(
            Method::POST,
            &format!("/api/v1/users/{}/resume", user["id"]),
            None,
        )
        .await;
    assert_eq!(resumed["target"], "active");
    let change = only_session(&resumed);
    assert_eq!(change["request"], "disconnect", "{change}");
    assert_eq!(change["outcome"], "ack", "{change}");
    f.pass(chrono::Utc::now()).await;
    let view = f.enforcement(&user).await;
    assert_eq!(view["sessions"][0]["status"], "confirmed", "{view}");
    assert_eq!(
        view["sessions"][1]["status"], "confirmed",
        "the earlier one"
    );
    let told = queued_events(&f, billing).await;
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(told[1]["data"]["request"], "disconnect");
    assert_eq!(told[1]["data"]["reason"], "resumed");
    let reply = f.radius.authenticate_pap("alice", PASSWORD).await;
    assert_eq!(reply.get("Mikrotik-Rate-Limit"), Some("5M/20M"), "{reply}");
    assert_eq!(reply.get("Mikrotik-Address-List"), None, "{reply}");

    // Every step is in the audit log: the status change with its reason,
    // and each request to the NAS.
    let suspends = f.api.app.audit_entries("network_user.suspend").await;
    assert_eq!(suspends.len(), 1);
    assert!(
        suspends[0]
            .details
            .as_deref()
            .unwrap()
            .contains("invoice 117 unpaid"),
        "{:?}",
        suspends[0].details
    );
    assert_eq!(f.api.app.audit_entries("radius_session.coa").await.len(), 1);
}
crate::on_server_backends!(
    a_suspension_moves_the_live_session_into_the_walled_garden_and_is_confirmed
);

async fn a_reject_policy_disconnects_and_a_change_made_while_the_nas_is_down_arrives_when_it_returns(
    backend: Backend,
) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let user = f.subscriber("bob", None).await;
    f.online("bob", "b2000001").await;

    // The NAS is down: nothing listens where ispd sends.
    f.register_nas(free_port()).await;
    let suspended = f
        .ok(
            Method::POST,
            &format!("/api/v1/users/{}/suspend", user["id"]),
            None,
        )
        .await;
    assert_eq!(suspended["target"], "reject");
    let change = only_session(&suspended);
    assert_eq!(change["request"], "disconnect", "{change}");
    assert_eq!(change["status"], "pending", "{change}");
    assert!(
        matches!(
            change["outcome"].as_str(),
            Some("unreachable" | "no_answer")
        ),
        "{change}"
    );
    // FreeRADIUS refuses a new login at once, whatever the NAS does.
    let reply = f.radius.authenticate_pap("bob", PASSWORD).await;
    assert_eq!(reply.code, "Access-Reject", "{reply}");

    // The NAS is back; the next pass after the back-off sends it again.
    f.register_nas(f.radius.coa_port()).await;
    f.pass(chrono::Utc::now() + chrono::Duration::minutes(15))
        .await;
    let view = f.enforcement(&user).await;
    let change = only_session(&view);
    assert_eq!(change["outcome"], "ack", "{view}");
    assert!(change["attempts"].as_i64().unwrap() >= 2, "{view}");
    // The NAS ended the session (its Accounting-Stop): confirmed.
    f.pass(chrono::Utc::now()).await;
    let view = f.enforcement(&user).await;
    assert_eq!(only_session(&view)["status"], "confirmed", "{view}");
    assert_eq!(view["confirmed"], true, "{view}");
    let online = f.ok(Method::GET, "/api/v1/radius/online?q=bob", None).await;
    assert_eq!(online["data"].as_array().unwrap().len(), 0, "{online}");
}
crate::on_server_backends!(
    a_reject_policy_disconnects_and_a_change_made_while_the_nas_is_down_arrives_when_it_returns
);

async fn bulk_suspension_answers_per_subscriber_and_the_minute_job_enforces_an_expiry(
    backend: Backend,
) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let carol = f
        .subscriber(
            "carol",
            Some(
                json!({"name": "Slow", "action": "throttle", "download_rate": "256k",
                "upload_rate": "256k", "radius_group": "slow"}),
            ),
        )
        .await;
    f.online("carol", "c3000001").await;
    let bulk = f
        .ok(
            Method::POST,
            "/api/v1/users/suspend",
            Some(json!({"usernames": ["carol", "nobody"], "reason": "unpaid"})),
        )
        .await;
    assert_eq!(bulk["changed"], 1, "{bulk}");
    assert_eq!(bulk["failed"], 1, "{bulk}");
    assert_eq!(bulk["items"][0]["key"], "carol");
    let change = only_session(&bulk["items"][0]["result"]);
    assert_eq!(change["request"], "coa", "{bulk}");
    assert_eq!(change["target"], "throttle", "{bulk}");
    assert_eq!(bulk["items"][1]["error"]["code"], "not_found", "{bulk}");
    let empty = f
        .api
        .post("/api/v1/users/suspend", json!({"ids": []}))
        .await;
    assert_error(&empty, 422, "validation_failed");

    // An expiry passing is found by the minute job and enforced.
    let dave = f.subscriber("dave", None).await;
    f.online("dave", "d4000001").await;
    let app = &f.api.app;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    ispd::users::entities::network_user::Entity::update_many()
        .col_expr(
            ispd::users::entities::network_user::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(
                (chrono::Utc::now() - chrono::Duration::minutes(1)).fixed_offset(),
            ),
        )
        .filter(
            ispd::users::entities::network_user::Column::Id.eq(dave["id"].as_i64().unwrap() as i32),
        )
        .exec(&app.state.db.main)
        .await
        .unwrap();
    let report = ispd::enforcement::service::run_pass(&f.reach(), &Actor::system())
        .await
        .unwrap();
    assert_eq!(report.enforced, 1, "{report:?}");
    let view = f.enforcement(&dave).await;
    assert_eq!(view["state"], "expired", "{view}");
    assert_eq!(view["target"], "reject", "{view}");
    let change = only_session(&view);
    assert_eq!(change["reason"], "expired");
    assert_eq!(change["request"], "disconnect");
    // A second pass finds nothing new to enforce.
    let again = ispd::enforcement::service::run_pass(&f.reach(), &Actor::system())
        .await
        .unwrap();
    assert_eq!(again.enforced, 0, "{again:?}");
    let _ = carol;
}
crate::on_server_backends!(
    bulk_suspension_answers_per_subscriber_and_the_minute_job_enforces_an_expiry
);

async fn a_new_rate_on_the_package_reaches_the_live_session_by_coa(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let user = f.subscriber("erin", None).await;
    f.online("erin", "e5000001").await;
    let (reach, system) = (f.reach(), Actor::system());
    let pass = || ispd::enforcement::service::run_pass(&reach, &system);
    // The first pass records what the active subscriber already has.
    let first = pass().await.unwrap();
    assert_eq!(first.enforced, 0, "{first:?}");
    assert_eq!(f.enforcement(&user).await["sessions"], json!([]));

    let package_id = user["package_id"].as_i64().unwrap();
    let mut package = f
        .ok(Method::GET, &format!("/api/v1/packages/{package_id}"), None)
        .await;
    package["download_rate"] = json!("50M");
    package["upload_rate"] = json!("10M");
    f.ok(
        Method::PUT,
        &format!("/api/v1/packages/{package_id}"),
        Some(package),
    )
    .await;
    let report = pass().await.unwrap();
    assert_eq!(report.enforced, 1, "{report:?}");
    let view = f.enforcement(&user).await;
    let change = only_session(&view);
    assert_eq!(change["reason"], "changed", "{view}");
    assert_eq!(change["request"], "coa", "in place, no redial: {view}");
    assert_eq!(change["outcome"], "ack", "{view}");
    let attributes = f.api.app.audit_entries("radius_session.coa").await;
    assert!(
        attributes[0]
            .details
            .as_deref()
            .unwrap()
            .contains("10M/50M"),
        "{:?}",
        attributes[0].details
    );
    // Nothing more to do on the next pass.
    assert_eq!(pass().await.unwrap().enforced, 0);
}
crate::on_server_backends!(a_new_rate_on_the_package_reaches_the_live_session_by_coa);

/// frank, on a package with the router's `default` profile (and `policy`),
/// whose PPP secret the router keeps; returns its id.
async fn frank_on_router(f: &ApiFixture, router_id: i64, policy: Option<i64>) -> i64 {
    let package = f
        .created_id(
            "/api/v1/packages",
            json!({"name": "Home", "download_rate": "20M", "upload_rate": "5M",
                "radius_group": "home", "mikrotik_profile": "default", "policy_id": policy}),
        )
        .await;
    let user = f
        .created_id(
            "/api/v1/users",
            json!({"username": "frank", "password": PASSWORD, "service_type": "pppoe",
                "package_id": package}),
        )
        .await;
    f.created_id(
        "/api/v1/mikrotik/pppoe-users",
        json!({"router_id": router_id, "network_user_id": user}),
    )
    .await;
    user
}

async fn a_suspended_subscriber_with_a_router_secret_is_cut_off_on_the_router(backend: Backend) {
    use ispd::mikrotik::routeros::mock::MockRouter;
    let Some(f) = ApiFixture::spawn_with(backend, &[("MIKROTIK_API_TIMEOUT", "2")]).await else {
        return;
    };
    let mock = MockRouter::start("ispd-api", "R0uter pass").await.unwrap();
    let router_id = f
        .add_router("core-1", mock.addr(), "ispd-api", "R0uter pass")
        .await;
    let user = frank_on_router(&f, router_id, None).await;
    mock.login_session("frank", "100.64.0.30", "AA:BB:CC:00:00:30");
    mock.login_session("grace", "100.64.0.31", "AA:BB:CC:00:00:31");

    let suspended = f
        .post(&format!("/api/v1/users/{user}/suspend"), json!({}))
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text());
    let suspended = suspended.json();
    let cut = only_session(&suspended);
    assert_eq!(cut["request"], "router_disconnect", "{suspended}");
    assert_eq!(cut["outcome"], "removed", "{suspended}");
    assert_eq!(
        cut["status"], "confirmed",
        "the router's read shows it: {suspended}"
    );
    let secret = mock
        .rows("/ppp/secret")
        .into_iter()
        .find(|row| row.get("name").map(String::as_str) == Some("frank"))
        .expect("the secret");
    assert_eq!(secret.get("disabled").map(String::as_str), Some("true"));
    let online: Vec<String> = mock
        .rows("/ppp/active")
        .into_iter()
        .filter_map(|row| row.get("name").cloned())
        .collect();
    assert_eq!(online, ["grace"], "only frank's session is cut");

    // Resumed: the secret is enabled again; nothing to cut.
    let resumed = f
        .post(&format!("/api/v1/users/{user}/resume"), json!({}))
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text());
    let secret = mock
        .rows("/ppp/secret")
        .into_iter()
        .find(|row| row.get("name").map(String::as_str) == Some("frank"))
        .unwrap();
    assert_eq!(secret.get("disabled").map(String::as_str), Some("false"));
    assert_eq!(resumed.json()["sessions"], json!([]));
}
crate::on_every_backend!(a_suspended_subscriber_with_a_router_secret_is_cut_off_on_the_router);

/// A walled-garden policy with a PPP profile: a subscriber whose secret a
/// router keeps (no RADIUS) is moved to that profile rather than cut off,
/// and back to its package's on resume; each move ends its session there,
/// so that it redials into the new profile.
async fn a_policy_profile_walls_in_a_subscriber_with_a_router_secret(backend: Backend) {
    use ispd::mikrotik::routeros::mock::MockRouter;
    use ispd::mikrotik::routeros::Client;
    let Some(f) = ApiFixture::spawn_with(backend, &[("MIKROTIK_API_TIMEOUT", "2")]).await else {
        return;
    };
    let mock = MockRouter::start("ispd-api", "R0uter pass").await.unwrap();
    // The router's walled-garden profile, as its admin sets it up
    // (docs/NETWORK_SERVICES.md): a low rate and the address list the
    // firewall redirects.
    let console = Client::connect(
        &mock.addr().to_string(),
        "ispd-api",
        "R0uter pass",
        std::time::Duration::from_secs(3),
    )
    .await
    .unwrap();
    console
        .command(
            "/ppp/profile/add",
            &[
                ("name", "unpaid"),
                ("rate-limit", "512k/1M"),
                ("address-list", "unpaid"),
            ],
            &[],
        )
        .await
        .unwrap();
    console.close().await;
    let router_id = f
        .add_router("core-1", mock.addr(), "ispd-api", "R0uter pass")
        .await;
    let policy = f
        .created_id(
            "/api/v1/policies",
            json!({"name": "Unpaid", "action": "walled_garden", "download_rate": "1M",
                "upload_rate": "512k", "address_list": "unpaid", "radius_group": "unpaid",
                "mikrotik_profile": "unpaid"}),
        )
        .await;
    let user = frank_on_router(&f, router_id, Some(policy)).await;
    let secret = |mock: &MockRouter| {
        mock.rows("/ppp/secret")
            .into_iter()
            .find(|row| row.get("name").map(String::as_str) == Some("frank"))
            .expect("the secret")
    };
    mock.login_session("frank", "100.64.0.30", "AA:BB:CC:00:00:30");

    let suspended = f
        .post(&format!("/api/v1/users/{user}/suspend"), json!({}))
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text());
    let suspended = suspended.json();
    assert_eq!(suspended["target"], "walled_garden");
    let cut = only_session(&suspended);
    assert_eq!(cut["request"], "router_disconnect", "{suspended}");
    assert_eq!(cut["status"], "confirmed", "{suspended}");
    let walled = secret(&mock);
    assert_eq!(walled.get("profile").map(String::as_str), Some("unpaid"));
    assert_eq!(
        walled.get("disabled").map(String::as_str),
        Some("false"),
        "it may log in, into the walled garden"
    );
    assert!(mock.rows("/ppp/active").is_empty());

    // It redials into the walled garden; resumed, it is moved back and its
    // session ended again, so that it redials into its package.
    mock.login_session("frank", "100.64.0.30", "AA:BB:CC:00:00:30");
    let resumed = f
        .post(&format!("/api/v1/users/{user}/resume"), json!({}))
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text());
    let resumed = resumed.json();
    let cut = only_session(&resumed);
    assert_eq!(cut["request"], "router_disconnect", "{resumed}");
    assert_eq!(cut["status"], "confirmed", "{resumed}");
    let back = secret(&mock);
    assert_eq!(back.get("profile").map(String::as_str), Some("default"));
    assert_eq!(back.get("disabled").map(String::as_str), Some("false"));
    assert!(mock.rows("/ppp/active").is_empty());
}
crate::on_every_backend!(a_policy_profile_walls_in_a_subscriber_with_a_router_secret);
