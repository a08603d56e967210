//! The IPAM service on every backend: allocation under concurrency,
//! release, expiry, availability, utilization and history.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::{Backend, TestApp};
use ispd::audit::Actor;
use ispd::ipam::entities::{ip_allocation, ip_allocation_history, ip_free_range, ip_subnet};
use ispd::ipam::service::{self, AllocationInput, IpamError, IpamSettings, PoolInput, SubnetInput};

fn settings() -> IpamSettings {
    IpamSettings {
        lock_timeout: Duration::from_secs(10),
    }
}

async fn pool(app: &TestApp, name: &str, start: &str, end: &str) -> i32 {
    service::create_pool(
        app.db(),
        &Actor::system(),
        &PoolInput {
            name: name.into(),
            start_ip: start.into(),
            end_ip: end.into(),
            ..Default::default()
        },
    )
    .await
    .expect("create pool")
    .id
}

async fn try_subnet(
    app: &TestApp,
    pool_id: i32,
    network: &str,
    gateway: Option<&str>,
) -> Result<ip_subnet::Model, IpamError> {
    let input = SubnetInput {
        pool_id,
        network: network.into(),
        gateway: gateway.map(str::to_string),
        ..Default::default()
    };
    service::create_subnet(app.db(), &Actor::system(), &input).await
}

async fn subnet(app: &TestApp, pool_id: i32, network: &str, gateway: Option<&str>) -> i32 {
    try_subnet(app, pool_id, network, gateway)
        .await
        .unwrap_or_else(|e| panic!("create subnet {network}: {e:?}"))
        .id
}

fn request(subnet_id: i32, user: &str) -> AllocationInput {
    AllocationInput {
        subnet_id,
        username: Some(user.into()),
        ..Default::default()
    }
}

/// An app with pool "P" (10.0.0.0 - 10.0.0.255) holding the subnet
/// 10.0.0.0/24 with `gateway`; and the subnet's id.
async fn with_subnet(backend: Backend, gateway: Option<&str>) -> Option<(TestApp, i32)> {
    let app = TestApp::spawn(backend).await?;
    let pool_id = pool(&app, "P", "10.0.0.0", "10.0.0.255").await;
    let subnet_id = subnet(&app, pool_id, "10.0.0.0/24", gateway).await;
    Some((app, subnet_id))
}

async fn allocate(app: &TestApp, input: AllocationInput) -> Result<service::Allocated, IpamError> {
    service::allocate_ip(app.db(), settings(), &Actor::system(), &input).await
}

/// Allocates the lowest free address in `subnet_id` to `user`.
async fn address_for(app: &TestApp, subnet_id: i32, user: &str) -> String {
    allocate(app, request(subnet_id, user))
        .await
        .unwrap()
        .allocation
        .ip_address
}

async fn allocation_takes_the_lowest_free_address_and_skips_the_gateway(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let pool_id = pool(&app, "P", "10.0.0.0", "10.0.255.255").await;
    let subnet_id = subnet(&app, pool_id, "10.0.0.0/29", Some("10.0.0.1")).await;
    let mut got = Vec::new();
    for i in 0..5 {
        got.push(address_for(&app, subnet_id, &format!("u{i}")).await);
    }
    assert_eq!(
        got,
        ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    );
    let full = allocate(&app, request(subnet_id, "late"))
        .await
        .unwrap_err();
    assert_eq!(
        full.to_string(),
        "subnet 10.0.0.0/29 is full: 5 of 5 usable addresses allocated"
    );

    // Released addresses come back, lowest first.
    let third = service::list_allocations(
        app.db(),
        &service::AllocationFilter {
            ip: Some("10.0.0.4".parse().unwrap()),
            ..Default::default()
        },
        &ispd::query::Sort::by(vec![]),
        ispd::query::PageRequest {
            page: 1,
            per_page: 10,
        },
    )
    .await
    .unwrap()
    .0
    .remove(0);
    let released = service::release_ip(app.db(), settings(), &Actor::system(), third.id)
        .await
        .unwrap();
    assert!(!released.already_released);
    let again = service::release_ip(app.db(), settings(), &Actor::system(), third.id)
        .await
        .unwrap();
    assert!(
        again.already_released,
        "releasing twice is a no-op that says so"
    );
    assert_eq!(address_for(&app, subnet_id, "next").await, "10.0.0.4");
}
crate::on_every_backend!(allocation_takes_the_lowest_free_address_and_skips_the_gateway);

