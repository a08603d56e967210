//! The RADIUS migrations build FreeRADIUS's own schema, so that an
//! unmodified FreeRADIUS (rlm_sql) works against a database ispd created.
//!
//! The reference is the `schema.sql` FreeRADIUS ships for each backend, as
//! installed by Debian's `freeradius` package. Each test loads it into one
//! fresh database, runs our migrations in another, and compares what the
//! two servers report about their tables, columns and indexes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use ispd::radius::entities::{nasreload, radacct, radcheck, radpostauth};
use migration::{MigratorTrait, RadiusMigrator};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IdenStatic, Iterable,
    QueryResult, Set, Statement, TryGetable,
};

use crate::helpers::{Backend, TestDb};

/// Where Debian's `freeradius` package installs FreeRADIUS's SQL schemas.
const FREERADIUS_SQL_DIR: &str = "/etc/freeradius/3.0/mods-config/sql/main";

const RADIUS_TABLES: [&str; 9] = [
    "nas",
    "nasreload",
    "radacct",
    "radcheck",
    "radgroupcheck",
    "radgroupreply",
    "radpostauth",
    "radreply",
    "radusergroup",
];

/// The migrator's own bookkeeping table, which FreeRADIUS's schema lacks.
const MIGRATION_TABLE: &str = "ispd_radius_migrations";

async fn our_radius_migrations_match_the_freeradius_schema(backend: Backend) {
    let (Some(theirs), Some(ours)) = (TestDb::fresh(backend).await, TestDb::fresh(backend).await)
    else {
        return;
    };
    assert_no_radius_tables(backend, &theirs.conn, "a fresh database").await;
    assert_no_radius_tables(backend, &ours.conn, "a fresh database").await;

    load_freeradius_schema(backend, &theirs.conn).await;
    RadiusMigrator::up(&ours.conn, None)
        .await
        .expect("the RADIUS migrations run");

    let theirs = Schema::read(backend, &theirs.conn).await;
    let mut ours = Schema::read(backend, &ours.conn).await;
    ours.forget_table(MIGRATION_TABLE);
    // ispd's own indexes (named ispd_*, migration 000002) come on top.
    ours.indexes.retain(|key, _| !key.contains(".ispd_"));

    for table in RADIUS_TABLES {
        assert!(
            theirs.tables.contains(table),
            "FreeRADIUS's schema.sql did not create {table}; tables: {:?}",
            theirs.tables
        );
    }
    let differences = theirs.differences_from(&ours);
    assert!(
        differences.is_empty(),
        "our RADIUS schema differs from FreeRADIUS's on {backend:?} \
         (\"theirs\" is FreeRADIUS's schema.sql, \"ours\" the migrations):\n{}",
        differences.join("\n")
    );
}
crate::on_every_backend!(our_radius_migrations_match_the_freeradius_schema);

async fn radius_migrations_go_down_and_up_again(backend: Backend) {
    let Some(mut db) = TestDb::fresh(backend).await else {
        return;
    };
    RadiusMigrator::up(&db.conn, None).await.expect("first up");
    RadiusMigrator::down(&db.conn, None).await.expect("down");
    assert_no_radius_tables(backend, &db.conn, "the database after down()").await;
    db.reopen().await;
    RadiusMigrator::up(&db.conn, None).await.expect("second up");

    let inserted = radcheck::ActiveModel {
        username: Set("alice".to_owned()),
        attribute: Set("Cleartext-Password".to_owned()),
        value: Set("correct horse".to_owned()),
        // `op` is left to the column default.
        ..Default::default()
    }
    .insert(&db.conn)
    .await
    .expect("insert into radcheck");
    let read = radcheck::Entity::find_by_id(inserted.id)
        .one(&db.conn)
        .await
        .expect("select from radcheck")
        .expect("the row just inserted");
    assert_eq!(read, inserted);
    assert_eq!(
        read,
        radcheck::Model {
            id: read.id,
            username: "alice".to_owned(),
            attribute: "Cleartext-Password".to_owned(),
            op: "==".to_owned(),
            value: "correct horse".to_owned(),
        }
    );
}
crate::on_every_backend!(radius_migrations_go_down_and_up_again);

