//! IP address management: pools, subnets, allocations and their history.

pub mod entities;
pub mod key;
