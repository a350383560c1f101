//! Storage tests for the gcs backend (being written).

mod storage_support;