/// Rows written the way FreeRADIUS's `queries.conf` writes them (timestamps
/// from `TO_TIMESTAMP`, `FROM_UNIXTIME` or plain Unix seconds on SQLite;
/// `'%S.%M'` text for post-auth) read back through the entities, with the
/// documented casts for PostgreSQL's `inet` columns.
async fn radius_entities_read_rows_as_freeradius_writes_them(backend: Backend) {
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    RadiusMigrator::up(&db.conn, None)
        .await
        .expect("migrations");
    let conn = &db.conn;

    let start = 1_795_852_800; // 2026-11-28 08:00:00 UTC
    let stop = start + 3_700;
    let at = |epoch: i64| -> String {
        match backend {
            Backend::Postgres => format!("TO_TIMESTAMP({epoch})"),
            Backend::MySql => format!("FROM_UNIXTIME({epoch})"),
            Backend::Sqlite => epoch.to_string(),
        }
    };
    let utc = |epoch: i64| -> DateTime<Utc> { Utc.timestamp_opt(epoch, 0).unwrap() };

    exec(
        conn,
        &format!(
            "INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress, \
             nasportid, nasporttype, acctstarttime, acctupdatetime, acctstoptime, \
             acctsessiontime, acctauthentic, connectinfo_start, acctinputoctets, \
             acctoutputoctets, calledstationid, callingstationid, acctterminatecause, \
             servicetype, framedprotocol, framedipaddress, framedipv6address, \
             framedipv6prefix, framedinterfaceid, delegatedipv6prefix, class) \
             VALUES ('8100001f', 'c0ffee0123456789', 'alice', '', '192.0.2.1', \
             'ether1', 'Ethernet', {s}, {u}, {e}, 3700, 'RADIUS', '', \
             {octets_in}, 4096, 'pppoe-1', '02:00:00:00:00:01', 'User-Request', \
             'Framed-User', 'PPP', '100.64.0.7', '2001:db8::7', '2001:db8:0:1::/64', \
             '', '2001:db8:100::/56', 'plan-50')",
            s = at(start),
            u = at(stop),
            e = at(stop),
            octets_in = 5_000_000_000_i64,
        ),
    )
    .await;
    exec(
        conn,
        &format!(
            "INSERT INTO nasreload (nasipaddress, reloadtime) VALUES ('192.0.2.1', {})",
            at(start)
        ),
    )
    .await;
    // FreeRADIUS's '%S.%M': local date and time, then microseconds.
    let authdate = format!("{}.250000", utc(start).format("%Y-%m-%d %H:%M:%S"));
    exec(
        conn,
        &format!(
            "INSERT INTO radpostauth (username, pass, reply, authdate, class) \
             VALUES ('alice', '', 'Access-Accept', '{authdate}', 'plan-50')"
        ),
    )
    .await;

    let session = read_one::<radacct::Entity>(
        backend,
        conn,
        &[
            "nasipaddress",
            "framedipaddress",
            "framedipv6address",
            "framedipv6prefix",
            "delegatedipv6prefix",
        ],
    )
    .await
    .expect("read radacct")
    .expect("one session");
    assert_eq!(session.acctuniqueid, "c0ffee0123456789");
    assert_eq!(session.username.as_deref(), Some("alice"));
    assert_eq!(session.nasipaddress, "192.0.2.1");
    assert_eq!(session.acctstarttime, Some(utc(start).into()));
    assert_eq!(session.acctstoptime, Some(utc(stop).into()));
    assert_eq!(session.acctsessiontime, Some(radacct::SessionTime(3700)));
    assert_eq!(session.acctinputoctets, Some(5_000_000_000));
    assert_eq!(session.acctinterval, None);
    assert_eq!(session.framedipaddress.as_deref(), Some("100.64.0.7"));
    assert_eq!(
        session.framedipv6prefix.as_deref(),
        Some("2001:db8:0:1::/64")
    );
    assert_eq!(
        session.delegatedipv6prefix.as_deref(),
        Some("2001:db8:100::/56")
    );
    assert_eq!(session.class.as_deref(), Some("plan-50"));

    let reload = read_one::<nasreload::Entity>(backend, conn, &["nasipaddress"])
        .await
        .expect("read nasreload")
        .expect("one reload");
    assert_eq!(
        reload,
        nasreload::Model {
            nasipaddress: "192.0.2.1".to_owned(),
            reloadtime: utc(start).into(),
        }
    );

    let auth = radpostauth::Entity::find()
        .one(conn)
        .await
        .expect("read radpostauth")
        .expect("one post-auth row");
    assert_eq!(auth.reply.as_deref(), Some("Access-Accept"));
    assert_eq!(
        auth.authdate,
        utc(start) + chrono::Duration::milliseconds(250)
    );
}
crate::on_every_backend!(radius_entities_read_rows_as_freeradius_writes_them);

