//! Fetching a remote raw archive by URL (`http://` or `https://`, e.g. a presigned object-store
//! URL), for the source cache: streamed to disk, size-limited,
//! redirects followed (at most 5), transient failures (no answer, 408, 429, 5xx) retried, the
//! query string (where presigned credentials live) never shown. Cancellable between chunks.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::http::HttpsClient;
use crate::error::{Classify, Fault};
use crate::render::CancelFlag;

const ATTEMPTS: u32 = 3;
const MAX_REDIRECTS: u32 = 5;
/// No byte for this long ends the attempt.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server refused the request for good (4xx other than 408/429): the caller's URL.
    #[error("{url}: HTTP {status}")]
    Refused { url: String, status: u16 },
    #[error("{url}: {reason} (after {attempts} attempts)")]
    Unavailable { url: String, reason: String, attempts: u32 },
    #[error("{url}: larger than this node's limit of {limit_bytes} bytes")]
    TooLarge { url: String, limit_bytes: u64 },
    #[error("{url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
}

impl Classify for FetchError {
    /// The URL itself is at fault, or the network or this node.
    fn fault(&self) -> Fault {
        match self {
            FetchError::Refused { .. } | FetchError::TooLarge { .. } | FetchError::BadUrl { .. } => {
                Fault::BadInput("source_unavailable")
            }
            FetchError::Unavailable { .. } | FetchError::Io { .. } => Fault::Internal("source_unavailable"),
            FetchError::Cancelled => Fault::Internal("cancelled"),
        }
    }
}

/// What a fetch brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The server says the copy whose ETag was given is current (HTTP 304); nothing written.
    NotModified,
    Downloaded {
        size_bytes: u64,
        etag: Option<String>,
    },
}

/// One attempt's failure: worth retrying or not.
enum Failure {
    Transient(String),
    Final(FetchError),
}

/// Downloads `url` to `dest` unless the server says the copy with ETag `if_none_match` is
/// current.
pub async fn fetch(
    client: &HttpsClient,
    url: &str,
    dest: &Path,
    max_bytes: u64,
    cancel: &CancelFlag,
    if_none_match: Option<&str>,
) -> Result<Fetched, FetchError> {
    let mut wait = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match fetch_once(client, url, dest, max_bytes, cancel, if_none_match).await {
            Ok(fetched) => return Ok(fetched),
            Err(Failure::Final(err)) => return Err(err),
            Err(Failure::Transient(reason)) if attempt >= ATTEMPTS => {
                return Err(FetchError::Unavailable { url: shown_url(url), reason, attempts: attempt });
            }
            Err(Failure::Transient(reason)) => {
                tracing::warn!(url = %shown_url(url), attempt, %reason, "fetching the source failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
        }
    }
}

async fn fetch_once(
    client: &HttpsClient,
    url: &str,
    dest: &Path,
    max_bytes: u64,
    cancel: &CancelFlag,
    if_none_match: Option<&str>,
) -> Result<Fetched, Failure> {
    let mut current = url.to_owned();
    let mut redirects = 0;
    let response = loop {
        let uri: http::Uri = current
            .parse()
            .map_err(|e| Failure::Final(FetchError::BadUrl { url: shown_url(&current), reason: format!("{e}") }))?;
        let mut request =
            http::Request::get(uri).header(http::header::USER_AGENT, concat!("tessera/", env!("CARGO_PKG_VERSION")));
        if let Some(etag) = if_none_match {
            request = request.header(http::header::IF_NONE_MATCH, format!("\"{etag}\""));
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| Failure::Final(FetchError::BadUrl { url: shown_url(&current), reason: e.to_string() }))?;
        let response = tokio::time::timeout(IDLE_TIMEOUT, client.request(request))
            .await
            .map_err(|_| Failure::Transient(format!("no answer within {} s", IDLE_TIMEOUT.as_secs())))?
            .map_err(|e| Failure::Transient(format!("{e:#}")))?;
        let status = response.status();
        if status.is_redirection() && redirects < MAX_REDIRECTS {
            let location = response.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok());
            let Some(location) = location else {
                return Err(Failure::Final(FetchError::Refused { url: shown_url(&current), status: status.as_u16() }));
            };
            current = resolve(&current, location);
            redirects += 1;
            continue;
        }
        match status.as_u16() {
            304 if if_none_match.is_some() => return Ok(Fetched::NotModified),
            200..=299 => break response,
            code @ (408 | 429 | 500..=599) => return Err(Failure::Transient(format!("HTTP {code}"))),
            code => return Err(Failure::Final(FetchError::Refused { url: shown_url(&current), status: code })),
        }
    };
    let too_large = || Failure::Final(FetchError::TooLarge { url: shown_url(url), limit_bytes: max_bytes });
    let declared = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(too_large());
    }
    let etag = response
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start_matches("W/").trim_matches('"').to_owned());
    let io = |source| Failure::Final(FetchError::Io { path: dest.to_path_buf(), source });
    let mut file = std::fs::File::create(dest).map_err(io)?;
    let mut body = response.into_body();
    let mut written = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(Failure::Final(FetchError::Cancelled));
        }
        let frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
            .await
            .map_err(|_| Failure::Transient(format!("stalled for {} s", IDLE_TIMEOUT.as_secs())))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| Failure::Transient(format!("{e:#}")))?;
        if let Ok(data) = frame.into_data() {
            written += data.len() as u64;
            if written > max_bytes {
                return Err(too_large());
            }
            file.write_all(&data).map_err(io)?;
        }
    }
    if declared.is_some_and(|n| n != written) {
        return Err(Failure::Transient(format!("the body ended after {written} of {} bytes", declared.unwrap_or(0))));
    }
    file.sync_all().map_err(io)?;
    Ok(Fetched::Downloaded { size_bytes: written, etag })
}

/// A redirect's `Location` made absolute against the URL it answered.
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = rest.split(['?', '#']).next().unwrap_or(rest);
        let dir = path.rsplit_once('/').map_or(path, |(dir, _)| dir);
        format!("{scheme}://{dir}/{location}")
    }
}

/// `url` without its query and fragment (presigned URLs carry credentials there), for
/// messages, logs and returned specs.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    // user:password@ goes too.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("(redacted)@{host}{}", &rest[authority_end..]),
        None => rest.to_owned(),
    };
    match rest.split_once(['?', '#']) {
        Some((base, _)) => format!("{scheme}://{base}?(redacted)"),
        None => format!("{scheme}://{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_against_the_url_they_answered() {
        assert_eq!(resolve("https://a.example/x/y.zip?sig=1", "https://b.example/z"), "https://b.example/z");
        assert_eq!(resolve("https://a.example/x/y.zip?sig=1", "/other.zip"), "https://a.example/other.zip");
        assert_eq!(resolve("http://a.example:8080/x/y.zip", "z.zip?s=2"), "http://a.example:8080/x/z.zip?s=2");
    }

    #[test]
    fn query_strings_are_never_shown() {
        assert_eq!(
            shown_url("https://b.example/call.zip?X-Amz-Signature=abc"),
            "https://b.example/call.zip?(redacted)"
        );
        assert_eq!(shown_url("https://b.example/call.zip"), "https://b.example/call.zip");
        assert_eq!(shown_url("https://u:pw@b.example/c.zip?s=1"), "https://(redacted)@b.example/c.zip?(redacted)");
        assert_eq!(shown_url("https://u:pw@b.example"), "https://(redacted)@b.example");
        assert_eq!(shown_url("/data/call.zip"), "/data/call.zip");
    }
}
