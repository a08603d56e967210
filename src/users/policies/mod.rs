//! Service policies: what a suspended or expired subscriber gets (a
//! refusal, a walled garden, a throttled rate), each from its own RADIUS
//! group. The rules are in [`service`]; [`api`] is the surface over them.

pub mod api;
pub mod service;
