//! `ispd key rotate`: every stored secret (subscriber, router and PPPoE
//! passwords) is re-encrypted from the old APP_KEY to a new one in one
//! transaction, on every backend; a dry run writes nothing; one secret that
//! does not decrypt fails the rotation and leaves every row as it was. The
//! last tests run the real binary.

use std::collections::BTreeMap;

use ispd::audit::entities::audit_log;
use ispd::audit::Actor;
use ispd::crypto::{AppKey, CryptoError, Secret};
use ispd::keys::{self, RotateError};
use ispd::mikrotik::entities::{mikrotik_pppoe_user, mikrotik_router};
use ispd::mikrotik::routeros::MockRouter;
use ispd::mikrotik::service::{self as mikrotik, PppoeInput, RouterInput};
use ispd::users::entities::network_user;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, Statement,
};

use crate::helpers::{home_20, ispd_command, pppoe_user, Backend, TestApp};

const ROUTER_USER: &str = "ispd-api";
const ROUTER_PASSWORD: &str = "R0uter pass";
const USER_PASSWORDS: [&str; 2] = ["Sub-one pass 1", "Sub-two pass 2"];
const PPP_PASSWORD: &str = "Ppp-secret=1";

/// Every stored ciphertext, by (table, id).
type Sealed = BTreeMap<(&'static str, i32), String>;

struct Fixture {
    app: TestApp,
    _mock: MockRouter,
    user_ids: Vec<i32>,
    pppoe_id: i32,
}

impl Fixture {
    fn key(&self) -> &AppKey {
        &self.app.state.app_key
    }

    async fn sealed(&self) -> Sealed {
        let db = self.app.db();
        let mut all = Sealed::new();
        for u in network_user::Entity::find().all(db).await.unwrap() {
            all.insert(("network_users", u.id), u.password_encrypted);
        }
        for r in mikrotik_router::Entity::find().all(db).await.unwrap() {
            all.insert(("mikrotik_routers", r.id), r.password_encrypted);
        }
        for p in mikrotik_pppoe_user::Entity::find().all(db).await.unwrap() {
            all.insert(("mikrotik_pppoe_users", p.id), p.password_encrypted);
        }
        all
    }

    async fn rotations_audited(&self) -> Vec<audit_log::Model> {
        audit_log::Entity::find()
            .filter(audit_log::Column::Action.eq("app_key.rotate"))
            .all(self.app.db())
            .await
            .unwrap()
    }
}

/// Two subscribers (users service), a router (mikrotik service, on the
/// in-process mock) and a PPPoE secret on it: one secret in each table.
async fn with_secrets(backend: Backend) -> Option<Fixture> {
    let app = TestApp::spawn_with(backend, &[("MIKROTIK_API_TIMEOUT", "2")]).await?;
    let actor = Actor::system();
    let package = app
        .create_package(&home_20())
        .await
        .expect("create package");
    let mut user_ids = Vec::new();
    for (i, password) in USER_PASSWORDS.iter().enumerate() {
        let user = app
            .create_user(&pppoe_user(
                &format!("subscriber-{i}"),
                password,
                package.id,
            ))
            .await
            .expect("create user");
        user_ids.push(user.id);
    }
    let mock = MockRouter::start(ROUTER_USER, ROUTER_PASSWORD)
        .await
        .expect("mock router");
    let router = mikrotik::create_router(
        app.db(),
        &app.state.app_key,
        &actor,
        &RouterInput {
            name: "core-1".into(),
            ip_address: "127.0.0.1".into(),
            api_port: Some(i64::from(mock.addr().port())),
            username: ROUTER_USER.into(),
            password: Some(Secret::new(ROUTER_PASSWORD)),
            ..Default::default()
        },
    )
    .await
    .expect("create router");
    let pppoe = mikrotik::create_pppoe_user(
        app.db(),
        &app.state.router_pool,
        &actor,
        &PppoeInput {
            router_id: router.id,
            username: "ppp-standalone".into(),
            password: Some(Secret::new(PPP_PASSWORD)),
            ..Default::default()
        },
    )
    .await
    .expect("create PPPoE user");
    Some(Fixture {
        app,
        _mock: mock,
        user_ids,
        pppoe_id: pppoe.id,
    })
}

fn plaintexts(key: &AppKey, sealed: &Sealed) -> BTreeMap<(&'static str, i32), String> {
    sealed
        .iter()
        .map(|(at, text)| {
            let plain = key
                .decrypt(text)
                .unwrap_or_else(|e| panic!("{at:?} does not decrypt: {e}"));
            (*at, plain.expose().to_string())
        })
        .collect()
}

async fn rotating_the_key_re_encrypts_every_secret_in_one_transaction(backend: Backend) {
    let Some(f) = with_secrets(backend).await else {
        return;
    };
    let old = f.key().clone();
    let new = AppKey::generate();
    let before = f.sealed().await;
    assert_eq!(before.len(), 4, "{before:?}");
    let plain_before = plaintexts(&old, &before);
    let mut expected: Vec<&str> = USER_PASSWORDS.to_vec();
    expected.extend([ROUTER_PASSWORD, PPP_PASSWORD]);
    let mut found: Vec<&str> = plain_before.values().map(String::as_str).collect();
    found.sort_unstable();
    expected.sort_unstable();
    assert_eq!(found, expected);

    let report = keys::rotate(f.app.db(), &old, &new, false).await.unwrap();
    assert!(!report.dry_run);
    assert_eq!(report.rows("network_users"), 2);
    assert_eq!(report.rows("mikrotik_routers"), 1);
    assert_eq!(report.rows("mikrotik_pppoe_users"), 1);
    assert_eq!(report.total(), 4);

    let after = f.sealed().await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (at, text) in &after {
        assert_ne!(text, &before[at], "{at:?} was re-encrypted");
        assert!(
            matches!(old.decrypt(text), Err(CryptoError::WrongKey)),
            "{at:?} no longer opens with the old key"
        );
    }
    assert_eq!(plaintexts(&new, &after), plain_before);

    let audited = f.rotations_audited().await;
    assert_eq!(audited.len(), 1, "one audit entry");
    assert_eq!(audited[0].actor_kind, "cli");
    let details = audited[0].details.clone().unwrap_or_default();
    assert!(details.contains("\"total\":4"), "{details}");
    for secret in plain_before.values() {
        assert!(!details.contains(secret.as_str()), "no secret in {details}");
    }
    for text in before.values().chain(after.values()) {
        assert!(
            !details.contains(text.as_str()),
            "no ciphertext in {details}"
        );
    }
}
crate::on_every_backend!(rotating_the_key_re_encrypts_every_secret_in_one_transaction);

async fn a_dry_run_decrypts_every_secret_and_writes_nothing(backend: Backend) {
    let Some(f) = with_secrets(backend).await else {
        return;
    };
    let old = f.key().clone();
    let before = f.sealed().await;
    let report = keys::rotate(f.app.db(), &old, &AppKey::generate(), true)
        .await
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.total(), 4);
    assert!(report.to_string().contains("dry run"), "{report}");
    assert_eq!(f.sealed().await, before);
    assert!(f.rotations_audited().await.is_empty());

    // Rotating to the key in use is a mistake, refused before any work.
    let same = keys::rotate(f.app.db(), &old, &old, false).await;
    assert!(matches!(same, Err(RotateError::SameKey)), "{same:?}");
    assert_eq!(f.sealed().await, before);
}
crate::on_every_backend!(a_dry_run_decrypts_every_secret_and_writes_nothing);