/// The first row of `E`'s table; on PostgreSQL its `inet` columns are read
/// as text.
async fn read_one<E>(
    backend: Backend,
    conn: &DatabaseConnection,
    inet: &[&str],
) -> Result<Option<E::Model>, sea_orm::DbErr>
where
    E: EntityTrait,
    E::Column: Iterable,
{
    match backend {
        Backend::Postgres => {
            E::find()
                .from_raw_sql(Statement::from_string(
                    conn.get_database_backend(),
                    select_with_inet_as_text(
                        E::default().table_name(),
                        E::Column::iter().map(|c| c.as_str().to_owned()),
                        inet,
                    ),
                ))
                .one(conn)
                .await
        }
        Backend::MySql | Backend::Sqlite => E::find().one(conn).await,
    }
}

/// `SELECT` of every column, with PostgreSQL `inet` columns printed as text.
fn select_with_inet_as_text(
    table: &str,
    columns: impl Iterator<Item = String>,
    inet: &[&str],
) -> String {
    let list: Vec<String> = columns
        .map(|c| {
            if inet.contains(&c.as_str()) {
                format!("abbrev({c}) AS {c}")
            } else {
                c
            }
        })
        .collect();
    format!("SELECT {} FROM {table}", list.join(", "))
}

// ---------------------------------------------------------------------------
// Loading FreeRADIUS's schema.sql

fn freeradius_schema_path(backend: Backend) -> PathBuf {
    let dir = match backend {
        Backend::Postgres => "postgresql",
        Backend::MySql => "mysql",
        Backend::Sqlite => "sqlite",
    };
    PathBuf::from(FREERADIUS_SQL_DIR)
        .join(dir)
        .join("schema.sql")
}

async fn load_freeradius_schema(backend: Backend, conn: &DatabaseConnection) {
    let path = freeradius_schema_path(backend);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read FreeRADIUS's schema {} ({e}). These tests compare our \
             migrations with it: install the `freeradius` package \
             (`apt-get install freeradius`; CI installs it).",
            path.display()
        )
    });
    let statements = sql_statements(&text, backend == Backend::MySql);
    assert!(
        !statements.is_empty(),
        "no statements in {}",
        path.display()
    );
    for statement in statements {
        conn.execute_unprepared(&statement)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}\nin:\n{statement}", path.display()));
    }
}

/// Splits an SQL script into statements, dropping `--` and `/* */`
/// comments (and `#` comments, MySQL's) outside quoted strings and names.
fn sql_statements(script: &str, hash_comments: bool) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                current.push(c);
                // A doubled quote ends this literal and opens the next one,
                // which gives the same text.
                for inner in chars.by_ref() {
                    current.push(inner);
                    if inner == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        current.push('\n');
                        break;
                    }
                }
            }
            '#' if hash_comments => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        current.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for skipped in chars.by_ref() {
                    if previous == '*' && skipped == '/' {
                        break;
                    }
                    previous = skipped;
                }
                current.push(' ');
            }
            ';' => {
                let statement = current.trim();
                if !statement.is_empty() {
                    statements.push(statement.to_owned());
                }
                current.clear();
            }
            _ => current.push(c),
        }
    }
    let statement = current.trim();
    if !statement.is_empty() {
        statements.push(statement.to_owned());
    }
    statements
}

