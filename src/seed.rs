//! Demo data for `make seed`, so that a fresh install has something to show.
//! Running it twice adds nothing the second time.

use std::net::IpAddr;

use chrono::Utc;
use ipnet::IpNet;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};

use crate::crypto::{random_password, AppKey};
use crate::ipam::entities::{ip_pool, ip_subnet};
use crate::ipam::key::ip_key;
use crate::mikrotik::entities::mikrotik_router;
use crate::users::entities::{network_user, service_package};

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

/// (username, service type, package name)
const USERS: &[(&str, &str, &str)] = &[
    ("alice", "pppoe", "Home 20M"),
    ("bob", "pppoe", "Home 100M"),
    ("acme-corp", "static", "Business 500M"),
];

pub async fn load_demo_data(db: &DatabaseConnection, key: &AppKey) -> anyhow::Result<String> {
    let txn = db.begin().await?;
    let now = Utc::now();
    let mut added = Vec::new();

    for pool in POOLS {
        if ip_pool::Entity::find()
            .filter(ip_pool::Column::Name.eq(pool.name))
            .one(&txn)
            .await?
            .is_some()
        {
            continue;
        }
        let start: IpAddr = pool.start.parse()?;
        let end: IpAddr = pool.end.parse()?;
        let version = if start.is_ipv4() { 4 } else { 6 };
        let saved = ip_pool::ActiveModel {
            name: Set(pool.name.into()),
            description: Set(Some("Demo data".into())),
            ip_version: Set(version),
            start_ip: Set(start.to_string()),
            end_ip: Set(end.to_string()),
            start_key: Set(ip_key(start).to_vec()),
            end_key: Set(ip_key(end).to_vec()),
            gateway: Set(Some(pool.gateway.into())),
            dns_servers: Set(Some(serde_json::to_string(pool.dns)?)),
            vlan_id: Set(Some(pool.vlan)),
            status: Set("active".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        added.push(format!("pool {}", pool.name));
        for (cidr, gateway) in pool.subnets {
            let net: IpNet = cidr.parse()?;
            ip_subnet::ActiveModel {
                pool_id: Set(saved.id),
                ip_version: Set(version),
                network: Set(net.network().to_string()),
                prefix_length: Set(net.prefix_len().into()),
                network_key: Set(ip_key(net.network()).to_vec()),
                last_key: Set(ip_key(net.broadcast()).to_vec()),
                gateway: Set(Some((*gateway).into())),
                vlan_id: Set(Some(pool.vlan)),
                description: Set(None),
                status: Set("active".into()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            added.push(format!("subnet {cidr}"));
        }
    }

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
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        added.push(format!("package {name}"));
    }

    for (username, service_type, package) in USERS {
        if network_user::Entity::find()
            .filter(network_user::Column::Username.eq(*username))
            .one(&txn)
            .await?
            .is_some()
        {
            continue;
        }
        let package_id = service_package::Entity::find()
            .filter(service_package::Column::Name.eq(*package))
            .one(&txn)
            .await?
            .map(|p| p.id);
        network_user::ActiveModel {
            username: Set((*username).into()),
            password_encrypted: Set(key.encrypt(&random_password(12))),
            service_type: Set((*service_type).into()),
            package_id: Set(package_id),
            status: Set("active".into()),
            radius_sync_pending: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        added.push(format!("user {username}"));
    }

    let router_name = "demo-router";
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
            created_at: Set(now),
            updated_at: Set(now),
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
