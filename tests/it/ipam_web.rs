//! The IPAM pages: forms with inline messages, htmx fragments, the CSV
//! export, roles and the address history.

use ispd::staff::Role;

use crate::helpers::{
    inline_message, location_id, with, Backend, TestApp, TestBrowser, TestResponse,
};

async fn operator(app: &TestApp) -> TestBrowser<'_> {
    app.signed_in("noc", Role::Operator).await
}

/// Fields sent, the field whose message is expected, and (part of) it.
type Case = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

const POOL: &[(&str, &str)] = &[
    ("name", "Residential"),
    ("description", "Homes"),
    ("start_ip", "10.0.0.0"),
    ("end_ip", "10.0.255.255"),
    ("gateway", "10.0.0.1"),
    ("dns_servers", "1.1.1.1, 9.9.9.9\n8.8.8.8"),
    ("vlan_id", "100"),
    ("status", "active"),
];

/// Creates a pool and a subnet through the forms; returns their ids.
async fn pool_and_subnet(browser: &mut TestBrowser<'_>, network: &str) -> (String, String) {
    let pool = location_id(&browser.post("/ipam/pools", POOL).await);
    let subnet = browser
        .post(
            &format!("/ipam/pools/{pool}/subnets"),
            &[
                ("network", network),
                ("gateway", "10.0.0.1"),
                ("vlan_id", "100"),
                ("status", "active"),
                ("description", "first"),
            ],
        )
        .await;
    (pool, location_id(&subnet))
}

/// A form post as htmx sends it: HX-Request, and the token in a header.
async fn hx_post(browser: &TestBrowser<'_>, path: &str, fields: &[(&str, &str)]) -> TestResponse {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = axum::http::Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("hx-request", "true")
        .header(
            "x-csrf-token",
            browser.csrf_token.clone().unwrap_or_default(),
        );
    if let Some(cookie) = &browser.cookie {
        request = request.header("cookie", cookie);
    }
    browser
        .app
        .send(request.body(axum::body::Body::from(body)).unwrap())
        .await
}

/// The id of the first release button in a page or fragment.
fn first_release_id(html: &str) -> String {
    let marker = "action=\"/ipam/allocations/";
    let start = html.find(marker).expect("a release button") + marker.len();
    let end = html[start..].find('/').unwrap() + start;
    html[start..end].to_string()
}

fn assert_fragment(response: &TestResponse, status: u16) -> String {
    let html = response.text();
    assert_eq!(response.status, status, "{html}");
    assert_eq!(response.header("vary"), Some("HX-Request"));
    assert!(
        html.trim_start().starts_with("<section id=\"allocations\""),
        "a fragment: {html}"
    );
    assert!(!html.contains("<html"), "not a whole page");
    html
}

