//! The one map from a failure to what the caller is told. Each module's error enum says, by its
//! typed variants (never by matching message text), whose fault a failure is ([`Classify`]);
//! `tonic::Status` and a job's `Failure` are built from that here and nowhere else.

use crate::proto as pb;

/// Whose fault a failure is, and the code a job's failure carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller's: bad input (INVALID_ARGUMENT, CAUSE_BAD_INPUT).
    BadInput(&'static str),
    /// The caller named something that does not exist (NOT_FOUND).
    NotFound,
    /// The request is fine but the thing is not in a state that allows it (FAILED_PRECONDITION).
    Precondition,
    /// Ours, and passing: try again later (UNAVAILABLE).
    Unavailable(&'static str),
    /// Ours: a bug, the machine, the GPU, the encoder, the disk (INTERNAL, CAUSE_INTERNAL).
    Internal(&'static str),
}

impl Fault {
    /// True when the caller can fix it by changing the request.
    pub fn is_callers(self) -> bool {
        matches!(self, Fault::BadInput(_) | Fault::NotFound | Fault::Precondition)
    }

    /// The machine-readable code of a job's failure.
    pub fn code(self) -> &'static str {
        match self {
            Fault::BadInput(code) | Fault::Unavailable(code) | Fault::Internal(code) => code,
            Fault::NotFound => "not_found",
            Fault::Precondition => "failed_precondition",
        }
    }
}

/// An error that knows whose fault it is.
pub trait Classify: std::error::Error {
    fn fault(&self) -> Fault;
}

impl<T: Classify + ?Sized> Classify for &T {
    fn fault(&self) -> Fault {
        (**self).fault()
    }
}

/// The gRPC status for `err` (by value or by reference, so `.map_err(status)` reads plainly).
pub fn status(err: impl Classify) -> tonic::Status {
    status_of(err.fault(), err.to_string())
}

/// The gRPC status for a fault with its message.
pub fn status_of(fault: Fault, message: String) -> tonic::Status {
    match fault {
        Fault::BadInput(_) => tonic::Status::invalid_argument(message),
        Fault::NotFound => tonic::Status::not_found(message),
        Fault::Precondition => tonic::Status::failed_precondition(message),
        Fault::Unavailable(_) => tonic::Status::unavailable(message),
        Fault::Internal(_) => tonic::Status::internal(message),
    }
}

/// The longest prefix of a value from outside that a message quotes, in bytes.
pub const QUOTED_PREFIX_BYTES: usize = 64;

/// `value` as every error that echoes input quotes it: in backticks, escaped, and, when longer
/// than [`QUOTED_PREFIX_BYTES`], cut there (never inside a character) with its full length, so a
/// hostile string never makes a message, a log line or a job record long.
pub fn quoted(value: &str) -> String {
    if value.len() <= QUOTED_PREFIX_BYTES {
        return format!("`{}`", value.escape_debug());
    }
    format!("`{}…` ({} bytes)", prefix_within(value, QUOTED_PREFIX_BYTES).escape_debug(), value.len())
}

/// The longest prefix of `value` of at most `max_bytes` bytes that ends between characters.
pub fn prefix_within(value: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(value.len());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// A job's failure record for `err`.
pub fn failure(err: &(impl Classify + ?Sized)) -> pb::Failure {
    failure_of(err.fault(), err.to_string())
}

/// A job's failure record for a fault with its message.
pub fn failure_of(fault: Fault, message: String) -> pb::Failure {
    let cause = if fault.is_callers() { pb::failure::Cause::BadInput } else { pb::failure::Cause::Internal };
    pb::Failure { cause: cause as i32, code: fault.code().to_owned(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_fault_is_kept_apart_from_ours() {
        let bad = failure_of(Fault::BadInput("bad_input"), "broken zip".into());
        assert_eq!(bad.cause(), pb::failure::Cause::BadInput);
        assert_eq!(bad.code, "bad_input");
        let ours = failure_of(Fault::Internal("media"), "feeder panicked".into());
        assert_eq!(ours.cause(), pb::failure::Cause::Internal);
        assert_eq!(status_of(Fault::Internal("x"), "m".into()).code(), tonic::Code::Internal);
        assert_eq!(status_of(Fault::BadInput("x"), "m".into()).code(), tonic::Code::InvalidArgument);
        assert_eq!(status_of(Fault::NotFound, "m".into()).code(), tonic::Code::NotFound);
        assert_eq!(status_of(Fault::Precondition, "m".into()).code(), tonic::Code::FailedPrecondition);
        assert_eq!(status_of(Fault::Unavailable("x"), "m".into()).code(), tonic::Code::Unavailable);
    }

    #[test]
    fn a_hostile_string_is_quoted_short_with_its_length() {
        assert_eq!(quoted("weekly-sync"), "`weekly-sync`");
        assert_eq!(quoted("a`b\n\u{7}"), "`a`b\\n\\u{7}`");
        let huge = "x".repeat(3 << 20);
        let shown = quoted(&huge);
        assert!(shown.len() < 100 && shown.ends_with(&format!("({} bytes)", 3 << 20)), "{shown}");
        // Cut between characters, never inside one: 'é' is two bytes.
        let accents = "é".repeat(100);
        assert_eq!(prefix_within(&accents, 5), "éé");
        assert!(quoted(&accents).starts_with(&format!("`{}…`", "é".repeat(32))));
        assert_eq!(prefix_within("abc", 10), "abc");
    }
}
