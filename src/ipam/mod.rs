//! IP address management: pools, subnets, allocations and their history.

pub mod api;
pub mod domain;
pub mod entities;
pub mod history;
pub mod html;
pub mod key;
pub mod service;
