//! Demo data for `make seed`, so that a fresh install has something to show.
//! Running it twice adds nothing the second time.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};

use crate::crypto::{random_password, AppKey, Secret};
use crate::ipam::entities::{ip_pool, ip_subnet};
use crate::ipam::service as ipam;
use crate::mikrotik::entities::mikrotik_router;
use crate::users::entities::{network_user, service_package};
use crate::users::service as users;

struct DemoPool {
    name: &'static str,
    start: &'static str,
    end: &'static str,
    gateway: &'static str,
    dns: &'static [&'static str],
    vlan: i32,
    subnets: &'static [(&'static str, &'static str)],
}

const POOLS: &[DemoPool] = &[
    DemoPool {
        name: "Residential CGNAT",
        start: "100.64.0.0",
        end: "100.64.255.255",
        gateway: "100.64.0.1",
        dns: &["9.9.9.9", "1.1.1.1"],
        vlan: 100,
        subnets: &[
            ("100.64.0.0/24", "100.64.0.1"),
            ("100.64.1.0/24", "100.64.1.1"),
        ],
    },
    DemoPool {
        name: "Business static",
        start: "198.51.100.0",
        end: "198.51.100.255",
        gateway: "198.51.100.1",
        dns: &["9.9.9.9"],
        vlan: 200,
        subnets: &[("198.51.100.0/26", "198.51.100.1")],
    },
    DemoPool {
        name: "Residential IPv6",
        start: "2001:db8::",
        end: "2001:db8:0:ffff:ffff:ffff:ffff:ffff",
        gateway: "2001:db8::1",
        dns: &["2620:fe::fe"],
        vlan: 100,
        subnets: &[("2001:db8:0:1::/64", "2001:db8:0:1::1")],
    },
];

/// (name, download kbit/s, upload kbit/s, RADIUS group, PPP profile)
const PACKAGES: &[(&str, i64, i64, &str, &str)] = &[
    ("Home 20M", 20_000, 5_000, "home-20m", "home-20m"),
    ("Home 100M", 100_000, 20_000, "home-100m", "home-100m"),
    (
        "Business 500M",
        500_000,
        500_000,
        "business-500m",
        "business-500m",
    ),
];

/// (username, service type, package name, subnet of a static address)
const USERS: &[(&str, &str, &str, Option<&str>)] = &[
    ("alice", "pppoe", "Home 20M", None),
    ("bob", "pppoe", "Home 100M", None),
    (
        "acme-corp",
        "static",
        "Business 500M",
        Some("198.51.100.0/26"),
    ),
];

/// The router entry of the demo data.
pub const DEMO_ROUTER: &str = "demo-router";

