//! IP address management: pools, subnets, allocations and their history.

pub mod allocation;
pub mod api;
pub mod domain;
pub mod entities;
pub mod free_ranges;
pub mod history;
pub mod html;
pub mod key;
pub mod pools;
pub mod reports;
pub mod service;
pub mod subnets;
