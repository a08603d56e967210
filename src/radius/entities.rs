//! sea-orm entities for the FreeRADIUS tables (see
//! `migration/src/radius/m20261128_000001_freeradius_schema.rs`).
//!
//! FreeRADIUS's schema is not the same on every backend, and these entities
//! are written to work on all three:
//!
//! - **Columns** are those present on every backend. PostgreSQL's
//!   `radpostauth` has two more (`calledstationid`, `callingstationid`);
//!   they are left out so that a `SELECT` through the entity works
//!   everywhere, and an insert leaves them NULL.
//! - **Nullability**: a field is `Option` when the column is nullable on any
//!   backend (PostgreSQL allows NULL in many columns that MySQL and SQLite
//!   declare `NOT NULL DEFAULT ''`).
//! - **Integers**: the Rust type is one that sqlx decodes from every
//!   backend's column type. The `id` of radcheck, radreply, radgroupcheck,
//!   radgroupreply and radusergroup is `int unsigned` on MySQL and `serial`
//!   on PostgreSQL, so it is `u32` (sea-orm reads a PostgreSQL `int4` into
//!   `u32`; sqlx refuses to read an unsigned MySQL column into `i32`/`i64`).
//!   `radacct.acctsessiontime` (`bigint` / `int unsigned` / `int`) has its own
//!   type, [`radacct::SessionTime`].
//! - **Timestamps** are [`DateTimeWithTimeZone`](sea_orm::prelude::DateTimeWithTimeZone),
//!   which decodes from all three: PostgreSQL `timestamptz`; MySQL `datetime`
//!   and `timestamp`; SQLite text (`2026-11-28 10:00:00.123`) and integers
//!   (FreeRADIUS's SQLite queries store Unix seconds). MySQL `datetime` and
//!   SQLite text carry no zone and are read as UTC: FreeRADIUS writes them in
//!   the local time of its own database session or host, so run those in UTC
//!   (sqlx already sets the MySQL session time zone to `+00:00`).
//!   FreeRADIUS writes these columns and ispd only reads them; on SQLite
//!   writing a timestamp through an entity would store text, where
//!   FreeRADIUS's own queries store and compute with integers.
//! - **Addresses**: PostgreSQL declares the address columns `inet`, which
//!   sqlx does not decode into `String`; see [`radacct`] and [`nasreload`].

pub mod nas;
pub mod nasreload;
pub mod radacct;
pub mod radcheck;
pub mod radgroupcheck;
pub mod radgroupreply;
pub mod radpostauth;
pub mod radreply;
pub mod radusergroup;
