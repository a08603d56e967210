//! RFC 5176 Disconnect/CoA from ispd: `POST /api/v1/radius/sessions/{id}/
//! disconnect` and `/coa`, and the page action.
//!
//! - Against a local UDP socket that never answers (a real socket): the
//!   request is retransmitted `RADIUS_COA_ATTEMPTS` times, identically and
//!   correctly signed, then the answer is 504; each attempt is audited.
//! - Against a closed port: ICMP port-unreachable, 502.
//! - Against a REAL FreeRADIUS acting as the NAS (tests/it/freeradius.rs's
//!   pretend NAS, on a database of its own that stands for the router's
//!   session table): ACK for a session it holds, NAK with Error-Cause
//!   Session-Context-Not-Found for one it does not.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use ispd::audit::entities::audit_log;
use ispd::audit::Actor;
use ispd::crypto::Secret;
use ispd::radius::nas::NasInput;
use ispd::staff::Role;
use migration::{MigratorTrait, RadiusMigrator};
use sea_orm::{ColumnTrait, QuerySelect};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::freeradius::{FreeRadius, Settings};
use crate::helpers::{
    assert_error, assert_error_says, ApiFixture, Backend, TestApp, TestDb, TestResponse,
};

const SECRET: &str = "nas-shared-secret";

async fn call(app: &TestApp, path: &str, token: &str, body: Option<Value>) -> TestResponse {
    app.api(Method::POST, path, token, body).await
}

/// Opens a session in `db`'s radacct (as FreeRADIUS's accounting would) and
/// returns its radacctid. Literal SQL: PostgreSQL casts the text to inet.
async fn open_session(
    db: &DatabaseConnection,
    session_id: &str,
    username: &str,
    nas_ip: &str,
    framed_ip: &str,
) -> i64 {
    // Without an address the column keeps its default ('' or NULL).
    let (framed_column, framed_value) = if framed_ip.is_empty() {
        (String::new(), String::new())
    } else {
        (", framedipaddress".to_string(), format!(", '{framed_ip}'"))
    };
    db.execute_unprepared(&format!(
        "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress\
         {framed_column}) VALUES ('{session_id}', 'u-{session_id}', '{username}', \
         '{nas_ip}'{framed_value})"
    ))
    .await
    .expect("inserting a radacct row");
    use ispd::radius::entities::radacct;
    radacct::Entity::find()
        .select_only()
        .column(radacct::Column::Radacctid)
        .filter(radacct::Column::Acctuniqueid.eq(format!("u-{session_id}")))
        .into_tuple::<i64>()
        .one(db)
        .await
        .unwrap()
        .expect("the new row")
}

async fn register_nas(app: &TestApp, nasname: &str, port: u16, secret: &str) {
    ispd::radius::nas::create_nas(
        &app.state.db.main,
        &app.state.db.radius,
        &Actor::system(),
        &NasInput {
            nasname: nasname.into(),
            ports: Some(port.into()),
            secret: Some(Secret::new(secret)),
            ..Default::default()
        },
    )
    .await
    .expect("registering the NAS");
}

/// The audit entries of one action, oldest first, with their details.
async fn attempts(app: &TestApp, action: &str) -> Vec<(audit_log::Model, Value)> {
    app.audit_entries(action)
        .await
        .into_iter()
        .map(|entry| {
            let details = serde_json::from_str(entry.details.as_deref().unwrap()).unwrap();
            (entry, details)
        })
        .collect()
}

/// A UDP socket on 127.0.0.1 that records every datagram and never answers.
struct SilentNas {
    port: u16,
    received: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentNas {
    async fn start() -> SilentNas {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let (tx, received) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, _from)) = socket.recv_from(&mut buf).await {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        SilentNas {
            port,
            received,
            task,
        }
    }

    fn datagrams(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Ok(d) = self.received.try_recv() {
            out.push(d);
        }
        out
    }
}

