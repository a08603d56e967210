//! ispd: network services for Internet service providers.

pub mod access;
pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod dashboard;
pub mod db;
pub mod enforcement;
pub mod error;
pub mod ipam;
pub mod jobs;
pub mod keys;
pub mod mikrotik;
pub mod network;
pub mod query;
pub mod quotas;
pub mod radius;
pub mod seed;
pub mod staff;
pub mod telemetry;
pub mod text;
pub mod users;
pub mod web;
pub mod webhooks;
