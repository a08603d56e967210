//! The main-DB schema on every backend: migrations go up, down and up
//! again; entities read back what they wrote; the indexes that keep data
//! correct refuse what they must.

use chrono::{DateTime, SubsecRound, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, QueryOrder, Set};

use crate::helpers::{Backend, TestDb};
use ispd::ipam::entities::{ip_allocation, ip_allocation_history, ip_pool, ip_subnet};
use ispd::ipam::key::ip_key;

/// Timestamps as the databases keep them: microseconds.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

async fn count_every_table(db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    use ispd::audit::entities::audit_log;
    use ispd::mikrotik::entities::{mikrotik_pppoe_user, mikrotik_router};
    use ispd::staff::entities::{api_token, staff_session, staff_user};
    use ispd::users::entities::{network_user, network_user_session, service_package};
    staff_user::Entity::find().count(db).await?;
    staff_session::Entity::find().count(db).await?;
    api_token::Entity::find().count(db).await?;
    audit_log::Entity::find().count(db).await?;
    ip_pool::Entity::find().count(db).await?;
    ip_subnet::Entity::find().count(db).await?;
    ip_allocation::Entity::find().count(db).await?;
    ip_allocation_history::Entity::find().count(db).await?;
    service_package::Entity::find().count(db).await?;
    network_user::Entity::find().count(db).await?;
    network_user_session::Entity::find().count(db).await?;
    mikrotik_router::Entity::find().count(db).await?;
    mikrotik_pppoe_user::Entity::find().count(db).await?;
    Ok(())
}

async fn main_migrations_go_up_down_and_up_again(backend: Backend) {
    let Some(mut db) = TestDb::fresh(backend).await else {
        return;
    };
    Migrator::up(&db.conn, None).await.expect("up");
    count_every_table(&db.conn)
        .await
        .expect("every table exists after up");
    Migrator::down(&db.conn, None).await.expect("down");
    assert!(
        count_every_table(&db.conn).await.is_err(),
        "tables are gone after down"
    );
    db.reopen().await;
    Migrator::up(&db.conn, None).await.expect("up again");
    count_every_table(&db.conn)
        .await
        .expect("every table exists after up again");
    assert!(Migrator::get_pending_migrations(&db.conn)
        .await
        .unwrap()
        .is_empty());
}
crate::on_every_backend!(main_migrations_go_up_down_and_up_again);

async fn pool(db: &TestDb, name: &str) -> ip_pool::Model {
    let t = now();
    ip_pool::ActiveModel {
        name: Set(name.into()),
        ip_version: Set(4),
        start_ip: Set("10.0.0.0".into()),
        end_ip: Set("10.0.255.255".into()),
        start_key: Set(ip_key("10.0.0.0".parse().unwrap()).to_vec()),
        end_key: Set(ip_key("10.0.255.255".parse().unwrap()).to_vec()),
        dns_servers: Set(Some(r#"["9.9.9.9"]"#.into())),
        vlan_id: Set(Some(100)),
        status: Set("active".into()),
        created_at: Set(t.into()),
        updated_at: Set(t.into()),
        ..Default::default()
    }
    .insert(&db.conn)
    .await
    .expect("insert pool")
}

async fn subnet(db: &TestDb, pool_id: i32) -> ip_subnet::Model {
    let t = now();
    ip_subnet::ActiveModel {
        pool_id: Set(pool_id),
        ip_version: Set(4),
        network: Set("10.0.0.0".into()),
        prefix_length: Set(24),
        network_key: Set(ip_key("10.0.0.0".parse().unwrap()).to_vec()),
        last_key: Set(ip_key("10.0.0.255".parse().unwrap()).to_vec()),
        gateway: Set(Some("10.0.0.1".into())),
        status: Set("active".into()),
        created_at: Set(t.into()),
        updated_at: Set(t.into()),
        ..Default::default()
    }
    .insert(&db.conn)
    .await
    .expect("insert subnet")
}

fn allocation(subnet_id: i32, addr: &str, active: bool) -> ip_allocation::ActiveModel {
    let t = now();
    ip_allocation::ActiveModel {
        subnet_id: Set(subnet_id),
        ip_address: Set(addr.into()),
        ip_key: Set(ip_key(addr.parse().unwrap()).to_vec()),
        mac_address: Set(Some("aa:bb:cc:dd:ee:ff".into())),
        username: Set(Some("alice".into())),
        allocated_at: Set(t.into()),
        released_at: Set((!active).then_some(t.into())),
        status: Set(if active { "active" } else { "released" }.into()),
        active: Set(active.then_some(true)),
        created_at: Set(t.into()),
        updated_at: Set(t.into()),
        ..Default::default()
    }
}

async fn entities_read_back_what_they_wrote(backend: Backend) {
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    Migrator::up(&db.conn, None).await.unwrap();
    let pool = pool(&db, "Residential").await;
    let subnet = subnet(&db, pool.id).await;
    let written = allocation(subnet.id, "10.0.0.2", true)
        .insert(&db.conn)
        .await
        .unwrap();
    let read = ip_allocation::Entity::find_by_id(written.id)
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, written, "timestamps, binary keys and flags survive");
    let read_pool = ip_pool::Entity::find_by_id(pool.id)
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read_pool, pool);
}
crate::on_every_backend!(entities_read_back_what_they_wrote);

