//! The live dashboard and the /metrics gauges, on every backend: real rows
//! (a pool with allocations, users in each status, radacct sessions open
//! now and closed earlier, routers up and down, finished job runs) read
//! back as exact figures by the service, the page, its htmx fragment and a
//! Prometheus scrape; and the page when the RADIUS database is down.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};

use crate::helpers::{home_20, ipam_settings, pppoe_user, Backend, TestApp, TestResponse};
use ispd::audit::Actor;
use ispd::dashboard::{self, DashboardFigures, LastRun, PoolFigure, RouterFigures, TrafficToday};
use ispd::ipam::service::{self as ipam, AllocationInput, PoolInput};
use ispd::jobs::runs::{self, Outcome};
use ispd::jobs::{JobSummary, Trigger};
use ispd::mikrotik::entities::mikrotik_router;
use ispd::radius::accounting::human_bytes;
use ispd::staff::Role;
use ispd::users::entities::{network_user, network_user_session};
use ispd::users::service::UserInput;

const HOUR: i64 = 3600;
const GIB4: i64 = 1 << 32;

/// 2026-11-20 12:00:00 UTC: noon, so that "today" began 12 hours before.
const NOON: i64 = 1_795_176_000;

fn utc(epoch: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(epoch, 0).unwrap()
}

/// One radacct row: `start` and `stop` in Unix seconds, octets as
/// FreeRADIUS writes them (gigawords folded in).
struct Acct {
    uid: &'static str,
    user: &'static str,
    start: i64,
    stop: Option<i64>,
    input: i64,
    output: i64,
}

