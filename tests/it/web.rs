//! The HTTP shell: probes, pages, assets.

use crate::helpers::{Backend, TestApp};

async fn probes_answer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let health = app.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["checks"]["radius_database"], "ok");
}
crate::on_every_backend!(probes_answer);
