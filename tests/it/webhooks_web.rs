//! The webhook pages: an admin creates, edits and deletes an endpoint
//! through the forms and replays a delivery; the secret never comes back
//! into a page; other roles are refused.

use ispd::staff::Role;
use ispd::webhooks::{EventType, WebhookEvent};

use crate::helpers::{assert_inline, location_id, with, Backend, TestApp};

const SECRET: &str = "form-typed-secret-0123456789";

const ENDPOINT: &[(&str, &str)] = &[
    ("name", "billing"),
    ("url", "https://billing.example.net/hooks/ispd"),
    ("secret", SECRET),
    ("active", "on"),
    ("event.subscriber.state_changed", "on"),
    ("event.enforcement.not_applied", "on"),
];

async fn an_admin_creates_an_endpoint_through_the_form_and_replays_a_delivery(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut admin = app.signed_in("root", Role::Admin).await;
    let empty = admin.get("/webhooks").await;
    assert_eq!(empty.status, 200);
    let html = empty.text();
    assert!(html.contains("id=\"new-webhook\""), "the new form");
    assert!(html.contains("No webhook endpoints yet."));
    assert!(
        html.contains("aria-current=\"page\">Webhooks</a>"),
        "{html}"
    );
    assert!(html.contains("name=\"event.quota.tier_crossed\""), "{html}");
    assert!(!html.contains("not sent yet"), "every event is sent");

    // Every problem inline; the typed secret is not put back.
    let refused = admin
        .post(
            "/webhooks",
            &[
                ("name", "billing"),
                ("url", "ftp://billing.example.net/"),
                ("secret", SECRET),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    let html = refused.text();
    assert_inline(&html, "webhook", "url", "http or https");
    assert!(html.contains("id=\"webhook-events-error\""), "{html}");
    assert!(!html.contains(SECRET), "the secret is not shown again");

    let created = admin.post("/webhooks", ENDPOINT).await;
    let id = location_id(&created);
    let page = admin.get(&format!("/webhooks/{id}")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("Webhook endpoint “billing” created."),
        "{html}"
    );
    assert!(html.contains("subscriber.state_changed, enforcement.not_applied"));
    assert!(html.contains("No deliveries yet."));
    assert!(!html.contains(SECRET));
    let list = admin.get("/webhooks").await.text();
    assert!(
        list.contains(&format!("href=\"/webhooks/{id}\">billing</a>")),
        "{list}"
    );

    // Edited without a secret: the stored one stays.
    let saved = admin
        .post(
            &format!("/webhooks/{id}"),
            &with(ENDPOINT, &[("secret", ""), ("all_events", "on")]),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let endpoint = ispd::webhooks::service::get_endpoint(app.db(), id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(endpoint.event_types, "*");
    assert_eq!(app.decrypt(&endpoint.secret_encrypted), SECRET);

    // A delivery, and its Replay button.
    let event = WebhookEvent::new(EventType::SubscriberStateChanged, serde_json::json!({}));
    ispd::webhooks::service::emit(app.db(), &event)
        .await
        .unwrap();
    let page = admin.get(&format!("/webhooks/{id}")).await.text();
    assert!(page.contains("data-status=\"pending\""), "{page}");
    let marker = "action=\"/webhooks/deliveries/";
    let start = page.find(marker).expect("a Replay button") + marker.len();
    let delivery_id: String = page[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let replayed = admin
        .post(&format!("/webhooks/deliveries/{delivery_id}/replay"), &[])
        .await;
    assert_eq!(replayed.status, 303, "{}", replayed.text());
    assert_eq!(
        replayed.header("location"),
        Some(format!("/webhooks/{id}").as_str())
    );
    assert!(admin
        .get(&format!("/webhooks/{id}"))
        .await
        .text()
        .contains("will be sent again within seconds"));
    assert_eq!(app.audit_entries("webhook_delivery.replay").await.len(), 1);

    let deleted = admin.post(&format!("/webhooks/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(deleted.header("location"), Some("/webhooks"));
    assert_eq!(admin.get(&format!("/webhooks/{id}")).await.status, 404);
}
crate::on_every_backend!(an_admin_creates_an_endpoint_through_the_form_and_replays_a_delivery);

#[tokio::test]
async fn only_admins_see_and_use_the_webhook_pages() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for (name, role) in [("vic", Role::Viewer), ("olga", Role::Operator)] {
        let mut browser = app.signed_in(name, role).await;
        let home = browser.get("/").await.text();
        assert!(
            !home.contains("href=\"/webhooks\""),
            "no nav entry for {role}"
        );
        assert_eq!(browser.get("/webhooks").await.status, 403, "{role}");
        let refused = browser.post("/webhooks", ENDPOINT).await;
        assert_eq!(refused.status, 403, "{role}");
        assert_eq!(
            browser
                .post("/webhooks/deliveries/1/replay", &[])
                .await
                .status,
            403,
            "{role}"
        );
    }
    let mut admin = app.signed_in("root", Role::Admin).await;
    assert!(admin.get("/").await.text().contains("href=\"/webhooks\""));
    // Without the CSRF token, even an admin's post is refused.
    let forged = admin.post_raw("/webhooks", ENDPOINT).await;
    assert_eq!(forged.status, 403);
}