async fn an_operator_creates_a_pool_and_a_subnet_through_the_forms(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = operator(&app).await;
    let empty = browser.get("/ipam/pools").await.text();
    assert!(empty.contains("No IP pools yet.") && empty.contains("New pool"));

    let created = browser.post("/ipam/pools", POOL).await;
    let pool = location_id(&created);
    let page = browser.get(&format!("/ipam/pools/{pool}")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Pool “Residential” created."), "flash shown");
    assert!(html.contains("10.0.0.0 – 10.0.255.255"));
    assert!(
        html.contains("1.1.1.1, 9.9.9.9, 8.8.8.8"),
        "DNS servers split on commas and newlines"
    );
    assert!(html.contains("This pool has no subnets yet."));

    let subnet = browser
        .post(
            &format!("/ipam/pools/{pool}/subnets"),
            &[
                ("network", "10.0.0.0/24"),
                ("gateway", "10.0.0.1"),
                ("vlan_id", ""),
                ("status", "active"),
                ("description", ""),
            ],
        )
        .await;
    let subnet = location_id(&subnet);
    let html = browser.get(&format!("/ipam/subnets/{subnet}")).await.text();
    assert!(html.contains("Subnet 10.0.0.0/24 added to pool “Residential”."));
    assert!(
        html.contains("0.0% used (0 of 253)"),
        "gateway excluded: {html}"
    );
    assert!(html.contains("10.0.0.2"), "first free address listed");

    let pool_page = browser.get(&format!("/ipam/pools/{pool}")).await.text();
    assert!(pool_page.contains("Utilization by subnet") && pool_page.contains("<svg"));
    assert!(pool_page.contains(&format!("href=\"/ipam/subnets/{subnet}\"")));

    let list = browser.get("/ipam/pools").await.text();
    assert!(list.contains("Residential") && list.contains("0.0% used (0 of 253)"));
    let subnets = browser.get("/ipam/subnets?q=10.0.0.77").await.text();
    assert!(
        subnets.contains("10.0.0.0/24"),
        "an address finds its subnet"
    );

    // Editing the pool and the subnet.
    let edited = browser
        .post(
            &format!("/ipam/pools/{pool}"),
            &with(POOL, &[("name", "Homes"), ("vlan_id", "")]),
        )
        .await;
    assert_eq!(edited.status, 303, "{}", edited.text());
    assert!(browser
        .get("/ipam/pools?q=homes")
        .await
        .text()
        .contains("Homes"));
    let edited = browser
        .post(
            &format!("/ipam/subnets/{subnet}"),
            &[
                ("gateway", "10.0.0.254"),
                ("vlan_id", "7"),
                ("status", "reserved"),
                ("description", "moved"),
            ],
        )
        .await;
    assert_eq!(edited.status, 303, "{}", edited.text());
    let html = browser.get(&format!("/ipam/subnets/{subnet}")).await.text();
    assert!(html.contains("10.0.0.254") && html.contains("reserved"));
}
crate::on_every_backend!(an_operator_creates_a_pool_and_a_subnet_through_the_forms);

async fn each_pool_rule_is_shown_inline(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = operator(&app).await;
    location_id(&browser.post("/ipam/pools", POOL).await);
    let cases: &[Case] = &[
        (
            &[("name", "  ")],
            "name",
            "must be 1 to 100 characters long",
        ),
        (&[("name", "Residential")], "name", "exists already"),
        (
            &[("start_ip", "banana")],
            "start_ip",
            "is not an IPv4 or IPv6 address",
        ),
        (
            &[("end_ip", "9.255.255.255")],
            "end_ip",
            "comes before start_ip 10.0.0.0",
        ),
        (
            &[("end_ip", "2001:db8::1")],
            "end_ip",
            "must be of the same family",
        ),
        (
            &[("gateway", "192.168.0.1")],
            "gateway",
            "192.168.0.1 is not inside 10.0.0.0 – 10.0.255.255",
        ),
        (&[("dns_servers", "1.1.1.1, nope")], "dns_servers", "nope"),
        (
            &[("vlan_id", "5000")],
            "vlan_id",
            "5000 is not a VLAN id (1 to 4094)",
        ),
        (
            &[("vlan_id", "ten")],
            "vlan_id",
            "is not a VLAN id (1 to 4094)",
        ),
        (
            &[("status", "bogus")],
            "status",
            "is not a status (active, reserved or deprecated)",
        ),
    ];
    for (changes, field, message) in cases {
        let fields = with(&with(POOL, &[("name", "Other")]), changes);
        let response = browser.post("/ipam/pools", &fields).await;
        let html = response.text();
        assert_eq!(response.status, 422, "{field}: {html}");
        let shown = inline_message(&html, "pool", field);
        assert!(shown.contains(message), "{field}: {shown}");
        assert!(html.contains(&format!("aria-describedby=\"pool-{field}-error\"")));
        assert!(
            html.contains("value=\"Other\"") || *field == "name",
            "the form keeps what was typed"
        );
    }
    // The vlan "ten" case reports the service's other checks too.
    let response = browser
        .post(
            "/ipam/pools",
            &with(POOL, &[("name", ""), ("vlan_id", "ten")]),
        )
        .await;
    let html = response.text();
    assert!(html.contains("id=\"pool-name-error\"") && html.contains("id=\"pool-vlan_id-error\""));
}
crate::on_every_backend!(each_pool_rule_is_shown_inline);

async fn each_subnet_rule_is_shown_inline(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = operator(&app).await;
    let (pool, _) = pool_and_subnet(&mut browser, "10.0.0.0/24").await;
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // network, gateway, vlan, field, message
        (
            "10.0.1.5/24",
            "",
            "",
            "network",
            "did you mean 10.0.1.0/24?",
        ),
        (
            "10.0.0.128/25",
            "",
            "",
            "network",
            "overlaps subnet 10.0.0.0/24",
        ),
        ("192.168.0.0/24", "", "", "network", "is not inside pool"),
        (
            "not a network",
            "",
            "",
            "network",
            "is not a network in CIDR notation",
        ),
        (
            "10.0.1.0/24",
            "10.0.1.0",
            "",
            "gateway",
            "network or broadcast address",
        ),
        (
            "10.0.1.0/24",
            "10.0.2.1",
            "",
            "gateway",
            "10.0.2.1 is not inside 10.0.1.0/24",
        ),
        ("10.0.1.0/24", "", "0", "vlan_id", "0 is not a VLAN id"),
        ("10.0.1.0/24", "", "x", "vlan_id", "is not a VLAN id"),
    ];
    for (network, gateway, vlan, field, message) in cases {
        let response = browser
            .post(
                &format!("/ipam/pools/{pool}/subnets"),
                &[
                    ("network", network),
                    ("gateway", gateway),
                    ("vlan_id", vlan),
                    ("status", "active"),
                    ("description", ""),
                ],
            )
            .await;
        let html = response.text();
        assert_eq!(response.status, 422, "{network}: {html}");
        let shown = inline_message(&html, "subnet", field);
        assert!(shown.contains(message), "{network}: {shown}");
        assert!(
            html.contains(&format!("value=\"{network}\"")),
            "the form keeps what was typed"
        );
    }
    let response = browser
        .post(
            &format!("/ipam/pools/{pool}/subnets"),
            &[("network", "10.0.1.0/24"), ("status", "closed")],
        )
        .await;
    assert_eq!(response.status, 422);
    assert!(response.text().contains("id=\"subnet-status-error\""));
    // Editing checks too.
    let created = browser
        .post(
            &format!("/ipam/pools/{pool}/subnets"),
            &[("network", "10.0.2.0/24")],
        )
        .await;
    let subnet = location_id(&created);
    let response = browser
        .post(
            &format!("/ipam/subnets/{subnet}"),
            &[("gateway", "10.0.3.1"), ("status", "active")],
        )
        .await;
    assert_eq!(response.status, 422);
    assert!(response.text().contains("id=\"edit-gateway-error\""));
}
crate::on_every_backend!(each_subnet_rule_is_shown_inline);