#[test]
fn the_schema_splitter_drops_comments_and_keeps_quoted_text() {
    let script = "/* head; */\n-- a; comment\nCREATE TABLE t (a text DEFAULT 'x;--y''z', \
                  b int); # mysql; comment\n\nCREATE INDEX i ON t (a) -- tail\n;\n";
    assert_eq!(
        sql_statements(script, true),
        vec![
            "CREATE TABLE t (a text DEFAULT 'x;--y''z', b int)".to_owned(),
            "CREATE INDEX i ON t (a)".to_owned(),
        ]
    );
    // Without MySQL's `#` comments, `#` is ordinary text.
    assert_eq!(
        sql_statements("SELECT 1 # 2; x", false),
        vec!["SELECT 1 # 2", "x"]
    );
}

// ---------------------------------------------------------------------------
// Introspection

#[derive(Debug, Default)]
struct Schema {
    tables: BTreeSet<String>,
    /// Keyed by `table.column`.
    columns: BTreeMap<String, Column>,
    /// Keyed by `table.index`.
    indexes: BTreeMap<String, Index>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    position: i64,
    /// The normalised type: integer, bigint, text, timestamp, inet, ...
    family: String,
    /// The type as the server reports it, e.g. `int(12) unsigned`,
    /// `character varying(2)`, `varchar(64)`, with MySQL's `extra`.
    declared: String,
    nullable: bool,
    default: Option<String>,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} [{}] {}",
            self.position,
            self.family,
            self.declared,
            if self.nullable { "NULL" } else { "NOT NULL" }
        )?;
        match &self.default {
            Some(default) => write!(f, " DEFAULT {default}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Index {
    /// In index order; MySQL prefix lengths as `username(32)`.
    columns: Vec<String>,
    unique: bool,
    /// Anything else the backend reports: primary key, partial-index
    /// predicate, SQLite's origin.
    detail: String,
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}) {}",
            if self.unique { "UNIQUE " } else { "" },
            self.columns.join(", "),
            self.detail
        )
    }
}

/// The type family FreeRADIUS's queries care about.
fn type_family(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    let t = t.trim();
    if t.starts_with("bigint") || t.starts_with("bigserial") || t == "int8" {
        "bigint"
    } else if t.starts_with("int")
        || t.starts_with("serial")
        || t.starts_with("smallint")
        || t.starts_with("mediumint")
        || t.starts_with("tinyint")
    {
        "integer"
    } else if t.starts_with("varchar")
        || t.starts_with("character")
        || t.starts_with("char")
        || t.starts_with("text")
        || t.starts_with("bpchar")
    {
        "text"
    } else if t.starts_with("timestamp") || t.starts_with("datetime") {
        "timestamp"
    } else if t.starts_with("inet") {
        "inet"
    } else {
        return t.to_owned();
    }
    .to_owned()
}

fn get<T: TryGetable>(row: &QueryResult, column: &str) -> T {
    row.try_get("", column)
        .unwrap_or_else(|e| panic!("reading {column} of an introspection row: {e}"))
}

/// `table.name`, the name read from the row's column `name_column`.
fn qualified(row: &QueryResult, name_column: &str) -> String {
    format!(
        "{}.{}",
        get::<String>(row, "table_name"),
        get::<String>(row, name_column)
    )
}

/// A column read from an introspection row, with its type already read.
fn column(row: &QueryResult, family: String, declared: String) -> Column {
    Column {
        position: get(row, "position"),
        family,
        declared,
        nullable: get::<String>(row, "is_nullable") == "YES",
        default: get(row, "column_default"),
    }
}

async fn query(conn: &DatabaseConnection, sql: &str) -> Vec<QueryResult> {
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{e}\nin:\n{sql}"))
}

async fn exec(conn: &DatabaseConnection, sql: &str) {
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}\nin:\n{sql}"));
}

async fn assert_no_radius_tables(backend: Backend, conn: &DatabaseConnection, what: &str) {
    let present: Vec<String> = Schema::tables(backend, conn)
        .await
        .into_iter()
        .filter(|t| RADIUS_TABLES.contains(&t.as_str()))
        .collect();
    assert!(
        present.is_empty(),
        "{what} already has RADIUS tables: {present:?}"
    );
}

