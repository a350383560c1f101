//! Azure Storage signing, pure: the Shared Key `Authorization` header of a request, the
//! service SAS of one blob, and the percent-encoding both depend on. No I/O, no clock: the
//! caller passes the times in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit as _, Mac as _};
use time::OffsetDateTime;

/// The REST version every request names (`x-ms-version`) and every SAS is signed for (`sv`).
/// Its service SAS string-to-sign is the 2020-12-06 layout (with the encryption scope field).
pub const VERSION: &str = "2021-08-06";

/// The standard headers the Shared Key string-to-sign lists, in its order (lower case).
const SIGNED_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// A storage account's name and its decoded key. `Debug` never shows the key.
#[derive(Clone)]
pub struct AccountKey {
    account: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKey").field("account", &self.account).field("key", &"(redacted)").finish()
    }
}

impl AccountKey {
    /// `key_base64`: the account key as the portal shows it. `None` when it is not base64.
    pub fn new(account: &str, key_base64: &str) -> Option<AccountKey> {
        let key = BASE64.decode(key_base64.trim()).ok().filter(|k| !k.is_empty())?;
        Some(AccountKey { account: account.to_owned(), key })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Base64 of HMAC-SHA256 of `string_to_sign` under the key.
    pub fn sign(&self, string_to_sign: &str) -> String {
        // HMAC takes keys of any length.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(string_to_sign.as_bytes());
        BASE64.encode(mac.finalize().into_bytes())
    }

    /// The `Authorization` header value of a request.
    pub fn authorization(&self, request: &RequestParts<'_>) -> String {
        format!("SharedKey {}:{}", self.account, self.sign(&string_to_sign(&self.account, request)))
    }
}

/// What the Shared Key signature of a request covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The URL path exactly as sent (percent-encoded), e.g. `/devstoreaccount1/c/a%20b.mp4`.
    pub path: &'a str,
    /// Query parameters, values not encoded.
    pub query: &'a [(&'a str, String)],
    /// Every header sent, names in lower case.
    pub headers: &'a [(&'a str, String)],
}

/// The Shared Key string-to-sign (versions 2015-02-21 and later): the verb, the standard
/// headers (an empty line for each absent one; a `Content-Length` of 0 is empty too), the
/// `x-ms-` headers sorted, and the canonicalized resource `/{account}{path}` with the query
/// parameters sorted by name, one `\nname:value` each.
pub fn string_to_sign(account: &str, request: &RequestParts<'_>) -> String {
    let header =
        |name: &str| request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str());
    let mut out = String::with_capacity(256);
    out.push_str(&request.method.to_ascii_uppercase());
    out.push('\n');
    for name in SIGNED_HEADERS {
        let value = header(name);
        if !(name == "content-length" && value == "0") {
            out.push_str(value);
        }
        out.push('\n');
    }
    let mut ms: Vec<(String, &str)> = request
        .headers
        .iter()
        .filter(|(n, _)| n.len() > 5 && n[..5].eq_ignore_ascii_case("x-ms-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim()))
        .collect();
    ms.sort();
    for (name, value) in ms {
        out.push_str(&name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('/');
    out.push_str(account);
    out.push_str(if request.path.is_empty() { "/" } else { request.path });
    let mut query: Vec<(String, &str)> =
        request.query.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.as_str())).collect();
    query.sort();
    for (name, value) in query {
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(value);
    }
    out
}

/// A read-only service SAS for one blob.
#[derive(Debug, Clone, Copy)]
pub struct BlobSas<'a> {
    pub container: &'a str,
    /// The blob's name, not encoded.
    pub blob: &'a str,
    pub start: OffsetDateTime,
    pub expiry: OffsetDateTime,
    /// `spr=https` (real Azure) rather than `https,http` (an `http://` emulator).
    pub https_only: bool,
}

