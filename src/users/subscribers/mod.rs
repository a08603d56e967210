//! Network users (subscribers): their credentials, package, address and
//! status, provisioned into RADIUS, IPAM and routers by
//! [`crate::users::provision`]. The rules are in [`service`]; [`html`] and
//! [`api`] are the two surfaces over them.

mod addresses;
pub mod api;
pub mod html;
mod input;
mod listing;
pub mod service;
pub mod status;
