//! Subnets: the CIDRs inside a pool that addresses are allocated from, with
//! their gateway, DNS and reservation. The rules are in [`service`]; [`html`]
//! and [`api`] are the two surfaces over them.

pub mod api;
pub mod html;
pub mod service;
