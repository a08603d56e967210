//! The FreeRADIUS 3.2 SQL schema, on each backend exactly as FreeRADIUS
//! itself creates it (`mods-config/sql/main/<backend>/schema.sql` of
//! FreeRADIUS 3.2.1): the same tables, columns, types, nullability,
//! defaults and index names. FreeRADIUS's queries depend on all of these, so
//! nothing here is "improved"; even the misspelt PostgreSQL index name
//! `radacct_calss_idx` is kept.
//!
//! The three schemas differ from each other, as FreeRADIUS's do: PostgreSQL
//! stores addresses as `inet` and timestamps with a time zone and has a few
//! partial indexes; MySQL and SQLite use `varchar` and `datetime`, with
//! `NOT NULL DEFAULT ''` where PostgreSQL allows NULL. PostgreSQL folds the
//! unquoted mixed-case names of FreeRADIUS's file to lower case, which is
//! what is written here.
//!
//! The tables are created with a plain `CREATE TABLE` (FreeRADIUS writes
//! `IF NOT EXISTS`): a database that already holds RADIUS tables, perhaps
//! from an older FreeRADIUS with other columns, makes the migration fail
//! instead of being silently adopted, and `down()` never drops tables this
//! migration did not create.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every table, in creation order; `down()` drops them in reverse.
const TABLES: [&str; 9] = [
    "radacct",
    "radcheck",
    "radgroupcheck",
    "radgroupreply",
    "radreply",
    "radusergroup",
    "radpostauth",
    "nas",
    "nasreload",
];

const POSTGRES: &[&str] = &[
    r#"CREATE TABLE radacct (
        radacctid           bigserial PRIMARY KEY,
        acctsessionid       text NOT NULL,
        acctuniqueid        text NOT NULL UNIQUE,
        username            text,
        realm               text,
        nasipaddress        inet NOT NULL,
        nasportid           text,
        nasporttype         text,
        acctstarttime       timestamp with time zone,
        acctupdatetime      timestamp with time zone,
        acctstoptime        timestamp with time zone,
        acctinterval        bigint,
        acctsessiontime     bigint,
        acctauthentic       text,
        connectinfo_start   text,
        connectinfo_stop    text,
        acctinputoctets     bigint,
        acctoutputoctets    bigint,
        calledstationid     text,
        callingstationid    text,
        acctterminatecause  text,
        servicetype         text,
        framedprotocol      text,
        framedipaddress     inet,
        framedipv6address   inet,
        framedipv6prefix    inet,
        framedinterfaceid   text,
        delegatedipv6prefix inet,
        class               text
    )"#,
    // Used by FreeRADIUS's interim-update, stop and simultaneous-use queries.
    "CREATE INDEX radacct_active_session_idx ON radacct (acctuniqueid) WHERE acctstoptime IS NULL",
    // Used by the Accounting-On/Off bulk close.
    "CREATE INDEX radacct_bulk_close ON radacct (nasipaddress, acctstarttime) WHERE acctstoptime IS NULL",
    "CREATE INDEX radacct_start_user_idx ON radacct (acctstarttime, username)",
    // The misspelling is FreeRADIUS's; the name must match theirs.
    "CREATE INDEX radacct_calss_idx ON radacct (class)",
    r#"CREATE TABLE radcheck (
        id        serial PRIMARY KEY,
        username  text NOT NULL DEFAULT '',
        attribute text NOT NULL DEFAULT '',
        op        varchar(2) NOT NULL DEFAULT '==',
        value     text NOT NULL DEFAULT ''
    )"#,
    "CREATE INDEX radcheck_username ON radcheck (username, attribute)",
    r#"CREATE TABLE radgroupcheck (
        id        serial PRIMARY KEY,
        groupname text NOT NULL DEFAULT '',
        attribute text NOT NULL DEFAULT '',
        op        varchar(2) NOT NULL DEFAULT '==',
        value     text NOT NULL DEFAULT ''
    )"#,
    "CREATE INDEX radgroupcheck_groupname ON radgroupcheck (groupname, attribute)",
    r#"CREATE TABLE radgroupreply (
        id        serial PRIMARY KEY,
        groupname text NOT NULL DEFAULT '',
        attribute text NOT NULL DEFAULT '',
        op        varchar(2) NOT NULL DEFAULT '=',
        value     text NOT NULL DEFAULT ''
    )"#,
    "CREATE INDEX radgroupreply_groupname ON radgroupreply (groupname, attribute)",
    r#"CREATE TABLE radreply (
        id        serial PRIMARY KEY,
        username  text NOT NULL DEFAULT '',
        attribute text NOT NULL DEFAULT '',
        op        varchar(2) NOT NULL DEFAULT '=',
        value     text NOT NULL DEFAULT ''
    )"#,
    "CREATE INDEX radreply_username ON radreply (username, attribute)",
    r#"CREATE TABLE radusergroup (
        id        serial PRIMARY KEY,
        username  text NOT NULL DEFAULT '',
        groupname text NOT NULL DEFAULT '',
        priority  integer NOT NULL DEFAULT 0
    )"#,
    "CREATE INDEX radusergroup_username ON radusergroup (username)",
    r#"CREATE TABLE radpostauth (
        id               bigserial PRIMARY KEY,
        username         text NOT NULL,
        pass             text,
        reply            text,
        calledstationid  text,
        callingstationid text,
        authdate         timestamp with time zone NOT NULL DEFAULT now(),
        class            text
    )"#,
    "CREATE INDEX radpostauth_username_idx ON radpostauth (username)",
    "CREATE INDEX radpostauth_class_idx ON radpostauth (class)",
    r#"CREATE TABLE nas (
        id          serial PRIMARY KEY,
        nasname     text NOT NULL,
        shortname   text NOT NULL,
        type        text NOT NULL DEFAULT 'other',
        ports       integer,
        secret      text NOT NULL,
        server      text,
        community   text,
        description text
    )"#,
    "CREATE INDEX nas_nasname ON nas (nasname)",
    r#"CREATE TABLE nasreload (
        nasipaddress inet PRIMARY KEY,
        reloadtime   timestamp with time zone NOT NULL
    )"#,
];

