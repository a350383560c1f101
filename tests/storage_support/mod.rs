//! Shared parts of the storage tests: the conformance suite, the fault proxy and suite, and
//! one harness per storage server (each started on loopback by the test itself; a server that
//! cannot start fails the test loudly).
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod azurite;
pub mod conformance;
pub mod fake_gcs;
pub mod faults;
pub mod moto;
pub mod sshd;