async fn a_secret_that_does_not_decrypt_fails_the_rotation_and_changes_no_row(backend: Backend) {
    let Some(f) = with_secrets(backend).await else {
        return;
    };
    let db = f.app.db();
    let old = f.key().clone();
    // The second subscriber was sealed with some other key; the PPPoE
    // secret, in the last table rotated, is garbage. The first subscriber
    // and the router are re-encrypted before either is reached.
    let other_key_id = f.user_ids[1];
    network_user::ActiveModel {
        id: Set(other_key_id),
        password_encrypted: Set(AppKey::generate().encrypt("sealed elsewhere")),
        ..Default::default()
    }
    .update(db)
    .await
    .unwrap();
    mikrotik_pppoe_user::ActiveModel {
        id: Set(f.pppoe_id),
        password_encrypted: Set("v1:not-base64-at-all!".into()),
        ..Default::default()
    }
    .update(db)
    .await
    .unwrap();
    let before = f.sealed().await;

    let err = keys::rotate(db, &old, &AppKey::generate(), false)
        .await
        .expect_err("rotation must fail");
    let RotateError::Undecryptable { failures, count } = &err else {
        panic!("unexpected error: {err:?}");
    };
    assert_eq!(*count, 2, "{failures:?}");
    let text = err.to_string();
    for named in [
        format!("network_users id {other_key_id} column password_encrypted"),
        format!(
            "mikrotik_pppoe_users id {} column password_encrypted",
            f.pppoe_id
        ),
    ] {
        assert!(text.contains(&named), "names {named}: {text}");
    }
    assert!(text.contains("nothing was changed"), "{text}");
    for secret in
        USER_PASSWORDS
            .iter()
            .chain([&ROUTER_PASSWORD, &PPP_PASSWORD, &"sealed elsewhere"])
    {
        assert!(!text.contains(secret), "no secret in: {text}");
    }

    assert_eq!(f.sealed().await, before, "every row as it was");
    assert!(f.rotations_audited().await.is_empty());
    // And the old key still opens every sound row.
    let sound = f.sealed().await;
    assert!(old
        .decrypt(&sound[&("network_users", f.user_ids[0])])
        .is_ok());
}
crate::on_every_backend!(a_secret_that_does_not_decrypt_fails_the_rotation_and_changes_no_row);

