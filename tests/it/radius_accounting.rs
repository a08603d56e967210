//! RADIUS accounting read back on every backend: rows written the way
//! FreeRADIUS's stock queries write them (timestamps from TO_TIMESTAMP,
//! FROM_UNIXTIME or Unix seconds on SQLite; octets with the gigawords
//! folded in by `<< 32`), then read as sessions, daily and monthly totals,
//! the online list, stale-session cleanup, the merged address history, the
//! API and the pages.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::Value as Json;

use crate::helpers::{home_20, pppoe_user, Backend, TestApp};
use ispd::audit::Actor;
use ispd::ipam::history::{self, AddressHolding, HoldingSource};
use ispd::ipam::service::{self as ipam, AllocationInput, IpamSettings};
use ispd::query::PageRequest;
use ispd::radius::accounting::{
    self, DateRange, OnlineFilter, OnlineSort, StaleSettings, STALE_CAUSE,
};
use ispd::staff::Role;
use ispd::users::service::PackageInput;

const GIB4: i64 = 1 << 32;
const PASSWORD: &str = "Radius-s3cret pass";

/// 2026-11-10 08:00:00 UTC.
const DAY1: i64 = 1_794_297_600;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn utc(epoch: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(epoch, 0).unwrap()
}

fn page(per_page: u64) -> PageRequest {
    PageRequest { page: 1, per_page }
}

/// One radacct row, as FreeRADIUS would have written it.
#[derive(Clone)]
struct Acct {
    uid: String,
    user: &'static str,
    nas: &'static str,
    ip: &'static str,
    mac: &'static str,
    start: i64,
    update: Option<i64>,
    stop: Option<i64>,
    session_time: Option<i64>,
    interval: Option<i64>,
    input: (i64, i64),
    output: (i64, i64),
    cause: &'static str,
}

impl Acct {
    fn new(uid: &str, user: &'static str, start: i64) -> Self {
        Self {
            uid: uid.to_string(),
            user,
            nas: "192.0.2.1",
            ip: "100.64.0.7",
            mac: "AA-BB-CC-DD-EE-01",
            start,
            update: Some(start),
            stop: None,
            session_time: Some(0),
            interval: None,
            input: (0, 0),
            output: (0, 0),
            cause: "",
        }
    }

    fn closed(mut self, seconds: i64, cause: &'static str) -> Self {
        self.stop = Some(self.start + seconds);
        self.update = self.stop;
        self.session_time = Some(seconds);
        self.cause = cause;
        self
    }

    fn traffic(mut self, input: (i64, i64), output: (i64, i64)) -> Self {
        self.input = input;
        self.output = output;
        self
    }
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn insert(db: &DatabaseConnection, backend: Backend, a: &Acct) {
    let at = |epoch: Option<i64>| -> String {
        match (epoch, backend) {
            (None, _) => "NULL".into(),
            (Some(e), Backend::Postgres) => format!("TO_TIMESTAMP({e})"),
            (Some(e), Backend::MySql) => format!("FROM_UNIXTIME({e})"),
            (Some(e), Backend::Sqlite) => e.to_string(),
        }
    };
    let octets = |(gw, oct): (i64, i64)| -> String {
        match backend {
            Backend::Postgres => format!("(('{gw}'::bigint << 32) + '{oct}'::bigint)"),
            Backend::MySql => format!("'{gw}' << 32 | '{oct}'"),
            Backend::Sqlite => format!("{gw} << 32 | {oct}"),
        }
    };
    let (framed, cause) = match backend {
        Backend::Postgres => (
            format!("NULLIF('{}', '')::inet", a.ip),
            format!("NULLIF('{}', '')", a.cause),
        ),
        _ => (format!("'{}'", a.ip), format!("'{}'", a.cause)),
    };
    let num = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "NULL".into());
    exec(
        db,
        &format!(
            "INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress, \
             nasportid, nasporttype, acctstarttime, acctupdatetime, acctstoptime, acctinterval, \
             acctsessiontime, acctauthentic, connectinfo_start, acctinputoctets, acctoutputoctets, \
             calledstationid, callingstationid, acctterminatecause, servicetype, framedprotocol, \
             framedipaddress) VALUES ('{sid}', '{uid}', '{user}', '', '{nas}', 'pppoe-1', \
             'Ethernet', {start}, {update}, {stop}, {interval}, {stime}, 'RADIUS', '', {input}, \
             {output}, 'bras', '{mac}', {cause}, 'Framed-User', 'PPP', {framed})",
            sid = &a.uid[..a.uid.len().min(8)],
            uid = a.uid,
            user = a.user,
            nas = a.nas,
            start = at(Some(a.start)),
            update = at(a.update),
            stop = at(a.stop),
            interval = num(a.interval),
            stime = num(a.session_time),
            input = octets(a.input),
            output = octets(a.output),
            mac = a.mac,
        ),
    )
    .await;
}

