//! Network-wide checks: is every router, database and Redis answering?

pub mod entities;
pub mod health;