/// MySQL and MariaDB. The column types keep FreeRADIUS's display widths
/// (`int(12)`), and the tables FreeRADIUS creates without an engine clause
/// stay without one, so each table matches theirs on any server.
const MYSQL: &[&str] = &[
    r#"CREATE TABLE radacct (
        radacctid           bigint(21) NOT NULL AUTO_INCREMENT,
        acctsessionid       varchar(64) NOT NULL DEFAULT '',
        acctuniqueid        varchar(32) NOT NULL DEFAULT '',
        username            varchar(64) NOT NULL DEFAULT '',
        realm               varchar(64) DEFAULT '',
        nasipaddress        varchar(15) NOT NULL DEFAULT '',
        nasportid           varchar(32) DEFAULT NULL,
        nasporttype         varchar(32) DEFAULT NULL,
        acctstarttime       datetime NULL DEFAULT NULL,
        acctupdatetime      datetime NULL DEFAULT NULL,
        acctstoptime        datetime NULL DEFAULT NULL,
        acctinterval        int(12) DEFAULT NULL,
        acctsessiontime     int(12) unsigned DEFAULT NULL,
        acctauthentic       varchar(32) DEFAULT NULL,
        connectinfo_start   varchar(128) DEFAULT NULL,
        connectinfo_stop    varchar(128) DEFAULT NULL,
        acctinputoctets     bigint(20) DEFAULT NULL,
        acctoutputoctets    bigint(20) DEFAULT NULL,
        calledstationid     varchar(50) NOT NULL DEFAULT '',
        callingstationid    varchar(50) NOT NULL DEFAULT '',
        acctterminatecause  varchar(32) NOT NULL DEFAULT '',
        servicetype         varchar(32) DEFAULT NULL,
        framedprotocol      varchar(32) DEFAULT NULL,
        framedipaddress     varchar(15) NOT NULL DEFAULT '',
        framedipv6address   varchar(45) NOT NULL DEFAULT '',
        framedipv6prefix    varchar(45) NOT NULL DEFAULT '',
        framedinterfaceid   varchar(44) NOT NULL DEFAULT '',
        delegatedipv6prefix varchar(45) NOT NULL DEFAULT '',
        class               varchar(64) DEFAULT NULL,
        PRIMARY KEY (radacctid),
        UNIQUE KEY acctuniqueid (acctuniqueid),
        KEY username (username),
        KEY framedipaddress (framedipaddress),
        KEY framedipv6address (framedipv6address),
        KEY framedipv6prefix (framedipv6prefix),
        KEY framedinterfaceid (framedinterfaceid),
        KEY delegatedipv6prefix (delegatedipv6prefix),
        KEY acctsessionid (acctsessionid),
        KEY acctsessiontime (acctsessiontime),
        KEY acctstarttime (acctstarttime),
        KEY acctinterval (acctinterval),
        KEY acctstoptime (acctstoptime),
        KEY nasipaddress (nasipaddress),
        KEY class (class)
    ) ENGINE = InnoDB"#,
    r#"CREATE TABLE radcheck (
        id        int(11) unsigned NOT NULL AUTO_INCREMENT,
        username  varchar(64) NOT NULL DEFAULT '',
        attribute varchar(64) NOT NULL DEFAULT '',
        op        char(2) NOT NULL DEFAULT '==',
        value     varchar(253) NOT NULL DEFAULT '',
        PRIMARY KEY (id),
        KEY username (username(32))
    )"#,
    r#"CREATE TABLE radgroupcheck (
        id        int(11) unsigned NOT NULL AUTO_INCREMENT,
        groupname varchar(64) NOT NULL DEFAULT '',
        attribute varchar(64) NOT NULL DEFAULT '',
        op        char(2) NOT NULL DEFAULT '==',
        value     varchar(253) NOT NULL DEFAULT '',
        PRIMARY KEY (id),
        KEY groupname (groupname(32))
    )"#,
    r#"CREATE TABLE radgroupreply (
        id        int(11) unsigned NOT NULL AUTO_INCREMENT,
        groupname varchar(64) NOT NULL DEFAULT '',
        attribute varchar(64) NOT NULL DEFAULT '',
        op        char(2) NOT NULL DEFAULT '=',
        value     varchar(253) NOT NULL DEFAULT '',
        PRIMARY KEY (id),
        KEY groupname (groupname(32))
    )"#,
    r#"CREATE TABLE radreply (
        id        int(11) unsigned NOT NULL AUTO_INCREMENT,
        username  varchar(64) NOT NULL DEFAULT '',
        attribute varchar(64) NOT NULL DEFAULT '',
        op        char(2) NOT NULL DEFAULT '=',
        value     varchar(253) NOT NULL DEFAULT '',
        PRIMARY KEY (id),
        KEY username (username(32))
    )"#,
    r#"CREATE TABLE radusergroup (
        id        int(11) unsigned NOT NULL AUTO_INCREMENT,
        username  varchar(64) NOT NULL DEFAULT '',
        groupname varchar(64) NOT NULL DEFAULT '',
        priority  int(11) NOT NULL DEFAULT '1',
        PRIMARY KEY (id),
        KEY username (username(32))
    )"#,
    r#"CREATE TABLE radpostauth (
        id       int(11) NOT NULL AUTO_INCREMENT,
        username varchar(64) NOT NULL DEFAULT '',
        pass     varchar(64) NOT NULL DEFAULT '',
        reply    varchar(32) NOT NULL DEFAULT '',
        authdate timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
        class    varchar(64) DEFAULT NULL,
        PRIMARY KEY (id),
        KEY username (username),
        KEY class (class)
    ) ENGINE = InnoDB"#,
    r#"CREATE TABLE nas (
        id          int(10) NOT NULL AUTO_INCREMENT,
        nasname     varchar(128) NOT NULL,
        shortname   varchar(32),
        type        varchar(30) DEFAULT 'other',
        ports       int(5),
        secret      varchar(60) NOT NULL DEFAULT 'secret',
        server      varchar(64),
        community   varchar(50),
        description varchar(200) DEFAULT 'RADIUS Client',
        PRIMARY KEY (id),
        KEY nasname (nasname)
    ) ENGINE = InnoDB"#,
    r#"CREATE TABLE nasreload (
        nasipaddress varchar(15) NOT NULL,
        reloadtime   datetime NOT NULL,
        PRIMARY KEY (nasipaddress)
    ) ENGINE = InnoDB"#,
];