async fn allocate_and_release_through_htmx(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = operator(&app).await;
    let (_, subnet) = pool_and_subnet(&mut browser, "10.0.0.0/24").await;
    let path = format!("/ipam/subnets/{subnet}/allocations");

    let response = hx_post(
        &browser,
        &path,
        &[("username", "alice"), ("mac_address", "AA-BB-CC-DD-EE-01")],
    )
    .await;
    let html = assert_fragment(&response, 200);
    assert!(
        html.contains("Allocated 10.0.0.2 to alice (aa:bb:cc:dd:ee:01)."),
        "{html}"
    );
    assert!(html.contains("Release 10.0.0.2"));
    assert!(html.contains("1 of 253") || html.contains("252 of 253 usable addresses free"));

    // The same subscriber again: nothing changes.
    let again = hx_post(
        &browser,
        &path,
        &[("username", "alice"), ("mac_address", "aa:bb:cc:dd:ee:01")],
    )
    .await;
    assert!(assert_fragment(&again, 200).contains("already holds 10.0.0.2: nothing changed."));

    let id = first_release_id(&html);
    let released = hx_post(&browser, &format!("/ipam/allocations/{id}/release"), &[]).await;
    let html = assert_fragment(&released, 200);
    assert!(html.contains("Released 10.0.0.2 from alice"), "{html}");
    assert!(html.contains("released") && !html.contains("Release 10.0.0.2\""));

    // The filter answers with the fragment too.
    let request = axum::http::Request::get(format!("/ipam/subnets/{subnet}?status=active"))
        .header("hx-request", "true")
        .header("cookie", browser.cookie.clone().unwrap())
        .body(axum::body::Body::empty())
        .unwrap();
    let filtered = app.send(request).await;
    let html = assert_fragment(&filtered, 200);
    assert!(html.contains("No allocation matches."));
}
crate::on_every_backend!(allocate_and_release_through_htmx);