impl Drop for SilentNas {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port on 127.0.0.1 where nothing listens (found free, then released).
fn closed_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

async fn an_unanswered_disconnect_is_retransmitted_then_answered_504(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("RADIUS_COA_ATTEMPTS", "3"),
            ("RADIUS_COA_TIMEOUT_MS", "250"),
        ],
    )
    .await
    else {
        return;
    };
    let op = app.create_token(Role::Operator).await;
    let mut nas = SilentNas::start().await;
    register_nas(&app, "127.0.0.1", nas.port, SECRET).await;
    let id = open_session(
        &app.state.db.radius,
        "81a00001",
        "alice",
        "127.0.0.1",
        "100.64.0.9",
    )
    .await;

    let started = Instant::now();
    let response = call(
        &app,
        &format!("/api/v1/radius/sessions/{id}/disconnect"),
        &op,
        None,
    )
    .await;
    let elapsed = started.elapsed();
    let error = assert_error(&response, 504, "nas_timeout");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("3 attempt(s)"), "{message}");
    assert!(!response.text().contains(SECRET));
    assert!(
        elapsed >= Duration::from_millis(3 * 250),
        "waited {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(15), "waited {elapsed:?}");

    // Three identical, correctly signed Disconnect-Requests naming the session.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let datagrams = nas.datagrams();
    assert_eq!(datagrams.len(), 3, "one per attempt");
    assert!(
        datagrams.iter().all(|d| d == &datagrams[0]),
        "a retransmission is the same packet"
    );
    let packet = &datagrams[0];
    assert_eq!(packet[0], 40, "Disconnect-Request");
    assert!(radius::core::packet::Packet::is_authentic_request(
        packet,
        SECRET.as_bytes()
    ));
    let decoded = radius::core::packet::Packet::decode(packet, SECRET.as_bytes()).unwrap();
    use radius::core::{rfc2865, rfc2866};
    assert_eq!(
        rfc2865::lookup_user_name(&decoded).unwrap().unwrap(),
        "alice"
    );
    assert_eq!(
        rfc2866::lookup_acct_session_id(&decoded).unwrap().unwrap(),
        "81a00001"
    );
    assert_eq!(
        rfc2865::lookup_nas_ip_address(&decoded)
            .unwrap()
            .unwrap()
            .to_string(),
        "127.0.0.1"
    );
    assert_eq!(
        rfc2865::lookup_framed_ip_address(&decoded)
            .unwrap()
            .unwrap()
            .to_string(),
        "100.64.0.9"
    );

    // One audit entry per attempt, each with its outcome.
    let entries = attempts(&app, "radius_session.disconnect").await;
    assert_eq!(entries.len(), 3);
    for (n, (entry, details)) in entries.iter().enumerate() {
        assert_eq!(entry.entity_type, "radius_session");
        assert_eq!(entry.entity_id.as_deref(), Some(id.to_string().as_str()));
        assert_eq!(details["attempt"], n as u64 + 1);
        assert_eq!(details["of"], 3);
        assert_eq!(details["outcome"], "no_answer");
        assert_eq!(details["port"], nas.port);
        assert!(!entry.details.as_deref().unwrap().contains(SECRET));
    }
    assert_eq!(entries[2].1["final"], true);
}
crate::on_every_backend!(an_unanswered_disconnect_is_retransmitted_then_answered_504);

async fn a_closed_port_is_unreachable_502(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("RADIUS_COA_ATTEMPTS", "3"),
            ("RADIUS_COA_TIMEOUT_MS", "500"),
        ],
    )
    .await
    else {
        return;
    };
    let op = app.create_token(Role::Operator).await;
    register_nas(&app, "127.0.0.1", closed_port(), SECRET).await;
    let id = open_session(&app.state.db.radius, "81a00002", "bob", "127.0.0.1", "").await;
    let response = call(
        &app,
        &format!("/api/v1/radius/sessions/{id}/coa"),
        &op,
        Some(json!({"rate_limit": "5M/20M"})),
    )
    .await;
    assert_error_says(&response, 502, "nas_unreachable", "port unreachable");
    let entries = attempts(&app, "radius_session.coa").await;
    assert_eq!(entries.len(), 1, "no retransmission to a refusing host");
    assert_eq!(entries[0].1["outcome"], "unreachable");
    assert_eq!(entries[0].1["rate_limit"], "5M/20M");
}
crate::on_every_backend!(a_closed_port_is_unreachable_502);

