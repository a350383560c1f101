//! What an S3 (or S3-compatible) failure means for the caller: passing (`Unavailable`,
//! retried), refused for good, a missing object, or an integrity failure. The reason carries
//! the service's error code and message, never a URL, a key or a signature.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStreamError;

use super::super::object::StorageError;

/// Codes that mean "try again": the service is busy, restarting or lost an upload it had.
const PASSING: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
    // The multipart upload is gone (the server restarted, or another node cleaned up): the
    // whole put is repeated with a new one.
    "NoSuchUpload",
];

/// Codes that mean the bytes S3 received are not the bytes sent.
const INTEGRITY: &[&str] =
    &["BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum", "ChecksumMismatch"];

/// Codes that mean "not with these settings": credentials, permissions, the bucket.
const REFUSED: &[&str] = &[
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchBucket",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidBucketName",
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
];

/// Where a failure happened: the backend's kind, the operation, the object's location.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context<'a> {
    pub backend: &'static str,
    pub op: &'static str,
    pub location: &'a str,
}

/// A [`Context`] a spawned task can own.
#[derive(Debug, Clone)]
pub(super) struct OwnedContext {
    backend: &'static str,
    op: &'static str,
    location: String,
}

impl OwnedContext {
    pub(super) fn borrow(&self) -> Context<'_> {
        Context { backend: self.backend, op: self.op, location: &self.location }
    }
}

impl Context<'_> {
    pub(super) fn owned(&self) -> OwnedContext {
        OwnedContext { backend: self.backend, op: self.op, location: self.location.to_owned() }
    }

    pub(super) fn unavailable(&self, reason: impl Into<String>) -> StorageError {
        StorageError::Unavailable {
            backend: self.backend,
            op: self.op,
            location: self.location.to_owned(),
            reason: reason.into(),
        }
    }

    pub(super) fn refused(&self, reason: impl Into<String>) -> StorageError {
        StorageError::Refused {
            backend: self.backend,
            op: self.op,
            location: self.location.to_owned(),
            reason: reason.into(),
        }
    }

    pub(super) fn mismatch(&self, reason: impl Into<String>) -> StorageError {
        StorageError::Mismatch { backend: self.backend, location: self.location.to_owned(), reason: reason.into() }
    }

    pub(super) fn not_found(&self) -> StorageError {
        StorageError::NotFound { backend: self.backend, location: self.location.to_owned() }
    }

    /// Classifies a failed SDK call.
    pub(super) fn sdk<E>(&self, err: &SdkError<E>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::TimeoutError(_) => self.unavailable("timed out"),
            SdkError::DispatchFailure(failure) if failure.is_user() => {
                self.refused(format!("the request could not be sent: {}", DisplayErrorContext(err)))
            }
            SdkError::DispatchFailure(failure) if failure.is_timeout() => self.unavailable("timed out connecting"),
            SdkError::DispatchFailure(_) => {
                self.unavailable(format!("could not reach the server: {}", DisplayErrorContext(err)))
            }
            SdkError::ResponseError(_) => {
                self.unavailable(format!("unreadable response: {}", DisplayErrorContext(err)))
            }
            SdkError::ConstructionFailure(_) => {
                self.refused(format!("the request could not be built: {}", DisplayErrorContext(err)))
            }
            _ => {
                let status = err.raw_response().map(|response| response.status().as_u16());
                self.service(err.code(), err.message(), status)
            }
        }
    }

    /// Classifies an error answer from the service: its code (absent on HEAD), message and
    /// HTTP status.
    pub(super) fn service(&self, code: Option<&str>, message: Option<&str>, status: Option<u16>) -> StorageError {
        let reason = match (code, message, status) {
            (Some(code), Some(message), _) if !message.is_empty() => format!("{code}: {message}"),
            (Some(code), _, _) => code.to_owned(),
            (None, _, Some(status)) => format!("HTTP {status}"),
            (None, _, None) => "an error without a code".to_owned(),
        };
        let code = code.unwrap_or_default();
        let status = status.unwrap_or_default();
        let about_checksum = message.is_some_and(|m| m.to_ascii_lowercase().contains("checksum"))
            && matches!(code, "InvalidRequest" | "InvalidArgument");
        if INTEGRITY.contains(&code) || about_checksum {
            self.mismatch(reason)
        } else if PASSING.contains(&code) || status >= 500 || status == 429 {
            self.unavailable(reason)
        } else if REFUSED.contains(&code) || status == 401 || status == 403 {
            self.refused(reason)
        } else if code == "NoSuchKey" || status == 404 {
            self.not_found()
        } else {
            self.refused(reason)
        }
    }

    /// A body that broke off (or failed the SDK's response checksum) while being read.
    pub(super) fn stream(&self, err: &ByteStreamError) -> StorageError {
        let text = DisplayErrorContext(err).to_string();
        if text.contains("checksum mismatch") {
            self.mismatch(format!("the body read does not match its checksum: {text}"))
        } else {
            self.unavailable(format!("the body broke off: {text}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context<'static> {
        Context { backend: "s3", op: "put", location: "s3://bucket/a.mp4" }
    }

    #[test]
    fn service_answers_are_classified() {
        let c = context();
        let kind = |code: Option<&str>, status: u16| match c.service(code, Some("m"), Some(status)) {
            StorageError::Unavailable { .. } => "unavailable",
            StorageError::Refused { .. } => "refused",
            StorageError::NotFound { .. } => "not found",
            StorageError::Mismatch { .. } => "mismatch",
            _ => "other",
        };
        assert_eq!(kind(Some("SlowDown"), 503), "unavailable");
        assert_eq!(kind(Some("ServiceUnavailable"), 503), "unavailable");
        assert_eq!(kind(None, 500), "unavailable");
        assert_eq!(kind(None, 429), "unavailable");
        assert_eq!(kind(Some("RequestTimeout"), 400), "unavailable");
        assert_eq!(kind(Some("NoSuchUpload"), 404), "unavailable");
        assert_eq!(kind(Some("NoSuchKey"), 404), "not found");
        assert_eq!(kind(None, 404), "not found");
        assert_eq!(kind(Some("NoSuchBucket"), 404), "refused");
        assert_eq!(kind(Some("AccessDenied"), 403), "refused");
        assert_eq!(kind(Some("InvalidAccessKeyId"), 403), "refused");
        assert_eq!(kind(Some("SignatureDoesNotMatch"), 403), "refused");
        assert_eq!(kind(None, 403), "refused");
        assert_eq!(kind(Some("BadDigest"), 400), "mismatch");
        assert_eq!(kind(Some("InvalidDigest"), 400), "mismatch");
        assert_eq!(kind(Some("EntityTooLarge"), 400), "refused");
    }

    #[test]
    fn reasons_name_the_backend_the_object_and_the_code() {
        let err = context().service(Some("NoSuchBucket"), Some("The specified bucket does not exist"), Some(404));
        let text = err.to_string();
        assert!(text.contains("s3 put s3://bucket/a.mp4"), "{text}");
        assert!(text.contains("NoSuchBucket: The specified bucket does not exist"), "{text}");
    }
}
