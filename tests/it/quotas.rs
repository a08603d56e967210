//! Fair-usage quotas, end to end with Debian's FreeRADIUS: it records the
//! accounting (interim updates with 32-bit counters that wrap, gigawords,
//! a session across the cycle boundary) in the app's RADIUS database, the
//! metering pass counts it, and crossing the tier moves the live session
//! to the throttle by CoA (FreeRADIUS's CoA listener plays the NAS).

use axum::http::Method;
use chrono::{DateTime, Datelike, Duration, Utc};
use ispd::audit::Actor;
use ispd::quotas::entities::quota_usage;
use ispd::quotas::metering::{meter, MeterReport};
use ispd::users::quota::AnchorDay;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

use crate::enforcement::{accounting, queued_events, spawn, webhook_endpoint, Fixture, PASSWORD};
use crate::helpers::{assert_error, ApiFixture, Backend, TestApp};
use ispd::staff::Role;

const GIB32: i64 = 1 << 32;

impl Fixture {
    async fn meter(&self) -> MeterReport {
        meter(&self.reach(), &Actor::system())
            .await
            .expect("a metering pass")
    }

    async fn quota(&self, user: &Value) -> Value {
        let response = self
            .api
            .view(&format!("/api/v1/users/{}/quota", user["id"]))
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    /// An accounting packet with these counters at `at`.
    async fn account(
        &self,
        status: &str,
        session: &str,
        at: DateTime<Utc>,
        counters: &[(&str, i64)],
    ) {
        let at = at.timestamp().to_string();
        let values: Vec<(String, String)> = counters
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let mut packet = accounting("carol", session, status, &at);
        packet.extend(values.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let reply = self.radius.send("acct", &packet).await;
        assert_eq!(reply.code, "Accounting-Response", "{reply}");
    }
}

/// An endpoint that takes the quota and session events; its id.
async fn usage_endpoint(f: &Fixture) -> i32 {
    let events = ["quota.tier_crossed", "session.started", "session.stopped"];
    webhook_endpoint(f, "crm", &events).await
}

async fn usage_rows(f: &Fixture, user_id: i64) -> Vec<quota_usage::Model> {
    quota_usage::Entity::find()
        .filter(quota_usage::Column::UserId.eq(user_id as i32))
        .order_by_asc(quota_usage::Column::CycleStart)
        .all(f.api.app.db())
        .await
        .unwrap()
}

async fn crossing_the_quota_throttles_the_live_session_by_coa_and_a_top_up_lifts_it(
    backend: Backend,
) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let now = Utc::now();
    // The cycle starts today (at most on the 28th) at 00:00 UTC: the
    // session below starts in the cycle before.
    let anchor = AnchorDay::new(i64::from(now.day().min(28))).unwrap();
    let boundary = anchor.cycle_start(now);
    let throttle = f
        .ok(
            Method::POST,
            "/api/v1/policies",
            Some(
                json!({"name": "FUP", "action": "throttle", "download_rate": "1M",
                "upload_rate": "512k", "radius_group": "fup"}),
            ),
        )
        .await;
    let package = f
        .ok(
            Method::POST,
            "/api/v1/packages",
            Some(
                json!({"name": "Capped 20M", "download_rate": "20M", "upload_rate": "5M",
                "radius_group": "capped-20m", "quota": "10G", "quota_direction": "total",
                "cycle_anchor_day": anchor.day(),
                "quota_tiers": [{"threshold_percent": 100, "policy_id": throttle["id"]}]}),
            ),
        )
        .await;
    assert_eq!(package["quota"]["size"], "10G", "{package}");
    assert_eq!(package["quota"]["tiers"][0]["threshold_percent"], 100);
    let user = f
        .ok(
            Method::POST,
            "/api/v1/users",
            Some(
                json!({"username": "carol", "password": PASSWORD, "service_type": "pppoe",
                "package_id": package["id"]}),
            ),
        )
        .await;

    // Online before the boundary; its first interim update is counted in
    // the cycle before. The NAS sends no gigawords for the upload: that
    // counter wraps below.
    let reply = f.radius.authenticate_pap("carol", PASSWORD).await;
    assert_eq!(reply.get("Mikrotik-Rate-Limit"), Some("5M/20M"), "{reply}");
    f.account("Start", "q1", boundary - Duration::seconds(120), &[])
        .await;
    f.account(
        "Interim-Update",
        "q1",
        boundary - Duration::seconds(60),
        &[
            ("Acct-Input-Octets", 4_294_967_000),
            ("Acct-Output-Octets", 2_000_000_000),
        ],
    )
    .await;
    let first = f.meter().await;
    assert_eq!(first.counted, 1, "{first:?}");
    // Told from here on (q1's start may be an hour old or not: not told).
    let crm = usage_endpoint(&f).await;
    let quota = f.quota(&user).await;
    assert_eq!(quota["used_bytes"], 0, "nothing in this cycle yet: {quota}");
    assert_eq!(quota["resets_at"], json!(anchor.next_cycle_start(now)));

    // After the boundary: the upload wrapped (4 294 967 000 → 704 is 1 000
    // bytes) and the download passed 2^32 with gigawords.
    f.account(
        "Interim-Update",
        "q1",
        Utc::now(),
        &[
            ("Acct-Input-Octets", 704),
            ("Acct-Output-Octets", 100),
            ("Acct-Output-Gigawords", 2),
        ],
    )
    .await;
    f.meter().await;
    let quota = f.quota(&user).await;
    assert_eq!(quota["upload_bytes"], 1_000, "{quota}");
    assert_eq!(
        quota["download_bytes"],
        2 * GIB32 + 100 - 2_000_000_000,
        "{quota}"
    );
    assert_eq!(quota["tier"], Value::Null, "{quota}");
    let rows = usage_rows(&f, user["id"].as_i64().unwrap()).await;
    assert_eq!(rows.len(), 2, "two cycles: {rows:?}");
    assert_eq!(
        rows[0].cycle_start.to_utc(),
        anchor.cycle_start(boundary - Duration::seconds(1))
    );
    assert_eq!(
        (rows[0].download_bytes, rows[0].upload_bytes),
        (2_000_000_000, 4_294_967_000)
    );

    // The next update crosses 100 % of 10G: one CoA with the throttle,
    // no disconnect.
    f.account(
        "Interim-Update",
        "q1",
        Utc::now() + Duration::seconds(1),
        &[
            ("Acct-Input-Octets", 704),
            ("Acct-Output-Octets", 0),
            ("Acct-Output-Gigawords", 3),
        ],
    )
    .await;
    let crossing = f.meter().await;
    assert_eq!(crossing.tiers_changed, 1, "{crossing:?}");
    assert_eq!(crossing.not_enforced, 0, "{crossing:?}");
    let quota = f.quota(&user).await;
    let used = 3 * GIB32 - 2_000_000_000 + 1_000;
    assert_eq!(quota["used_bytes"], used, "exact: {quota}");
    assert_eq!(quota["percent"], used * 100 / 10_000_000_000);
    assert_eq!(quota["tier"]["threshold_percent"], 100, "{quota}");
    assert_eq!(quota["applied_policy_id"], throttle["id"], "{quota}");
    let view = f.enforcement(&user).await;
    assert_eq!(view["target"], "throttle", "{view}");
    let sessions = view["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "one change: {view}");
    assert_eq!(sessions[0]["request"], "coa", "{view}");
    assert_eq!(sessions[0]["outcome"], "ack", "{view}");
    assert_eq!(sessions[0]["reason"], "quota", "{view}");
    // A pass over the same readings counts nothing again.
    let again = f.meter().await;
    assert_eq!((again.counted, again.tiers_changed), (0, 0), "{again:?}");
    assert_eq!(f.quota(&user).await["used_bytes"], used);
    // A new login gets the throttle too.
    let reply = f.radius.authenticate_pap("carol", PASSWORD).await;
    assert_eq!(reply.code, "Access-Accept", "{reply}");
    assert_eq!(reply.get("Mikrotik-Rate-Limit"), Some("512k/1M"), "{reply}");

    // A top-up of 2G: 10.88 GB of 12 GB is below the tier; the package's
    // rate comes back at once, by CoA.
    let bad = f
        .api
        .send(
            Method::POST,
            &format!("/api/v1/users/{}/quota/top-ups", user["id"]),
            Some(json!({"bytes": "lots"})),
        )
        .await;
    assert_error(&bad, 422, "validation_failed");
    let topped = f
        .ok(
            Method::POST,
            &format!("/api/v1/users/{}/quota/top-ups", user["id"]),
            Some(json!({"bytes": "2G", "reason": "bought 2 GB"})),
        )
        .await;
    assert_eq!(topped["topup_bytes"], 2_000_000_000i64, "{topped}");
    assert_eq!(topped["allowance_bytes"], 12_000_000_000i64, "{topped}");
    assert_eq!(topped["tier"], Value::Null, "{topped}");
    assert_eq!(topped["applied_policy_id"], Value::Null, "{topped}");
    let view = f.enforcement(&user).await;
    assert_eq!(view["target"], "active", "{view}");
    assert_eq!(view["sessions"][0]["request"], "coa", "{view}");
    assert_eq!(view["sessions"][0]["outcome"], "ack", "{view}");
    assert_eq!(
        f.api
            .app
            .audit_entries("network_user.quota_top_up")
            .await
            .len(),
        1
    );

    // The session stops; another starts. Both are told to the CRM, as is
    // each tier crossing (into the tier, and out of it by the top-up).
    f.account(
        "Stop",
        "q1",
        Utc::now() + Duration::seconds(2),
        &[
            ("Acct-Input-Octets", 2_704),
            ("Acct-Output-Octets", 0),
            ("Acct-Output-Gigawords", 3),
        ],
    )
    .await;
    f.account("Start", "q2", Utc::now(), &[]).await;
    let last = f.meter().await;
    assert_eq!((last.started, last.stopped), (1, 1), "{last:?}");
    assert_eq!(f.quota(&user).await["used_bytes"], used + 2_000);
    let told = queued_events(&f, crm).await;
    let types: Vec<&str> = told.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "quota.tier_crossed",
            "quota.tier_crossed",
            "session.stopped",
            "session.started"
        ],
        "{told:?}"
    );
    assert_eq!(told[0]["data"]["threshold_percent"], 100);
    assert_eq!(told[0]["data"]["used_bytes"], used);
    assert_eq!(told[1]["data"]["threshold_percent"], Value::Null);
    assert_eq!(told[1]["data"]["previous_threshold_percent"], 100);
    assert_eq!(told[2]["data"]["session_id"], "q1");
    assert_eq!(told[2]["data"]["upload_bytes"], 2_704);
    assert_eq!(told[3]["data"]["session_id"], "q2");
}
crate::on_server_backends!(
    crossing_the_quota_throttles_the_live_session_by_coa_and_a_top_up_lifts_it
);