async fn sessions_that_cannot_be_targeted_are_refused_before_sending(backend: Backend) {
    let Some(ApiFixture { app, op, viewer }) = ApiFixture::spawn(backend).await else {
        return;
    };
    let path = |id: i64, action: &str| format!("/api/v1/radius/sessions/{id}/{action}");

    let missing = call(&app, &path(987654, "disconnect"), &op, None).await;
    assert_error(&missing, 404, "not_found");

    let unregistered =
        open_session(&app.state.db.radius, "81a00003", "carol", "192.0.2.77", "").await;
    let response = call(&app, &path(unregistered, "disconnect"), &op, None).await;
    assert_error_says(&response, 409, "nas_not_registered", "192.0.2.77");

    register_nas(&app, "192.0.2.77", 3799, SECRET).await;
    app.state
        .db
        .radius
        .execute_unprepared(&format!(
            "UPDATE radacct SET acctstoptime = CURRENT_TIMESTAMP WHERE radacctid = {unregistered}"
        ))
        .await
        .unwrap();
    let closed = call(&app, &path(unregistered, "disconnect"), &op, None).await;
    assert_error(&closed, 409, "session_closed");

    let open = open_session(&app.state.db.radius, "81a00004", "carol", "192.0.2.77", "").await;
    for (body, field) in [
        (json!({}), "_body"),
        (json!({"rate_limit": "fast"}), "rate_limit"),
        (json!({"session_timeout_secs": 0}), "session_timeout_secs"),
        (
            json!({"rate_limit": "5M/20M", "session_timeout_secs": -5}),
            "session_timeout_secs",
        ),
    ] {
        let response = call(&app, &path(open, "coa"), &op, Some(body.clone())).await;
        let error = assert_error(&response, 422, "validation_failed");
        assert!(error["fields"][field].is_string(), "{body}: {error}");
    }
    let forbidden = call(&app, &path(open, "disconnect"), &viewer, None).await;
    assert_error(&forbidden, 403, "forbidden");
    // Nothing was sent, so nothing was audited.
    assert!(attempts(&app, "radius_session.disconnect").await.is_empty());
    assert!(attempts(&app, "radius_session.coa").await.is_empty());
}
crate::on_every_backend!(sessions_that_cannot_be_targeted_are_refused_before_sending);

