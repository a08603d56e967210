//! The policy pages, and the policy and grace days of the package form:
//! forms with CSRF and inline messages, a delete refused while a package
//! names the policy, and roles.

use ispd::staff::Role;

use crate::helpers::{assert_inline, location_id, with, Backend, TestApp, TestBrowser};

const GARDEN: &[(&str, &str)] = &[
    ("name", "Unpaid"),
    ("action", "walled_garden"),
    ("download_rate", "1M"),
    ("upload_rate", "512k"),
    ("framed_pool", ""),
    ("address_list", "unpaid"),
    ("radius_group", "policy-unpaid"),
    ("is_default", "on"),
];

const PACKAGE: &[(&str, &str)] = &[
    ("name", "Home 20M"),
    ("download_rate", "20M"),
    ("upload_rate", "5M"),
    ("radius_group", "home-20m"),
    ("mikrotik_profile", ""),
    ("simultaneous_use", ""),
    ("session_timeout_secs", ""),
    ("burst_download_rate", ""),
    ("burst_upload_rate", ""),
    ("burst_threshold_download", ""),
    ("burst_threshold_upload", ""),
    ("burst_time_secs", ""),
    ("description", ""),
    ("policy_id", ""),
    ("grace_days", ""),
];

async fn create_policy(op: &mut TestBrowser<'_>, fields: &[(&str, &str)]) -> String {
    location_id(&op.post("/policies", fields).await)
}

