//! Storage tests for the azure backend (being written).

mod storage_support;
