//! IP address management: pools, subnets, allocations and their history.

pub mod domain;
pub mod entities;
pub mod key;
pub mod service;