async fn allocation_problems_are_shown_inline(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = operator(&app).await;
    let (_, subnet) = pool_and_subnet(&mut browser, "10.0.0.0/29").await;
    let path = format!("/ipam/subnets/{subnet}/allocations");
    let cases: &[Case] = &[
        (
            &[("mac_address", "aa:bb")],
            "mac_address",
            "is not a MAC address",
        ),
        (
            &[("username", "has space")],
            "username",
            "may contain only letters",
        ),
        (
            &[("username", "")],
            "username",
            "give a username, a MAC address, or both",
        ),
        (
            &[("username", "bob"), ("ip_address", "10.0.1.9")],
            "ip_address",
            "10.0.1.9 is not inside subnet 10.0.0.0/29",
        ),
        (
            &[("username", "bob"), ("ip_address", "10.0.0.1")],
            "ip_address",
            "is the gateway",
        ),
        (
            &[("username", "bob"), ("expires_at", "2001-01-01T00:00")],
            "expires_at",
            "must be in the future",
        ),
        (
            &[("username", "bob"), ("expires_at", "soon")],
            "expires_at",
            "is not a date and time",
        ),
    ];
    for (fields, field, message) in cases {
        let response = hx_post(&browser, &path, fields).await;
        let html = assert_fragment(&response, 422);
        let shown = inline_message(&html, "allocate", field);
        assert!(shown.contains(message), "{field}: {shown}");
    }
    // A /29 with its gateway has 5 addresses to give.
    for i in 0..5 {
        let user = format!("user{i}");
        let response = hx_post(&browser, &path, &[("username", &user)]).await;
        assert_fragment(&response, 200);
    }
    let taken = hx_post(
        &browser,
        &path,
        &[("username", "late"), ("ip_address", "10.0.0.3")],
    )
    .await;
    let html = assert_fragment(&taken, 409);
    assert!(
        html.contains("10.0.0.3 is already allocated in 10.0.0.0/29"),
        "{html}"
    );
    assert!(html.contains("id=\"allocate-ip_address-error\""));
    let full = hx_post(&browser, &path, &[("username", "late")]).await;
    let html = assert_fragment(&full, 409);
    assert!(
        html.contains("subnet 10.0.0.0/29 is full: 5 of 5 usable addresses allocated"),
        "{html}"
    );
    assert!(
        html.contains("value=\"late\""),
        "the form keeps what was typed"
    );
    // Without htmx: the whole page, with the same message.
    let plain = browser.post(&path, &[("username", "late")]).await;
    assert_eq!(plain.status, 409);
    let html = plain.text();
    assert!(html.contains("<html") && html.contains("is full: 5 of 5"));
    assert!(html.contains("None: every usable address is allocated."));
}
crate::on_every_backend!(allocation_problems_are_shown_inline);

async fn plain_form_posts_work_without_javascript(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = operator(&app).await;
    let (pool, subnet) = pool_and_subnet(&mut browser, "10.0.0.0/24").await;
    let allocated = browser
        .post(
            &format!("/ipam/subnets/{subnet}/allocations"),
            &[("username", "carol"), ("ip_address", "10.0.0.50")],
        )
        .await;
    assert_eq!(allocated.status, 303);
    assert_eq!(
        allocated.header("location"),
        Some(format!("/ipam/subnets/{subnet}").as_str())
    );
    let html = browser.get(&format!("/ipam/subnets/{subnet}")).await.text();
    assert!(html.contains("Allocated 10.0.0.50 to carol."));

    // Neither the pool nor the subnet can go while the address is held.
    let refused = browser
        .post(&format!("/ipam/pools/{pool}/delete"), &[])
        .await;
    assert_eq!(refused.status, 409);
    assert!(refused
        .text()
        .contains("still has 1 active allocation(s); release them first"));
    let refused = browser
        .post(&format!("/ipam/subnets/{subnet}/delete"), &[])
        .await;
    assert_eq!(refused.status, 409);
    assert!(refused.text().contains("still has 1 active allocation(s)"));
    assert!(html.contains("data-confirm=\"Delete subnet 10.0.0.0/24?"));

    let id = first_release_id(&html);
    let released = browser
        .post(&format!("/ipam/allocations/{id}/release"), &[])
        .await;
    assert_eq!(released.status, 303);
    assert!(browser
        .get(&format!("/ipam/subnets/{subnet}"))
        .await
        .text()
        .contains("Released 10.0.0.50 from carol."));

    let deleted = browser
        .post(&format!("/ipam/pools/{pool}/delete"), &[])
        .await;
    assert_eq!(deleted.header("location"), Some("/ipam/pools"));
    let html = browser.get("/ipam/pools").await.text();
    assert!(html.contains("Pool “Residential” deleted.") && html.contains("No IP pools yet."));
}
crate::on_every_backend!(plain_form_posts_work_without_javascript);

