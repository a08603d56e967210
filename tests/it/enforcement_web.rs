//! The subscriber page's "Network enforcement" panel, its Suspend and
//! Resume buttons, and the dashboard tile and gauge of changes not
//! applied. The NAS is a UDP socket on 127.0.0.1 that ACKs every CoA and
//! Disconnect it receives, correctly signed; the subscriber's live session
//! is a row in the RADIUS database's radacct.

use axum::body::Body;
use axum::http::Request;
use chrono::{Duration, Utc};
use ispd::audit::Actor;
use ispd::crypto::Secret;
use ispd::enforcement::entities::enforcement_action;
use ispd::radius::nas::NasInput;
use ispd::staff::Role;
use ispd::users::policies::service::PolicyInput;
use radius::core::code::Code;
use radius::core::packet::Packet;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, Set};

use crate::helpers::{home_20, pppoe_user, Backend, TestApp, TestBrowser, TestResponse};

const SECRET: &str = "nas-shared-secret";

/// A NAS on 127.0.0.1 that acknowledges every CoA and Disconnect.
struct AckingNas {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl AckingNas {
    async fn start() -> AckingNas {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Ok(request) = Packet::decode(&buf[..n], SECRET.as_bytes()) else {
                    continue;
                };
                let code = match request.get_code() {
                    Code::CoARequest => Code::CoAACK,
                    Code::DisconnectRequest => Code::DisconnectACK,
                    _ => continue,
                };
                let reply = request.make_response_packet(code).encode().unwrap();
                let _ = socket.send_to(&reply, from).await;
            }
        });
        AckingNas { port, task }
    }
}

impl Drop for AckingNas {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn register_nas(app: &TestApp, port: u16) {
    ispd::radius::nas::create_nas(
        &app.state.db.main,
        &app.state.db.radius,
        &Actor::system(),
        &NasInput {
            nasname: "127.0.0.1".into(),
            ports: Some(port.into()),
            secret: Some(Secret::new(SECRET)),
            ..Default::default()
        },
    )
    .await
    .expect("registering the NAS");
}

/// Opens a session in radacct, as FreeRADIUS's accounting would. Literal
/// SQL: PostgreSQL casts the text to inet.
async fn open_session(db: &DatabaseConnection, session_id: &str, username: &str, nas_ip: &str) {
    db.execute_unprepared(&format!(
        "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, \
         framedipaddress) VALUES ('{session_id}', 'u-{session_id}', '{username}', \
         '{nas_ip}', '100.64.0.9')"
    ))
    .await
    .expect("inserting a radacct row");
}

/// A throttle policy, a package that names it, and the subscriber alice
/// on it; returns (user id, policy id).
async fn subscriber(app: &TestApp) -> (i32, i32) {
    let policy = ispd::users::policies::service::create_policy(
        app.db(),
        &Actor::system(),
        &PolicyInput {
            name: "Unpaid".into(),
            action: "throttle".into(),
            download_rate: Some("1M".into()),
            upload_rate: Some("512k".into()),
            radius_group: "unpaid".into(),
            ..Default::default()
        },
    )
    .await
    .expect("the policy");
    let package = app
        .create_package(&ispd::users::service::PackageInput {
            policy_id: Some(policy.id),
            ..home_20()
        })
        .await
        .expect("the package");
    let user = app
        .create_user(&pppoe_user("alice", "Alice-pass-1", package.id))
        .await
        .expect("the user");
    (user.id, policy.id)
}

/// The panel as the user page's htmx request gets it.
async fn panel_fragment(browser: &mut TestBrowser<'_>, id: i32) -> TestResponse {
    let request = Request::get(format!("/users/{id}/enforcement"))
        .header("hx-request", "true")
        .header("cookie", browser.cookie.clone().expect("signed in"))
        .body(Body::empty())
        .unwrap();
    let response = browser.app.send(request).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("vary"), Some("HX-Request"));
    response
}

async fn status_of(app: &TestApp, id: i32) -> String {
    ispd::users::service::get_user(app.db(), id)
        .await
        .unwrap()
        .status
}