/// The package as the JSON API shows it to `token`.
async fn package_json(app: &TestApp, token: &str, id: &str) -> serde_json::Value {
    let response = app.get_as(&format!("/api/v1/packages/{id}"), token).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

async fn an_operator_creates_a_policy_through_the_form_and_sees_it_listed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    let empty = op.get("/policies").await;
    assert_eq!(empty.status, 200);
    let html = empty.text();
    assert!(html.contains("id=\"new-policy\""), "the new form");
    assert!(html.contains("No policies yet."), "the empty state");
    assert!(
        html.contains("aria-current=\"page\">Policies</a>"),
        "the navigation has the page, marked current"
    );
    for action in ["Reject", "Walled garden", "Throttle"] {
        assert!(html.contains(&format!(">{action}</option>")), "{action}");
    }

    let id = create_policy(&mut op, GARDEN).await;
    let page = op.get(&format!("/policies/{id}")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Policy “Unpaid” created."), "the flash");
    assert!(
        html.contains("<code>512k/1M</code>"),
        "the rate limit: {html}"
    );
    assert!(html.contains("id=\"edit-policy\""));
    assert!(
        html.contains("name=\"is_default\" checked"),
        "the edit form keeps the default mark"
    );

    let slow = create_policy(
        &mut op,
        &[
            ("name", "Slow lane"),
            ("action", "throttle"),
            ("download_rate", "256k"),
            ("upload_rate", "128k"),
            ("radius_group", "policy-slow"),
        ],
    )
    .await;
    let list = op.get("/policies").await.text();
    for part in [
        "Unpaid",
        "Walled garden",
        "512k/1M",
        "unpaid",
        "policy-unpaid",
        "Slow lane",
        "Throttle",
        "128k/256k",
        "policy-slow",
        &format!("href=\"/policies/{slow}\""),
    ] {
        assert!(list.contains(part), "the list shows {part}: {list}");
    }
    assert_eq!(list.matches(">default</span>").count(), 1, "one default");
    let found = op.get("/policies?q=SLOW").await.text();
    assert!(found.contains("Slow lane") && !found.contains("policy-unpaid"));
    let none = op.get("/policies?q=nothing-like-it").await.text();
    assert!(none.contains("Nothing matches “nothing-like-it”."));
}
crate::on_every_backend!(an_operator_creates_a_policy_through_the_form_and_sees_it_listed);

async fn an_invalid_policy_form_comes_back_with_422_and_inline_messages(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    create_policy(&mut op, GARDEN).await;
    let throttle_without_rates: &[(&str, &str)] = &[
        ("action", "throttle"),
        ("download_rate", ""),
        ("upload_rate", ""),
        ("address_list", ""),
    ];
    for (changes, field, part) in [
        (
            throttle_without_rates,
            "download_rate",
            "required for a throttle policy",
        ),
        (
            throttle_without_rates,
            "upload_rate",
            "required for a throttle policy",
        ),
        (
            &[("action", "")][..],
            "action",
            "choose what the policy does",
        ),
        (&[("action", "ban")][..], "action", "not a policy action"),
        (
            &[("action", "reject"), ("address_list", "")][..],
            "download_rate",
            "a reject policy gives no service",
        ),
        (
            &[("upload_rate", "")][..],
            "upload_rate",
            "with the other rate",
        ),
        (
            &[("download_rate", "fast")][..],
            "download_rate",
            "not a rate",
        ),
        (
            &[
                ("download_rate", ""),
                ("upload_rate", ""),
                ("address_list", ""),
            ][..],
            "address_list",
            "a walled garden needs",
        ),
        (&[("name", "")][..], "name", "1 to 64"),
        (
            &[("radius_group", "bad group")][..],
            "radius_group",
            "may contain only",
        ),
        (&[("radius_group", "another")][..], "name", "exists already"),
        (&[("name", "Other")][..], "radius_group", "exists already"),
    ] {
        let response = op.post("/policies", &with(GARDEN, changes)).await;
        assert_eq!(response.status, 422, "{field}: {}", response.text());
        let html = response.text();
        assert_inline(&html, "policy", field, part);
        assert!(
            html.contains("id=\"new-policy\""),
            "the form is shown again"
        );
    }

    // The form comes back as it was sent, the action still chosen.
    let response = op
        .post(
            "/policies",
            &with(GARDEN, &[("name", "Kept"), ("action", "throttle")]),
        )
        .await;
    assert_eq!(response.status, 422);
    let html = response.text();
    assert!(html.contains("value=\"Kept\""), "the name typed");
    assert!(
        html.contains("<option value=\"throttle\" selected>Throttle</option>"),
        "the action chosen"
    );
    assert!(
        html.contains("name=\"is_default\" checked"),
        "the box ticked"
    );
    assert_inline(&html, "policy", "address_list", "only a walled-garden");
}
crate::on_every_backend!(an_invalid_policy_form_comes_back_with_422_and_inline_messages);

async fn an_operator_edits_a_policy_and_deletes_it_once_no_package_names_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    let id = create_policy(&mut op, GARDEN).await;

    let saved = op
        .post(
            &format!("/policies/{id}"),
            &with(
                GARDEN,
                &[
                    ("name", "Late payers"),
                    ("action", "throttle"),
                    ("download_rate", "2M"),
                    ("upload_rate", "1M"),
                    ("address_list", ""),
                ],
            ),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    assert_eq!(
        saved.header("location"),
        Some(format!("/policies/{id}").as_str())
    );
    let html = op.get(&format!("/policies/{id}")).await.text();
    assert!(html.contains("Policy “Late payers” saved."), "the flash");
    assert!(html.contains("<code>1M/2M</code>"), "{html}");
    assert!(html.contains("<option value=\"throttle\" selected>Throttle</option>"));

    // Without the box the default mark goes.
    let unmarked: Vec<_> = with(
        GARDEN,
        &[
            ("name", "Late payers"),
            ("action", "throttle"),
            ("address_list", ""),
        ],
    )
    .into_iter()
    .filter(|(k, _)| *k != "is_default")
    .collect();
    assert_eq!(
        op.post(&format!("/policies/{id}"), &unmarked).await.status,
        303
    );
    assert!(!op.get("/policies").await.text().contains(">default</span>"));

    let bad = op
        .post(
            &format!("/policies/{id}"),
            &with(GARDEN, &[("action", "throttle"), ("download_rate", "")]),
        )
        .await;
    assert_eq!(bad.status, 422);
    let html = bad.text();
    assert_inline(&html, "policy", "download_rate", "with the other rate");
    assert!(html.contains("id=\"edit-policy\""));

    // Named by a package: the delete is refused with the reason.
    let package = location_id(
        &op.post("/packages", &with(PACKAGE, &[("policy_id", id.as_str())]))
            .await,
    );
    let page = op.get(&format!("/policies/{id}")).await.text();
    assert!(
        page.contains("data-confirm=\"Delete policy Late payers?"),
        "the delete asks first: {page}"
    );
    let forged = op
        .post_raw(&format!("/policies/{id}/delete"), &[("x", "y")])
        .await;
    assert_eq!(forged.status, 403, "no CSRF token");
    let in_use = op.post(&format!("/policies/{id}/delete"), &[]).await;
    assert_eq!(in_use.status, 409);
    let html = in_use.text();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("still the policy of 1 package(s)"), "{html}");
    assert_eq!(op.get(&format!("/policies/{id}")).await.status, 200);

    // Once the package uses the default policy again, it goes.
    let moved = op.post(&format!("/packages/{package}"), PACKAGE).await;
    assert_eq!(moved.status, 303, "{}", moved.text());
    let deleted = op.post(&format!("/policies/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(deleted.header("location"), Some("/policies"));
    let list = op.get("/policies").await.text();
    assert!(list.contains("Policy “Late payers” deleted."));
    assert!(list.contains("No policies yet."));
    assert_eq!(op.get(&format!("/policies/{id}")).await.status, 404);
    assert_eq!(op.get("/policies/nope").await.status, 404);
}
crate::on_every_backend!(an_operator_edits_a_policy_and_deletes_it_once_no_package_names_it);

async fn a_viewer_sees_the_policies_but_no_forms_and_cannot_change_them(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    let id = create_policy(&mut op, GARDEN).await;

    let mut viewer = app.signed_in("eyes", Role::Viewer).await;
    for page in ["/policies".to_string(), format!("/policies/{id}")] {
        let response = viewer.get(&page).await;
        assert_eq!(response.status, 200, "{page}");
        let html = response.text();
        assert!(html.contains("Unpaid"), "{page}");
        assert!(
            !html.contains("method=\"post\" action=\"/policies"),
            "{page}"
        );
        assert!(!html.contains("New policy") && !html.contains("Delete policy"));
    }
    let empty = viewer.get("/policies?q=zzz").await.text();
    assert!(empty.contains("Nothing matches"));
    for (path, fields) in [
        ("/policies".to_string(), with(GARDEN, &[("name", "V")])),
        (format!("/policies/{id}"), GARDEN.to_vec()),
        (format!("/policies/{id}/delete"), vec![]),
    ] {
        let response = viewer.post(&path, &fields).await;
        assert_eq!(response.status, 403, "{path}");
    }
    let still = op.get(&format!("/policies/{id}")).await.text();
    assert!(still.contains("Unpaid"));
}
crate::on_every_backend!(a_viewer_sees_the_policies_but_no_forms_and_cannot_change_them);

async fn the_package_form_offers_the_policies_and_saves_the_chosen_one_with_its_grace_days(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut op = app.signed_in("noc", Role::Operator).await;
    let token = app.create_token(Role::Viewer).await;
    let garden = create_policy(&mut op, GARDEN).await;
    let slow = create_policy(
        &mut op,
        &[
            ("name", "Slow lane"),
            ("action", "throttle"),
            ("download_rate", "256k"),
            ("upload_rate", "128k"),
            ("radius_group", "policy-slow"),
        ],
    )
    .await;

    let html = op.get("/packages").await.text();
    assert!(html.contains("<option value=\"\">Default policy</option>"));
    assert!(html.contains(&format!(
        "<option value=\"{garden}\">Unpaid (Walled garden)</option>"
    )));
    assert!(html.contains(&format!(
        "<option value=\"{slow}\">Slow lane (Throttle)</option>"
    )));
    assert!(html.contains("name=\"grace_days\""));

    // A 422 keeps the policy chosen.
    let bad = op
        .post(
            "/packages",
            &with(
                PACKAGE,
                &[("policy_id", slow.as_str()), ("grace_days", "400")],
            ),
        )
        .await;
    assert_eq!(bad.status, 422);
    let html = bad.text();
    assert_inline(&html, "package", "grace_days", "0 to 365");
    assert!(
        html.contains(&format!(
            "<option value=\"{slow}\" selected>Slow lane (Throttle)</option>"
        )),
        "{html}"
    );
    assert!(html.contains("value=\"400\""), "the days typed");

    let id = location_id(
        &op.post(
            "/packages",
            &with(
                PACKAGE,
                &[("policy_id", slow.as_str()), ("grace_days", "3")],
            ),
        )
        .await,
    );
    let stored = package_json(&app, &token, &id).await;
    assert_eq!(stored["policy_id"].to_string(), slow, "{stored}");
    assert_eq!(stored["grace_days"], 3, "{stored}");
    let page = op.get(&format!("/packages/{id}")).await.text();
    assert!(
        page.contains(&format!(
            "<a class=\"underline\" href=\"/policies/{slow}\">Slow lane (Throttle)</a>"
        )),
        "the details name the policy: {page}"
    );
    assert!(page.contains("3 day(s) after expiry"));
    assert!(
        page.contains(&format!(
            "<option value=\"{slow}\" selected>Slow lane (Throttle)</option>"
        )),
        "the edit form has it chosen"
    );
    assert!(page.contains("value=\"3\""));

    // Back to the default policy, no grace days.
    let saved = op.post(&format!("/packages/{id}"), PACKAGE).await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let stored = package_json(&app, &token, &id).await;
    assert!(stored["policy_id"].is_null(), "{stored}");
    assert!(
        stored["grace_days"].is_null() || stored["grace_days"] == 0,
        "{stored}"
    );
    let page = op.get(&format!("/packages/{id}")).await.text();
    assert!(
        page.contains("Default policy: Unpaid (Walled garden)"),
        "{page}"
    );
    assert!(page.contains("<option value=\"\">Default policy</option>"));
    assert!(!page.contains("\" selected>Slow lane"));
}
crate::on_every_backend!(
    the_package_form_offers_the_policies_and_saves_the_chosen_one_with_its_grace_days
);
