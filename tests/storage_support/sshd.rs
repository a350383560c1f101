//! The sshd harness (being written).