impl Schema {
    async fn read(backend: Backend, conn: &DatabaseConnection) -> Schema {
        let mut schema = Schema {
            tables: Self::tables(backend, conn).await,
            ..Schema::default()
        };
        match backend {
            Backend::Postgres => schema.read_postgres(conn).await,
            Backend::MySql => schema.read_mysql(conn).await,
            Backend::Sqlite => schema.read_sqlite(conn).await,
        }
        schema
    }

    async fn tables(backend: Backend, conn: &DatabaseConnection) -> BTreeSet<String> {
        let sql = match backend {
            Backend::Postgres => {
                "SELECT table_name::text AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            }
            Backend::MySql => {
                "SELECT CAST(table_name AS CHAR) AS name FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
            }
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master \
                 WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            }
        };
        query(conn, sql)
            .await
            .iter()
            .map(|row| get::<String>(row, "name"))
            .collect()
    }

    fn forget_table(&mut self, table: &str) {
        let prefix = format!("{table}.");
        self.tables.remove(table);
        self.columns.retain(|key, _| !key.starts_with(&prefix));
        self.indexes.retain(|key, _| !key.starts_with(&prefix));
    }

    async fn read_postgres(&mut self, conn: &DatabaseConnection) {
        let columns = query(
            conn,
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                    ordinal_position::int8 AS position, data_type::text AS data_type, \
                    character_maximum_length::int8 AS max_length, \
                    is_nullable::text AS is_nullable, column_default::text AS column_default \
             FROM information_schema.columns WHERE table_schema = current_schema()",
        )
        .await;
        for row in &columns {
            let data_type: String = get(row, "data_type");
            let declared = match get::<Option<i64>>(row, "max_length") {
                Some(length) => format!("{data_type}({length})"),
                None => data_type,
            };
            self.columns.insert(
                qualified(row, "column_name"),
                column(row, type_family(&declared), declared),
            );
        }
        let indexes = query(
            conn,
            "SELECT t.relname::text AS table_name, i.relname::text AS index_name, \
                    ix.indisunique AS is_unique, ix.indisprimary AS is_primary, \
                    pg_get_expr(ix.indpred, ix.indrelid) AS predicate, \
                    am.amname::text AS method, \
                    (SELECT string_agg(pg_get_indexdef(ix.indexrelid, k, true), ',' ORDER BY k) \
                       FROM generate_series(1, ix.indnkeyatts::int) AS k) AS columns \
             FROM pg_index ix \
             JOIN pg_class i ON i.oid = ix.indexrelid \
             JOIN pg_class t ON t.oid = ix.indrelid \
             JOIN pg_am am ON am.oid = i.relam \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = current_schema()",
        )
        .await;
        for row in &indexes {
            let mut detail = vec![get::<String>(row, "method")];
            if get::<bool>(row, "is_primary") {
                detail.push("PRIMARY KEY".to_owned());
            }
            if let Some(predicate) = get::<Option<String>>(row, "predicate") {
                detail.push(format!("WHERE {predicate}"));
            }
            self.indexes.insert(
                qualified(row, "index_name"),
                Index {
                    columns: get::<String>(row, "columns")
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                    unique: get(row, "is_unique"),
                    detail: detail.join(" "),
                },
            );
        }
    }

    async fn read_mysql(&mut self, conn: &DatabaseConnection) {
        let columns = query(
            conn,
            "SELECT CAST(table_name AS CHAR) AS table_name, \
                    CAST(column_name AS CHAR) AS column_name, \
                    CAST(ordinal_position AS SIGNED) AS position, \
                    CAST(column_type AS CHAR) AS column_type, \
                    CAST(extra AS CHAR) AS extra, \
                    CAST(is_nullable AS CHAR) AS is_nullable, \
                    CAST(column_default AS CHAR) AS column_default \
             FROM information_schema.columns WHERE table_schema = DATABASE()",
        )
        .await;
        for row in &columns {
            let column_type: String = get(row, "column_type");
            let extra: String = get(row, "extra");
            let declared = format!("{column_type} {extra}").trim().to_owned();
            self.columns.insert(
                qualified(row, "column_name"),
                column(row, type_family(&column_type), declared),
            );
        }
        let index_columns = query(
            conn,
            "SELECT CAST(table_name AS CHAR) AS table_name, \
                    CAST(index_name AS CHAR) AS index_name, \
                    CAST(non_unique AS SIGNED) AS non_unique, \
                    CAST(column_name AS CHAR) AS column_name, \
                    CAST(sub_part AS SIGNED) AS sub_part, \
                    CAST(index_type AS CHAR) AS index_type \
             FROM information_schema.statistics WHERE table_schema = DATABASE() \
             ORDER BY table_name, index_name, seq_in_index",
        )
        .await;
        for row in &index_columns {
            let column: String = get(row, "column_name");
            let column = match get::<Option<i64>>(row, "sub_part") {
                Some(prefix) => format!("{column}({prefix})"),
                None => column,
            };
            let index = self
                .indexes
                .entry(qualified(row, "index_name"))
                .or_insert_with(|| Index {
                    columns: Vec::new(),
                    unique: get::<i64>(row, "non_unique") == 0,
                    detail: get(row, "index_type"),
                });
            index.columns.push(column);
        }
    }