async fn insert_acct(db: &DatabaseConnection, backend: Backend, a: &Acct) {
    let at = |epoch: Option<i64>| match (epoch, backend) {
        (None, _) => "NULL".to_string(),
        (Some(e), Backend::Postgres) => format!("TO_TIMESTAMP({e})"),
        (Some(e), Backend::MySql) => format!("FROM_UNIXTIME({e})"),
        (Some(e), Backend::Sqlite) => e.to_string(),
    };
    let session_time = a.stop.map(|stop| stop - a.start).unwrap_or(0);
    let sql = format!(
        "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, \
         acctstarttime, acctupdatetime, acctstoptime, acctsessiontime, acctinputoctets, \
         acctoutputoctets) VALUES ('{uid}', '{uid}', '{user}', '192.0.2.1', {start}, {update}, \
         {stop}, {session_time}, {input}, {output})",
        uid = a.uid,
        user = a.user,
        start = at(Some(a.start)),
        update = at(Some(a.stop.unwrap_or(a.start))),
        stop = at(a.stop),
        input = a.input,
        output = a.output,
    );
    db.execute_unprepared(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Sessions around `now`:
/// - alice: open since 30 h ago (online at every moment of the trend);
/// - bob: open since 3 h ago;
/// - carol: 23 h to 13 h ago;
/// - dave: 11 h to 5 h ago, with more than 4 GiB downloaded;
/// - erin: 50 h to 40 h ago (outside the last day).
fn sessions(now: i64) -> [Acct; 5] {
    [
        Acct {
            uid: "alice-1",
            user: "alice",
            start: now - 30 * HOUR,
            stop: None,
            input: 1_000,
            output: 5_000,
        },
        Acct {
            uid: "bob-1",
            user: "bob",
            start: now - 3 * HOUR,
            stop: None,
            input: 200,
            output: 800,
        },
        Acct {
            uid: "carol-1",
            user: "carol",
            start: now - 23 * HOUR,
            stop: Some(now - 13 * HOUR),
            input: 7,
            output: 9,
        },
        Acct {
            uid: "dave-1",
            user: "dave",
            start: now - 11 * HOUR,
            stop: Some(now - 5 * HOUR),
            input: 3_000,
            output: GIB4 + 10,
        },
        Acct {
            uid: "erin-1",
            user: "erin",
            start: now - 50 * HOUR,
            stop: Some(now - 40 * HOUR),
            input: 11,
            output: 13,
        },
    ]
}

async fn seed_sessions(app: &TestApp, backend: Backend, now: i64) {
    for row in &sessions(now) {
        insert_acct(&app.state.db.radius, backend, row).await;
    }
}

/// Today's traffic of [`sessions`] at `now`, whatever the time of day:
/// every session still open, or stopped since midnight (UTC), whole.
fn expected_traffic(now: i64) -> TrafficToday {
    let midnight = now - now.rem_euclid(24 * HOUR);
    let mut today = TrafficToday::default();
    for row in sessions(now) {
        if row.stop.is_none_or(|stop| stop >= midnight) {
            today.sessions += 1;
            today.upload_octets += row.input;
            today.download_octets += row.output;
        }
    }
    today
}

/// Pools "Residential" (a /29 with a gateway: 5 usable addresses, 2
/// allocated) and "Spare" (no subnets yet).
async fn seed_pools(app: &TestApp) {
    let settings = ipam_settings();
    let (_, subnet) =
        crate::helpers::pool_with_subnet(app, "Residential", "100.64.0.0/29", Some("100.64.0.1"))
            .await;
    for user in ["alice", "bob"] {
        ipam::allocate_ip(
            app.db(),
            settings,
            &Actor::system(),
            &AllocationInput {
                subnet_id: subnet.id,
                username: Some(user.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    ipam::create_pool(
        app.db(),
        &Actor::system(),
        &PoolInput {
            name: "Spare".into(),
            start_ip: "100.65.0.0".into(),
            end_ip: "100.65.0.255".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

/// Two active users, one suspended, one disabled; only the suspended one
/// still awaits its RADIUS sync.
async fn seed_users(app: &TestApp) {
    let package = app.create_package(&home_20()).await.unwrap();
    for (username, status) in [
        ("alice", "active"),
        ("bob", "active"),
        ("carol", "suspended"),
        ("dave", "disabled"),
    ] {
        app.create_user(&UserInput {
            status: Some(status.into()),
            ..pppoe_user(username, "Subscriber-pass-1", package.id)
        })
        .await
        .unwrap();
    }
    network_user::Entity::update_many()
        .col_expr(network_user::Column::RadiusSyncPending, Expr::value(false))
        .filter(network_user::Column::Username.ne("carol"))
        .exec(app.db())
        .await
        .unwrap();
}

async fn add_router(db: &DatabaseConnection, name: &str, status: &str) -> i32 {
    let now = Utc::now().fixed_offset();
    mikrotik_router::ActiveModel {
        name: Set(name.into()),
        ip_address: Set("192.0.2.10".into()),
        api_port: Set(8728),
        use_tls: Set(false),
        username: Set("api".into()),
        password_encrypted: Set("not-a-real-secret".into()),
        status: Set(status.into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

async fn add_session(db: &DatabaseConnection, id: &str, source: &str, status: &str, router: i32) {
    let now = Utc::now().fixed_offset();
    network_user_session::ActiveModel {
        username: Set(format!("user-{id}")),
        session_id: Set(id.into()),
        source: Set(source.into()),
        router_id: Set(Some(router)),
        start_time: Set(now),
        upload_bytes: Set(0),
        download_bytes: Set(0),
        nas_ip: Set("192.0.2.10".into()),
        status: Set(status.into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
}

/// Routers: core-1 online, edge-2 offline, edge-3 never tested; two
/// sessions the routers report now, one they reported earlier, and one
/// seen through RADIUS (not a router's count).
async fn seed_routers(app: &TestApp) {
    let core = add_router(app.db(), "core-1", "online").await;
    add_router(app.db(), "edge-2", "offline").await;
    add_router(app.db(), "edge-3", "unknown").await;
    add_session(app.db(), "*1", "mikrotik", "active", core).await;
    add_session(app.db(), "*2", "mikrotik", "active", core).await;
    add_session(app.db(), "*3", "mikrotik", "closed", core).await;
    add_session(app.db(), "r-1", "radius", "active", core).await;
}

/// housekeeping succeeded and ipam-cleanup failed, both at `finished`.
async fn seed_job_runs(app: &TestApp, finished: DateTime<Utc>) {
    for (job, outcome) in [
        ("housekeeping", Outcome::Succeeded(JobSummary::new())),
        (
            "ipam-cleanup",
            Outcome::Failed("the database went away".into()),
        ),
    ] {
        let run = runs::request_run(app.db(), job, Trigger::Manual, &Actor::system())
            .await
            .unwrap();
        runs::acquire(
            app.db(),
            run.id,
            "w1",
            finished - Duration::seconds(5),
            StdDuration::from_secs(30),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(runs::finish(app.db(), run.id, "w1", outcome, finished)
            .await
            .unwrap());
    }
}

async fn seed_everything(app: &TestApp, backend: Backend, now: i64) {
    seed_pools(app).await;
    seed_users(app).await;
    seed_routers(app).await;
    seed_sessions(app, backend, now).await;
    seed_job_runs(app, utc(now - 600)).await;
}

async fn the_figures_are_read_from_real_rows(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let empty = dashboard::figures(app.db(), &app.state.db.radius, utc(NOON))
        .await
        .unwrap();
    assert!(empty.pools.is_empty() && empty.jobs.iter().all(|j| j.last_run.is_none()));
    assert_eq!(empty.radius.as_ref().unwrap().online_now, 0);

    seed_everything(&app, backend, NOON).await;
    let figures: DashboardFigures = dashboard::figures(app.db(), &app.state.db.radius, utc(NOON))
        .await
        .unwrap();
    assert_eq!(figures.computed_at, utc(NOON));
    assert_eq!(
        figures.pools,
        vec![
            PoolFigure {
                id: figures.pools[0].id,
                name: "Residential".into(),
                used: 2,
                total: 5,
                percent: 40.0,
            },
            PoolFigure {
                id: figures.pools[1].id,
                name: "Spare".into(),
                used: 0,
                total: 0,
                percent: 0.0,
            },
        ]
    );
    assert_eq!(figures.pools[0].ratio(), 0.4);
    assert_eq!(figures.router_sessions, 2);

    let radius = figures.radius.as_ref().expect("the RADIUS figures");
    assert_eq!(radius.online_now, 2);
    let moments: Vec<DateTime<Utc>> = radius.trend.iter().map(|p| p.at).collect();
    let expected_moments: Vec<DateTime<Utc>> = (0..13)
        .map(|i| utc(NOON - 24 * HOUR + i * 2 * HOUR))
        .collect();
    assert_eq!(moments, expected_moments);
    let online: Vec<u64> = radius.trend.iter().map(|p| p.online).collect();
    // 24 h ago alice alone; carol from 22 h to 14 h ago; alice alone at
    // 12 h ago; dave from 10 h to 6 h ago; alone again 4 h ago; bob since
    // 2 h ago.
    assert_eq!(online, [1, 2, 2, 2, 2, 2, 1, 2, 2, 2, 1, 2, 2]);
    assert_eq!(radius.online_day_ago(), 1);
    assert_eq!(
        radius.traffic_today,
        TrafficToday {
            sessions: 3,
            upload_octets: 4_200,
            download_octets: GIB4 + 5_810,
        }
    );
    assert_eq!(radius.traffic_today, expected_traffic(NOON));

    assert_eq!(
        figures.routers,
        RouterFigures {
            online: 1,
            offline: 1,
            unknown: 1,
            down: vec!["edge-2".into()],
        }
    );
    assert_eq!(
        figures.users.by_status,
        vec![("active", 2), ("suspended", 1), ("disabled", 1)]
    );
    assert_eq!(figures.users.sync_pending, 1);

    let names: Vec<&str> = figures.jobs.iter().map(|j| j.name).collect();
    let scheduled: Vec<&str> = ispd::jobs::SCHEDULE.iter().map(|j| j.name).collect();
    assert_eq!(names, scheduled, "every job, in the Jobs page's order");
    let last = |name: &str| {
        figures
            .jobs
            .iter()
            .find(|j| j.name == name)
            .unwrap()
            .last_run
            .clone()
    };
    let housekeeping = last("housekeeping").expect("a finished run");
    assert_eq!(
        (housekeeping.status.as_str(), housekeeping.finished_at),
        ("succeeded", Some(utc(NOON - 600)))
    );
    assert!(housekeeping.succeeded());
    let cleanup: LastRun = last("ipam-cleanup").expect("a finished run");
    assert_eq!(cleanup.status, "failed");
    assert!(!cleanup.succeeded());
    assert_eq!(last("radius-retry"), None);

    // Moments further back read the sessions that ended since the earliest.
    let trend = ispd::radius::accounting::online_trend(
        &app.state.db.radius,
        &[utc(NOON - 45 * HOUR), utc(NOON - 25 * HOUR), utc(NOON)],
    )
    .await
    .unwrap();
    assert_eq!(trend.open_now, 2);
    let online: Vec<u64> = trend.points.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        online,
        [1, 1, 2],
        "erin alone 45 h ago, alice alone 25 h ago"
    );
}
crate::on_every_backend!(the_figures_are_read_from_real_rows);

async fn scrape(app: &TestApp, token: &str) -> TestResponse {
    app.get_as("/metrics", token).await
}

async fn the_page_the_fragment_and_metrics_show_the_figures(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = app.signed_in("noc", Role::Viewer).await;
    let empty = browser.get("/").await.text();
    for hint in [
        "No pools yet. <a href=\"/ipam/pools\"",
        "No routers yet. <a href=\"/mikrotik/routers\"",
        "No network users yet. <a href=\"/users\"",
        "No job has run yet.",
        "data-figure=\"online-radius\">0</a>",
    ] {
        assert!(empty.contains(hint), "missing {hint} in\n{empty}");
    }

    let now = Utc::now().timestamp();
    seed_everything(&app, backend, now).await;
    let traffic = expected_traffic(now);
    let page = browser.get("/").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    let fragment = browser.get("/dashboard/figures").await;
    assert_eq!(fragment.status, 200);
    let fragment = fragment.text();
    assert!(
        fragment
            .trim_start()
            .starts_with("<div id=\"dashboard-figures\"")
            && !fragment.contains("<html"),
        "the fragment is the panel area alone: {fragment}"
    );
    assert!(html
        .contains("hx-get=\"/dashboard/figures\" hx-trigger=\"every 10s\" hx-swap=\"outerHTML\""));
    assert!(html.contains("Network health"), "the health section stays");
    let download = format!(
        "data-figure=\"traffic-download\">{}</dd>",
        human_bytes(traffic.download_octets)
    );
    let upload = format!(
        "data-figure=\"traffic-upload\">{}</dd>",
        human_bytes(traffic.upload_octets)
    );
    let sessions = format!(
        "data-figure=\"traffic-sessions\">{}</span>",
        traffic.sessions
    );
    for text in [&html, &fragment] {
        for expected in [
            "data-figure=\"online-radius\">2</a>",
            "data-figure=\"online-day-ago\">1</span>",
            "data-figure=\"online-change\">+1</span>",
            "data-figure=\"online-router\">2</a>",
            "<polyline points=\"0.0,",
            "<a href=\"/ipam/pools/",
            ">Residential</a>",
            "data-figure=\"pool-used\">2</span> of <span data-figure=\"pool-total\">5</span> used (<span data-figure=\"pool-percent\">40.0</span> %)",
            "data-pool=\"Spare\" data-level=\"ok\"",
            "data-routers=\"online\">1 online</a>",
            "data-routers=\"offline\">1 offline</a>",
            "data-routers=\"unknown\">1 unknown</a>",
            "<span data-router-down=\"edge-2\">edge-2</span>",
            "data-users=\"active\">2 active</a>",
            "data-users=\"suspended\">1 suspended</a>",
            "data-users=\"disabled\">1 disabled</a>",
            "data-figure=\"sync-pending\">1</span> awaiting a RADIUS sync",
            "data-job=\"housekeeping\" data-outcome=\"succeeded\"",
            "data-job=\"ipam-cleanup\" data-outcome=\"failed\"",
            "data-job=\"radius-retry\" data-outcome=\"never\"",
            &download,
            &upload,
            &sessions,
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        assert!(!text.contains("RADIUS database cannot be read"));
    }

    let token = app.create_token(Role::Viewer).await;
    let metrics = scrape(&app, &token).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    let finished = now - 600;
    let lines = [
        "# HELP ispd_pool_utilization_ratio Active allocations over usable addresses of each IP pool (0 to 1).".to_string(),
        "# TYPE ispd_pool_utilization_ratio gauge".into(),
        "ispd_pool_utilization_ratio{pool=\"Residential\"} 0.4".into(),
        "ispd_pool_utilization_ratio{pool=\"Spare\"} 0".into(),
        "ispd_pool_addresses_used{pool=\"Residential\"} 2".into(),
        "ispd_pool_addresses_total{pool=\"Residential\"} 5".into(),
        "ispd_pool_addresses_total{pool=\"Spare\"} 0".into(),
        "ispd_radius_database_readable 1".into(),
        "# TYPE ispd_online_sessions gauge".into(),
        "ispd_online_sessions{source=\"radius\"} 2".into(),
        "ispd_online_sessions{source=\"router\"} 2".into(),
        "ispd_routers{status=\"online\"} 1".into(),
        "ispd_routers{status=\"offline\"} 1".into(),
        "ispd_routers{status=\"unknown\"} 1".into(),
        "ispd_network_users{status=\"active\"} 2".into(),
        "ispd_network_users{status=\"suspended\"} 1".into(),
        "ispd_network_users{status=\"disabled\"} 1".into(),
        "ispd_radius_sync_pending 1".into(),
        format!("ispd_job_last_run_timestamp_seconds{{job=\"housekeeping\"}} {finished}"),
        format!("ispd_job_last_run_timestamp_seconds{{job=\"ipam-cleanup\"}} {finished}"),
        "ispd_job_last_run_success{job=\"housekeeping\"} 1".into(),
        "ispd_job_last_run_success{job=\"ipam-cleanup\"} 0".into(),
        "# TYPE ispd_traffic_today_bytes gauge".into(),
        format!(
            "ispd_traffic_today_bytes{{direction=\"download\"}} {}",
            traffic.download_octets
        ),
        format!(
            "ispd_traffic_today_bytes{{direction=\"upload\"}} {}",
            traffic.upload_octets
        ),
    ];
    let scraped: Vec<&str> = text.lines().collect();
    for line in &lines {
        assert!(
            scraped.contains(&line.as_str()),
            "missing {line} in\n{text}"
        );
    }
    assert!(
        !text.contains("job=\"radius-retry\""),
        "a job that never ran has no last-run gauges"
    );
    // The request metrics are still there.
    assert!(text.contains("# TYPE ispd_http_requests_total counter"));
}
crate::on_every_backend!(the_page_the_fragment_and_metrics_show_the_figures);

async fn the_dashboard_works_while_the_radius_database_is_down(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    seed_pools(&app).await;
    seed_routers(&app).await;
    let mut browser = app.signed_in("noc", Role::Viewer).await;
    app.state.db.radius.close_by_ref().await.unwrap();

    let figures = dashboard::figures(app.db(), &app.state.db.radius, Utc::now())
        .await
        .expect("the main database's figures");
    assert_eq!(figures.radius, None);
    assert_eq!(figures.router_sessions, 2);
    assert_eq!(figures.pools.len(), 2);

    for path in ["/", "/dashboard/figures"] {
        let response = browser.get(path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let html = response.text();
        assert!(
            html.contains("The RADIUS database cannot be read right now"),
            "{path}: {html}"
        );
        assert!(html.contains("data-figure=\"online-router\">2</a>"));
        assert!(html.contains("data-routers=\"offline\">1 offline</a>"));
        assert!(!html.contains("data-figure=\"online-radius\""));
    }

    let token = app.create_token(Role::Viewer).await;
    let metrics = scrape(&app, &token).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains("\nispd_radius_database_readable 0\n"),
        "{text}"
    );
    assert!(text.contains("\nispd_online_sessions{source=\"router\"} 2\n"));
    assert!(!text.contains("source=\"radius\""));
    assert!(!text.contains("ispd_traffic_today_bytes{"));
    assert!(text.contains("\nispd_pool_addresses_used{pool=\"Residential\"} 2\n"));
}
crate::on_every_backend!(the_dashboard_works_while_the_radius_database_is_down);
