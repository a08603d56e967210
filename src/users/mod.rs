//! Network users (subscribers) and service packages.

pub mod api;
pub mod domain;
pub mod entities;
pub mod html;
pub mod packages;
pub mod policies;
pub mod provision;
pub mod quota;
#[cfg(test)]
pub(crate) mod samples;
pub mod service;
pub mod state;
pub mod subscribers;