/// One radacct row written as FreeRADIUS would (times in Unix seconds).
async fn write_radacct(
    f: &ApiFixture,
    backend: Backend,
    uid: &str,
    update: i64,
    stop: Option<i64>,
    counters: (i64, i64),
) {
    let at = |epoch: Option<i64>| match (epoch, backend) {
        (None, _) => "NULL".to_string(),
        (Some(e), Backend::Postgres) => format!("TO_TIMESTAMP({e})"),
        (Some(e), Backend::MySql) => format!("FROM_UNIXTIME({e})"),
        (Some(e), Backend::Sqlite) => e.to_string(),
    };
    let db = &f.app.state.db.radius;
    let (input, output) = counters;
    let updated = db
        .execute_unprepared(&format!(
            "UPDATE radacct SET acctupdatetime = {update}, acctstoptime = {stop}, \
             acctinputoctets = {input}, acctoutputoctets = {output} WHERE acctuniqueid = '{uid}'",
            update = at(Some(update)),
            stop = at(stop),
        ))
        .await
        .unwrap();
    if updated.rows_affected() == 0 {
        db.execute_unprepared(&format!(
            "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, \
             acctstarttime, acctupdatetime, acctstoptime, acctinputoctets, acctoutputoctets) \
             VALUES ('{uid}', '{uid}', 'dave', '192.0.2.1', {start}, {update}, {stop}, \
             {input}, {output})",
            start = at(Some(update)),
            update = at(Some(update)),
            stop = at(stop),
        ))
        .await
        .unwrap();
    }
}