async fn the_page_action_reports_with_a_flash_or_an_htmx_fragment(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("RADIUS_COA_ATTEMPTS", "1"),
            ("RADIUS_COA_TIMEOUT_MS", "100"),
        ],
    )
    .await
    else {
        return;
    };
    let _nas = {
        let nas = SilentNas::start().await;
        register_nas(&app, "127.0.0.1", nas.port, SECRET).await;
        nas
    };
    let id = open_session(&app.state.db.radius, "81a00005", "dave", "127.0.0.1", "").await;
    let mut op = app.signed_in("noc", Role::Operator).await;
    op.get("/radius/nas").await;

    let action = format!("/radius/sessions/{id}/disconnect");
    let response = op.post(&action, &[("back", "/radius/nas?q=x")]).await;
    assert_eq!(response.status, 303, "{}", response.text());
    assert_eq!(response.header("location"), Some("/radius/nas?q=x"));
    let page = op.get("/radius/nas").await.text();
    assert!(
        page.contains("did not answer the Disconnect-Request"),
        "{page}"
    );

    // Only local paths are followed back.
    let response = op.post(&action, &[("back", "https://evil.example/")]).await;
    assert_eq!(response.header("location"), Some("/"));

    // htmx: a fragment to swap in, not a redirect.
    let token = op.csrf_token.clone().unwrap();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf_token", &token)
        .finish();
    let request = Request::post(&action)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("hx-request", "true")
        .header("cookie", op.cookie.clone().unwrap())
        .body(Body::from(body))
        .unwrap();
    let fragment = app.send(request).await;
    assert_eq!(fragment.status, 200);
    assert_eq!(fragment.header("vary"), Some("HX-Request"));
    let html = fragment.text();
    assert!(html.starts_with("<p role=\"status\""), "{html}");
    assert!(
        html.contains("did not answer") && !html.contains("<html"),
        "{html}"
    );

    // Without the CSRF token nothing is sent.
    let before = attempts(&app, "radius_session.disconnect").await.len();
    let forged = op.post_raw(&action, &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        attempts(&app, "radius_session.disconnect").await.len(),
        before
    );
    assert_eq!(before, 3);

    // Viewers may not.
    let mut viewer = app.signed_in("watcher", Role::Viewer).await;
    let refused = viewer.post(&action, &[]).await;
    assert_eq!(refused.status, 403);
}
crate::on_every_backend!(the_page_action_reports_with_a_flash_or_an_htmx_fragment);

// ------------------------------------------------- against FreeRADIUS

/// ispd's app, and FreeRADIUS as the NAS on a database of its own: that
/// database's radacct is the NAS's own session table, so a session can be
/// open in ispd's accounting and unknown to the NAS.
struct NasFixture {
    // Dropped first: FreeRADIUS stops before its database is dropped.
    radius: FreeRadius,
    nas_db: TestDb,
    app: TestApp,
    token: String,
}

async fn with_freeradius_nas(backend: Backend) -> Option<NasFixture> {
    crate::freeradius::binaries()?;
    let app = TestApp::spawn(backend).await?;
    let nas_db = TestDb::fresh(backend).await?;
    RadiusMigrator::up(&nas_db.conn, None).await.unwrap();
    let radius = FreeRadius::start_with(Settings {
        database_url: nas_db.url.clone(),
        debug: true,
    })
    .await?;
    // Registered after FreeRADIUS has loaded its clients: this row is for
    // ispd's side (where to send, with which secret).
    let coa: SocketAddr = radius.coa_addr();
    register_nas(&app, &coa.ip().to_string(), coa.port(), radius.secret()).await;
    let token = app.create_token(Role::Operator).await;
    Some(NasFixture {
        radius,
        nas_db,
        app,
        token,
    })
}