async fn the_csv_export_follows_the_filters_and_defuses_formulas(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = operator(&app).await;
    let (_, subnet) = pool_and_subnet(&mut browser, "10.0.0.0/24").await;
    let path = format!("/ipam/subnets/{subnet}/allocations");
    for user in ["@evil", "-1+2", "+cmd", "alice"] {
        let response = browser
            .post(&path, &[("username", user), ("mac_address", "")])
            .await;
        assert_eq!(response.status, 303, "{user}: {}", response.text());
    }
    let html = browser
        .get(&format!("/ipam/subnets/{subnet}?q=alice"))
        .await
        .text();
    let id = first_release_id(&html);
    browser
        .post(&format!("/ipam/allocations/{id}/release"), &[])
        .await;

    let csv = browser.get("/ipam/allocations.csv?status=active").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.header("content-disposition"),
        Some("attachment; filename=\"allocations.csv\"")
    );
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id,ip_address,subnet,username,mac_address,status,allocated_at,released_at,expires_at"
    );
    assert_eq!(lines.len(), 4, "three active allocations: {text}");
    for defused in [",'@evil,", ",'-1+2,", ",'+cmd,"] {
        assert!(text.contains(defused), "{defused} in {text}");
    }
    assert!(!text.contains("alice"), "the status filter applies");
    assert!(text.contains(",10.0.0.0/24,"));

    let everything = browser.get("/ipam/allocations.csv").await.text();
    assert!(everything.contains(",alice,") && everything.contains(",released,"));
    let one = browser.get("/ipam/allocations.csv?q=alice").await.text();
    assert_eq!(one.lines().count(), 2, "{one}");

    let page = browser.get("/ipam/allocations?status=active").await.text();
    assert!(page.contains("href=\"/ipam/allocations.csv?status=active\""));
    assert!(page.contains("@evil") && !page.contains(">alice<"));
}
crate::on_every_backend!(the_csv_export_follows_the_filters_and_defuses_formulas);

async fn a_viewer_sees_no_forms_and_cannot_post(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = operator(&app).await;
    let (pool, subnet) = pool_and_subnet(&mut op, "10.0.0.0/24").await;
    op.post(
        &format!("/ipam/subnets/{subnet}/allocations"),
        &[("username", "dave")],
    )
    .await;
    let html = op.get(&format!("/ipam/subnets/{subnet}")).await.text();
    let allocation = first_release_id(&html);

    let mut viewer = app.signed_in("watcher", Role::Viewer).await;
    for page in [
        "/ipam/pools".to_string(),
        format!("/ipam/pools/{pool}"),
        "/ipam/subnets".into(),
        format!("/ipam/subnets/{subnet}"),
        "/ipam/allocations".into(),
        "/ipam/history?ip=10.0.0.2".into(),
    ] {
        let response = viewer.get(&page).await;
        assert_eq!(response.status, 200, "{page}");
        let html = response.text();
        for change in [
            "method=\"post\" action=\"/ipam",
            "New pool",
            "Add subnet",
            "Edit pool",
            "Edit subnet",
            "Allocate<",
            ">Release<",
            "Delete",
        ] {
            assert!(!html.contains(change), "{page} shows {change} to a viewer");
        }
    }
    assert!(viewer
        .get(&format!("/ipam/subnets/{subnet}"))
        .await
        .text()
        .contains("dave"));
    for (path, fields) in [
        ("/ipam/pools".to_string(), POOL.to_vec()),
        (format!("/ipam/pools/{pool}"), POOL.to_vec()),
        (format!("/ipam/pools/{pool}/delete"), vec![]),
        (
            format!("/ipam/pools/{pool}/subnets"),
            vec![("network", "10.0.1.0/24")],
        ),
        (
            format!("/ipam/subnets/{subnet}"),
            vec![("status", "reserved")],
        ),
        (format!("/ipam/subnets/{subnet}/delete"), vec![]),
        (
            format!("/ipam/subnets/{subnet}/allocations"),
            vec![("username", "eve")],
        ),
        (format!("/ipam/allocations/{allocation}/release"), vec![]),
    ] {
        let response = viewer.post(&path, &fields).await;
        assert_eq!(response.status, 403, "{path}");
        let response = hx_post(&viewer, &path, &fields).await;
        assert_eq!(response.status, 403, "{path} with htmx");
    }
    let html = op.get(&format!("/ipam/subnets/{subnet}")).await.text();
    assert!(
        html.contains("Release 10.0.0.2") && !html.contains("eve"),
        "nothing changed"
    );
}
crate::on_every_backend!(a_viewer_sees_no_forms_and_cannot_post);

