//! Service policies: what a suspended or expired subscriber gets (a
//! refusal, a walled garden, a throttled rate), each from its own RADIUS
//! group. The rules are in [`service`]; [`html`] and [`api`] are the two
//! surfaces over them.

pub mod api;
pub mod html;
pub mod service;
