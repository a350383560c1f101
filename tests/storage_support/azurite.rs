//! The azurite harness (being written).
