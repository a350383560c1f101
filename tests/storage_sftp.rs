//! Storage tests for the sftp backend (being written).

mod storage_support;