pub async fn load_demo_data(db: &DatabaseConnection, key: &AppKey) -> anyhow::Result<String> {
    let actor = crate::audit::Actor::system();
    let mut added = Vec::new();

    for pool in POOLS {
        if ip_pool::Entity::find()
            .filter(ip_pool::Column::Name.eq(pool.name))
            .one(db)
            .await?
            .is_some()
        {
            continue;
        }
        // Through the IPAM service, like any other change: validated,
        // audited, and with the subnets' free address ranges in place.
        let saved = ipam::create_pool(
            db,
            &actor,
            &ipam::PoolInput {
                name: pool.name.into(),
                description: Some("Demo data".into()),
                start_ip: pool.start.into(),
                end_ip: pool.end.into(),
                gateway: Some(pool.gateway.into()),
                dns_servers: pool.dns.iter().map(|d| d.to_string()).collect(),
                vlan_id: Some(i64::from(pool.vlan)),
                status: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo pool {}: {e:?}", pool.name))?;
        added.push(format!("pool {}", pool.name));
        for (cidr, gateway) in pool.subnets {
            ipam::create_subnet(
                db,
                &actor,
                &ipam::SubnetInput {
                    pool_id: saved.id,
                    network: (*cidr).into(),
                    gateway: Some((*gateway).into()),
                    vlan_id: Some(i64::from(pool.vlan)),
                    status: None,
                    description: None,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("demo subnet {cidr}: {e:?}"))?;
            added.push(format!("subnet {cidr}"));
        }
    }

    let txn = db.begin().await?;
    let now = Utc::now();
    for (name, down, up, group, profile) in PACKAGES {
        if service_package::Entity::find()
            .filter(service_package::Column::Name.eq(*name))
            .one(&txn)
            .await?
            .is_some()
        {
            continue;
        }
        service_package::ActiveModel {
            name: Set((*name).into()),
            download_rate_kbps: Set(*down),
            upload_rate_kbps: Set(*up),
            simultaneous_use: Set(Some(1)),
            radius_group: Set((*group).into()),
            mikrotik_profile: Set(Some((*profile).into())),
            status: Set("active".into()),
            created_at: Set(now.into()),
            updated_at: Set(now.into()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        added.push(format!("package {name}"));
    }

    txn.commit().await?;

    // Through the users service, like any other subscriber: validated,
    // audited, a static user's address allocated through IPAM, and
    // flagged for the RADIUS sync.
    for (username, service_type, package, static_subnet) in USERS {
        if network_user::Entity::find()
            .filter(network_user::Column::Username.eq(*username))
            .one(db)
            .await?
            .is_some()
        {
            continue;
        }
        let package_id = service_package::Entity::find()
            .filter(service_package::Column::Name.eq(*package))
            .one(db)
            .await?
            .map(|p| p.id);
        let static_subnet_id = match static_subnet {
            Some(cidr) => {
                let (network, prefix) = cidr.split_once('/').unwrap_or((cidr, ""));
                ip_subnet::Entity::find()
                    .filter(ip_subnet::Column::Network.eq(network))
                    .filter(ip_subnet::Column::PrefixLength.eq(prefix.parse::<i16>().ok()))
                    .one(db)
                    .await?
                    .map(|s| s.id)
            }
            None => None,
        };
        users::create_user(
            db,
            key,
            ipam::IpamSettings {
                lock_timeout: Duration::from_secs(10),
            },
            &actor,
            &users::UserInput {
                username: (*username).into(),
                password: Some(Secret::new(random_password(12))),
                service_type: (*service_type).into(),
                package_id,
                static_subnet_id,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo user {username}: {e:?}"))?;
        added.push(format!("user {username}"));
    }

    let txn = db.begin().await?;
    let router_name = DEMO_ROUTER;
    if mikrotik_router::Entity::find()
        .filter(mikrotik_router::Column::Name.eq(router_name))
        .one(&txn)
        .await?
        .is_none()
    {
        // Points at the mock router (`ispd mock-routeros`) on this machine.
        mikrotik_router::ActiveModel {
            name: Set(router_name.into()),
            ip_address: Set("127.0.0.1".into()),
            api_port: Set(8728),
            use_tls: Set(false),
            username: Set("admin".into()),
            password_encrypted: Set(key.encrypt(&random_password(16))),
            status: Set("unknown".into()),
            created_at: Set(now.into()),
            updated_at: Set(now.into()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        added.push(format!("router {router_name}"));
    }

    txn.commit().await?;
    Ok(if added.is_empty() {
        "Demo data is already loaded; nothing added.".into()
    } else {
        format!("Added {} demo records: {}.", added.len(), added.join(", "))
    })
}

/// A mock MikroTik router for `ispd demo`: listening on `listen`, with
/// `sessions` PPPoE sessions online, and the seeded `demo-router` pointed
/// at it with its (fresh, random) password, so that its connection test,
/// live sessions and the dashboard work at once. Runs while the returned
/// router is kept.
pub async fn start_demo_router(
    db: &DatabaseConnection,
    key: &AppKey,
    listen: std::net::SocketAddr,
    sessions: u32,
) -> anyhow::Result<crate::mikrotik::routeros::MockRouter> {
    use crate::mikrotik::routeros::mock::{MockOptions, MockRouter};
    let password = random_password(20);
    let router = MockRouter::start_with(MockOptions {
        listen,
        ..MockOptions::local("admin", &password)
    })
    .await?;
    router.simulate_sessions(sessions);
    let row = mikrotik_router::Entity::find()
        .filter(mikrotik_router::Column::Name.eq(DEMO_ROUTER))
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no {DEMO_ROUTER}: run the seed first"))?;
    let mut row: mikrotik_router::ActiveModel = row.into();
    row.ip_address = Set(router.addr().ip().to_string());
    row.api_port = Set(i32::from(router.addr().port()));
    row.use_tls = Set(false);
    row.tls_fingerprint = Set(None);
    row.username = Set("admin".into());
    row.password_encrypted = Set(key.encrypt(&password));
    row.status = Set("unknown".into());
    row.last_error = Set(None);
    row.updated_at = Set(Utc::now().into());
    row.update(db).await?;
    Ok(router)
}