/// A new `*_encrypted` column that `keys::rotate` does not know would be
/// unreadable after a rotation.
#[tokio::test]
async fn every_encrypted_column_of_the_schema_is_rotated() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("SQLite");
    let rows = app
        .db()
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND (p.name LIKE '%encrypted%' OR p.name LIKE '%sealed%') \
             ORDER BY t, c",
        ))
        .await
        .unwrap();
    let mut found: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.try_get("", "t").unwrap(), r.try_get("", "c").unwrap()))
        .collect();
    found.sort();
    let mut known: Vec<(String, String)> = keys::SEALED_COLUMNS
        .iter()
        .map(|(t, c)| (t.to_string(), c.to_string()))
        .collect();
    known.sort();
    assert_eq!(found, known);
}

fn key_of(text: &[u8]) -> AppKey {
    AppKey::from_base64(std::str::from_utf8(text).unwrap().trim()).expect("a key")
}

#[test]
fn key_rotate_on_the_command_line_prints_the_new_key_once_and_needs_it_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let old = AppKey::generate().to_base64();
    let ispd = |key: &str, args: &[&str]| {
        ispd_command(dir.path())
            .env("APP_KEY", key)
            .args(args)
            .output()
            .unwrap()
    };
    let seeded = ispd(&old, &["seed"]);
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );

    // No new key and no --dry-run: a usage error.
    assert_eq!(ispd(&old, &["key", "rotate"]).status.code(), Some(2));

    let dry = ispd(&old, &["key", "rotate", "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(dry.stdout.is_empty());
    let dry_err = String::from_utf8_lossy(&dry.stderr);
    assert!(
        dry_err.contains("network_users.password_encrypted: 3"),
        "{dry_err}"
    );

    let out = ispd(&old, &["key", "rotate", "--generate"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "the key, once: {stdout}");
    let new = key_of(stdout.as_bytes());
    assert_ne!(new.to_base64(), old);
    assert!(!stderr.contains(&new.to_base64()), "{stderr}");
    assert!(!stderr.contains(&old), "{stderr}");
    assert!(stderr.contains("re-encrypted with the new key"), "{stderr}");
    assert!(
        stderr.contains("network_users.password_encrypted: 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mikrotik_routers.password_encrypted: 1"),
        "{stderr}"
    );
    assert!(stderr.contains("Set APP_KEY to the new key"), "{stderr}");
    assert!(
        !dir.path().join("data/app.key").exists(),
        "with APP_KEY set no key file is written"
    );

    // The new key opens everything; the old one nothing, and says where.
    let with_new = ispd(&new.to_base64(), &["key", "rotate", "--dry-run"]);
    assert!(
        with_new.status.success(),
        "{}",
        String::from_utf8_lossy(&with_new.stderr)
    );
    let with_old = ispd(&old, &["key", "rotate", "--generate"]);
    assert_eq!(with_old.status.code(), Some(1));
    let failed = String::from_utf8_lossy(&with_old.stderr);
    assert!(
        failed.contains("network_users id 1 column password_encrypted"),
        "{failed}"
    );
    assert!(
        failed.contains("the key printed above was not used"),
        "{failed}"
    );
    let again = ispd(&new.to_base64(), &["key", "rotate", "--dry-run"]);
    assert!(again.status.success(), "the failed run changed nothing");
}

#[test]
fn key_rotate_without_app_key_replaces_the_key_file_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let ispd = |args: &[&str]| ispd_command(dir.path()).args(args).output().unwrap();
    assert!(ispd(&["seed"]).status.success());
    let key_file = dir.path().join("data/app.key");
    let old = key_of(&std::fs::read(&key_file).unwrap());

    let new = AppKey::generate();
    let new_file = dir.path().join("new.key");
    std::fs::write(&new_file, format!("{}\n", new.to_base64())).unwrap();
    let out = ispd(&[
        "key",
        "rotate",
        "--new-key-file",
        new_file.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "a given key is not printed");
    assert!(stderr.contains("The new key is now in"), "{stderr}");
    assert_eq!(key_of(&std::fs::read(&key_file).unwrap()), new);
    assert_ne!(new, old);
    assert!(!dir.path().join("data/app.key.new").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The commands that read the key file now use the new key.
    let check = ispd(&["key", "rotate", "--dry-run"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let synced = ispd(&["radius", "sync-users"]);
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
}
