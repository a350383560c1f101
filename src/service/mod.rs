//! The render service's core: the life of a job and the store that keeps jobs across
//! restarts. (The gRPC front, scheduler and events build on these.)

pub mod state;
pub mod store;

#[cfg(test)]
mod store_tests;
