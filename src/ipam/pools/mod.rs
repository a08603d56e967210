//! Pools: named ranges of address space (a CIDR, an IP version, a VLAN)
//! that subnets are carved from. The rules are in [`service`]; [`html`] and
//! [`api`] are the two surfaces over them.

pub mod api;
pub mod html;
pub mod service;
