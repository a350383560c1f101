//! The render service behind `tessera serve`: the life of a job, the store that keeps jobs
//! and their events across restarts, the scheduler and runner, webhooks, metrics and the
//! node's configuration. (The gRPC front is `api/`.)

pub mod config;
pub mod events;
pub mod fetch;
pub mod http;
pub mod metrics;
pub mod publish;
pub mod runner;
pub mod scheduler;
pub mod state;
pub mod store;
mod store_events;
pub mod webhook;

#[cfg(test)]
mod store_tests;