async fn freeradius_acks_a_held_session_and_naks_an_unknown_one_with_error_cause(backend: Backend) {
    let Some(f) = with_freeradius_nas(backend).await else {
        return;
    };
    let radius_db = &f.app.state.db.radius;
    // Held by the NAS and open in ispd's accounting.
    let held = open_session(radius_db, "81b00001", "alice", "127.0.0.1", "100.64.0.2").await;
    open_session(
        &f.nas_db.conn,
        "81b00001",
        "alice",
        "127.0.0.1",
        "100.64.0.2",
    )
    .await;
    // Open in ispd's accounting only (the router lost it).
    let unknown = open_session(radius_db, "81b00002", "bob", "127.0.0.1", "100.64.0.3").await;
    let path = |id: i64, action: &str| format!("/api/v1/radius/sessions/{id}/{action}");

    // CoA with a new rate limit: the NAS decodes the MikroTik VSA and ACKs.
    let coa = call(
        &f.app,
        &path(held, "coa"),
        &f.token,
        Some(json!({"rate_limit": "10M/40M", "session_timeout_secs": 3600})),
    )
    .await;
    assert_eq!(coa.status, 200, "{}\n{}", coa.text(), f.radius.log());
    let body = coa.json();
    assert_eq!(body["request"], "CoA-Request");
    assert_eq!(body["result"], "ack", "{body}");
    assert_eq!(body["acknowledged"], true);
    assert!(
        f.radius.log().contains("10M/40M"),
        "the NAS saw Mikrotik-Rate-Limit"
    );

    let ack = call(&f.app, &path(held, "disconnect"), &f.token, None).await;
    assert_eq!(ack.status, 200, "{}", ack.text());
    let body = ack.json();
    assert_eq!(body["result"], "ack", "{body}");
    assert_eq!(body["request"], "Disconnect-Request");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["port"], f.radius.coa_port());
    assert_eq!(body["attempts"], 1);
    assert_eq!(body["error_cause"], Value::Null);

    let nak = call(&f.app, &path(unknown, "disconnect"), &f.token, None).await;
    assert_eq!(nak.status, 200, "{}", nak.text());
    let body = nak.json();
    assert_eq!(body["result"], "nak", "{body}");
    assert_eq!(body["acknowledged"], false);
    assert_eq!(body["error_cause"], 503);
    assert_eq!(body["error_cause_text"], "Session-Context-Not-Found");

    // The NAS ended the held session on its side: a second request is a NAK.
    let again = call(&f.app, &path(held, "disconnect"), &f.token, None).await;
    assert_eq!(again.json()["result"], "nak", "{}", again.text());

    let entries = attempts(&f.app, "radius_session.disconnect").await;
    let outcomes: Vec<(String, Value, Value)> = entries
        .iter()
        .map(|(entry, d)| {
            (
                entry.entity_id.clone().unwrap(),
                d["outcome"].clone(),
                d["error_cause"].clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (held.to_string(), json!("ack"), Value::Null),
            (unknown.to_string(), json!("nak"), json!(503)),
            (held.to_string(), json!("nak"), json!(503)),
        ]
    );
    assert_eq!(
        entries[1].1["error_cause_text"],
        "Session-Context-Not-Found"
    );
    let coas = attempts(&f.app, "radius_session.coa").await;
    assert_eq!(coas.len(), 1);
    assert_eq!(coas[0].1["outcome"], "ack");
    assert_eq!(coas[0].1["rate_limit"], "10M/40M");
}
crate::on_server_backends!(freeradius_acks_a_held_session_and_naks_an_unknown_one_with_error_cause);

/// The lines FreeRADIUS logged for each request of `code` it received
/// (`-xx`): the `Received ...` line and the attribute lines under it.
fn received_requests(log: &str, code: &str) -> Vec<String> {
    let marker = format!("Received {code} Id ");
    let mut out = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.contains(&marker) {
            continue;
        }
        let mut block = vec![line.to_string()];
        // Attribute lines are indented under it: "(n)   Name = value".
        while let Some(next) = lines.peek() {
            if next.contains(") Received ") || !next.contains(" = ") {
                break;
            }
            block.push(lines.next().unwrap().to_string());
        }
        out.push(block.join("\n"));
    }
    out
}

