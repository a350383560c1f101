//! What a GCS failure means for the caller: passing (connection refused or reset, timeouts,
//! 408, 429, 5xx, a lost upload session), refused for good (credentials, permissions, no
//! such bucket), a missing object, or a checksum the service rejected. Messages never carry
//! a URL (a resumable session URI is itself a credential) nor a key.

use gcloud_storage::client::google_cloud_auth::error::Error as AuthError;
use gcloud_storage::http::Error as HttpError;

use super::BACKEND;
use crate::storage::object::StorageError;

/// What a 404 means for the request that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    /// A read of one object: the object is not there.
    Object,
    /// A write or a bucket-level call: the bucket is not there.
    Bucket,
    /// A chunk sent to a resumable session: the session expired or the server forgot it.
    Session,
}

/// The HTTP status of a failure, where it has one.
pub(super) fn status_of(err: &HttpError) -> Option<u16> {
    match err {
        HttpError::Response(response) => Some(response.code),
        HttpError::HttpClient(err) | HttpError::RawResponse(err, _) => err.status().map(|s| s.as_u16()),
        _ => None,
    }
}

/// A failure of a call made through the `gcloud-storage` client.
pub(super) fn from_gcs(op: &'static str, location: &str, err: HttpError, missing: Missing) -> StorageError {
    match err {
        HttpError::Response(response) => from_status(op, location, response.code, &response.message, missing),
        HttpError::HttpClient(err) | HttpError::RawResponse(err, _) => from_reqwest(op, location, err, missing),
        HttpError::TokenSource(err) => match err.downcast_ref::<AuthError>() {
            Some(auth) => from_auth(op, location, auth),
            None => unavailable(op, location, format!("no access token: {}", chain(&*err))),
        },
        HttpError::InvalidRangeHeader(header) => {
            unavailable(op, location, format!("the server answered an invalid Range header {header:?}"))
        }
        HttpError::HttpMiddleware(err) => unavailable(op, location, format!("{err:#}")),
    }
}

/// A failure of a request sent with our own HTTP client (the chunks of a resumable upload).
pub(super) fn from_reqwest(op: &'static str, location: &str, err: reqwest::Error, missing: Missing) -> StorageError {
    if let Some(status) = err.status() {
        return from_status(op, location, status.as_u16(), status.canonical_reason().unwrap_or(""), missing);
    }
    let err = err.without_url();
    if err.is_builder() {
        return StorageError::Settings {
            field: "endpoint",
            reason: format!("{BACKEND} {op} {location}: the request cannot be built: {}", chain(&err)),
        };
    }
    let what = if err.is_timeout() { "timed out" } else { "connection failed" };
    unavailable(op, location, format!("{what}: {}", chain(&err)))
}

/// An HTTP error status.
pub(super) fn from_status(
    op: &'static str,
    location: &str,
    status: u16,
    message: &str,
    missing: Missing,
) -> StorageError {
    let reason = format!("HTTP {status}: {message}");
    let location = location.to_owned();
    match (status, missing) {
        (404, Missing::Object) if !names_the_bucket(message) => StorageError::NotFound { backend: BACKEND, location },
        (404 | 410, Missing::Session) => StorageError::Unavailable {
            backend: BACKEND,
            op,
            location,
            reason: format!("{reason} (the upload session is gone; the upload starts again)"),
        },
        (404, _) => {
            StorageError::Refused { backend: BACKEND, op, location, reason: format!("{reason} (no such bucket?)") }
        }
        (408 | 429 | 500..=599, _) => StorageError::Unavailable { backend: BACKEND, op, location, reason },
        (400, _) if names_a_checksum(message) => StorageError::Mismatch { backend: BACKEND, location, reason },
        _ => StorageError::Refused { backend: BACKEND, op, location, reason },
    }
}