async fn only_one_active_allocation_per_address(backend: Backend) {
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    Migrator::up(&db.conn, None).await.unwrap();
    let pool = pool(&db, "P").await;
    let subnet = subnet(&db, pool.id).await;

    allocation(subnet.id, "10.0.0.5", true)
        .insert(&db.conn)
        .await
        .unwrap();
    let duplicate = allocation(subnet.id, "10.0.0.5", true)
        .insert(&db.conn)
        .await;
    let err = duplicate.expect_err("a second active allocation of one address is refused");
    let message = err.to_string().to_lowercase();
    assert!(
        message.contains("unique") || message.contains("duplicate"),
        "a unique violation: {err}"
    );

    // Released allocations of the same address are history, not conflicts.
    allocation(subnet.id, "10.0.0.5", false)
        .insert(&db.conn)
        .await
        .unwrap();
    allocation(subnet.id, "10.0.0.5", false)
        .insert(&db.conn)
        .await
        .unwrap();
    assert_eq!(
        ip_allocation::Entity::find().count(&db.conn).await.unwrap(),
        3
    );
}
crate::on_every_backend!(only_one_active_allocation_per_address);

async fn address_keys_sort_numerically_in_the_database(backend: Backend) {
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    Migrator::up(&db.conn, None).await.unwrap();
    let pool = pool(&db, "P").await;
    let subnet = subnet(&db, pool.id).await;
    for addr in [
        "10.0.0.200",
        "10.0.0.3",
        "10.0.0.20",
        "10.0.0.128",
        "10.0.0.9",
    ] {
        allocation(subnet.id, addr, true)
            .insert(&db.conn)
            .await
            .unwrap();
    }
    let sorted: Vec<String> = ip_allocation::Entity::find()
        .order_by_asc(ip_allocation::Column::IpKey)
        .all(&db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.ip_address)
        .collect();
    assert_eq!(
        sorted,
        [
            "10.0.0.3",
            "10.0.0.9",
            "10.0.0.20",
            "10.0.0.128",
            "10.0.0.200"
        ]
    );
}
crate::on_every_backend!(address_keys_sort_numerically_in_the_database);

async fn a_pool_with_subnets_cannot_be_deleted(backend: Backend) {
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    Migrator::up(&db.conn, None).await.unwrap();
    let pool = pool(&db, "P").await;
    subnet(&db, pool.id).await;
    let deleted = ip_pool::Entity::delete_by_id(pool.id).exec(&db.conn).await;
    assert!(deleted.is_err(), "the foreign key keeps the subnet's pool");
}
crate::on_every_backend!(a_pool_with_subnets_cannot_be_deleted);
