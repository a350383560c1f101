//! The moto harness (being written).
