//! Schema migrations for ispd's two databases.
//!
//! The main database and the RADIUS database are migrated by separate
//! migrators, because FreeRADIUS reads the RADIUS tables over its own
//! connection and the two may live on different servers.

pub use sea_orm_migration::prelude::*;

mod main_db;
mod radius;

pub use main_db::Migrator;
pub use radius::RadiusMigrator;