/// SQLite. `PRAGMA table_info` reports declared types and default
/// expressions as written, so they are spelt as FreeRADIUS spells them.
const SQLITE: &[&str] = &[
    r#"CREATE TABLE radacct (
        radacctid           INTEGER PRIMARY KEY AUTOINCREMENT,
        acctsessionid       varchar(64) NOT NULL default '',
        acctuniqueid        varchar(32) NOT NULL default '',
        username            varchar(64) NOT NULL default '',
        realm               varchar(64) default '',
        nasipaddress        varchar(15) NOT NULL default '',
        nasportid           varchar(32) default NULL,
        nasporttype         varchar(32) default NULL,
        acctstarttime       datetime NULL default NULL,
        acctupdatetime      datetime NULL default NULL,
        acctstoptime        datetime NULL default NULL,
        acctinterval        int(12) default NULL,
        acctsessiontime     int(12) default NULL,
        acctauthentic       varchar(32) default NULL,
        connectinfo_start   varchar(128) default NULL,
        connectinfo_stop    varchar(128) default NULL,
        acctinputoctets     bigint(20) default NULL,
        acctoutputoctets    bigint(20) default NULL,
        calledstationid     varchar(50) NOT NULL default '',
        callingstationid    varchar(50) NOT NULL default '',
        acctterminatecause  varchar(32) NOT NULL default '',
        servicetype         varchar(32) default NULL,
        framedprotocol      varchar(32) default NULL,
        framedipaddress     varchar(15) NOT NULL default '',
        framedipv6address   varchar(45) NOT NULL default '',
        framedipv6prefix    varchar(45) NOT NULL default '',
        framedinterfaceid   varchar(44) NOT NULL default '',
        delegatedipv6prefix varchar(45) NOT NULL default '',
        class               varchar(64) default NULL
    )"#,
    "CREATE UNIQUE INDEX acctuniqueid ON radacct (acctuniqueid)",
    "CREATE INDEX username ON radacct (username)",
    "CREATE INDEX framedipaddress ON radacct (framedipaddress)",
    "CREATE INDEX framedipv6address ON radacct (framedipv6address)",
    "CREATE INDEX framedipv6prefix ON radacct (framedipv6prefix)",
    "CREATE INDEX framedinterfaceid ON radacct (framedinterfaceid)",
    "CREATE INDEX delegatedipv6prefix ON radacct (delegatedipv6prefix)",
    "CREATE INDEX acctsessionid ON radacct (acctsessionid)",
    "CREATE INDEX acctsessiontime ON radacct (acctsessiontime)",
    "CREATE INDEX acctstarttime ON radacct (acctstarttime)",
    "CREATE INDEX acctinterval ON radacct (acctinterval)",
    "CREATE INDEX acctstoptime ON radacct (acctstoptime)",
    "CREATE INDEX nasipaddress ON radacct (nasipaddress)",
    "CREATE INDEX class ON radacct (class)",
    r#"CREATE TABLE radcheck (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        username  varchar(64) NOT NULL default '',
        attribute varchar(64) NOT NULL default '',
        op        char(2) NOT NULL DEFAULT '==',
        value     varchar(253) NOT NULL default ''
    )"#,
    "CREATE INDEX check_username ON radcheck (username)",
    r#"CREATE TABLE radgroupcheck (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        groupname varchar(64) NOT NULL default '',
        attribute varchar(64) NOT NULL default '',
        op        char(2) NOT NULL DEFAULT '==',
        value     varchar(253) NOT NULL default ''
    )"#,
    "CREATE INDEX check_groupname ON radgroupcheck (groupname)",
    r#"CREATE TABLE radgroupreply (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        groupname varchar(64) NOT NULL default '',
        attribute varchar(64) NOT NULL default '',
        op        char(2) NOT NULL DEFAULT '=',
        value     varchar(253) NOT NULL default ''
    )"#,
    "CREATE INDEX reply_groupname ON radgroupreply (groupname)",
    r#"CREATE TABLE radreply (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        username  varchar(64) NOT NULL default '',
        attribute varchar(64) NOT NULL default '',
        op        char(2) NOT NULL DEFAULT '=',
        value     varchar(253) NOT NULL default ''
    )"#,
    "CREATE INDEX reply_username ON radreply (username)",
    r#"CREATE TABLE radusergroup (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        username  varchar(64) NOT NULL default '',
        groupname varchar(64) NOT NULL default '',
        priority  int(11) NOT NULL default '1'
    )"#,
    "CREATE INDEX usergroup_username ON radusergroup (username)",
    r#"CREATE TABLE radpostauth (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        username varchar(64) NOT NULL default '',
        pass     varchar(64) NOT NULL default '',
        reply    varchar(32) NOT NULL default '',
        authdate timestamp NOT NULL,
        class    varchar(64) default NULL
    )"#,
    "CREATE INDEX radpostauth_username ON radpostauth (username)",
    "CREATE INDEX radpostauth_class ON radpostauth (class)",
    r#"CREATE TABLE nas (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        nasname     varchar(128) NOT NULL,
        shortname   varchar(32),
        type        varchar(30) DEFAULT 'other',
        ports       int(5),
        secret      varchar(60) DEFAULT 'secret' NOT NULL,
        server      varchar(64),
        community   varchar(50),
        description varchar(200) DEFAULT 'RADIUS Client'
    )"#,
    "CREATE INDEX nasname ON nas (nasname)",
    r#"CREATE TABLE nasreload (
        nasipaddress varchar(15) PRIMARY KEY,
        reloadtime   datetime NOT NULL
    )"#,
];

fn statements(backend: DbBackend) -> Result<&'static [&'static str], DbErr> {
    match backend {
        DbBackend::Postgres => Ok(POSTGRES),
        DbBackend::MySql => Ok(MYSQL),
        DbBackend::Sqlite => Ok(SQLITE),
        #[allow(unreachable_patterns)]
        other => Err(DbErr::Migration(format!(
            "no FreeRADIUS schema for the {other:?} backend"
        ))),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in statements(manager.get_database_backend())? {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Checked only so that an unsupported backend fails the same way
        // in both directions.
        statements(manager.get_database_backend())?;
        let db = manager.get_connection();
        for table in TABLES.iter().rev() {
            db.execute_unprepared(&format!("DROP TABLE {table}"))
                .await?;
        }
        Ok(())
    }
}