async fn requested_addresses_and_idempotency(backend: Backend) {
    let Some((app, subnet_id)) = with_subnet(backend, Some("10.0.0.1")).await else {
        return;
    };
    let wanted = AllocationInput {
        subnet_id,
        mac_address: Some("AA-BB-CC-DD-EE-01".into()),
        username: Some("alice".into()),
        ip_address: Some("10.0.0.77".into()),
        ..Default::default()
    };
    let first = allocate(&app, wanted.clone()).await.unwrap();
    assert!(first.created);
    assert_eq!(first.allocation.ip_address, "10.0.0.77");
    assert_eq!(
        first.allocation.mac_address.as_deref(),
        Some("aa:bb:cc:dd:ee:01")
    );
    let repeat = allocate(
        &app,
        AllocationInput {
            ip_address: None,
            ..wanted.clone()
        },
    )
    .await
    .unwrap();
    assert!(
        !repeat.created,
        "the same MAC and username get their allocation back"
    );
    assert_eq!(repeat.allocation.id, first.allocation.id);
    let elsewhere = allocate(
        &app,
        AllocationInput {
            ip_address: Some("10.0.0.78".into()),
            ..wanted.clone()
        },
    )
    .await;
    assert!(
        matches!(&elsewhere, Err(IpamError::Conflict(m)) if m.contains("already hold 10.0.0.77")),
        "one subscriber, one address per subnet: {elsewhere:?}"
    );

    let taken = allocate(
        &app,
        AllocationInput {
            ip_address: Some("10.0.0.77".into()),
            ..request(subnet_id, "bob")
        },
    )
    .await;
    assert!(
        matches!(taken, Err(IpamError::AddressTaken { .. })),
        "{taken:?}"
    );
    for (ip, expected) in [
        ("10.0.0.1", "gateway"),
        ("10.0.0.0", "network or broadcast"),
        ("10.0.0.255", "network or broadcast"),
        ("10.0.1.5", "not inside"),
        ("2001:db8::1", "not inside"),
    ] {
        match allocate(
            &app,
            AllocationInput {
                ip_address: Some(ip.into()),
                ..request(subnet_id, "bob")
            },
        )
        .await
        {
            Err(IpamError::Invalid(fields)) => {
                assert!(
                    fields["ip_address"].contains(expected),
                    "{ip}: {}",
                    fields["ip_address"]
                )
            }
            other => panic!("{ip}: {other:?}"),
        }
    }
    // The lowest free address skips the one taken on request.
    let mut got = HashSet::new();
    for i in 0..3 {
        got.insert(address_for(&app, subnet_id, &format!("n{i}")).await);
    }
    assert_eq!(
        got,
        HashSet::from(["10.0.0.2".to_string(), "10.0.0.3".into(), "10.0.0.4".into()])
    );
}
crate::on_every_backend!(requested_addresses_and_idempotency);

/// 50 clients at once into `subnets` subnets holding 30 usable addresses
/// in all: exactly 30 win, with distinct addresses, and the rest get
/// "full"; no deadlock or lock error escapes.
async fn race(app: &TestApp, subnet_ids: Vec<i32>) {
    let db = app.db().clone();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let db = db.clone();
        let subnet_id = subnet_ids[i % subnet_ids.len()];
        tasks.push(tokio::spawn(async move {
            service::allocate_ip(
                &db,
                settings(),
                &Actor::system(),
                &request(subnet_id, &format!("client{i}")),
            )
            .await
        }));
    }
    let mut won = Vec::new();
    let mut full = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(allocated) => won.push((
                allocated.allocation.subnet_id,
                allocated.allocation.ip_address,
            )),
            Err(IpamError::SubnetFull { .. }) => full += 1,
            Err(other) => {
                panic!("an allocation failed with something other than 'full': {other:?}")
            }
        }
    }
    assert_eq!(won.len(), 30, "exactly the usable addresses are handed out");
    assert_eq!(full, 20);
    let distinct: HashSet<_> = won.iter().cloned().collect();
    assert_eq!(distinct.len(), 30, "no address twice");
    let history = ip_allocation_history::Entity::find()
        .filter(ip_allocation_history::Column::Action.eq("allocate"))
        .count(app.db())
        .await
        .unwrap();
    assert_eq!(history, 30, "one history row per allocation");
    let free = ip_free_range::Entity::find().count(app.db()).await.unwrap();
    assert_eq!(free, 0, "the free set is empty");
}

