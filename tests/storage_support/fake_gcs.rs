//! The fake_gcs harness (being written).