async fn metering_counts_each_reading_once_even_with_two_passes_at_once(backend: Backend) {
    let Some(f) = ApiFixture::spawn(backend).await else {
        return;
    };
    let package = f
        .created_id(
            "/api/v1/packages",
            json!({"name": "Metered", "download_rate": "20M", "upload_rate": "5M",
                "radius_group": "metered", "quota": "1G", "quota_direction": "download"}),
        )
        .await;
    let user = f
        .created_id(
            "/api/v1/users",
            json!({"username": "dave", "password": PASSWORD, "service_type": "pppoe",
                "package_id": package}),
        )
        .await;
    let reach = ispd::enforcement::Reach::from_app(&f.app.state);
    let system = Actor::system();
    let now = Utc::now().timestamp();
    write_radacct(&f, backend, "d1", now - 30, None, (10, 1_000)).await;
    let (a, b) = tokio::join!(meter(&reach, &system), meter(&reach, &system));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.counted + b.counted, 1, "{a:?} {b:?}");
    write_radacct(&f, backend, "d1", now - 20, None, (30, 5_000)).await;
    // A session that starts and stops between two passes counts too.
    write_radacct(&f, backend, "d2", now - 10, Some(now - 5), (7, 700)).await;
    let (a, b) = tokio::join!(meter(&reach, &system), meter(&reach, &system));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.counted + b.counted, 2, "{a:?} {b:?}");
    // The open session is listed closed by then: its stop is found.
    write_radacct(&f, backend, "d1", now, Some(now), (40, 6_000)).await;
    let last = meter(&reach, &Actor::system()).await.unwrap();
    assert_eq!((last.counted, last.stopped), (1, 1), "{last:?}");
    let quota = f.view(&format!("/api/v1/users/{user}/quota")).await.json();
    assert_eq!(quota["download_bytes"], 6_700, "{quota}");
    assert_eq!(quota["upload_bytes"], 47, "{quota}");
    assert_eq!(quota["used_bytes"], 6_700, "download only: {quota}");
    assert_eq!(quota["direction"], "download");
    assert_eq!(quota["quota_bytes"], 1_000_000_000i64);
    assert_eq!(quota["tier"], Value::Null);
    let again = meter(&reach, &Actor::system()).await.unwrap();
    assert_eq!(again.counted, 0, "{again:?}");

    // The subscriber's own anchor day wins over its package's.
    let refused = f
        .patch(
            &format!("/api/v1/users/{user}"),
            json!({"cycle_anchor_day": 29}),
        )
        .await;
    let body = assert_error(&refused, 422, "validation_failed");
    assert_eq!(
        body["fields"]["cycle_anchor_day"],
        "must be a day of the month from 1 to 28"
    );
    let patched = f
        .patch(
            &format!("/api/v1/users/{user}"),
            json!({"cycle_anchor_day": 15}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["cycle_anchor_day"], 15);
    let quota = f.view(&format!("/api/v1/users/{user}/quota")).await.json();
    assert_eq!(quota["cycle_anchor_day"], 15, "{quota}");
    let start: DateTime<Utc> = quota["cycle_start"].as_str().unwrap().parse().unwrap();
    assert_eq!(start.day(), 15, "{quota}");

    // A package without a quota: nothing to top up (409).
    let plain = f
        .created_id(
            "/api/v1/packages",
            json!({"name": "Plain", "download_rate": "20M", "upload_rate": "5M",
                "radius_group": "plain"}),
        )
        .await;
    let other = f
        .created_id(
            "/api/v1/users",
            json!({"username": "erin", "password": PASSWORD, "service_type": "pppoe",
                "package_id": plain}),
        )
        .await;
    let refused = f
        .post(
            &format!("/api/v1/users/{other}/quota/top-ups"),
            json!({"bytes": 1000}),
        )
        .await;
    assert_error(&refused, 409, "no_quota");
    let quota = f.view(&format!("/api/v1/users/{other}/quota")).await.json();
    assert_eq!(quota["has_quota"], false, "{quota}");
}
crate::on_every_backend!(metering_counts_each_reading_once_even_with_two_passes_at_once);