async fn an_operator_suspends_and_resumes_a_subscriber_from_its_page(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let nas = AckingNas::start().await;
    register_nas(&app, nas.port).await;
    let (id, policy) = subscriber(&app).await;
    open_session(&app.state.db.radius, "81a00001", "alice", "127.0.0.1").await;
    let mut op = app.signed_in("noc", Role::Operator).await;

    // The user page loads the panel with htmx, and links to it.
    let page = op.get(&format!("/users/{id}")).await.text();
    assert!(
        page.contains(&format!(
            "hx-get=\"/users/{id}/enforcement\" hx-trigger=\"load\""
        )),
        "{page}"
    );
    assert!(page.contains(&format!("href=\"/users/{id}/enforcement\"")));

    let fragment = panel_fragment(&mut op, id).await.text();
    assert!(!fragment.contains("<html"), "a fragment, not a page");
    assert!(fragment.contains("Network enforcement"));
    assert!(fragment.contains("data-state=\"active\""));
    assert!(fragment.contains("full package (Home 20)"), "{fragment}");
    assert!(fragment.contains(&format!("href=\"/policies/{policy}\">Unpaid</a>")));
    assert!(
        fragment.contains("No session changes yet."),
        "the empty state"
    );
    assert!(fragment.contains(&format!("action=\"/users/{id}/suspend\"")));
    assert!(fragment.contains("data-confirm=\"Suspend alice?"));
    assert!(fragment.contains("name=\"reason\""));
    assert!(
        !fragment.contains(&format!("action=\"/users/{id}/resume\"")),
        "already active"
    );

    // A reason longer than 500 characters: nothing changes.
    let long = "x".repeat(501);
    let refused = op
        .post(&format!("/users/{id}/suspend"), &[("reason", &long)])
        .await;
    assert_eq!(refused.status, 303);
    let page = op.get(&format!("/users/{id}")).await.text();
    assert!(
        page.contains("Not suspended: the reason must be at most 500 characters long."),
        "{page}"
    );
    assert_eq!(status_of(&app, id).await, "active");

    let suspended = op
        .post(
            &format!("/users/{id}/suspend"),
            &[("reason", "invoice 117 unpaid")],
        )
        .await;
    assert_eq!(suspended.status, 303, "{}", suspended.text());
    let back = format!("/users/{id}");
    assert_eq!(suspended.header("location"), Some(back.as_str()));
    let page = op.get(&back).await.text();
    assert!(
        page.contains("Suspended alice: 1 session changed by CoA, acknowledged by 127.0.0.1."),
        "{page}"
    );
    assert_eq!(status_of(&app, id).await, "suspended");

    // Without JavaScript: the panel as a page of its own.
    let full = op.get(&format!("/users/{id}/enforcement")).await;
    assert_eq!(full.status, 200);
    let html = full.text();
    assert!(html.contains("<!doctype html>") && html.contains("Network enforcement"));
    assert!(html.contains("data-state=\"suspended\""));
    assert!(html.contains("data-field=\"service\">throttle<"), "{html}");
    assert!(html.contains("Not confirmed yet: 1 session change(s) wait"));
    assert!(html.contains("data-session=\"81a00001\" data-status=\"sent\""));
    assert!(html.contains("suspended → throttle") && html.contains(">CoA<"));
    assert!(html.contains("ACK"));
    assert!(!html.contains("data-overdue"), "just sent");
    assert!(html.contains(&format!("action=\"/users/{id}/resume\"")));
    assert!(!html.contains(&format!("action=\"/users/{id}/suspend\"")));

    // The reason is in the audit log.
    let audit = op.get("/audit?q=network_user.suspend").await.text();
    assert!(audit.contains("invoice 117 unpaid"), "{audit}");

    let resumed = op.post(&format!("/users/{id}/resume"), &[]).await;
    assert_eq!(resumed.status, 303);
    let page = op.get(&back).await.text();
    assert!(
        page.contains("Resumed alice: 1 session changed by CoA, acknowledged by 127.0.0.1."),
        "{page}"
    );
    assert_eq!(status_of(&app, id).await, "active");
    let fragment = panel_fragment(&mut op, id).await.text();
    assert!(fragment.contains("data-state=\"active\""));
    assert!(fragment.contains("resumed → full package"));
    assert!(
        fragment.contains("data-status=\"superseded\""),
        "{fragment}"
    );
}
crate::on_every_backend!(an_operator_suspends_and_resumes_a_subscriber_from_its_page);

async fn a_viewer_sees_the_panel_but_no_buttons_and_cannot_post(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (id, _) = subscriber(&app).await;
    let mut viewer = app.signed_in("watcher", Role::Viewer).await;
    assert_eq!(viewer.get(&format!("/users/{id}")).await.status, 200);
    let fragment = panel_fragment(&mut viewer, id).await.text();
    assert!(fragment.contains("Network enforcement") && fragment.contains("data-state=\"active\""));
    assert!(!fragment.contains("/suspend\"") && !fragment.contains("/resume\""));
    let page = viewer.get(&format!("/users/{id}/enforcement")).await.text();
    assert!(!page.contains("/suspend\"") && !page.contains("/resume\""));

    for action in ["suspend", "resume"] {
        let response = viewer
            .post(&format!("/users/{id}/{action}"), &[("reason", "no")])
            .await;
        assert_eq!(response.status, 403, "{action}");
    }
    assert_eq!(status_of(&app, id).await, "active");
    assert_eq!(viewer.get("/users/999999/enforcement").await.status, 404);

    // An operator without the CSRF token is refused too.
    let mut op = app.signed_in("noc", Role::Operator).await;
    let forged = op
        .post_raw(&format!("/users/{id}/suspend"), &[("reason", "x")])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(status_of(&app, id).await, "active");
}
crate::on_every_backend!(a_viewer_sees_the_panel_but_no_buttons_and_cannot_post);