/// `2026-01-02T03:04:05Z`: the SAS time format (seconds, UTC).
pub fn sas_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The service SAS string-to-sign for versions 2020-12-06 and later (blob resource, no
/// stored policy, IP range, snapshot, encryption scope or response header overrides).
pub fn sas_string_to_sign(account: &str, sas: &BlobSas<'_>, protocol: &str) -> String {
    let resource = format!("/blob/{account}/{}/{}", sas.container, sas.blob);
    [
        "r",                   // signedPermissions
        &sas_time(sas.start),  // signedStart
        &sas_time(sas.expiry), // signedExpiry
        &resource,             // canonicalizedResource
        "",                    // signedIdentifier
        "",                    // signedIP
        protocol,              // signedProtocol
        VERSION,               // signedVersion
        "b",                   // signedResource
        "",                    // signedSnapshotTime
        "",                    // signedEncryptionScope
        "",                    // rscc
        "",                    // rscd
        "",                    // rsce
        "",                    // rscl
        "",                    // rsct
    ]
    .join("\n")
}

/// The SAS query string (without `?`), the signature last.
pub fn blob_sas_query(key: &AccountKey, sas: &BlobSas<'_>) -> String {
    let protocol = if sas.https_only { "https" } else { "https,http" };
    let signature = key.sign(&sas_string_to_sign(&key.account, sas, protocol));
    let pairs = [
        ("sv", VERSION.to_owned()),
        ("sr", "b".to_owned()),
        ("sp", "r".to_owned()),
        ("st", sas_time(sas.start)),
        ("se", sas_time(sas.expiry)),
        ("spr", protocol.to_owned()),
        ("sig", signature),
    ];
    query_string(&pairs)
}

/// `name=value&...`, values percent-encoded.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    pairs.iter().map(|(n, v)| format!("{n}={}", encode_component(v))).collect::<Vec<_>>().join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A blob name as a URL path: each `/`-separated segment percent-encoded.
pub fn encode_path(name: &str) -> String {
    name.split('/').map(encode_component).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Azurite's well-known development account key (public, documented by Microsoft).
    const AZURITE_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn key() -> AccountKey {
        AccountKey::new("devstoreaccount1", AZURITE_KEY).expect("base64")
    }

    #[test]
    fn shared_key_string_to_sign_follows_the_documented_layout() {
        let headers = [
            ("content-length", "5".to_owned()),
            ("content-md5", "XUFAKrxLKna5cZ2REBfFkg==".to_owned()),
            ("x-ms-version", VERSION.to_owned()),
            ("x-ms-date", "Fri, 02 Jan 2026 03:04:05 GMT".to_owned()),
            ("x-ms-blob-type", "BlockBlob".to_owned()),
        ];
        let query = [("comp", "block".to_owned()), ("blockid", "YQ==".to_owned())];
        let parts =
            RequestParts { method: "put", path: "/devstoreaccount1/box/a%20b/c.mp4", query: &query, headers: &headers };
        let expected = "PUT\n\n\n5\nXUFAKrxLKna5cZ2REBfFkg==\n\n\n\n\n\n\n\n\
                        x-ms-blob-type:BlockBlob\nx-ms-date:Fri, 02 Jan 2026 03:04:05 GMT\nx-ms-version:2021-08-06\n\
                        /devstoreaccount1/devstoreaccount1/box/a%20b/c.mp4\nblockid:YQ==\ncomp:block";
        assert_eq!(string_to_sign("devstoreaccount1", &parts), expected);
        assert_eq!(
            key().authorization(&parts),
            "SharedKey devstoreaccount1:oTqpbQR2ihuG3flHMkmCMBHOu8kMG8rYRmz2cFgqRX8="
        );
        // A zero Content-Length signs as an empty line.
        let headers = [("content-length", "0".to_owned())];
        let parts = RequestParts { method: "GET", path: "", query: &[], headers: &headers };
        assert_eq!(string_to_sign("acct", &parts), "GET\n\n\n\n\n\n\n\n\n\n\n\n/acct/");
    }

    /// Computed by Azurite's own `computeHMACSHA256` (node's crypto), which it checks Shared
    /// Key and SAS signatures with.
    #[test]
    fn signatures_match_node_crypto() {
        assert_eq!(key().sign("hello\nworld"), "ST254um77q2sshBlZ4MRhMmJ69PxColm/Pudr2xlM/E=");
    }

    /// A SAS built by Azurite's own `generateBlobSASSignature` (Azurite 3.35.0,
    /// `dist/src/blob/authentication/IBlobSASSignatureValues.js`) for the same values.
    #[test]
    fn sas_matches_azurite() {
        let start = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let sas = BlobSas {
            container: "box",
            blob: "with space/ünïcødé 名前 (1).mp4",
            start,
            expiry: start + time::Duration::hours(1),
            https_only: false,
        };
        let to_sign = sas_string_to_sign("devstoreaccount1", &sas, "https,http");
        assert_eq!(
            to_sign,
            "r\n2026-01-02T03:04:05Z\n2026-01-02T04:04:05Z\n/blob/devstoreaccount1/box/with space/ünïcødé 名前 (1).mp4\n\n\nhttps,http\n2021-08-06\nb\n\n\n\n\n\n\n"
        );
        let query = blob_sas_query(&key(), &sas);
        assert_eq!(
            query,
            "sv=2021-08-06&sr=b&sp=r&st=2026-01-02T03%3A04%3A05Z&se=2026-01-02T04%3A04%3A05Z&spr=https%2Chttp&sig=0bD%2BXCIrmNBeZhoyXyHFEa8%2BWgF9DP4rbOfn7BsB2XQ%3D"
        );
    }

    #[test]
    fn names_are_encoded_per_segment() {
        assert_eq!(encode_path("calls/a b/ü(1).mp4"), "calls/a%20b/%C3%BC%281%29.mp4");
        assert_eq!(encode_component("a+b/c="), "a%2Bb%2Fc%3D");
        assert!(AccountKey::new("a", "not base64!").is_none());
        assert!(!format!("{:?}", key()).contains("Eby8"));
    }
}
