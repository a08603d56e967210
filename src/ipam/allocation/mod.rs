//! Allocating and releasing addresses, and the list of allocations. The
//! rules (subnet lock, lowest free address, history rows) are in
//! [`service`]; [`html`] and [`api`] are the two surfaces over them.

pub mod api;
pub mod html;
pub mod service;
