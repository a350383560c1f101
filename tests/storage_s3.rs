//! Storage tests for the s3 backend (being written).

mod storage_support;
