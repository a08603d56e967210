//! The users service on every backend: service packages, network users,
//! encrypted passwords, static addresses from IPAM, and the audit trail.

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::helpers::{ipam_settings as settings, pppoe_user, Backend, TestApp};
use ispd::audit::entities::audit_log;
use ispd::audit::Actor;
use ispd::crypto::Secret;
use ispd::error::AppError;
use ispd::ipam::entities::ip_allocation;
use ispd::ipam::service::{self as ipam, PoolInput, SubnetInput};
use ispd::query::{PageRequest, Sort};
use ispd::users::domain::mikrotik_rate_limit;
use ispd::users::entities::network_user;
use ispd::users::service::{
    self as users, PackageInput, UserFilter, UserInput, UsersError, PACKAGE_SORTS, USER_SORTS,
};

const PASSWORD: &str = "Sup3r-secret pass";

fn package_input(name: &str) -> PackageInput {
    PackageInput {
        name: name.into(),
        download_rate: "20M".into(),
        upload_rate: "5M".into(),
        radius_group: name.to_lowercase().replace(' ', "-"),
        ..Default::default()
    }
}

async fn package(app: &TestApp, name: &str) -> i32 {
    users::create_package(app.db(), &Actor::system(), &package_input(name))
        .await
        .unwrap_or_else(|e| panic!("create package {name}: {e:?}"))
        .id
}

fn user_input(username: &str, package_id: i32) -> UserInput {
    pppoe_user(username, PASSWORD, package_id)
}

fn static_input(username: &str, package_id: i32, subnet_id: i32) -> UserInput {
    UserInput {
        service_type: "static".into(),
        static_subnet_id: Some(subnet_id),
        mac_address: Some("AA-BB-CC-00-00-01".into()),
        ..user_input(username, package_id)
    }
}

async fn subnet(app: &TestApp, network: &str) -> i32 {
    let pool = ipam::create_pool(
        app.db(),
        &Actor::system(),
        &PoolInput {
            name: format!("pool {network}"),
            start_ip: "10.0.0.0".into(),
            end_ip: "10.255.255.255".into(),
            ..Default::default()
        },
    )
    .await
    .expect("create pool");
    ipam::create_subnet(
        app.db(),
        &Actor::system(),
        &SubnetInput {
            pool_id: pool.id,
            network: network.into(),
            ..Default::default()
        },
    )
    .await
    .expect("create subnet")
    .id
}

async fn allocation(app: &TestApp, id: i64) -> ip_allocation::Model {
    ip_allocation::Entity::find_by_id(id)
        .one(app.db())
        .await
        .unwrap()
        .expect("allocation row")
}

fn page() -> PageRequest {
    PageRequest {
        page: 1,
        per_page: 50,
    }
}

/// The 422 fields of an error, as a client would see them.
fn fields(err: UsersError) -> std::collections::BTreeMap<String, String> {
    match AppError::from(err) {
        AppError::Validation { fields, .. } => fields,
        other => panic!("expected a 422, got {other:?}"),
    }
}

async fn audit_entries(app: &TestApp) -> Vec<audit_log::Model> {
    audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(app.db())
        .await
        .unwrap()
}