/// A failure to get an access token (from the key's `token_uri`, or the metadata server).
pub(super) fn from_auth(op: &'static str, location: &str, err: &AuthError) -> StorageError {
    let location = location.to_owned();
    match err {
        AuthError::HttpError(http) => match http.status().map(|s| s.as_u16()) {
            Some(status @ (408 | 429 | 500..=599)) => StorageError::Unavailable {
                backend: BACKEND,
                op,
                location,
                reason: format!("no access token: HTTP {status}"),
            },
            Some(status) => StorageError::Refused {
                backend: BACKEND,
                op,
                location,
                reason: format!("no access token: HTTP {status}"),
            },
            None => StorageError::Unavailable {
                backend: BACKEND,
                op,
                location,
                reason: format!("no access token: {}", chain(http)),
            },
        },
        AuthError::TokenErrorResponse { status, error, error_description } => {
            let reason = format!("no access token: HTTP {status}: {error}: {error_description}");
            if matches!(status, 408 | 429 | 500..=599) {
                StorageError::Unavailable { backend: BACKEND, op, location, reason }
            } else {
                StorageError::Refused { backend: BACKEND, op, location, reason }
            }
        }
        AuthError::DeserializeError(_) | AuthError::JsonError(_) | AuthError::TimeParse(_) => {
            StorageError::Unavailable {
                backend: BACKEND,
                op,
                location,
                reason: format!("no access token: the token service's answer is not understood: {err}"),
            }
        }
        // The credentials themselves: a key that does not parse, an unsupported account type,
        // no credentials anywhere. Display of these names the problem, never the key.
        _ => {
            StorageError::Settings { field: "secret", reason: format!("{BACKEND} {op} {location}: credentials: {err}") }
        }
    }
}

fn unavailable(op: &'static str, location: &str, reason: String) -> StorageError {
    StorageError::Unavailable { backend: BACKEND, op, location: location.to_owned(), reason }
}

/// GCS answers a 404 on an object whose bucket is missing with this.
fn names_the_bucket(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("bucket does not exist") || message.contains("no such bucket")
}

/// GCS rejects a declared MD5 or CRC32C that does not match what it received with a 400.
fn names_a_checksum(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["md5", "crc32c", "checksum", "hash"].iter().any(|word| message.contains(word))
}

/// An error and its sources, each once.
pub(super) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let loc = "gs://b/k";
        let class = |status, missing| match from_status("put", loc, status, "x", missing) {
            StorageError::Unavailable { .. } => "unavailable",
            StorageError::Refused { .. } => "refused",
            StorageError::NotFound { .. } => "not found",
            StorageError::Mismatch { .. } => "mismatch",
            _ => "other",
        };
        assert_eq!(class(503, Missing::Bucket), "unavailable");
        assert_eq!(class(500, Missing::Object), "unavailable");
        assert_eq!(class(429, Missing::Object), "unavailable");
        assert_eq!(class(408, Missing::Session), "unavailable");
        assert_eq!(class(401, Missing::Object), "refused");
        assert_eq!(class(403, Missing::Bucket), "refused");
        assert_eq!(class(404, Missing::Bucket), "refused");
        assert_eq!(class(404, Missing::Object), "not found");
        assert_eq!(class(404, Missing::Session), "unavailable");
        assert_eq!(class(410, Missing::Session), "unavailable");
        assert!(matches!(
            from_status("get", loc, 404, "The specified bucket does not exist.", Missing::Object),
            StorageError::Refused { .. }
        ));
        assert!(matches!(
            from_status("put", loc, 400, "Provided MD5 hash doesn't match calculated MD5 hash", Missing::Bucket),
            StorageError::Mismatch { .. }
        ));
        assert!(matches!(
            from_status("put", loc, 400, "Invalid argument", Missing::Bucket),
            StorageError::Refused { .. }
        ));
    }

    #[test]
    fn messages_name_the_backend_and_the_object() {
        for err in [
            from_status("put", "gs://b/k.mp4", 503, "busy", Missing::Bucket),
            from_status("get", "gs://b/k.mp4", 404, "gone", Missing::Object),
            from_status("put", "gs://b/k.mp4", 403, "denied", Missing::Bucket),
        ] {
            let text = err.to_string();
            assert!(text.contains("gcs") && text.contains("gs://b/k.mp4"), "{text}");
        }
    }
}