async fn fifty_concurrent_allocations_into_thirty_addresses(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let pool_id = pool(&app, "P", "10.0.0.0", "10.0.0.255").await;
    // A /27 has 30 usable addresses; no gateway.
    let subnet_id = subnet(&app, pool_id, "10.0.0.0/27", None).await;
    race(&app, vec![subnet_id]).await;
}
crate::on_every_backend!(fifty_concurrent_allocations_into_thirty_addresses);

async fn fifty_concurrent_allocations_over_ten_subnets(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let pool_id = pool(&app, "P", "10.0.0.0", "10.0.0.255").await;
    let mut subnets = Vec::new();
    for i in 0..10 {
        // /29 without a gateway: 6 usable; keep 3 each by taking 3 first.
        let id = subnet(&app, pool_id, &format!("10.0.0.{}/29", i * 8), None).await;
        for j in 0..3 {
            allocate(&app, request(id, &format!("pre{i}-{j}")))
                .await
                .unwrap();
        }
        subnets.push(id);
    }
    ip_allocation_history::Entity::delete_many()
        .exec(app.db())
        .await
        .unwrap();
    race(&app, subnets).await;
}
crate::on_every_backend!(fifty_concurrent_allocations_over_ten_subnets);

async fn a_failed_transaction_leaves_nothing_behind(backend: Backend) {
    let Some((app, subnet_id)) = with_subnet(backend, None).await else {
        return;
    };
    // The audit log write comes after the allocation and history rows:
    // without its table, the whole allocation must roll back.
    sea_orm::ConnectionTrait::execute_unprepared(app.db(), "DROP TABLE audit_log")
        .await
        .unwrap();
    let failed = allocate(&app, request(subnet_id, "alice")).await;
    assert!(matches!(failed, Err(IpamError::Db(_))), "{failed:?}");
    assert_eq!(
        ip_allocation::Entity::find().count(app.db()).await.unwrap(),
        0
    );
    assert_eq!(
        ip_allocation_history::Entity::find()
            .count(app.db())
            .await
            .unwrap(),
        0
    );
    let free = service::available_ips(app.db(), subnet_id, None, 1)
        .await
        .unwrap();
    assert_eq!(
        free,
        ["10.0.0.1".parse::<IpAddr>().unwrap()],
        "the address is still free"
    );
}
crate::on_every_backend!(a_failed_transaction_leaves_nothing_behind);

async fn expired_allocations_are_cleaned_up_once(backend: Backend) {
    let Some((app, subnet_id)) = with_subnet(backend, None).await else {
        return;
    };
    let soon = Utc::now() + chrono::Duration::milliseconds(300);
    for i in 0..4 {
        allocate(
            &app,
            AllocationInput {
                expires_at: Some(soon),
                ..request(subnet_id, &format!("t{i}"))
            },
        )
        .await
        .unwrap();
    }
    allocate(&app, request(subnet_id, "keeper")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Two cleanups at once: each expired allocation is released once.
    let actor = Actor::system();
    let (a, b) = tokio::join!(
        service::cleanup_expired(app.db(), settings(), &actor),
        service::cleanup_expired(app.db(), settings(), &actor),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.released + b.released, 4);
    let again = service::cleanup_expired(app.db(), settings(), &Actor::system())
        .await
        .unwrap();
    assert_eq!(again.released, 0);
    let active = ip_allocation::Entity::find()
        .filter(ip_allocation::Column::Active.eq(true))
        .count(app.db())
        .await
        .unwrap();
    assert_eq!(active, 1);
    let expire_rows = ip_allocation_history::Entity::find()
        .filter(ip_allocation_history::Column::Action.eq("expire"))
        .count(app.db())
        .await
        .unwrap();
    assert_eq!(expire_rows, 4);
}
crate::on_every_backend!(expired_allocations_are_cleaned_up_once);

async fn availability_and_utilization_stay_cheap_on_huge_subnets(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let v6 = pool(
        &app,
        "v6",
        "2001:db8::",
        "2001:db8:0:ffff:ffff:ffff:ffff:ffff",
    )
    .await;
    let s64 = subnet(&app, v6, "2001:db8:0:1::/64", Some("2001:db8:0:1::1")).await;
    let first = address_for(&app, s64, "a").await;
    assert_eq!(
        first, "2001:db8:0:1::2",
        "skips the anycast address and the gateway"
    );
    let page = service::available_ips(app.db(), s64, None, 3)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["2001:db8:0:1::3", "2001:db8:0:1::4", "2001:db8:0:1::5"]
    );
    let next = service::available_ips(app.db(), s64, Some(page[2]), 2)
        .await
        .unwrap();
    assert_eq!(next[0].to_string(), "2001:db8:0:1::6");
    let tail = service::available_ips(
        app.db(),
        s64,
        Some("2001:db8:0:1:ffff:ffff:ffff:fffe".parse().unwrap()),
        5,
    )
    .await
    .unwrap();
    assert_eq!(
        tail.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["2001:db8:0:1:ffff:ffff:ffff:ffff"]
    );

    let v4 = pool(&app, "v4", "10.0.0.0", "10.255.255.255").await;
    let s8 = subnet(&app, v4, "10.0.0.0/8", Some("10.0.0.1")).await;
    allocate(&app, request(s8, "b")).await.unwrap();
    let usage = service::pool_utilization(app.db(), v4).await.unwrap();
    assert_eq!(usage.utilization.total, (1 << 24) - 3);
    assert_eq!(usage.utilization.allocated, 1);
    assert_eq!(usage.subnets[0].network, "10.0.0.0/8");
    let usage6 = service::pool_utilization(app.db(), v6).await.unwrap();
    assert_eq!(usage6.utilization.total, (1u128 << 64) - 2);
}
crate::on_every_backend!(availability_and_utilization_stay_cheap_on_huge_subnets);