    async fn read_sqlite(&mut self, conn: &DatabaseConnection) {
        let columns = query(
            conn,
            "SELECT m.name AS table_name, p.name AS column_name, p.cid AS position, \
                    p.type AS declared, p.\"notnull\" AS not_null, \
                    p.dflt_value AS column_default, p.pk AS pk \
             FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p \
             WHERE m.type = 'table'",
        )
        .await;
        for row in &columns {
            let declared: String = get(row, "declared");
            let pk: i64 = get(row, "pk");
            self.columns.insert(
                qualified(row, "column_name"),
                Column {
                    position: get(row, "position"),
                    family: type_family(&declared),
                    declared: if pk > 0 {
                        format!("{declared} PRIMARY KEY #{pk}")
                    } else {
                        declared
                    },
                    nullable: get::<i64>(row, "not_null") == 0,
                    default: get(row, "column_default"),
                },
            );
        }
        let index_columns = query(
            conn,
            "SELECT m.name AS table_name, il.name AS index_name, il.\"unique\" AS is_unique, \
                    il.origin AS origin, il.partial AS partial, ii.name AS column_name \
             FROM sqlite_master AS m \
             JOIN pragma_index_list(m.name) AS il \
             JOIN pragma_index_info(il.name) AS ii \
             WHERE m.type = 'table' \
             ORDER BY m.name, il.name, ii.seqno",
        )
        .await;
        for row in &index_columns {
            let index = self
                .indexes
                .entry(qualified(row, "index_name"))
                .or_insert_with(|| Index {
                    columns: Vec::new(),
                    unique: get::<i64>(row, "is_unique") != 0,
                    detail: format!(
                        "origin={}{}",
                        get::<String>(row, "origin"),
                        if get::<i64>(row, "partial") != 0 {
                            " partial"
                        } else {
                            ""
                        }
                    ),
                });
            index
                .columns
                .push(get::<Option<String>>(row, "column_name").unwrap_or_else(|| "<expr>".into()));
        }
    }

    /// One line per difference, `theirs` being FreeRADIUS's.
    fn differences_from(&self, ours: &Schema) -> Vec<String> {
        let mut lines = Vec::new();
        for table in self.tables.difference(&ours.tables) {
            lines.push(format!("  missing table {table}"));
        }
        for table in ours.tables.difference(&self.tables) {
            lines.push(format!("  extra table {table}"));
        }
        diff_maps("column", &self.columns, &ours.columns, &mut lines);
        diff_maps("index", &self.indexes, &ours.indexes, &mut lines);
        lines
    }
}

fn diff_maps<T: PartialEq + fmt::Display>(
    what: &str,
    theirs: &BTreeMap<String, T>,
    ours: &BTreeMap<String, T>,
    lines: &mut Vec<String>,
) {
    let keys: BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for key in keys {
        match (theirs.get(key), ours.get(key)) {
            (Some(t), None) => lines.push(format!("  missing {what} {key}: {t}")),
            (None, Some(o)) => lines.push(format!("  extra {what} {key}: {o}")),
            (Some(t), Some(o)) if t != o => lines.push(format!(
                "  {what} {key} differs\n      theirs: {t}\n      ours:   {o}"
            )),
            _ => {}
        }
    }
}