async fn a_package_quota_is_validated_field_by_field(backend: Backend) {
    let Some(f) = ApiFixture::spawn(backend).await else {
        return;
    };
    let base = json!({"name": "Q", "download_rate": "20M", "upload_rate": "5M",
        "radius_group": "q"});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let response = f
        .post(
            "/api/v1/packages",
            with(json!({"quota": "ten gigs", "quota_direction": "both",
                "cycle_anchor_day": 31})),
        )
        .await;
    let body = assert_error(&response, 422, "validation_failed");
    let fields = &body["fields"];
    assert!(
        fields["quota"].as_str().unwrap().contains("is not a size"),
        "{body}"
    );
    assert!(
        fields["quota_direction"]
            .as_str()
            .unwrap()
            .contains("total, download or upload"),
        "{body}"
    );
    assert_eq!(
        fields["cycle_anchor_day"],
        "must be a day of the month from 1 to 28"
    );
    let response = f
        .post(
            "/api/v1/packages",
            with(json!({"quota_tiers": [{"threshold_percent": 100, "policy_id": 1}]})),
        )
        .await;
    let body = assert_error(&response, 422, "validation_failed");
    assert_eq!(
        body["fields"]["quota_tiers"],
        "need a quota: tiers are shares of it"
    );
    let response = f
        .post(
            "/api/v1/packages",
            with(json!({"quota": "5G",
                "quota_tiers": [{"threshold_percent": 100, "policy_id": 999}]})),
        )
        .await;
    let body = assert_error(&response, 422, "validation_failed");
    assert_eq!(
        body["fields"]["quota_tiers"],
        "there is no service policy with id 999"
    );
    let policy = f
        .created_id(
            "/api/v1/policies",
            json!({"name": "Slow", "action": "throttle", "download_rate": "1M",
                "upload_rate": "1M", "radius_group": "slow"}),
        )
        .await;
    let response = f
        .post(
            "/api/v1/packages",
            with(json!({"quota": "5G", "quota_tiers": [
                {"threshold_percent": 100, "policy_id": policy},
                {"threshold_percent": 100, "policy_id": policy}]})),
        )
        .await;
    let body = assert_error(&response, 422, "validation_failed");
    assert_eq!(
        body["fields"]["quota_tiers"],
        "two tiers at 100%: each threshold once"
    );
    let created = f
        .post(
            "/api/v1/packages",
            with(
                json!({"quota": "1.5T", "cycle_anchor_day": 15, "quota_tiers": [
                {"threshold_percent": 100, "policy_id": policy},
                {"threshold_percent": 80, "policy_id": policy}]}),
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let package = created.json();
    assert_eq!(package["quota"]["bytes"], 1_500_000_000_000i64);
    assert_eq!(package["quota"]["size"], "1.5T");
    assert_eq!(package["quota"]["direction"], "total");
    assert_eq!(package["quota"]["tiers"][0]["threshold_percent"], 80);
    assert_eq!(package["cycle_anchor_day"], 15);
    // The policy is a tier of it: it cannot go.
    let refused = f.delete(&format!("/api/v1/policies/{policy}")).await;
    let body = assert_error(&refused, 409, "policy_in_use");
    assert!(
        body["message"].as_str().unwrap().contains("quota tier"),
        "{body}"
    );
}
crate::on_every_backend!(a_package_quota_is_validated_field_by_field);

async fn the_package_form_sets_a_quota_and_the_user_page_shows_usage_and_takes_a_top_up(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    op.get("/policies").await;
    let created = op
        .post(
            "/policies",
            &[
                ("name", "FUP"),
                ("action", "throttle"),
                ("download_rate", "1M"),
                ("upload_rate", "512k"),
                ("radius_group", "fup"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.text());
    let policy = ispd::users::policies::service::all_policies(app.db())
        .await
        .unwrap()[0]
        .id
        .to_string();
    let form = op.get("/packages").await.text();
    assert!(form.contains("Fair-usage quota"), "{form}");
    assert!(form.contains("name=\"tier_policy_1\""), "{form}");
    let fields = |tier_percent: &'static str| {
        vec![
            ("name", "Capped"),
            ("download_rate", "20M"),
            ("upload_rate", "5M"),
            ("radius_group", "capped"),
            ("quota", "50G"),
            ("quota_direction", "download"),
            ("cycle_anchor_day", "5"),
            ("tier_percent_1", tier_percent),
        ]
    };
    // A tier with a threshold and no policy: said inline, nothing saved.
    let refused = op.post("/packages", &fields("100")).await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("tier 1: give both a threshold and a policy"),
        "{}",
        refused.text()
    );
    let mut with_policy = fields("100%");
    with_policy.push(("tier_policy_1", &policy));
    let created = op.post("/packages", &with_policy).await;
    assert_eq!(created.status, 303, "{}", created.text());
    let package_page = op.get(created.header("location").unwrap()).await.text();
    assert!(
        package_page.contains(
            "50.00 GB per cycle (download only), cycles from day 5 of the month; at 100%: FUP"
        ),
        "{package_page}"
    );
    assert!(
        package_page.contains("value=\"50G\""),
        "the edit form keeps it"
    );

    let package = ispd::users::service::list_packages(
        app.db(),
        &Default::default(),
        &ispd::query::Sort::by(vec![]),
        ispd::query::PageRequest {
            page: 1,
            per_page: 10,
        },
    )
    .await
    .unwrap()
    .0[0]
        .id;
    let user = f_user(&app, package).await;
    let page = op.get(&format!("/users/{user}")).await.text();
    assert!(
        page.contains(&format!(
            "hx-get=\"/users/{user}/quota\" hx-trigger=\"load\""
        )),
        "{page}"
    );
    let panel = op.get(&format!("/users/{user}/quota")).await.text();
    assert!(panel.contains("0 B of 50.00 GB (download only)"), "{panel}");
    assert!(panel.contains("below every tier: full package"), "{panel}");
    assert!(panel.contains(&format!("action=\"/users/{user}/quota/top-up\"")));

    let bad = op
        .post(
            &format!("/users/{user}/quota/top-up"),
            &[("bytes", "heaps")],
        )
        .await;
    assert_eq!(bad.status, 303);
    let page = op.get(&format!("/users/{user}")).await.text();
    assert!(page.contains("Not topped up: the size"), "{page}");
    let topped = op
        .post(
            &format!("/users/{user}/quota/top-up"),
            &[("bytes", "5G"), ("reason", "promo")],
        )
        .await;
    assert_eq!(topped.status, 303);
    let page = op.get(&format!("/users/{user}")).await.text();
    assert!(
        page.contains("Added 5.00 GB to dave&#39;s allowance this cycle: now 0 B of 55.00 GB.</"),
        "{page}"
    );

    // A viewer sees the panel, not the form, and cannot post it.
    let mut viewer = app.signed_in("eve", Role::Viewer).await;
    let panel = viewer.get(&format!("/users/{user}/quota")).await.text();
    assert!(panel.contains("55.00 GB"), "{panel}");
    assert!(!panel.contains("quota/top-up\""), "{panel}");
    let refused = viewer
        .post(&format!("/users/{user}/quota/top-up"), &[("bytes", "5G")])
        .await;
    assert_eq!(refused.status, 403);
}
crate::on_every_backend!(
    the_package_form_sets_a_quota_and_the_user_page_shows_usage_and_takes_a_top_up
);

async fn f_user(app: &TestApp, package: i32) -> i32 {
    let api = app.create_token(Role::Operator).await;
    let response = app
        .post_as(
            "/api/v1/users",
            &api,
            json!({"username": "dave", "password": PASSWORD, "service_type": "pppoe",
                "package_id": package}),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()["id"].as_i64().unwrap() as i32
}