fn radius(app: &TestApp) -> &DatabaseConnection {
    &app.state.db.radius
}

/// alice: two sessions on day 1 (one with gigawords), one on day 2, one in
/// the previous month, one open now; bob: one on day 1.
async fn alice_and_bob(app: &TestApp, backend: Backend) {
    let db = radius(app);
    let rows = [
        Acct::new("a1", "alice", DAY1)
            .closed(HOUR, "User-Request")
            .traffic((1, 100), (2, 200)),
        Acct::new("a2", "alice", DAY1 + 2 * HOUR)
            .closed(600, "Lost-Carrier")
            .traffic((0, 1_000), (0, 5_000)),
        Acct::new("a3", "alice", DAY1 + DAY)
            .closed(1_800, "Idle-Timeout")
            .traffic((0, 10), (0, 20)),
        Acct::new("a0", "alice", DAY1 - 20 * DAY)
            .closed(60, "User-Request")
            .traffic((0, 7), (0, 8)),
        Acct::new("b1", "bob", DAY1 + HOUR)
            .closed(300, "User-Request")
            .traffic((0, 50), (4, 0)),
    ];
    for row in &rows {
        insert(db, backend, row).await;
    }
}

async fn sessions_octets_durations_and_totals_read_as_freeradius_wrote_them(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    alice_and_bob(&app, backend).await;
    let db = radius(&app);

    let all = DateRange::default();
    let data = accounting::get_accounting_data(db, "alice", &all, page(50))
        .await
        .unwrap();
    assert_eq!(data.total_sessions, 4);
    let ids: Vec<&str> = data
        .sessions
        .iter()
        .map(|s| s.acct_unique_id.as_str())
        .collect();
    assert_eq!(ids, ["a3", "a2", "a1", "a0"], "newest first");
    let a1 = &data.sessions[2];
    assert_eq!(a1.input_octets, GIB4 + 100, "gigawords folded in");
    assert_eq!(a1.output_octets, 2 * GIB4 + 200);
    assert_eq!(a1.started_at, Some(utc(DAY1)));
    assert_eq!(a1.stopped_at, Some(utc(DAY1 + HOUR)));
    assert_eq!(a1.duration_secs(Utc::now()), Some(HOUR));
    assert_eq!(a1.framed_ip.as_deref(), Some("100.64.0.7"));
    assert_eq!(a1.nas_ip, "192.0.2.1");
    assert_eq!(a1.calling_station_id.as_deref(), Some("AA-BB-CC-DD-EE-01"));
    assert_eq!(a1.terminate_cause.as_deref(), Some("User-Request"));

    // Per day: the two sessions of day 1 together, day 2 alone.
    let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let days: Vec<(NaiveDate, u64, i64, i64, i64)> = data
        .daily
        .iter()
        .map(|d| {
            (
                d.day,
                d.usage.sessions,
                d.usage.input_octets,
                d.usage.output_octets,
                d.usage.session_time_secs,
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            (day("2026-10-21"), 1, 7, 8, 60),
            (
                day("2026-11-10"),
                2,
                GIB4 + 1_100,
                2 * GIB4 + 5_200,
                HOUR + 600
            ),
            (day("2026-11-11"), 1, 10, 20, 1_800),
        ]
    );
    let months: Vec<(&str, u64, i64)> = data
        .monthly
        .iter()
        .map(|m| (m.month.as_str(), m.usage.sessions, m.usage.input_octets))
        .collect();
    assert_eq!(months, [("2026-10", 1, 7), ("2026-11", 3, GIB4 + 1_110)]);
    assert_eq!(data.totals.sessions, 4);
    assert_eq!(data.totals.output_octets, 2 * GIB4 + 5_228);

    // A range: November only; `to` as a day includes it.
    let mut errors = Default::default();
    let november = DateRange::parse(Some("2026-11-01"), Some("2026-11-10"), &mut errors);
    assert!(errors.is_empty());
    let data = accounting::get_accounting_data(db, "alice", &november, page(1))
        .await
        .unwrap();
    assert_eq!(data.total_sessions, 2, "a1 and a2 start on the 10th");
    assert_eq!(data.sessions.len(), 1, "one per page");
    assert_eq!(data.sessions[0].acct_unique_id, "a2");
    assert_eq!(data.monthly.len(), 1);
    assert_eq!(data.totals.input_octets, GIB4 + 1_100);
    let second = accounting::user_sessions(
        db,
        "alice",
        &november,
        PageRequest {
            page: 2,
            per_page: 1,
        },
    )
    .await
    .unwrap();
    assert_eq!(second.0[0].acct_unique_id, "a1");

    // Everyone, per user, most traffic first.
    let (usage, total) = accounting::usage_by_user(db, &all, None, None)
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(
        usage[0].username, "bob",
        "4 gigawords of download beat alice's 3"
    );
    assert_eq!(usage[0].usage.output_octets, 4 * GIB4);
    assert_eq!(usage[1].usage.sessions, 4);
    let (only_bob, total) = accounting::usage_by_user(db, &all, Some("BO"), Some(page(10)))
        .await
        .unwrap();
    assert_eq!((only_bob.len(), total), (1, 1));
    let everyone = accounting::usage_by_day(db, None, &november).await.unwrap();
    assert_eq!(everyone.len(), 1);
    assert_eq!(everyone[0].usage.sessions, 3);

    // Nobody's data is somebody else's.
    let nobody = accounting::get_accounting_data(db, "carol", &all, page(50))
        .await
        .unwrap();
    assert_eq!(nobody.total_sessions, 0);
    assert!(nobody.daily.is_empty() && nobody.sessions.is_empty());
}
crate::on_every_backend!(sessions_octets_durations_and_totals_read_as_freeradius_wrote_them);

async fn online(
    db: &DatabaseConnection,
    filter: OnlineFilter,
    sort: OnlineSort,
) -> (Vec<String>, u64, Vec<accounting::Session>) {
    let (rows, total) = accounting::online_sessions(db, &filter, sort, page(50))
        .await
        .unwrap();
    let names = rows.iter().map(|s| s.username.clone()).collect();
    (names, total, rows)
}

async fn newest_session(db: &DatabaseConnection, user: &str) -> accounting::Session {
    let (rows, _) = accounting::user_sessions(db, user, &Default::default(), page(5))
        .await
        .unwrap();
    rows.into_iter().next().expect("a session")
}

async fn the_online_list_shows_open_sessions_with_filters_and_search(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let db = radius(&app);
    let now = Utc::now().timestamp();
    let mut rows = vec![
        Acct::new("o1", "alice", now - 600),
        Acct::new("o2", "bob", now - 300),
        Acct::new("o3", "carol", now - 100),
        Acct::new("c1", "dave", now - 900).closed(100, "User-Request"),
    ];
    rows[0].update = Some(now - 120);
    rows[0].session_time = Some(480);
    rows[0].input = (2, 5);
    rows[1].nas = "192.0.2.2";
    rows[1].ip = "100.64.1.9";
    rows[1].mac = "aa:bb:cc:dd:ee:02";
    rows[2].mac = "aabb.ccdd.ee03";
    rows[2].ip = "100.64.0.33";
    for row in &rows {
        insert(db, backend, row).await;
    }
    let (names, total, sessions) = online(db, OnlineFilter::default(), OnlineSort::default()).await;
    assert_eq!(
        names,
        ["carol", "bob", "alice"],
        "newest first, closed left out"
    );
    assert_eq!(total, 3);
    let alice = &sessions[2];
    assert!(alice.is_open());
    assert_eq!(alice.input_octets, 2 * GIB4 + 5);
    let age = alice.last_update_age_secs(Utc::now()).unwrap();
    assert!(
        (120..130).contains(&age),
        "last update 120 s ago, got {age}"
    );

    let (names, ..) = online(db, OnlineFilter::default(), OnlineSort::Username).await;
    assert_eq!(names, ["alice", "bob", "carol"]);
    let (names, ..) = online(db, OnlineFilter::default(), OnlineSort::LastUpdateOldest).await;
    assert_eq!(
        names,
        ["bob", "alice", "carol"],
        "updated 300, 120, 100 s ago"
    );

    let by_nas = OnlineFilter {
        nas: Some("192.0.2.2".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(online(db, by_nas, OnlineSort::default()).await.0, ["bob"]);
    for (q, expect) in [
        ("ALI", vec!["alice"]),
        ("100.64.1.", vec!["bob"]),
        ("100.64.0.3", vec!["carol"]),
        ("AA:BB:CC:DD:EE:02", vec!["bob"]),
        ("aa-bb-cc-dd-ee-03", vec!["carol"]),
        ("ddee01", vec!["alice"]),
        ("%", vec![]),
        ("nobody", vec![]),
    ] {
        let filter = OnlineFilter {
            q: Some(q.into()),
            ..Default::default()
        };
        assert_eq!(
            online(db, filter, OnlineSort::Username).await.0,
            expect,
            "q={q}"
        );
    }
}
crate::on_every_backend!(the_online_list_shows_open_sessions_with_filters_and_search);

async fn stale_sessions_are_closed_once_at_their_last_update(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let db = radius(&app);
    let now = DAY1 + 10 * DAY;
    let mut rows = Vec::new();
    // Interval 300 from the row, last update 1000 s ago: 3 x 300 < 1000.
    let mut s1 = Acct::new("s1", "alice", now - 5_000);
    s1.update = Some(now - 1_000);
    s1.session_time = Some(4_000);
    s1.interval = Some(300);
    rows.push(s1);
    // Same interval, updated 500 s ago: alive.
    let mut f1 = Acct::new("f1", "bob", now - 5_000);
    f1.update = Some(now - 500);
    f1.interval = Some(300);
    rows.push(f1);
    // No interval (SQLite's queries write 0): the default, 300.
    let mut s2 = Acct::new("s2", "carol", now - 2_000);
    s2.update = Some(now - 950);
    s2.interval = Some(0);
    rows.push(s2);
    // No update time: start plus session time is the last packet.
    let mut s3 = Acct::new("s3", "dave", now - 3_000);
    s3.update = None;
    s3.session_time = Some(600);
    rows.push(s3);
    // A tiny observed interval is raised to 60 s: 100 s is not stale...
    let mut f2 = Acct::new("f2", "erin", now - 1_000);
    f2.update = Some(now - 100);
    f2.interval = Some(2);
    rows.push(f2);
    // ...but 200 s is.
    let mut s4 = Acct::new("s4", "frank", now - 1_000);
    s4.update = Some(now - 200);
    s4.interval = Some(2);
    rows.push(s4);
    // Closed long ago: untouched.
    rows.push(Acct::new("c1", "gina", now - 9_000).closed(100, "User-Request"));
    for row in &rows {
        insert(db, backend, row).await;
    }
    let settings = StaleSettings::default();

    let dry = accounting::close_stale_sessions(db, settings, utc(now), true)
        .await
        .unwrap();
    assert_eq!((dry.open_sessions, dry.closed, dry.dry_run), (6, 4, true));
    let (_, still_open) =
        accounting::online_sessions(db, &Default::default(), Default::default(), page(50))
            .await
            .unwrap();
    assert_eq!(still_open, 6, "a dry run writes nothing");

    let report = accounting::close_stale_sessions(db, settings, utc(now), false)
        .await
        .unwrap();
    assert_eq!((report.open_sessions, report.closed), (6, 4));
    let (open, _) =
        accounting::online_sessions(db, &Default::default(), OnlineSort::Username, page(50))
            .await
            .unwrap();
    let open: Vec<&str> = open.iter().map(|s| s.acct_unique_id.as_str()).collect();
    assert_eq!(open, ["f1", "f2"]);

    let s1 = newest_session(db, "alice").await;
    assert_eq!(
        s1.stopped_at,
        Some(utc(now - 1_000)),
        "stopped at the last update"
    );
    assert_eq!(s1.terminate_cause.as_deref(), Some(STALE_CAUSE));
    assert_eq!(s1.duration_secs(Utc::now()), Some(4_000));
    let s3 = newest_session(db, "dave").await;
    assert_eq!(
        s3.stopped_at,
        Some(utc(now - 3_000 + 600)),
        "start + session time"
    );
    assert_eq!(s3.terminate_cause.as_deref(), Some(STALE_CAUSE));
    let gina = newest_session(db, "gina").await;
    assert_eq!(gina.terminate_cause.as_deref(), Some("User-Request"));

    let again = accounting::close_stale_sessions(db, settings, utc(now), false)
        .await
        .unwrap();
    assert_eq!((again.open_sessions, again.closed), (2, 0), "idempotent");

    // Two runs at once close each session once.
    for i in 0..20 {
        let mut s = Acct::new(&format!("x{i}"), "zed", now - 10_000 - i);
        s.update = Some(now - 5_000);
        insert(db, backend, &s).await;
    }
    let (a, b) = tokio::join!(
        accounting::close_stale_sessions(db, settings, utc(now), false),
        accounting::close_stale_sessions(db, settings, utc(now), false),
    );
    assert_eq!(a.unwrap().closed + b.unwrap().closed, 20);
}
crate::on_every_backend!(stale_sessions_are_closed_once_at_their_last_update);

async fn who_had_an_address_merges_ipam_and_radius(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let settings = IpamSettings {
        lock_timeout: StdDuration::from_secs(10),
    };
    let (_, subnet) = crate::helpers::pool_with_subnet(&app, "P", "100.64.0.0/24", None).await;
    let allocated = ipam::allocate_ip(
        app.db(),
        settings,
        &Actor::system(),
        &AllocationInput {
            subnet_id: subnet.id,
            username: Some("alice".into()),
            ip_address: Some("100.64.0.7".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(allocated.allocation.ip_address, "100.64.0.7");

    let now = Utc::now().timestamp();
    // Online now with the address; a session yesterday (closed); another
    // address.
    insert(radius(&app), backend, &Acct::new("n1", "alice", now - 60)).await;
    insert(
        radius(&app),
        backend,
        &Acct::new("y1", "mallory", now - DAY).closed(HOUR, "User-Request"),
    )
    .await;
    let mut other = Acct::new("z1", "bob", now - 60);
    other.ip = "100.64.0.8";
    insert(radius(&app), backend, &other).await;

    let ip = "100.64.0.7".parse().unwrap();
    let at_now = history::who_had_address(app.db(), radius(&app), ip, Utc::now())
        .await
        .unwrap();
    let sources: Vec<(HoldingSource, Option<&str>)> = at_now
        .iter()
        .map(|h: &AddressHolding| (h.source, h.username.as_deref()))
        .collect();
    assert_eq!(
        sources,
        [
            (HoldingSource::Ipam, Some("alice")),
            (HoldingSource::Radius, Some("alice")),
        ],
        "the allocation (just now) is newer than the session (a minute ago)"
    );
    assert_eq!(at_now[1].nas_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(at_now[1].until, None, "still online");

    let yesterday = history::who_had_address(app.db(), radius(&app), ip, utc(now - DAY + 60))
        .await
        .unwrap();
    assert_eq!(yesterday.len(), 1);
    assert_eq!(yesterday[0].source, HoldingSource::Radius);
    assert_eq!(yesterday[0].username.as_deref(), Some("mallory"));

    let timeline = history::address_timeline(app.db(), radius(&app), ip, 50)
        .await
        .unwrap();
    let users: Vec<Option<&str>> = timeline.iter().map(|h| h.username.as_deref()).collect();
    assert_eq!(users, [Some("alice"), Some("alice"), Some("mallory")]);

    // The API's history carries both sources in `records`.
    let token = app.create_token(Role::Viewer).await;
    let response = get_json(&app, &token, "/api/v1/ipam/history?ip=100.64.0.7").await;
    assert_eq!(response.0, 200, "{}", response.1);
    let records = response.1["records"].as_array().unwrap().clone();
    let sources: Vec<&str> = records
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["ipam", "radius"]);
    assert_eq!(response.1["holders"].as_array().unwrap().len(), 1);

    // And the page labels each.
    let mut browser = app.signed_in("noc", Role::Viewer).await;
    let html = browser.get("/ipam/history?ip=100.64.0.7").await.text();
    let holder = &html[html.find("id=\"holder\"").unwrap()..html.find("id=\"timeline\"").unwrap()];
    assert!(
        holder.contains("data-source=\"RADIUS\"") && holder.contains("data-source=\"IPAM\""),
        "{holder}"
    );
    assert!(
        html.contains("mallory"),
        "the timeline has yesterday's session"
    );
}
crate::on_every_backend!(who_had_an_address_merges_ipam_and_radius);

// ------------------------------------------------------------------ HTTP

async fn get_json(app: &TestApp, token: &str, path: &str) -> (u16, Json) {
    send_json(app, token, "GET", path).await
}

async fn send_json(app: &TestApp, token: &str, method: &str, path: &str) -> (u16, Json) {
    let method = axum::http::Method::from_bytes(method.as_bytes()).unwrap();
    let response = app.api(method, path, token, None).await;
    (response.status.as_u16(), response.json())
}

/// A network user "alice" on a package, synced to RADIUS.
async fn network_user(app: &TestApp) -> i32 {
    let package = app
        .create_package(&PackageInput {
            simultaneous_use: Some(1),
            ..home_20()
        })
        .await
        .unwrap();
    let user = app
        .create_user(&pppoe_user("alice", PASSWORD, package.id))
        .await
        .unwrap();
    user.id
}

async fn the_api_serves_accounting_online_and_stale_cleanup(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let id = network_user(&app).await;
    let viewer = app.create_token(Role::Viewer).await;
    let operator = app.create_token(Role::Operator).await;

    // No sessions yet: an empty page, not an error.
    let (status, body) = get_json(&app, &viewer, &format!("/api/v1/users/{id}/accounting")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions"]["meta"]["total"], 0);
    assert_eq!(body["daily"], serde_json::json!([]));

    alice_and_bob(&app, backend).await;
    let (status, body) = get_json(
        &app,
        &viewer,
        &format!("/api/v1/users/{id}/accounting?from=2026-11-01&to=2026-11-30&per_page=2"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["from"], "2026-11-01T00:00:00Z");
    assert_eq!(body["to"], "2026-12-01T00:00:00Z");
    assert_eq!(body["sessions"]["meta"]["total"], 3);
    assert_eq!(body["sessions"]["data"].as_array().unwrap().len(), 2);
    let newest = &body["sessions"]["data"][0];
    assert_eq!(newest["acct_unique_id"], "a3");
    assert_eq!(newest["duration_secs"], 1_800);
    assert_eq!(newest["open"], false);
    assert_eq!(body["totals"]["input_octets"], GIB4 + 1_110);
    assert_eq!(
        body["totals"]["total_octets"],
        GIB4 + 1_110 + 2 * GIB4 + 5_220
    );
    assert_eq!(body["daily"][0]["day"], "2026-11-10");
    assert_eq!(body["daily"][0]["sessions"], 2);
    assert_eq!(body["monthly"][0]["month"], "2026-11");

    for query in [
        "from=yesterday",
        "to=2026-02-30",
        "from=2026-11-05&to=2026-11-01",
        "page=0",
    ] {
        let (status, body) = get_json(
            &app,
            &viewer,
            &format!("/api/v1/users/{id}/accounting?{query}"),
        )
        .await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(body["error"]["fields"].is_object(), "{body}");
    }
    let (status, body) = get_json(&app, &viewer, "/api/v1/users/999999/accounting").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let unauthenticated = app.get(&format!("/api/v1/users/{id}/accounting")).await;
    assert_eq!(unauthenticated.status, 401);

    // Online.
    let now = Utc::now().timestamp();
    let mut open = Acct::new("live1", "alice", now - 30);
    open.nas = "192.0.2.9";
    insert(radius(&app), backend, &open).await;
    let (status, body) = get_json(&app, &viewer, "/api/v1/radius/online?q=ali").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["total"], 1);
    assert_eq!(body["data"][0]["acct_unique_id"], "live1");
    assert_eq!(body["data"][0]["open"], true);
    assert!(body["data"][0]["last_update_age_secs"].as_i64().unwrap() >= 29);
    let (status, body) = get_json(&app, &viewer, "/api/v1/radius/online?nas=192.0.2.1").await;
    assert_eq!(
        (status, body["meta"]["total"].clone()),
        (200, Json::from(0))
    );
    for query in ["nas=not-an-ip", "sort=password", "per_page=501"] {
        let (status, body) =
            get_json(&app, &viewer, &format!("/api/v1/radius/online?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
    }

    // The usage report.
    let (status, body) = get_json(&app, &viewer, "/api/v1/radius/usage?from=2026-11-01").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["username"], "bob");
    assert_eq!(body["data"][1]["username"], "alice");

    // Closing stale sessions: operators only.
    let mut stale = Acct::new("old1", "bob", now - 10_000);
    stale.update = Some(now - 5_000);
    insert(radius(&app), backend, &stale).await;
    let (status, _) = send_json(&app, &viewer, "POST", "/api/v1/radius/close-stale").await;
    assert_eq!(status, 403);
    let (status, body) = send_json(
        &app,
        &operator,
        "POST",
        "/api/v1/radius/close-stale?default_interval_secs=5",
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = send_json(
        &app,
        &operator,
        "POST",
        "/api/v1/radius/close-stale?dry_run=true",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"open_sessions": 2, "closed": 1, "dry_run": true})
    );
    let (status, body) = send_json(&app, &operator, "POST", "/api/v1/radius/close-stale").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["closed"], 1);
    let (_, body) = send_json(&app, &operator, "POST", "/api/v1/radius/close-stale").await;
    assert_eq!(body["closed"], 0);

    // Documented in the OpenAPI document.
    let (status, doc) = get_json(&app, &viewer, "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/users/{id}/accounting",
        "/api/v1/radius/online",
        "/api/v1/radius/usage",
        "/api/v1/radius/close-stale",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
}
crate::on_every_backend!(the_api_serves_accounting_online_and_stale_cleanup);

async fn the_pages_show_sessions_usage_and_empty_states(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let id = network_user(&app).await;
    ispd::radius::service::sync_user_by_id(app.db(), radius(&app), &app.state.app_key, id)
        .await
        .unwrap();
    let mut viewer = app.signed_in("viewer", Role::Viewer).await;

    // Empty states.
    let online = viewer.get("/radius/online").await;
    assert_eq!(online.status, 200);
    assert!(
        online.text().contains("Nobody is online."),
        "{}",
        online.text()
    );
    assert!(online.text().contains("hx-trigger=\"every 5s\""));
    assert!(
        !online.text().contains("Close stale sessions"),
        "viewers change nothing"
    );
    let report = viewer.get("/radius/accounting").await.text();
    assert!(
        report.contains("No accounting records in this range."),
        "{report}"
    );
    let user_page = viewer.get(&format!("/users/{id}")).await.text();
    assert!(user_page.contains("No RADIUS sessions yet."), "{user_page}");
    // The RADIUS rows, password masked.
    assert!(
        user_page.contains("Cleartext-Password := ••••••••"),
        "{user_page}"
    );
    assert!(!user_page.contains(PASSWORD));
    assert!(user_page.contains("Group home-20"));
    assert!(user_page.contains("Simultaneous-Use := 1"));
    assert!(user_page.contains("Acct-Interim-Interval := 300"));
    let own = viewer.get(&format!("/users/{id}/accounting")).await.text();
    assert!(own.contains("No sessions in this range."), "{own}");

    // With data.
    alice_and_bob(&app, backend).await;
    let now = Utc::now().timestamp();
    let mut live = Acct::new("live1", "alice", now - 30);
    live.input = (0, 1_500_000);
    insert(radius(&app), backend, &live).await;
    let mut stale = Acct::new("old1", "alice", now - 20_000);
    stale.update = Some(now - 10_000);
    insert(radius(&app), backend, &stale).await;
    accounting::close_stale(
        app.db(),
        radius(&app),
        &Actor::system(),
        StaleSettings::default(),
        false,
    )
    .await
    .unwrap();

    let online = viewer.get("/radius/online").await.text();
    assert!(online.contains("id=\"online-table\""), "{online}");
    assert!(
        !online.contains("/disconnect\""),
        "viewers get no Disconnect button"
    );
    assert!(
        online.contains(&format!("href=\"/users/{id}\">alice</a>")),
        "{online}"
    );
    assert!(online.contains("1.50 MB"));
    // The 5-second refresh gets only the fragment, which keeps polling.
    let fragment = viewer
        .app
        .send(
            axum::http::Request::get("/radius/online?q=alice")
                .header("hx-request", "true")
                .header("cookie", viewer.cookie.clone().unwrap())
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(fragment.status, 200);
    let fragment = fragment.text();
    assert!(!fragment.contains("<html"), "{fragment}");
    assert!(fragment.contains("id=\"online-results\"") && fragment.contains("every 5s"));
    assert!(fragment.contains("alice") && !fragment.contains(">bob<"));

    let report = viewer
        .get("/radius/accounting?from=2026-11-01&to=2026-11-15")
        .await
        .text();
    assert!(report.contains("id=\"report-users\""), "{report}");
    assert!(report.contains(&format!("href=\"/users/{id}/accounting\">alice</a>")));
    assert!(report.contains("<svg id=\"report-chart\""));
    let bad = viewer.get("/radius/accounting?from=nonsense").await;
    assert_eq!(bad.status, 422);
    assert!(bad.text().contains("is not a date"));

    let csv = viewer
        .get("/radius/accounting.csv?from=2026-11-01&to=2026-11-15")
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let csv = csv.text();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "username,sessions,download_octets,upload_octets,total_octets,session_time_secs"
    );
    assert_eq!(
        lines[1],
        format!("bob,1,{},50,{},300", 4 * GIB4, 4 * GIB4 + 50)
    );
    assert_eq!(
        lines[2],
        format!(
            "alice,3,{},{},{},6000",
            2 * GIB4 + 5_220,
            GIB4 + 1_110,
            3 * GIB4 + 6_330
        )
    );
    assert_eq!(lines.len(), 3);

    let user_page = viewer.get(&format!("/users/{id}")).await.text();
    assert!(
        user_page.contains("id=\"user-page-sessions\""),
        "{user_page}"
    );
    assert!(user_page.contains("<svg id=\"user-usage-chart\""));
    assert!(user_page.contains("Latest 6 of 6"), "{user_page}");

    let own = viewer
        .get(&format!(
            "/users/{id}/accounting?from=2026-10-01&to=2026-11-30"
        ))
        .await
        .text();
    assert!(own.contains("id=\"user-sessions\""), "{own}");
    assert!(own.contains("Idle-Timeout") && own.contains("Lost-Carrier"));
    assert!(own.contains("id=\"user-months\""));
    let csv = viewer
        .get(&format!(
            "/users/{id}/accounting.csv?from=2026-11-10&to=2026-11-10"
        ))
        .await
        .text();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains(&format!(",{},", 2 * GIB4 + 200)));

    // The stale session shows its terminate cause (default range: the
    // last 30 days).
    let recent = viewer.get(&format!("/users/{id}/accounting")).await.text();
    assert!(recent.contains(STALE_CAUSE), "{recent}");

    // Operators can close stale sessions from the page; viewers cannot.
    let denied = viewer.post("/radius/close-stale", &[]).await;
    assert_eq!(denied.status, 403);
    let mut operator = app.signed_in("operator", Role::Operator).await;
    let page = operator.get("/radius/online").await.text();
    assert!(page.contains("Close stale sessions"));
    // Each open session has a Disconnect button that asks first.
    let open = newest_session(&app.state.db.radius, "alice").await;
    assert!(
        page.contains(&format!(
            "action=\"/radius/sessions/{}/disconnect\" data-confirm=",
            open.radacctid
        )),
        "{page}"
    );
    let user_page = operator.get(&format!("/users/{id}")).await.text();
    assert!(
        user_page.contains(&format!("/radius/sessions/{}/disconnect", open.radacctid)),
        "{user_page}"
    );
    let done = operator.post("/radius/close-stale", &[]).await;
    assert_eq!(done.status, 303, "{}", done.text());
    let after = operator.get("/radius/online").await.text();
    assert!(after.contains("Closed 0 stale session(s)"), "{after}");
}
crate::on_every_backend!(the_pages_show_sessions_usage_and_empty_states);

#[test]
fn the_fixture_days_are_what_the_tests_say() {
    assert_eq!(
        utc(DAY1).format("%Y-%m-%d %H:%M").to_string(),
        "2026-11-10 08:00"
    );
    assert_eq!(
        (utc(DAY1) - Duration::days(20))
            .format("%Y-%m-%d")
            .to_string(),
        "2026-10-21"
    );
}

/// `ispd radius close-stale` on the default SQLite databases: a dry run
/// counts, a run closes and says so, a second run closes nothing.
#[tokio::test]
async fn the_close_stale_command_reports_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| crate::helpers::ispd_ok(dir.path(), args, &[]);
    run(&["migrate"]);
    let url = format!(
        "sqlite://{}?mode=rw",
        dir.path().join("data").join("radius.db").display()
    );
    let db = ispd::db::connect(&url, StdDuration::from_secs(5))
        .await
        .unwrap();
    let now = Utc::now().timestamp();
    let mut stale = Acct::new("cli1", "alice", now - 10_000);
    stale.update = Some(now - 5_000);
    insert(&db, Backend::Sqlite, &stale).await;
    insert(&db, Backend::Sqlite, &Acct::new("cli2", "bob", now - 60)).await;
    db.close().await.unwrap();

    let dry = run(&["radius", "close-stale", "--dry-run"]);
    assert_eq!(
        dry.trim(),
        "1 of 2 open session(s) are stale and would be closed (dry run; nothing written)."
    );
    let done = run(&["radius", "close-stale"]);
    assert_eq!(
        done.trim(),
        "Closed 1 stale session(s) of 2 open; their terminate cause is Stale-Session."
    );
    let again = run(&["radius", "close-stale", "--default-interval", "600"]);
    assert!(
        again.starts_with("Closed 0 stale session(s) of 1 open"),
        "{again}"
    );
    let out = crate::helpers::ispd_command(dir.path())
        .args(["radius", "close-stale", "--default-interval", "5"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an interval under 60 s is refused");
}