async fn freeradius_checks_our_message_authenticator_and_acks_requests_that_carry_it(
    backend: Backend,
) {
    let Some(f) = with_freeradius_nas(backend).await else {
        return;
    };
    let held = open_session(
        &f.app.state.db.radius,
        "81c00001",
        "alice",
        "127.0.0.1",
        "100.64.0.4",
    )
    .await;
    open_session(
        &f.nas_db.conn,
        "81c00001",
        "alice",
        "127.0.0.1",
        "100.64.0.4",
    )
    .await;
    let secret = f.radius.secret().as_bytes();

    // Control: the same Disconnect-Request with one bit of its
    // Message-Authenticator changed (and its Request Authenticator signed
    // again over that, so only the MA is wrong) is dropped without an
    // answer, and FreeRADIUS says why: it does check the attribute.
    let session = ispd::radius::coa::find_open_session(&f.app.state.db.radius, held)
        .await
        .unwrap();
    let (mut forged, _) = ispd::radius::coa::build_request(
        ispd::radius::coa::RequestKind::Disconnect,
        &session,
        None,
        secret,
    )
    .unwrap();
    assert_eq!(&forged[20..22], &[80, 18], "Message-Authenticator first");
    forged[22] ^= 1;
    forged[4..20].fill(0);
    let mut signed = forged.clone();
    signed.extend(secret);
    let digest: [u8; 16] = {
        use md5::Digest as _;
        md5::Md5::digest(&signed).into()
    };
    forged[4..20].copy_from_slice(&digest);
    assert!(radius::core::packet::Packet::is_authentic_request(
        &forged, secret
    ));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(f.radius.coa_addr()).await.unwrap();
    socket.send(&forged).await.unwrap();
    let mut buf = [0u8; 4096];
    let answer = tokio::time::timeout(Duration::from_millis(1500), socket.recv(&mut buf)).await;
    assert!(
        answer.is_err(),
        "a reply to a bad Message-Authenticator: {answer:?}"
    );
    let log = f.radius.log();
    assert!(
        log.lines()
            .any(|l| l.contains("Dropping packet without response")
                && l.contains("invalid Message-Authenticator")),
        "FreeRADIUS did not drop the bad Message-Authenticator:\n{log}"
    );
    let complaints = log.matches("invalid Message-Authenticator").count();

    // ispd's own requests: acknowledged, with both attributes received.
    let path = |action: &str| format!("/api/v1/radius/sessions/{held}/{action}");
    let coa = call(
        &f.app,
        &path("coa"),
        &f.token,
        Some(json!({"session_timeout_secs": 600})),
    )
    .await;
    assert_eq!(coa.status, 200, "{}", coa.text());
    assert_eq!(
        coa.json()["result"],
        "ack",
        "{}\n{}",
        coa.text(),
        f.radius.log()
    );
    let ack = call(&f.app, &path("disconnect"), &f.token, None).await;
    assert_eq!(ack.status, 200, "{}", ack.text());
    let body = ack.json();
    assert_eq!(body["result"], "ack", "{body}\n{}", f.radius.log());
    assert_eq!(body["attempts"], 1, "answered at the first send");

    let log = f.radius.log();
    assert_eq!(
        log.matches("invalid Message-Authenticator").count(),
        complaints,
        "no complaint about ispd's requests:\n{log}"
    );
    assert!(!log.contains("Insecure packet"), "{log}");
    for code in ["CoA-Request", "Disconnect-Request"] {
        let received = received_requests(&log, code);
        // The Disconnect-Requests: the forged one and ispd's.
        let ours = received
            .last()
            .unwrap_or_else(|| panic!("no {code} in\n{log}"));
        assert!(
            ours.contains("Message-Authenticator = 0x"),
            "{code} without Message-Authenticator:\n{ours}"
        );
        assert!(
            ours.contains("Event-Timestamp = "),
            "{code} without Event-Timestamp:\n{ours}"
        );
        assert!(
            ours.contains("Acct-Session-Id = \"81c00001\""),
            "{code}:\n{ours}"
        );
    }
    assert_eq!(received_requests(&log, "Disconnect-Request").len(), 2);
    // The NAS ended the session: ispd's Disconnect-Request got through.
    let ended = f
        .nas_db
        .conn
        .query_one_raw(sea_orm::Statement::from_string(
            f.nas_db.conn.get_database_backend(),
            "SELECT acctterminatecause FROM radacct WHERE acctsessionid = '81c00001' \
             AND acctstoptime IS NOT NULL",
        ))
        .await
        .unwrap()
        .expect("the session ended on the NAS");
    let cause: String = ended.try_get("", "acctterminatecause").unwrap();
    assert_eq!(cause, "Admin-Reset");
}
crate::on_server_backends!(
    freeradius_checks_our_message_authenticator_and_acks_requests_that_carry_it
);
