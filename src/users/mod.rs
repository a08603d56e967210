//! Network users (subscribers) and service packages.

pub mod domain;
pub mod entities;
pub mod service;
