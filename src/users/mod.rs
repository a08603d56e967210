//! Network users (subscribers) and service packages.

pub mod entities;
