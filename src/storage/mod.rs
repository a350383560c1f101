//! Where outputs go and where remote sources come from: publishing a finished file to its
//! destination (verified copy), fetching an http(s) source, and the HTTP client for both.

pub mod fetch;
pub mod http;
pub mod publish;