async fn a_session_on_an_unregistered_nas_is_listed_as_not_applied(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (id, _) = subscriber(&app).await;
    open_session(&app.state.db.radius, "81a00002", "alice", "192.0.2.1").await;
    let mut op = app.signed_in("noc", Role::Operator).await;
    op.get(&format!("/users/{id}")).await;

    let suspended = op.post(&format!("/users/{id}/suspend"), &[]).await;
    assert_eq!(suspended.status, 303);
    let page = op.get(&format!("/users/{id}")).await.text();
    assert!(
        page.contains(
            "Suspended alice: 1 session not changed: NAS 192.0.2.1 is not registered (add it under NAS)."
        ),
        "{page}"
    );
    assert!(
        page.contains("border-red-300 bg-red-50 text-red-900\">Suspended alice"),
        "shown as an error"
    );

    let fragment = panel_fragment(&mut op, id).await.text();
    assert!(fragment.contains("data-session=\"81a00002\" data-status=\"not_applied\""));
    assert!(fragment.contains("192.0.2.1") && fragment.contains("NAS not registered"));
    assert!(fragment.contains("Not confirmed: 1 session change(s) below were not applied."));
}
crate::on_every_backend!(a_session_on_an_unregistered_nas_is_listed_as_not_applied);

/// An action row as the enforcement service writes one, `age` old.
async fn insert_action(app: &TestApp, user_id: i32, session: &str, status: &str, age: Duration) {
    let at = Utc::now() - age;
    enforcement_action::ActiveModel {
        user_id: Set(Some(user_id)),
        username: Set("alice".into()),
        reason: Set("suspended".into()),
        target: Set("throttle".into()),
        request: Set("coa".into()),
        radacctid: Set(Some(1)),
        acct_session_id: Set(session.into()),
        nas: Set("192.0.2.1".into()),
        status: Set(status.into()),
        outcome: Set(Some("no_answer".into())),
        attempts: Set(3),
        next_attempt_at: Set(Some(Utc::now().into())),
        created_at: Set(at.into()),
        updated_at: Set(at.into()),
        ..Default::default()
    }
    .insert(app.db())
    .await
    .expect("an action row");
}

async fn the_dashboard_and_metrics_count_the_changes_not_applied(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (id, _) = subscriber(&app).await;
    let token = app.create_token(Role::Viewer).await;
    let mut viewer = app.signed_in("watcher", Role::Viewer).await;

    let dashboard = viewer.get("/").await.text();
    assert!(dashboard.contains("Enforcement not applied"));
    assert!(
        dashboard
            .contains("data-figure=\"enforcement-unconfirmed\" data-count=\"0\">All confirmed"),
        "{dashboard}"
    );
    let metrics = app.get_as("/metrics", &token).await.text();
    assert!(metrics.contains("# TYPE ispd_enforcement_unconfirmed gauge\n"));
    assert!(
        metrics.contains("\nispd_enforcement_unconfirmed 0\n"),
        "{metrics}"
    );

    // Pending for ten minutes: counted; just sent: not yet.
    insert_action(&app, id, "81a00003", "pending", Duration::minutes(10)).await;
    insert_action(&app, id, "81a00004", "sent", Duration::seconds(5)).await;

    let dashboard = viewer.get("/").await.text();
    assert!(
        dashboard.contains("data-figure=\"enforcement-unconfirmed\" data-count=\"1\">1</a>"),
        "{dashboard}"
    );
    assert!(dashboard.contains("href=\"/jobs?job=enforcement\""));
    let figures = viewer.get("/dashboard/figures").await.text();
    assert!(figures.contains("data-count=\"1\""), "the live panels too");
    let metrics = app.get_as("/metrics", &token).await.text();
    assert!(
        metrics.contains("\nispd_enforcement_unconfirmed 1\n"),
        "{metrics}"
    );
    let figures = ispd::dashboard::figures(app.db(), &app.state.db.radius, Utc::now())
        .await
        .unwrap();
    assert_eq!(figures.enforcement_unconfirmed, 1);

    // The subscriber's panel marks the late one overdue.
    let fragment = panel_fragment(&mut viewer, id).await.text();
    let late = fragment
        .split("data-session=\"81a00003\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the late change's row");
    assert!(late.contains("data-overdue=\"true\""), "{late}");
    let recent = fragment
        .split("data-session=\"81a00004\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the recent change's row");
    assert!(!recent.contains("data-overdue"), "{recent}");
    assert!(recent.contains("no answer"));
}
crate::on_every_backend!(the_dashboard_and_metrics_count_the_changes_not_applied);