async fn each_bad_package_field_gets_its_own_message(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    package(&app, "Home").await;
    let burst = |input: PackageInput| PackageInput {
        burst_download_rate: Some("30M".into()),
        burst_upload_rate: Some("8M".into()),
        burst_threshold_download: Some("15M".into()),
        burst_threshold_upload: Some("4M".into()),
        burst_time_secs: Some(10),
        ..input
    };
    let base = || package_input("Office");
    let cases: Vec<(&str, PackageInput, &str, &str)> = vec![
        (
            "empty name",
            PackageInput {
                name: " ".into(),
                ..base()
            },
            "name",
            "1 to 64",
        ),
        (
            "long name",
            PackageInput {
                name: "n".repeat(65),
                ..base()
            },
            "name",
            "1 to 64",
        ),
        (
            "taken name",
            PackageInput {
                name: "Home".into(),
                ..base()
            },
            "name",
            "exists already",
        ),
        (
            "bad rate",
            PackageInput {
                download_rate: "fast".into(),
                ..base()
            },
            "download_rate",
            "not a rate",
        ),
        (
            "zero rate",
            PackageInput {
                upload_rate: "0".into(),
                ..base()
            },
            "upload_rate",
            "above zero",
        ),
        (
            "huge rate",
            PackageInput {
                upload_rate: "500G".into(),
                ..base()
            },
            "upload_rate",
            "100G",
        ),
        (
            "half a burst",
            PackageInput {
                burst_download_rate: Some("30M".into()),
                ..base()
            },
            "burst_time_secs",
            "required with the other burst settings",
        ),
        (
            "burst below the rate",
            PackageInput {
                burst_download_rate: Some("10M".into()),
                ..burst(base())
            },
            "burst_download_rate",
            "must be above download_rate (20M)",
        ),
        (
            "threshold above the rate",
            PackageInput {
                burst_threshold_upload: Some("6M".into()),
                ..burst(base())
            },
            "burst_threshold_upload",
            "must not be above upload_rate (5M)",
        ),
        (
            "burst time zero",
            PackageInput {
                burst_time_secs: Some(0),
                ..burst(base())
            },
            "burst_time_secs",
            "1 to 3600",
        ),
        (
            "session timeout zero",
            PackageInput {
                session_timeout_secs: Some(0),
                ..base()
            },
            "session_timeout_secs",
            "from 1",
        ),
        (
            "simultaneous use zero",
            PackageInput {
                simultaneous_use: Some(0),
                ..base()
            },
            "simultaneous_use",
            "from 1",
        ),
        (
            "unsafe group",
            PackageInput {
                radius_group: "a group".into(),
                ..base()
            },
            "radius_group",
            "only letters",
        ),
        (
            "taken group",
            PackageInput {
                radius_group: "home".into(),
                ..base()
            },
            "radius_group",
            "exists already",
        ),
        (
            "quoted profile",
            PackageInput {
                mikrotik_profile: Some("a\"b".into()),
                ..base()
            },
            "mikrotik_profile",
            "quotes",
        ),
    ];
    for (case, input, field, expected) in cases {
        let err = users::create_package(app.db(), &Actor::system(), &input)
            .await
            .expect_err(case);
        let fields = fields(err);
        let message = fields
            .get(field)
            .unwrap_or_else(|| panic!("{case}: no message for {field} in {fields:?}"));
        assert!(
            message.contains(expected),
            "{case}: {field}: {message:?} should say {expected:?}"
        );
    }
    // Every problem at once.
    let err = users::create_package(
        app.db(),
        &Actor::system(),
        &PackageInput {
            name: String::new(),
            download_rate: "x".into(),
            upload_rate: String::new(),
            radius_group: String::new(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    let all: Vec<String> = fields(err).into_keys().collect();
    assert_eq!(
        all,
        ["download_rate", "name", "radius_group", "upload_rate"]
    );
}
crate::on_every_backend!(each_bad_package_field_gets_its_own_message);

async fn packages_store_kbit_per_second_and_give_the_rate_limit_string(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let plain = users::create_package(app.db(), &Actor::system(), &package_input("Home"))
        .await
        .unwrap();
    assert_eq!(
        (plain.download_rate_kbps, plain.upload_rate_kbps),
        (20_000, 5_000)
    );
    assert_eq!(mikrotik_rate_limit(&plain), "5M/20M");

    let bursting = users::create_package(
        app.db(),
        &Actor::system(),
        &PackageInput {
            download_rate: "1G".into(),
            upload_rate: "512k".into(),
            burst_download_rate: Some("1.5G".into()),
            burst_upload_rate: Some("1024".into()),
            burst_threshold_download: Some("750M".into()),
            burst_threshold_upload: Some("384k".into()),
            burst_time_secs: Some(8),
            session_timeout_secs: Some(86_400),
            simultaneous_use: Some(1),
            mikrotik_profile: Some("fiber 1G".into()),
            ..package_input("Fiber")
        },
    )
    .await
    .unwrap();
    let stored = users::get_package(app.db(), bursting.id).await.unwrap();
    assert_eq!(stored.burst_download_kbps, Some(1_500_000));
    assert_eq!(stored.burst_upload_kbps, Some(1_024));
    assert_eq!(
        mikrotik_rate_limit(&stored),
        "512k/1000M 1024k/1500M 384k/750M 8/8"
    );

    // Update replaces the settings; list filters and sorts.
    let updated = users::update_package(
        app.db(),
        &Actor::system(),
        plain.id,
        &PackageInput {
            download_rate: "50M".into(),
            upload_rate: "10M".into(),
            ..package_input("Home")
        },
    )
    .await
    .unwrap();
    assert_eq!(mikrotik_rate_limit(&updated), "10M/50M");
    let mut errors = Default::default();
    let sort = Sort::parse(Some("-download_rate"), PACKAGE_SORTS, "name", &mut errors);
    let (rows, total) = users::list_packages(app.db(), &Default::default(), &sort, page())
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(
        rows.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["Fiber", "Home"]
    );
    let (rows, total) = users::list_packages(
        app.db(),
        &users::PackageFilter {
            q: Some("FIB".into()),
        },
        &sort,
        page(),
    )
    .await
    .unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    assert!(matches!(
        users::get_package(app.db(), 9999).await,
        Err(UsersError::NotFound(_))
    ));
}
crate::on_every_backend!(packages_store_kbit_per_second_and_give_the_rate_limit_string);

async fn passwords_are_stored_encrypted_and_revealed_only_with_an_audit_entry(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let package_id = package(&app, "Home").await;
    let user = app
        .create_user(&UserInput {
            mac_address: Some("AABB.CCDD.EEFF".into()),
            expires_at: Some(Utc::now() + chrono::Duration::days(30)),
            ..user_input("alice@isp", package_id)
        })
        .await
        .unwrap();
    assert_eq!(user.mac_address.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
    assert_eq!(user.status, "active");
    assert!(user.radius_sync_pending);

    let stored = network_user::Entity::find_by_id(user.id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.password_encrypted.contains(PASSWORD));
    assert!(stored.password_encrypted.starts_with("v1:"));

    let revealed = users::reveal_password(app.db(), &app.state.app_key, &Actor::system(), user.id)
        .await
        .unwrap();
    assert_eq!(revealed.expose(), PASSWORD);
    let entries = audit_entries(&app).await;
    let reveal = entries
        .iter()
        .find(|e| e.action == "network_user.reveal_password")
        .expect("the reveal is audited");
    assert_eq!(
        reveal.entity_id.as_deref(),
        Some(user.id.to_string().as_str())
    );
    assert!(entries.iter().any(|e| e.action == "network_user.create"));

    // A new password replaces the old; none given keeps it.
    let new_password = "an0ther-Passw0rd";
    app.update_user(
        user.id,
        &UserInput {
            password: Some(Secret::new(new_password)),
            status: Some("suspended".into()),
            ..user_input("alice@isp", package_id)
        },
    )
    .await
    .unwrap();
    let kept = app
        .update_user(
            user.id,
            &UserInput {
                password: None,
                ..user_input("alice@isp", package_id)
            },
        )
        .await
        .unwrap();
    assert_eq!(kept.user.status, "active");
    let revealed = users::reveal_password(app.db(), &app.state.app_key, &Actor::system(), user.id)
        .await
        .unwrap();
    assert_eq!(revealed.expose(), new_password);

    // No audit entry holds a password, or its ciphertext.
    let stored = network_user::Entity::find_by_id(user.id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    for entry in audit_entries(&app).await {
        let details = entry.details.unwrap_or_default();
        for secret in [PASSWORD, new_password, stored.password_encrypted.as_str()] {
            assert!(
                !details.contains(secret),
                "{} leaks a secret: {details}",
                entry.action
            );
        }
    }
    let reveals = audit_entries(&app)
        .await
        .into_iter()
        .filter(|e| e.action == "network_user.reveal_password")
        .count();
    assert_eq!(reveals, 2);
}
crate::on_every_backend!(passwords_are_stored_encrypted_and_revealed_only_with_an_audit_entry);

async fn bad_user_input_is_refused_field_by_field(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let package_id = package(&app, "Home").await;
    app.create_user(&user_input("alice", package_id))
        .await
        .unwrap();
    let base = || user_input("bob", package_id);
    let cases: Vec<(&str, UserInput, &str, &str)> = vec![
        (
            "taken username",
            user_input("alice", package_id),
            "username",
            "exists already",
        ),
        (
            "unsafe username",
            UserInput {
                username: "bob smith".into(),
                ..base()
            },
            "username",
            "only letters",
        ),
        (
            "no password",
            UserInput {
                password: None,
                ..base()
            },
            "password",
            "required",
        ),
        (
            "short password",
            UserInput {
                password: Some(Secret::new("short")),
                ..base()
            },
            "password",
            "8 to 128",
        ),
        (
            "long password",
            UserInput {
                password: Some(Secret::new("p".repeat(129))),
                ..base()
            },
            "password",
            "8 to 128",
        ),
        (
            "bad service type",
            UserInput {
                service_type: "dhcp".into(),
                ..base()
            },
            "service_type",
            "not a service type",
        ),
        (
            "no package",
            UserInput {
                package_id: None,
                ..base()
            },
            "package_id",
            "required",
        ),
        (
            "unknown package",
            UserInput {
                package_id: Some(9999),
                ..base()
            },
            "package_id",
            "no service package",
        ),
        (
            "bad status",
            UserInput {
                status: Some("gone".into()),
                ..base()
            },
            "status",
            "not a status",
        ),
        (
            "bad mac",
            UserInput {
                mac_address: Some("aa:bb".into()),
                ..base()
            },
            "mac_address",
            "not a MAC",
        ),
        (
            "expiry in the past",
            UserInput {
                expires_at: Some(Utc::now() - chrono::Duration::hours(1)),
                ..base()
            },
            "expires_at",
            "future",
        ),
        (
            "static without a subnet",
            UserInput {
                service_type: "static".into(),
                ..base()
            },
            "static_subnet_id",
            "required for a static user",
        ),
        (
            "subnet for a pppoe user",
            UserInput {
                static_subnet_id: Some(1),
                ..base()
            },
            "static_subnet_id",
            "only for service_type static",
        ),
        (
            "unknown subnet",
            UserInput {
                service_type: "static".into(),
                static_subnet_id: Some(9999),
                ..base()
            },
            "static_subnet_id",
            "no IPAM subnet",
        ),
    ];
    for (case, input, field, expected) in cases {
        let err = app.create_user(&input).await.expect_err(case);
        let fields = fields(err);
        let message = fields
            .get(field)
            .unwrap_or_else(|| panic!("{case}: no message for {field} in {fields:?}"));
        assert!(
            message.contains(expected),
            "{case}: {field}: {message:?} should say {expected:?}"
        );
        assert!(!message.contains(PASSWORD), "{case}: the password leaks");
    }
    // Renaming onto a taken name is refused the same way.
    let bob = app.create_user(&base()).await.unwrap();
    let err = app
        .update_user(bob.id, &user_input("alice", package_id))
        .await
        .unwrap_err();
    assert!(fields(err)["username"].contains("exists already"));
    let (_, total) = users::list_users(app.db(), &Default::default(), &Sort::by(vec![]), page())
        .await
        .unwrap();
    assert_eq!(total, 2, "nothing was written by the refused calls");
}
crate::on_every_backend!(bad_user_input_is_refused_field_by_field);

async fn a_static_user_holds_an_ipam_address_until_deleted(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let package_id = package(&app, "Business").await;
    let subnet_id = subnet(&app, "10.9.0.0/29").await;
    let user = app
        .create_user(&UserInput {
            static_ip: Some("10.9.0.5".into()),
            ..static_input("shop-1", package_id, subnet_id)
        })
        .await
        .unwrap();
    assert_eq!(user.static_ip.as_deref(), Some("10.9.0.5"));
    let allocation_id = user.static_allocation_id.expect("an allocation");
    let held = allocation(&app, allocation_id).await;
    assert_eq!(held.active, Some(true));
    assert_eq!(held.username.as_deref(), Some("shop-1"));
    assert_eq!(held.mac_address.as_deref(), Some("aa:bb:cc:00:00:01"));

    // The address is taken: another user cannot have it, and nothing of
    // that user is left behind.
    let err = app
        .create_user(&UserInput {
            static_ip: Some("10.9.0.5".into()),
            mac_address: None,
            ..static_input("shop-2", package_id, subnet_id)
        })
        .await
        .unwrap_err();
    assert_eq!(AppError::from(err).status(), 409);
    // A refused user (taken name) leaves no allocation behind either.
    let before = ip_allocation::Entity::find()
        .all(app.db())
        .await
        .unwrap()
        .len();
    let err = app
        .create_user(&static_input("shop-1", package_id, subnet_id))
        .await
        .unwrap_err();
    assert!(fields(err).contains_key("username"));
    assert_eq!(
        ip_allocation::Entity::find()
            .all(app.db())
            .await
            .unwrap()
            .len(),
        before
    );
    let (found, _) = users::list_users(
        app.db(),
        &UserFilter {
            q: Some("shop-2".into()),
            ..Default::default()
        },
        &Sort::by(vec![]),
        page(),
    )
    .await
    .unwrap();
    assert!(found.is_empty());

    // Keeping the same subnet keeps the same address.
    let same = app
        .update_user(
            user.id,
            &UserInput {
                full_name: Some("Corner Shop".into()),
                password: None,
                ..static_input("shop-1", package_id, subnet_id)
            },
        )
        .await
        .unwrap();
    assert_eq!(same.user.static_allocation_id, Some(allocation_id));
    assert_eq!(same.user.static_ip.as_deref(), Some("10.9.0.5"));

    let deleted = users::delete_user(app.db(), settings(), &Actor::system(), user.id)
        .await
        .unwrap();
    assert_eq!(deleted.unreleased_allocation, None);
    assert_eq!(allocation(&app, allocation_id).await.active, None);
    assert_eq!(allocation(&app, allocation_id).await.status, "released");
    assert!(matches!(
        users::get_user(app.db(), user.id).await,
        Err(UsersError::NotFound(_))
    ));
    let actions: Vec<String> = audit_entries(&app)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    for expected in [
        "ipam.allocate",
        "network_user.create",
        "network_user.delete",
        "ipam.release",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
}
crate::on_every_backend!(a_static_user_holds_an_ipam_address_until_deleted);

async fn leaving_static_service_releases_the_address(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let package_id = package(&app, "Business").await;
    let first_subnet = subnet(&app, "10.9.0.0/29").await;
    let user = app
        .create_user(&user_input("roamer", package_id))
        .await
        .unwrap();
    assert_eq!(user.static_allocation_id, None);

    // pppoe -> static takes an address (the lowest free one).
    let became_static = app
        .update_user(
            user.id,
            &UserInput {
                password: None,
                ..static_input("roamer", package_id, first_subnet)
            },
        )
        .await
        .unwrap()
        .user;
    assert_eq!(became_static.static_ip.as_deref(), Some("10.9.0.1"));
    let first = became_static.static_allocation_id.unwrap();

    // Another subnet: the new address first, then the old one released.
    let second_subnet = ipam::create_subnet(
        app.db(),
        &Actor::system(),
        &SubnetInput {
            pool_id: ipam::get_subnet(app.db(), first_subnet)
                .await
                .unwrap()
                .pool_id,
            network: "10.9.1.0/29".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .id;
    let moved = app
        .update_user(
            user.id,
            &UserInput {
                password: None,
                static_ip: Some("10.9.1.3".into()),
                ..static_input("roamer", package_id, second_subnet)
            },
        )
        .await
        .unwrap()
        .user;
    assert_eq!(moved.static_ip.as_deref(), Some("10.9.1.3"));
    let second = moved.static_allocation_id.unwrap();
    assert_ne!(first, second);
    assert_eq!(allocation(&app, first).await.active, None);
    assert_eq!(allocation(&app, second).await.active, Some(true));

    // static -> hotspot gives it back.
    let hotspot = app
        .update_user(
            user.id,
            &UserInput {
                password: None,
                service_type: "hotspot".into(),
                ..user_input("roamer", package_id)
            },
        )
        .await
        .unwrap();
    assert_eq!(hotspot.unreleased_allocation, None);
    assert_eq!(hotspot.user.service_type, "hotspot");
    assert_eq!(hotspot.user.static_ip, None);
    assert_eq!(hotspot.user.static_allocation_id, None);
    assert!(hotspot.user.radius_sync_pending);
    assert_eq!(allocation(&app, second).await.active, None);

    // Filters.
    let (rows, total) = users::list_users(
        app.db(),
        &UserFilter {
            service_type: Some(ispd::users::domain::ServiceType::Hotspot),
            status: Some(ispd::users::domain::UserStatus::Active),
            package_id: Some(package_id),
            q: Some("ROAM".into()),
        },
        &Sort::parse(
            Some("-username"),
            USER_SORTS,
            "username",
            &mut Default::default(),
        ),
        page(),
    )
    .await
    .unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    let (_, total) = users::list_users(
        app.db(),
        &UserFilter {
            service_type: Some(ispd::users::domain::ServiceType::Static),
            ..Default::default()
        },
        &Sort::by(vec![]),
        page(),
    )
    .await
    .unwrap();
    assert_eq!(total, 0);
}
crate::on_every_backend!(leaving_static_service_releases_the_address);

async fn a_package_in_use_cannot_be_deleted(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let package_id = package(&app, "Home").await;
    let user = app
        .create_user(&user_input("alice", package_id))
        .await
        .unwrap();
    // Sync flags are cleared by the RADIUS sync; a package change sets them.
    network_user::Entity::update_many()
        .col_expr(
            network_user::Column::RadiusSyncPending,
            sea_orm::sea_query::Expr::value(false),
        )
        .exec(app.db())
        .await
        .unwrap();
    users::update_package(
        app.db(),
        &Actor::system(),
        package_id,
        &PackageInput {
            download_rate: "100M".into(),
            ..package_input("Home")
        },
    )
    .await
    .unwrap();
    assert!(
        users::get_user(app.db(), user.id)
            .await
            .unwrap()
            .radius_sync_pending
    );

    let err = users::delete_package(app.db(), &Actor::system(), package_id)
        .await
        .unwrap_err();
    let err = AppError::from(err);
    assert_eq!(err.status(), 409);
    assert_eq!(err.code(), "package_in_use");
    assert!(err.to_string().contains("1 user"), "{err}");
    assert!(users::get_package(app.db(), package_id).await.is_ok());

    users::delete_user(app.db(), settings(), &Actor::system(), user.id)
        .await
        .unwrap();
    users::delete_package(app.db(), &Actor::system(), package_id)
        .await
        .unwrap();
    assert_eq!(
        AppError::from(users::get_package(app.db(), package_id).await.unwrap_err()).status(),
        404
    );
    let deletes = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("service_package.delete"))
        .all(app.db())
        .await
        .unwrap();
    assert_eq!(deletes.len(), 1);
}
crate::on_every_backend!(a_package_in_use_cannot_be_deleted);
