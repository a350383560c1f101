//! One signed request to the Blob service and what its answer means: the request is signed
//! with Shared Key and sent with a time limit; a failed answer becomes a [`StorageError`] of
//! the right kind (passing, refused, missing, corrupted), its reason the status and the
//! service's error code only (the message may quote the signature).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;

use super::BACKEND;
use super::sign::{self, AccountKey, RequestParts};
use crate::storage::http::HttpsClient;
use crate::storage::object::StorageError;

/// An answer's headers and status arrive within this, plus the time the body takes to send at
/// [`SLOWEST_UPLOAD_BYTES_PER_S`].
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
const SLOWEST_UPLOAD_BYTES_PER_S: u64 = 128 * 1024;
/// No byte of a body for this long ends the request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// An error answer's body is read up to this.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// One request: what it is for, and what it sends.
#[derive(Debug)]
pub struct Call {
    pub op: &'static str,
    /// For errors: the blob URL (or the container's).
    pub location: String,
    pub method: Method,
    /// The URL path as sent (percent-encoded), from the root.
    pub path: String,
    /// Query parameters, not encoded.
    pub query: Vec<(&'static str, String)>,
    /// Extra headers, lower-case names.
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Call {
    pub fn new(op: &'static str, location: String, method: Method, path: String) -> Call {
        Call { op, location, method, path, query: Vec::new(), headers: Vec::new(), body: Bytes::new() }
    }

    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.query.push((name, value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Bytes) -> Call {
        self.body = body;
        self
    }
}

/// The service's address and the means to sign for it.
#[derive(Debug, Clone)]
pub struct Service {
    pub client: HttpsClient,
    /// `scheme://host[:port]`.
    pub origin: String,
    pub key: AccountKey,
}

impl Service {
    /// Signs and sends `call`; an answer outside `ok` becomes an error.
    pub async fn send(&self, call: Call, ok: &[StatusCode]) -> Result<Response<Incoming>, StorageError> {
        let response = self.send_any(&call).await?;
        if ok.contains(&response.status()) {
            return Ok(response);
        }
        Err(self.failure(&call, response).await)
    }

    /// Signs and sends `call`, whatever the answer's status.
    pub async fn send_any(&self, call: &Call) -> Result<Response<Incoming>, StorageError> {
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .unwrap_or_default();
        let mut headers = call.headers.clone();
        headers.push(("x-ms-date", date));
        headers.push(("x-ms-version", sign::VERSION.to_owned()));
        if call.method == Method::PUT || call.method == Method::POST {
            headers.push(("content-length", call.body.len().to_string()));
        }
        let parts =
            RequestParts { method: call.method.as_str(), path: &call.path, query: &call.query, headers: &headers };
        let authorization = self.key.authorization(&parts);
        let mut uri = format!("{}{}", self.origin, call.path);
        if !call.query.is_empty() {
            uri.push('?');
            uri.push_str(&sign::query_string(&call.query));
        }
        let mut request = Request::builder().method(call.method.clone()).uri(&uri);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let request =
            request.header("authorization", authorization).body(Full::new(call.body.clone())).map_err(|err| {
                StorageError::Refused {
                    backend: BACKEND,
                    op: call.op,
                    location: call.location.clone(),
                    reason: format!("the request cannot be built: {err}"),
                }
            })?;
        let limit = ANSWER_TIMEOUT + Duration::from_secs(call.body.len() as u64 / SLOWEST_UPLOAD_BYTES_PER_S);
        match tokio::time::timeout(limit, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(unavailable(call, &error_chain(&err))),
            Err(_) => Err(unavailable(call, &format!("no answer within {} s", limit.as_secs()))),
        }
    }

    /// The error an unwanted answer means; reads (a bounded part of) its body.
    pub async fn failure(&self, call: &Call, response: Response<Incoming>) -> StorageError {
        let answer = ErrorAnswer::read(response).await;
        classify(call.op, &call.location, answer.status, answer.code.as_deref(), answer.message.as_deref())
    }
}

/// A failed answer: its status, the service's error code and message.
#[derive(Debug)]
pub struct ErrorAnswer {
    pub status: StatusCode,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl ErrorAnswer {
    /// Reads (a bounded part of) the body.
    pub async fn read(response: Response<Incoming>) -> ErrorAnswer {
        let (head, body) = response.into_parts();
        let body = match tokio::time::timeout(IDLE_TIMEOUT, Limited::new(body, ERROR_BODY_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
        let text = String::from_utf8_lossy(&body);
        ErrorAnswer {
            status: head.status,
            code: error_code(&head.headers).or_else(|| xml_element(&text, "Code")),
            message: xml_element(&text, "Message"),
        }
    }
}

/// A connection failure or a timeout: worth another attempt.
pub fn unavailable(call: &Call, reason: &str) -> StorageError {
    StorageError::Unavailable {
        backend: BACKEND,
        op: call.op,
        location: call.location.clone(),
        reason: reason.to_owned(),
    }
}

/// An error and its sources, `: `-joined (hyper's own message is terse: "client error (Connect)").
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        out.push_str(": ");
        out.push_str(&next.to_string());
        source = next.source();
    }
    out
}

fn error_code(headers: &HeaderMap) -> Option<String> {
    headers.get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The text of the first `<name>` element of a small XML document.
pub fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim().to_owned())
}

/// What a failed answer means. `message` only decides (Azurite names an MD5 mismatch
/// `InvalidOperation` with a message); it is never shown: it may quote the signature.
pub fn classify(
    op: &'static str,
    location: &str,
    status: StatusCode,
    code: Option<&str>,
    message: Option<&str>,
) -> StorageError {
    let code = code.unwrap_or("");
    let reason =
        if code.is_empty() { format!("HTTP {}", status.as_u16()) } else { format!("HTTP {} {code}", status.as_u16()) };
    let location = location.to_owned();
    let md5_mismatch = matches!(code, "Md5Mismatch" | "InvalidMd5")
        || (code == "InvalidOperation" && message.is_some_and(|m| m.to_ascii_lowercase().contains("md5")));
    let hint = match code {
        "AuthenticationFailed" | "InvalidAuthenticationInfo" => ": check the account name and key",
        // Azurite's answer to a wrong key; Azure's to a SAS or network rule that forbids it.
        "AuthorizationFailure" => ": check the account name, key and network rules",
        "AuthorizationPermissionMismatch" => ": the credentials may not do this",
        "ContainerNotFound" => ": the container does not exist",
        "ResourceNotFound" | "AccountNotFound" => ": no such account or resource",
        _ => "",
    };
    match status.as_u16() {
        404 if matches!(code, "BlobNotFound" | "") => StorageError::NotFound { backend: BACKEND, location },
        400 if md5_mismatch => StorageError::Mismatch {
            backend: BACKEND,
            location,
            reason: format!("{reason}: the service computed another MD5 than the one sent"),
        },
        408 | 429 | 500..=599 => StorageError::Unavailable { backend: BACKEND, op, location, reason },
        _ => StorageError::Refused { backend: BACKEND, op, location, reason: format!("{reason}{hint}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, code: Option<&str>, message: Option<&str>) -> &'static str {
        let status = StatusCode::from_u16(status).expect("status");
        match classify("put", "http://x/c/b", status, code, message) {
            StorageError::Unavailable { .. } => "unavailable",
            StorageError::Refused { .. } => "refused",
            StorageError::NotFound { .. } => "not found",
            StorageError::Mismatch { .. } => "mismatch",
            _ => "other",
        }
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(kind(503, Some("ServerBusy"), None), "unavailable");
        assert_eq!(kind(500, Some("InternalError"), None), "unavailable");
        assert_eq!(kind(429, None, None), "unavailable");
        assert_eq!(
            kind(403, Some("AuthenticationFailed"), Some("The MAC signature found ... 'c2lnbmF0dXJl'")),
            "refused"
        );
        assert_eq!(kind(400, Some("InvalidAuthenticationInfo"), None), "refused");
        assert_eq!(kind(404, Some("ContainerNotFound"), None), "refused");
        assert_eq!(kind(404, Some("BlobNotFound"), None), "not found");
        assert_eq!(kind(404, None, None), "not found");
        assert_eq!(kind(400, Some("Md5Mismatch"), None), "mismatch");
        assert_eq!(kind(400, Some("InvalidMd5"), None), "mismatch");
        // Azurite's way of saying so.
        assert_eq!(kind(400, Some("InvalidOperation"), Some("Provided contentMD5 doesn't match.")), "mismatch");
        assert_eq!(kind(400, Some("InvalidOperation"), Some("something else")), "refused");
    }

    #[test]
    fn reasons_name_status_and_code_only() {
        let err = classify(
            "put",
            "https://acct.blob.core.windows.net/c/b.mp4",
            StatusCode::FORBIDDEN,
            Some("AuthenticationFailed"),
            Some("signature 'secret-signature' did not match"),
        );
        let text = err.to_string();
        assert!(text.contains("azure") && text.contains("https://acct.blob.core.windows.net/c/b.mp4"), "{text}");
        assert!(text.contains("403 AuthenticationFailed"), "{text}");
        assert!(!text.contains("secret-signature"), "{text}");
        assert_eq!(
            xml_element("<?xml version=\"1.0\"?><Error><Code>BlobNotFound</Code><Message>x</Message></Error>", "Code")
                .as_deref(),
            Some("BlobNotFound")
        );
    }
}