async fn history_says_who_held_an_address_when(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let pool_id = pool(&app, "P", "100.64.0.0", "100.64.255.255").await;
    let subnet_id = subnet(&app, pool_id, "100.64.3.0/24", None).await;
    let wanted = |user: &str| AllocationInput {
        ip_address: Some("100.64.3.7".into()),
        ..request(subnet_id, user)
    };
    let alice = allocate(&app, wanted("alice")).await.unwrap().allocation;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let during_alice = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    service::release_ip(app.db(), settings(), &Actor::system(), alice.id)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    allocate(&app, wanted("bob")).await.unwrap();
    let ip: IpAddr = "100.64.3.7".parse().unwrap();
    let held = service::address_history(app.db(), ip, during_alice)
        .await
        .unwrap();
    assert_eq!(
        held.iter()
            .map(|h| h.username.clone().unwrap())
            .collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(service::address_history(app.db(), ip, between)
        .await
        .unwrap()
        .is_empty());
    let now = service::address_history(app.db(), ip, Utc::now())
        .await
        .unwrap();
    assert_eq!(now[0].username.as_deref(), Some("bob"));
}
crate::on_every_backend!(history_says_who_held_an_address_when);

async fn subnets_are_validated_against_pools_and_each_other(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let pool_id = pool(&app, "P", "10.0.0.0", "10.0.255.255").await;
    subnet(&app, pool_id, "10.0.1.0/24", None).await;
    let cases = [
        ("10.0.2.5/24", None, "network", "did you mean 10.0.2.0/24?"),
        ("10.1.0.0/24", None, "network", "is not inside pool"),
        (
            "10.0.1.128/25",
            None,
            "network",
            "overlaps subnet 10.0.1.0/24",
        ),
        (
            "10.0.0.0/16",
            None,
            "network",
            "overlaps subnet 10.0.1.0/24",
        ),
        ("10.0.2.0/24", Some("10.0.3.1"), "gateway", "not inside"),
        (
            "10.0.2.0/24",
            Some("10.0.2.255"),
            "gateway",
            "network or broadcast",
        ),
    ];
    for (network, gateway, field, expected) in cases {
        let result = try_subnet(&app, pool_id, network, gateway).await;
        match result {
            Err(IpamError::Invalid(fields)) => {
                assert!(
                    fields.get(field).is_some_and(|m| m.contains(expected)),
                    "{network} {gateway:?}: {fields:?}"
                )
            }
            other => panic!("{network}: {other:?}"),
        }
    }
    // Delete is refused while addresses are allocated.
    let s = subnet(&app, pool_id, "10.0.9.0/24", None).await;
    let a = allocate(&app, request(s, "x")).await.unwrap().allocation;
    assert!(matches!(
        service::delete_pool(app.db(), &Actor::system(), pool_id).await,
        Err(IpamError::Conflict(_))
    ));
    service::release_ip(app.db(), settings(), &Actor::system(), a.id)
        .await
        .unwrap();
    service::delete_pool(app.db(), &Actor::system(), pool_id)
        .await
        .unwrap();
    assert_eq!(
        ip_allocation_history::Entity::find()
            .count(app.db())
            .await
            .unwrap(),
        2,
        "history outlives the pool"
    );
}
crate::on_every_backend!(subnets_are_validated_against_pools_and_each_other);

async fn a_held_subnet_lock_gives_busy_not_a_hang(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    if backend == Backend::Sqlite {
        // SQLite's lock is the whole database, bounded by busy_timeout; the
        // row-lock timeout below is a PostgreSQL/MariaDB feature.
        return;
    }
    let pool_id = pool(&app, "P", "10.0.0.0", "10.0.0.255").await;
    let subnet_id = subnet(&app, pool_id, "10.0.0.0/24", None).await;
    use sea_orm::{QuerySelect, TransactionTrait};
    let holder = app.db().begin().await.unwrap();
    ispd::ipam::entities::ip_subnet::Entity::find_by_id(subnet_id)
        .lock_exclusive()
        .one(&holder)
        .await
        .unwrap();
    let quick = IpamSettings {
        lock_timeout: Duration::from_secs(1),
    };
    let started = std::time::Instant::now();
    let result = service::allocate_ip(
        app.db(),
        quick,
        &Actor::system(),
        &request(subnet_id, "waiter"),
    )
    .await;
    assert!(matches!(result, Err(IpamError::Busy)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    holder.rollback().await.unwrap();
    allocate(&app, request(subnet_id, "waiter")).await.unwrap();
}
crate::on_every_backend!(a_held_subnet_lock_gives_busy_not_a_hang);

async fn the_unique_index_catches_a_corrupt_free_set_and_the_allocation_is_retried(
    backend: Backend,
) {
    let Some((app, subnet_id)) = with_subnet(backend, None).await else {
        return;
    };
    let first = allocate(&app, request(subnet_id, "alice"))
        .await
        .unwrap()
        .allocation;
    assert_eq!(first.ip_address, "10.0.0.1");
    // Corrupt the free set: claim the allocated 10.0.0.1 is free again.
    use sea_orm::ActiveModelTrait;
    ip_free_range::ActiveModel {
        subnet_id: sea_orm::Set(subnet_id),
        start_key: sea_orm::Set(first.ip_key.clone()),
        end_key: sea_orm::Set(first.ip_key.clone()),
        ..Default::default()
    }
    .insert(app.db())
    .await
    .unwrap();
    let second = allocate(&app, request(subnet_id, "bob"))
        .await
        .expect("retried, not surfaced");
    assert_eq!(second.allocation.ip_address, "10.0.0.2");
    let free = service::available_ips(app.db(), subnet_id, None, 2)
        .await
        .unwrap();
    assert_eq!(
        free.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["10.0.0.3", "10.0.0.4"],
        "the free set was repaired"
    );
}
crate::on_every_backend!(the_unique_index_catches_a_corrupt_free_set_and_the_allocation_is_retried);

/// Far-future timestamps (past the 32-bit TIMESTAMP range that ends in
/// January 2038) are written, read back and compared exactly on every
/// backend: leases and expiries of 2099 are ordinary for an ISP.
async fn timestamps_after_2038_survive(backend: Backend) {
    let Some((app, subnet_id)) = with_subnet(backend, None).await else {
        return;
    };
    let far = Utc.with_ymd_and_hms(2099, 12, 31, 23, 59, 58).unwrap();
    let allocated = allocate(
        &app,
        AllocationInput {
            expires_at: Some(far),
            ..request(subnet_id, "long-lease")
        },
    )
    .await
    .unwrap()
    .allocation;
    let stored = ip_allocation::Entity::find_by_id(allocated.id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expires_at.map(|t| t.to_utc()), Some(far));

    // A far-future instant used as a query parameter compares correctly too.
    let cleaned = service::cleanup_expired(app.db(), settings(), &Actor::system())
        .await
        .unwrap();
    assert_eq!(cleaned.released, 0, "a 2099 lease has not expired");
    let ip: IpAddr = allocated.ip_address.parse().unwrap();
    let holders = service::address_history(app.db(), ip, far - chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(holders.len(), 1, "the lease is held in 2099");
    let after_2100 = service::address_history(
        app.db(),
        ip,
        Utc.with_ymd_and_hms(2101, 1, 1, 0, 0, 0).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(after_2100.len(), 1, "still held: nobody released it");
}
crate::on_every_backend!(timestamps_after_2038_survive);