async fn the_history_search_finds_the_holder(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = operator(&app).await;
    let (_, subnet) = pool_and_subnet(&mut browser, "10.0.0.0/24").await;
    let path = format!("/ipam/subnets/{subnet}/allocations");
    browser
        .post(&path, &[("username", "alice"), ("ip_address", "10.0.0.9")])
        .await;
    let stamp = |seconds: i64| {
        (chrono::Utc::now() + chrono::Duration::seconds(seconds))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    let while_alice = stamp(1);
    let html = browser
        .get(&format!("/ipam/history?ip=10.0.0.9&at={while_alice}"))
        .await
        .text();
    let holder = &html[html.find("id=\"holder\"").expect("a holder section")..];
    assert!(holder.contains("alice"), "{html}");

    let page = browser.get(&format!("/ipam/subnets/{subnet}")).await.text();
    browser
        .post(
            &format!("/ipam/allocations/{}/release", first_release_id(&page)),
            &[],
        )
        .await;
    let taken = browser
        .post(&path, &[("username", "bob"), ("ip_address", "10.0.0.9")])
        .await;
    assert_eq!(taken.status, 303, "{}", taken.text());

    let html = browser
        .get(&format!("/ipam/history?ip=10.0.0.9&at={}", stamp(2)))
        .await
        .text();
    let holder = &html[html.find("id=\"holder\"").unwrap()..html.find("id=\"timeline\"").unwrap()];
    assert!(
        holder.contains("bob") && !holder.contains("alice"),
        "{holder}"
    );
    let timeline = &html[html.find("id=\"timeline\"").unwrap()..];
    assert!(timeline.contains("alice") && timeline.contains("bob") && timeline.contains("release"));

    let before = browser
        .get("/ipam/history?ip=10.0.0.9&at=2001-01-01T00:00")
        .await
        .text();
    assert!(before.contains("Nobody held 10.0.0.9 at that moment."));
    let bad = browser.get("/ipam/history?ip=10.0.0.999&at=tomorrow").await;
    assert_eq!(bad.status, 422);
    let html = bad.text();
    assert!(html.contains("id=\"history-ip-error\"") && html.contains("id=\"history-at-error\""));
    let empty = browser.get("/ipam/history").await;
    assert_eq!(empty.status, 200);
    assert!(empty.text().contains("Look up"));
    assert!(browser
        .get("/ipam/allocations")
        .await
        .text()
        .contains("href=\"/ipam/history\""));
}
crate::on_every_backend!(the_history_search_finds_the_holder);

async fn the_pool_list_searches_sorts_and_pages(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = operator(&app).await;
    for i in 0..52 {
        let name = format!("pool-{i:02}");
        let start = format!("10.{i}.0.0");
        let end = format!("10.{i}.0.255");
        let fields = [
            ("name", name.as_str()),
            ("start_ip", &start),
            ("end_ip", &end),
        ];
        assert_eq!(browser.post("/ipam/pools", &fields).await.status, 303);
    }
    let first = browser.get("/ipam/pools").await.text();
    assert!(first.contains("Pool “pool-51” created."), "the last flash");
    assert!(first.contains("1–50 of 52"), "{first}");
    assert!(first.contains(">pool-00<") && !first.contains(">pool-51<"));
    assert!(first.contains("href=\"/ipam/pools?page=2\""));
    let second = browser.get("/ipam/pools?page=2").await.text();
    assert!(second.contains(">pool-51<") && !second.contains(">pool-00<"));
    let reversed = browser.get("/ipam/pools?sort=-name").await.text();
    assert!(reversed.find(">pool-51<").unwrap() < reversed.find(">pool-40<").unwrap());
    assert!(
        reversed.contains("href=\"/ipam/pools?sort=-name&#38;page=2\""),
        "{reversed}"
    );
    let searched = browser.get("/ipam/pools?q=POOL-0").await.text();
    assert!(searched.contains("1–10 of 10"));
    let nothing = browser.get("/ipam/pools?q=zzz").await.text();
    assert!(nothing.contains("Nothing matches “zzz”."));
}
crate::on_every_backend!(the_pool_list_searches_sorts_and_pages);
