//! The IPAM API under /api/v1/ipam: pools, subnets, allocation, release,
//! availability, utilization, history, validation and roles.

use axum::body::Body;
use axum::http::Request;
use ispd::staff::Role;
use serde_json::{json, Value};

use crate::helpers::{
    assert_created, assert_error, assert_error_says, Backend, TestApp, TestResponse,
};

async fn get(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get_as(path, token).await;
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    response.json()
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> TestResponse {
    app.post_as(path, token, body).await
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> TestResponse {
    app.put_as(path, token, body).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> TestResponse {
    app.delete_as(path, token).await
}

/// Asserts a 422 naming `field`, whose message contains `part`.
fn assert_invalid(response: &TestResponse, field: &str, part: &str) {
    let error = assert_error(response, 422, "validation_failed");
    let message = error["fields"][field]
        .as_str()
        .unwrap_or_else(|| panic!("no message for {field}: {error}"));
    assert!(
        message.contains(part),
        "{field}: {message:?} lacks {part:?}"
    );
}

struct Fixture {
    app: TestApp,
    /// An operator token: the role that does IPAM's day-to-day work.
    op: String,
}

async fn spawn(backend: Backend) -> Option<Fixture> {
    let app = TestApp::spawn(backend).await?;
    let op = app.create_token(Role::Operator).await;
    Some(Fixture { app, op })
}

impl Fixture {
    async fn pool(&self, name: &str, start: &str, end: &str) -> i64 {
        let response = post(
            &self.app,
            "/api/v1/ipam/pools",
            &self.op,
            json!({"name": name, "start_ip": start, "end_ip": end}),
        )
        .await;
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_i64().unwrap()
    }

    async fn subnet(&self, pool_id: i64, network: &str, gateway: Option<&str>) -> i64 {
        let response = post(
            &self.app,
            "/api/v1/ipam/subnets",
            &self.op,
            json!({"pool_id": pool_id, "network": network, "gateway": gateway}),
        )
        .await;
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_i64().unwrap()
    }

    async fn allocate(&self, body: Value) -> TestResponse {
        post(&self.app, "/api/v1/ipam/allocate", &self.op, body).await
    }

    async fn allocated(&self, body: Value) -> Value {
        let response = self.allocate(body).await;
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()
    }
}

// ---------------------------------------------------------------- pools

async fn pools_can_be_created_read_listed_changed_and_deleted(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let created = post(
        &f.app,
        "/api/v1/ipam/pools",
        &f.op,
        json!({"name": "cgnat-east", "description": "east", "start_ip": "100.64.0.0",
               "end_ip": "100.64.255.255", "dns_servers": ["192.0.2.53"], "vlan_id": 100}),
    )
    .await;
    let (pool, id) = assert_created(&created, "/api/v1/ipam/pools");
    assert_eq!(pool["ip_version"], 4);
    assert_eq!(pool["start_ip"], "100.64.0.0");
    assert_eq!(pool["dns_servers"], json!(["192.0.2.53"]));
    assert_eq!(pool["vlan_id"], 100);
    assert_eq!(pool["status"], "active");
    assert!(
        !created.text().contains("_key"),
        "no keys: {}",
        created.text()
    );

    f.pool("v6-residential", "2001:db8::", "2001:db8::ffff")
        .await;
    f.pool("lab", "192.168.0.0", "192.168.0.255").await;

    let one = get(&f.app, &format!("/api/v1/ipam/pools/{id}"), &f.op).await;
    assert_eq!(one["name"], "cgnat-east");

    let names = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = get(&f.app, "/api/v1/ipam/pools", &f.op).await;
    assert_eq!(names(&all), ["cgnat-east", "lab", "v6-residential"]);
    assert_eq!(all["meta"]["total"], 3);
    let v6 = get(&f.app, "/api/v1/ipam/pools?ip_version=6", &f.op).await;
    assert_eq!(names(&v6), ["v6-residential"]);
    let q = get(&f.app, "/api/v1/ipam/pools?q=EAST", &f.op).await;
    assert_eq!(names(&q), ["cgnat-east"]);
    let by_id = get(&f.app, "/api/v1/ipam/pools?sort=-id&per_page=2", &f.op).await;
    assert_eq!(names(&by_id), ["lab", "v6-residential"]);
    assert_eq!(by_id["meta"]["total"], 3);
    let none = get(&f.app, "/api/v1/ipam/pools?status=reserved", &f.op).await;
    assert_eq!(none["meta"]["total"], 0);
    let bad = f
        .app
        .get_as(
            "/api/v1/ipam/pools?ip_version=5&status=on&sort=start_key",
            &f.op,
        )
        .await;
    let error = assert_error(&bad, 422, "validation_failed");
    for field in ["ip_version", "status", "sort"] {
        assert!(error["fields"][field].is_string(), "{field}: {error}");
    }

    let changed = put(
        &f.app,
        &format!("/api/v1/ipam/pools/{id}"),
        &f.op,
        json!({"name": "cgnat-east-2", "start_ip": "100.64.0.0", "end_ip": "100.64.127.255",
               "status": "reserved"}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json()["end_ip"], "100.64.127.255");
    assert_eq!(changed.json()["status"], "reserved");
    assert_eq!(changed.json()["vlan_id"], Value::Null);

    let gone = delete(&f.app, &format!("/api/v1/ipam/pools/{id}"), &f.op).await;
    assert_eq!(gone.status, 204, "{}", gone.text());
    assert_error(
        &f.app
            .get_as(&format!("/api/v1/ipam/pools/{id}"), &f.op)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &delete(&f.app, &format!("/api/v1/ipam/pools/{id}"), &f.op).await,
        404,
        "not_found",
    );
}
crate::on_every_backend!(pools_can_be_created_read_listed_changed_and_deleted);

async fn invalid_pools_are_a_422_naming_the_field(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    f.pool("taken", "10.9.0.0", "10.9.0.255").await;
    let base = json!({"name": "p", "start_ip": "10.0.0.0", "end_ip": "10.0.0.255"});
    let with = |changes: Value| {
        let mut body = base.clone();
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (
            with(json!({"start_ip": "10.0.1.0"})),
            "end_ip",
            "comes before start_ip",
        ),
        (
            with(json!({"end_ip": "2001:db8::1"})),
            "end_ip",
            "same family",
        ),
        (with(json!({"vlan_id": 0})), "vlan_id", "1 to 4094"),
        (with(json!({"vlan_id": 4095})), "vlan_id", "1 to 4094"),
        (with(json!({"vlan_id": "100"})), "vlan_id", "invalid type"),
        (
            with(json!({"start_ip": "10.0.0"})),
            "start_ip",
            "not an IPv4",
        ),
        (
            with(json!({"gateway": "10.0.1.1"})),
            "gateway",
            "not inside",
        ),
        (with(json!({"name": ""})), "name", "1 to 100"),
        (with(json!({"name": "taken"})), "name", "exists already"),
        (with(json!({"status": "on"})), "status", "not a status"),
        (
            json!({"name": "p", "end_ip": "10.0.0.255"}),
            "start_ip",
            "is required",
        ),
    ];
    for (body, field, part) in cases {
        let response = post(&f.app, "/api/v1/ipam/pools", &f.op, body.clone()).await;
        assert_invalid(&response, field, part);
    }
    let malformed = f
        .app
        .post_raw_json("/api/v1/ipam/pools", &f.op, "{\"name\": ")
        .await;
    assert_error(&malformed, 400, "bad_request");
}
crate::on_every_backend!(invalid_pools_are_a_422_naming_the_field);

// -------------------------------------------------------------- subnets

async fn subnets_can_be_created_read_listed_changed_and_deleted(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("p", "10.0.0.0", "10.0.255.255").await;
    let v6_pool = f
        .pool("p6", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff")
        .await;
    let created = post(
        &f.app,
        "/api/v1/ipam/subnets",
        &f.op,
        json!({"pool_id": pool, "network": "10.0.0.0/24", "gateway": "10.0.0.1",
               "vlan_id": 100, "description": "OLT 1"}),
    )
    .await;
    let (subnet, id) = assert_created(&created, "/api/v1/ipam/subnets");
    assert_eq!(subnet["network"], "10.0.0.0/24");
    assert_eq!(subnet["ip_version"], 4);
    assert_eq!(subnet["gateway"], "10.0.0.1");
    assert!(!created.text().contains("_key"), "{}", created.text());
    let second = f.subnet(pool, "10.0.1.0/29", None).await;
    let v6 = f.subnet(v6_pool, "2001:db8::/64", None).await;

    let one = get(&f.app, &format!("/api/v1/ipam/subnets/{id}"), &f.op).await;
    assert_eq!(one["utilization"]["total"], 253);
    assert_eq!(one["utilization"]["allocated"], 0);

    let ids = |page: &Value| -> Vec<i64> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect()
    };
    let all = get(&f.app, "/api/v1/ipam/subnets", &f.op).await;
    assert_eq!(ids(&all), [id, second, v6], "ordered by network");
    let of_pool = get(
        &f.app,
        &format!("/api/v1/ipam/subnets?pool_id={pool}&sort=-network"),
        &f.op,
    )
    .await;
    assert_eq!(ids(&of_pool), [second, id]);
    let containing = get(&f.app, "/api/v1/ipam/subnets?contains=10.0.1.5", &f.op).await;
    assert_eq!(ids(&containing), [second]);
    let containing6 = get(
        &f.app,
        "/api/v1/ipam/subnets?contains=2001:db8::abcd",
        &f.op,
    )
    .await;
    assert_eq!(ids(&containing6), [v6]);
    let by_version = get(&f.app, "/api/v1/ipam/subnets?ip_version=6", &f.op).await;
    assert_eq!(ids(&by_version), [v6]);
    let by_text = get(&f.app, "/api/v1/ipam/subnets?q=10.0.1", &f.op).await;
    assert_eq!(ids(&by_text), [second]);
    let bad = f
        .app
        .get_as("/api/v1/ipam/subnets?contains=10.0.1&pool_id=x", &f.op)
        .await;
    let error = assert_error(&bad, 422, "validation_failed");
    assert!(error["fields"]["contains"].is_string(), "{error}");
    assert!(error["fields"]["pool_id"].is_string(), "{error}");

    let path = format!("/api/v1/ipam/subnets/{id}");
    let changed = put(
        &f.app,
        &path,
        &f.op,
        json!({"gateway": "10.0.0.254", "vlan_id": 200, "status": "deprecated",
               "description": "moving"}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    let changed = changed.json();
    assert_eq!(changed["gateway"], "10.0.0.254");
    assert_eq!(changed["vlan_id"], 200);
    assert_eq!(changed["status"], "deprecated");
    assert_eq!(changed["network"], "10.0.0.0/24");
    assert_invalid(
        &put(&f.app, &path, &f.op, json!({"network": "10.0.2.0/24"})).await,
        "network",
        "cannot be changed",
    );
    assert_invalid(
        &put(&f.app, &path, &f.op, json!({"vlan_id": "ten"})).await,
        "vlan_id",
        "invalid type",
    );
    assert_invalid(
        &put(&f.app, &path, &f.op, json!({"gateway": "10.0.0.0"})).await,
        "gateway",
        "network or broadcast",
    );
    // Unchanged network is accepted.
    let same = put(&f.app, &path, &f.op, json!({"network": "10.0.0.0/24"})).await;
    assert_eq!(same.status, 200, "{}", same.text());
    assert_eq!(same.json()["gateway"], Value::Null);
    assert_eq!(same.json()["status"], "active");

    assert_eq!(delete(&f.app, &path, &f.op).await.status, 204);
    assert_error(&f.app.get_as(&path, &f.op).await, 404, "not_found");
}
crate::on_every_backend!(subnets_can_be_created_read_listed_changed_and_deleted);

async fn invalid_subnets_are_a_422_naming_the_field(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("p", "10.0.0.0", "10.0.255.255").await;
    f.subnet(pool, "10.0.0.0/24", None).await;
    let cases = [
        (
            json!({"pool_id": pool, "network": "10.0.1.5/24"}),
            "network",
            "did you mean 10.0.1.0/24?",
        ),
        (
            json!({"pool_id": pool, "network": "10.1.0.0/24"}),
            "network",
            "is not inside pool",
        ),
        (
            json!({"pool_id": pool, "network": "2001:db8::/64"}),
            "network",
            "is not inside pool",
        ),
        (
            json!({"pool_id": pool, "network": "10.0.0.128/25"}),
            "network",
            "overlaps subnet 10.0.0.0/24",
        ),
        (
            json!({"pool_id": pool, "network": "10.0.0.0/16"}),
            "network",
            "overlaps subnet 10.0.0.0/24",
        ),
        (
            json!({"pool_id": pool, "network": "banana"}),
            "network",
            "CIDR",
        ),
        (
            json!({"pool_id": pool, "network": "10.0.1.0/24", "gateway": "10.0.2.1"}),
            "gateway",
            "not inside",
        ),
        (
            json!({"pool_id": pool, "network": "10.0.1.0/24", "gateway": "10.0.1.0"}),
            "gateway",
            "network or broadcast",
        ),
        (
            json!({"pool_id": pool, "network": "10.0.1.0/24", "gateway": "10.0.1.255"}),
            "gateway",
            "network or broadcast",
        ),
        (
            json!({"pool_id": pool, "network": "10.0.1.0/24", "vlan_id": 0}),
            "vlan_id",
            "1 to 4094",
        ),
        (
            json!({"pool_id": pool, "network": "10.0.1.0/24", "vlan_id": 4095}),
            "vlan_id",
            "1 to 4094",
        ),
        (
            json!({"pool_id": pool, "network": "10.0.1.0/24", "vlan_id": "100"}),
            "vlan_id",
            "invalid type",
        ),
        (
            json!({"pool_id": 999, "network": "10.0.1.0/24"}),
            "pool_id",
            "no IP pool",
        ),
        (json!({"network": "10.0.1.0/24"}), "pool_id", "is required"),
    ];
    for (body, field, part) in cases {
        let response = post(&f.app, "/api/v1/ipam/subnets", &f.op, body.clone()).await;
        assert_invalid(&response, field, part);
    }
    // The exact message for a network with host bits set.
    let response = post(
        &f.app,
        "/api/v1/ipam/subnets",
        &f.op,
        json!({"pool_id": pool, "network": "10.0.0.5/24"}),
    )
    .await;
    assert_invalid(
        &response,
        "network",
        "10.0.0.5/24 is not a network address: did you mean 10.0.0.0/24?",
    );
}
crate::on_every_backend!(invalid_subnets_are_a_422_naming_the_field);

// ---------------------------------------------------------- allocation

async fn a_full_subnet_and_a_taken_address_are_a_409(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("p", "10.0.0.0", "10.0.0.255").await;
    let subnet = f.subnet(pool, "10.0.0.0/29", Some("10.0.0.1")).await;
    let mut given = Vec::new();
    for i in 0..5 {
        let allocation = f
            .allocated(json!({"subnet_id": subnet, "username": format!("user{i}")}))
            .await;
        given.push(allocation["ip_address"].as_str().unwrap().to_string());
    }
    assert_eq!(
        given,
        ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
        "lowest first, skipping network, gateway and broadcast"
    );
    let full = f
        .allocate(json!({"subnet_id": subnet, "username": "one-too-many"}))
        .await;
    let error = assert_error(&full, 409, "subnet_full");
    assert_eq!(
        error["message"],
        "subnet 10.0.0.0/29 is full: 5 of 5 usable addresses allocated"
    );

    let other = f.subnet(pool, "10.0.0.16/28", None).await;
    f.allocated(json!({"subnet_id": other, "username": "a", "ip_address": "10.0.0.20"}))
        .await;
    let taken = f
        .allocate(json!({"subnet_id": other, "username": "b", "ip_address": "10.0.0.20"}))
        .await;
    assert_error_says(&taken, 409, "address_in_use", "10.0.0.20");
    assert_error(
        &f.allocate(json!({"subnet_id": 999, "username": "a"})).await,
        404,
        "not_found",
    );
}
crate::on_every_backend!(a_full_subnet_and_a_taken_address_are_a_409);

async fn invalid_allocations_are_a_422_naming_the_field(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("p", "10.0.0.0", "10.0.0.255").await;
    let subnet = f.subnet(pool, "10.0.0.0/28", Some("10.0.0.1")).await;
    let cases = [
        (
            json!({"subnet_id": subnet, "mac_address": "aa:bb:cc"}),
            "mac_address",
            "not a MAC address",
        ),
        (
            json!({"subnet_id": subnet, "username": "has space"}),
            "username",
            "may contain only",
        ),
        (json!({"subnet_id": subnet}), "username", "give a username"),
        (
            json!({"subnet_id": subnet, "username": "a", "ip_address": "10.0.1.3"}),
            "ip_address",
            "not inside subnet",
        ),
        (
            json!({"subnet_id": subnet, "username": "a", "ip_address": "10.0.0.1"}),
            "ip_address",
            "gateway",
        ),
        (
            json!({"subnet_id": subnet, "username": "a", "expires_at": "2000-01-01T00:00:00Z"}),
            "expires_at",
            "future",
        ),
        (
            json!({"subnet_id": subnet, "username": "a", "expires_at": "tomorrow"}),
            "expires_at",
            "",
        ),
        (
            json!({"subnet_id": "one", "username": "a"}),
            "subnet_id",
            "invalid type",
        ),
    ];
    for (body, field, part) in cases {
        assert_invalid(&f.allocate(body).await, field, part);
    }
}
crate::on_every_backend!(invalid_allocations_are_a_422_naming_the_field);

async fn allocation_is_idempotent_and_release_says_if_it_was_released(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("p", "10.0.0.0", "10.0.0.255").await;
    let subnet = f.subnet(pool, "10.0.0.0/24", Some("10.0.0.1")).await;
    let first = f
        .allocate(
            json!({"subnet_id": subnet, "mac_address": "AA-BB-CC-DD-EE-FF",
                                  "username": "alice"}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let first = first.json();
    assert_eq!(first["mac_address"], "aa:bb:cc:dd:ee:ff");
    assert_eq!(first["ip_version"], 4);
    let again = f
        .allocate(json!({"subnet_id": subnet, "mac_address": "aabb.ccdd.eeff",
                                  "username": "alice"}))
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert!(again.header("location").is_none());
    assert_eq!(again.json()["id"], first["id"]);
    assert_eq!(again.json()["ip_address"], first["ip_address"]);
    // Another username is another subscriber.
    let bob = f
        .allocated(
            json!({"subnet_id": subnet, "mac_address": "aa:bb:cc:dd:ee:ff",
                                 "username": "bob"}),
        )
        .await;
    assert_ne!(bob["ip_address"], first["ip_address"]);

    let id = first["id"].as_i64().unwrap();
    let fetched = get(&f.app, &format!("/api/v1/ipam/allocations/{id}"), &f.op).await;
    assert_eq!(fetched["ip_address"], first["ip_address"]);

    let released = post(
        &f.app,
        "/api/v1/ipam/release",
        &f.op,
        json!({"allocation_id": id}),
    )
    .await;
    assert_eq!(released.status, 200, "{}", released.text());
    assert_eq!(released.json()["already_released"], false);
    assert_eq!(released.json()["allocation"]["status"], "released");
    let twice = post(
        &f.app,
        "/api/v1/ipam/release",
        &f.op,
        json!({"allocation_id": id}),
    )
    .await;
    assert_eq!(twice.status, 200, "{}", twice.text());
    assert_eq!(twice.json()["already_released"], true);
    assert_error(
        &post(
            &f.app,
            "/api/v1/ipam/release",
            &f.op,
            json!({"allocation_id": 999}),
        )
        .await,
        404,
        "not_found",
    );
    assert_invalid(
        &post(
            &f.app,
            "/api/v1/ipam/release",
            &f.op,
            json!({"allocation_id": "x"}),
        )
        .await,
        "allocation_id",
        "invalid type",
    );
    // The released address is the lowest free one again.
    let next = f
        .allocated(json!({"subnet_id": subnet, "username": "carol"}))
        .await;
    assert_eq!(next["ip_address"], first["ip_address"]);
}
crate::on_every_backend!(allocation_is_idempotent_and_release_says_if_it_was_released);

async fn allocations_are_listed_with_filters(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("p", "10.0.0.0", "10.0.0.255").await;
    let other_pool = f.pool("q", "10.1.0.0", "10.1.0.255").await;
    let subnet = f.subnet(pool, "10.0.0.0/24", None).await;
    let other = f.subnet(other_pool, "10.1.0.0/24", None).await;
    let a = f
        .allocated(
            json!({"subnet_id": subnet, "mac_address": "aa:bb:cc:dd:ee:01",
                               "username": "alice"}),
        )
        .await;
    let b = f
        .allocated(json!({"subnet_id": subnet, "username": "bob"}))
        .await;
    let c = f
        .allocated(json!({"subnet_id": other, "username": "carol"}))
        .await;
    post(
        &f.app,
        "/api/v1/ipam/release",
        &f.op,
        json!({"allocation_id": b["id"]}),
    )
    .await;

    let ids = |page: &Value| -> Vec<Value> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].clone())
            .collect()
    };
    let all = get(&f.app, "/api/v1/ipam/allocations", &f.op).await;
    assert_eq!(
        ids(&all),
        [a["id"].clone(), b["id"].clone(), c["id"].clone()]
    );
    let by_mac = get(
        &f.app,
        "/api/v1/ipam/allocations?mac_address=AABB.CCDD.EE01",
        &f.op,
    )
    .await;
    assert_eq!(ids(&by_mac), [a["id"].clone()]);
    let by_pool = get(
        &f.app,
        &format!("/api/v1/ipam/allocations?pool_id={other_pool}"),
        &f.op,
    )
    .await;
    assert_eq!(ids(&by_pool), [c["id"].clone()]);
    let by_subnet = get(
        &f.app,
        &format!("/api/v1/ipam/allocations?subnet_id={subnet}&status=active"),
        &f.op,
    )
    .await;
    assert_eq!(ids(&by_subnet), [a["id"].clone()]);
    let by_ip = get(&f.app, "/api/v1/ipam/allocations?ip=10.1.0.1", &f.op).await;
    assert_eq!(ids(&by_ip), [c["id"].clone()]);
    let by_user = get(&f.app, "/api/v1/ipam/allocations?username=bob", &f.op).await;
    assert_eq!(ids(&by_user), [b["id"].clone()]);
    let sorted = get(
        &f.app,
        "/api/v1/ipam/allocations?sort=-ip&per_page=1",
        &f.op,
    )
    .await;
    assert_eq!(ids(&sorted), [c["id"].clone()]);
    assert_eq!(sorted["meta"]["total"], 3);

    let bad = f
        .app
        .get_as(
            "/api/v1/ipam/allocations?mac_address=aa:bb&ip=x&status=gone&sort=ip_key",
            &f.op,
        )
        .await;
    let error = assert_error(&bad, 422, "validation_failed");
    for field in ["mac_address", "ip", "status", "sort"] {
        assert!(error["fields"][field].is_string(), "{field}: {error}");
    }
    assert!(!bad.text().contains("ip_key\""));
}
crate::on_every_backend!(allocations_are_listed_with_filters);

// ------------------------------------------------- availability and use

async fn available_addresses_are_paged_with_next_after(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("p", "10.0.0.0", "10.0.0.255").await;
    let subnet = f.subnet(pool, "10.0.0.0/29", Some("10.0.0.1")).await;
    f.allocated(json!({"subnet_id": subnet, "username": "a", "ip_address": "10.0.0.3"}))
        .await;
    let path = format!("/api/v1/ipam/subnets/{subnet}/available-ips");
    let first = get(&f.app, &format!("{path}?limit=2"), &f.op).await;
    assert_eq!(first["addresses"], json!(["10.0.0.2", "10.0.0.4"]));
    assert_eq!(first["next_after"], "10.0.0.4");
    assert_eq!(first["network"], "10.0.0.0/29");
    let second = get(&f.app, &format!("{path}?limit=2&after=10.0.0.4"), &f.op).await;
    assert_eq!(second["addresses"], json!(["10.0.0.5", "10.0.0.6"]));
    assert_eq!(second["next_after"], Value::Null, "nothing after .6");
    let default = get(&f.app, &path, &f.op).await;
    assert_eq!(default["addresses"].as_array().unwrap().len(), 4);
    for bad in ["limit=0", "limit=1001", "limit=x", "after=10.0.0"] {
        let response = f.app.get_as(&format!("{path}?{bad}"), &f.op).await;
        let field = bad.split('=').next().unwrap();
        assert_invalid(&response, field, "");
    }
    assert_invalid(
        &f.app
            .get_as(&format!("{path}?after=2001:db8::1"), &f.op)
            .await,
        "after",
        "family",
    );
    assert_error(
        &f.app
            .get_as("/api/v1/ipam/subnets/999/available-ips", &f.op)
            .await,
        404,
        "not_found",
    );

    // An IPv6 /64: paging costs the page, not the 2^64 addresses.
    let pool6 = f
        .pool("p6", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff")
        .await;
    let v6 = f.subnet(pool6, "2001:db8::/64", None).await;
    f.allocated(json!({"subnet_id": v6, "username": "a"})).await;
    let path = format!("/api/v1/ipam/subnets/{v6}/available-ips");
    let first = get(&f.app, &format!("{path}?limit=3"), &f.op).await;
    assert_eq!(
        first["addresses"],
        json!(["2001:db8::2", "2001:db8::3", "2001:db8::4"])
    );
    assert_eq!(first["next_after"], "2001:db8::4");
    let second = get(&f.app, &format!("{path}?limit=3&after=2001:db8::4"), &f.op).await;
    assert_eq!(
        second["addresses"],
        json!(["2001:db8::5", "2001:db8::6", "2001:db8::7"])
    );
    let last = get(
        &f.app,
        &format!("{path}?limit=5&after=2001:db8::ffff:ffff:ffff:fffe"),
        &f.op,
    )
    .await;
    assert_eq!(last["addresses"], json!(["2001:db8::ffff:ffff:ffff:ffff"]));
    assert_eq!(last["next_after"], Value::Null);
    let big = get(&f.app, &format!("{path}?limit=1000"), &f.op).await;
    assert_eq!(big["addresses"].as_array().unwrap().len(), 1000);
}
crate::on_every_backend!(available_addresses_are_paged_with_next_after);

async fn utilization_counts_usable_allocated_and_free(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("p", "10.0.0.0", "10.0.1.255").await;
    let big = f.subnet(pool, "10.0.0.0/24", Some("10.0.0.1")).await;
    let small = f.subnet(pool, "10.0.1.0/29", None).await;
    for user in ["a", "b", "c"] {
        f.allocated(json!({"subnet_id": big, "username": user}))
            .await;
    }
    let released = f
        .allocated(json!({"subnet_id": small, "username": "d"}))
        .await;
    post(
        &f.app,
        "/api/v1/ipam/release",
        &f.op,
        json!({"allocation_id": released["id"]}),
    )
    .await;
    f.allocated(json!({"subnet_id": small, "username": "e"}))
        .await;

    let report = get(
        &f.app,
        &format!("/api/v1/ipam/pools/{pool}/utilization"),
        &f.op,
    )
    .await;
    assert_eq!(report["pool_id"], pool);
    assert_eq!(report["total"], 253 + 6);
    assert_eq!(report["allocated"], 4);
    assert_eq!(report["free"], 255);
    assert_eq!(report["percent"], 1.54);
    let subnets = report["subnets"].as_array().unwrap();
    assert_eq!(subnets[0]["network"], "10.0.0.0/24");
    assert_eq!(subnets[0]["total"], 253);
    assert_eq!(subnets[0]["allocated"], 3);
    assert_eq!(subnets[0]["free"], 250);
    assert_eq!(subnets[0]["percent"], 1.19);
    assert_eq!(subnets[1]["total"], 6);
    assert_eq!(subnets[1]["allocated"], 1);
    let one = get(&f.app, &format!("/api/v1/ipam/subnets/{small}"), &f.op).await;
    assert_eq!(one["utilization"]["allocated"], 1);
    assert_eq!(one["utilization"]["percent"], 16.67);
    assert_error(
        &f.app
            .get_as("/api/v1/ipam/pools/999/utilization", &f.op)
            .await,
        404,
        "not_found",
    );
}
crate::on_every_backend!(utilization_counts_usable_allocated_and_free);

async fn history_tells_who_held_an_address_at_a_moment(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("p", "10.0.0.0", "10.0.0.255").await;
    let subnet = f.subnet(pool, "10.0.0.0/24", None).await;
    let before_all = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let alice = f
        .allocated(json!({"subnet_id": subnet, "username": "alice",
                                   "mac_address": "aa:bb:cc:dd:ee:ff"}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let during = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let released = post(
        &f.app,
        "/api/v1/ipam/release",
        &f.op,
        json!({"allocation_id": alice["id"]}),
    )
    .await;
    assert_eq!(released.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let after = chrono::Utc::now();
    let ip = alice["ip_address"].as_str().unwrap();
    let at = |t: chrono::DateTime<chrono::Utc>| {
        let text = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        format!("/api/v1/ipam/history?ip={ip}&at={text}")
    };

    let then = get(&f.app, &at(during), &f.op).await;
    let holders = then["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 1, "{then}");
    assert_eq!(holders[0]["username"], "alice");
    assert_eq!(holders[0]["mac_address"], "aa:bb:cc:dd:ee:ff");
    assert_eq!(holders[0]["allocation_id"], alice["id"]);
    assert!(holders[0]["released_at"].is_string());
    assert_eq!(then["ip"], ip);

    let later = get(&f.app, &at(after), &f.op).await;
    assert_eq!(later["holders"], json!([]), "free after the release");
    let earlier = get(&f.app, &at(before_all), &f.op).await;
    assert_eq!(earlier["holders"], json!([]), "free before the allocation");
    // The default moment is now; an offset survives an unencoded `+`.
    let now = get(&f.app, &format!("/api/v1/ipam/history?ip={ip}"), &f.op).await;
    assert_eq!(now["holders"], json!([]));
    let offset = during
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    let plus = get(
        &f.app,
        &format!("/api/v1/ipam/history?ip={ip}&at={offset}"),
        &f.op,
    )
    .await;
    assert_eq!(plus["holders"].as_array().unwrap().len(), 1, "{plus}");

    let bad = f
        .app
        .get_as("/api/v1/ipam/history?at=yesterday", &f.op)
        .await;
    let error = assert_error(&bad, 422, "validation_failed");
    assert_eq!(error["fields"]["ip"], "is required");
    assert!(error["fields"]["at"].is_string(), "{error}");
}
crate::on_every_backend!(history_tells_who_held_an_address_at_a_moment);

async fn a_pool_with_active_allocations_cannot_be_deleted(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let pool = f.pool("busy", "10.0.0.0", "10.0.0.255").await;
    let subnet = f.subnet(pool, "10.0.0.0/24", None).await;
    let held = f
        .allocated(json!({"subnet_id": subnet, "username": "a"}))
        .await;
    let refused = delete(&f.app, &format!("/api/v1/ipam/pools/{pool}"), &f.op).await;
    let error = assert_error(&refused, 409, "conflict");
    assert_eq!(
        error["message"],
        "pool \"busy\" still has 1 active allocation(s); release them first"
    );
    let subnet_refused = delete(&f.app, &format!("/api/v1/ipam/subnets/{subnet}"), &f.op).await;
    assert_error(&subnet_refused, 409, "conflict");
    get(&f.app, &format!("/api/v1/ipam/pools/{pool}"), &f.op).await;

    post(
        &f.app,
        "/api/v1/ipam/release",
        &f.op,
        json!({"allocation_id": held["id"]}),
    )
    .await;
    let deleted = delete(&f.app, &format!("/api/v1/ipam/pools/{pool}"), &f.op).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_error(
        &f.app
            .get_as(&format!("/api/v1/ipam/subnets/{subnet}"), &f.op)
            .await,
        404,
        "not_found",
    );
}
crate::on_every_backend!(a_pool_with_active_allocations_cannot_be_deleted);

// ---------------------------------------------------------------- roles

async fn viewers_read_and_operators_change(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let viewer = f.app.create_token(Role::Viewer).await;
    let pool = f.pool("p", "10.0.0.0", "10.0.0.255").await;
    let subnet = f.subnet(pool, "10.0.0.0/24", None).await;
    let held = f
        .allocated(json!({"subnet_id": subnet, "username": "a"}))
        .await;

    for path in [
        "/api/v1/ipam/pools".to_string(),
        format!("/api/v1/ipam/pools/{pool}"),
        format!("/api/v1/ipam/pools/{pool}/utilization"),
        "/api/v1/ipam/subnets".to_string(),
        format!("/api/v1/ipam/subnets/{subnet}"),
        format!("/api/v1/ipam/subnets/{subnet}/available-ips"),
        "/api/v1/ipam/allocations".to_string(),
        format!("/api/v1/ipam/allocations/{}", held["id"]),
        "/api/v1/ipam/history?ip=10.0.0.1".to_string(),
    ] {
        get(&f.app, &path, &viewer).await;
    }
    let forbidden = [
        post(
            &f.app,
            "/api/v1/ipam/allocate",
            &viewer,
            json!({"subnet_id": subnet, "username": "b"}),
        )
        .await,
        post(
            &f.app,
            "/api/v1/ipam/release",
            &viewer,
            json!({"allocation_id": held["id"]}),
        )
        .await,
        post(
            &f.app,
            "/api/v1/ipam/pools",
            &viewer,
            json!({"name": "x", "start_ip": "10.1.0.0", "end_ip": "10.1.0.255"}),
        )
        .await,
        put(
            &f.app,
            &format!("/api/v1/ipam/pools/{pool}"),
            &viewer,
            json!({"name": "x", "start_ip": "10.0.0.0", "end_ip": "10.0.0.255"}),
        )
        .await,
        delete(&f.app, &format!("/api/v1/ipam/pools/{pool}"), &viewer).await,
        post(
            &f.app,
            "/api/v1/ipam/subnets",
            &viewer,
            json!({"pool_id": pool, "network": "10.0.1.0/24"}),
        )
        .await,
        put(
            &f.app,
            &format!("/api/v1/ipam/subnets/{subnet}"),
            &viewer,
            json!({}),
        )
        .await,
        delete(&f.app, &format!("/api/v1/ipam/subnets/{subnet}"), &viewer).await,
    ];
    for response in &forbidden {
        assert_error(response, 403, "forbidden");
    }
    // Nothing changed.
    let all = get(&f.app, "/api/v1/ipam/allocations?status=active", &f.op).await;
    assert_eq!(all["meta"]["total"], 1);

    let anonymous = f
        .app
        .send(
            Request::get("/api/v1/ipam/pools")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_error(&anonymous, 401, "unauthenticated");

    // Every change is in the audit log, by the operator's token.
    let admin = f.app.create_token(Role::Admin).await;
    let log = get(&f.app, "/api/v1/audit-log?action=ipam.allocate", &admin).await;
    assert_eq!(log["meta"]["total"], 1);
    assert_eq!(log["data"][0]["actor"]["kind"], "token");
    assert_eq!(log["data"][0]["actor"]["name"], "test operator");
}
crate::on_every_backend!(viewers_read_and_operators_change);
