//! A storage block (the contract's `Storage`, a job's or the node's default) checked field by
//! field and turned into the settings of one backend. Secrets are held in [`Secret`], which
//! never prints its value. Pure.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::quoted;
use crate::proto as pb;

/// The storage types a block may name.
pub const STORAGE_TYPES: &[&str] = &["local", "s3", "digitalocean", "azure", "gcs", "sftp"];

/// Download URLs live this long unless the block or the node says otherwise.
pub const DEFAULT_URL_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// The longest a download URL may live (S3's presigning limit).
pub const MAX_URL_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// A credential: shown as `(redacted)` by `Debug` and `Display`, read with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(redacted)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(redacted)")
    }
}

/// `s3` and `digitalocean`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// "s3" or "digitalocean".
    pub kind: &'static str,
    pub bucket: String,
    /// Empty: the AWS chain's (`AWS_REGION`, the profile), else `us-east-1`.
    pub region: String,
    /// An S3-compatible endpoint (`http://127.0.0.1:5055`, DigitalOcean's); path-style
    /// addressing is used with one.
    pub endpoint: Option<String>,
    /// Access key id and secret; `None`: the standard AWS credential chain.
    pub credentials: Option<(String, Secret)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSettings {
    pub container: String,
    pub account: String,
    pub account_key: Secret,
    /// The blob service's base URL, with the account where the service wants it in the path
    /// (Azurite: `http://127.0.0.1:10000/devstoreaccount1`). `None`:
    /// `https://{account}.blob.core.windows.net`.
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsSettings {
    pub bucket: String,
    /// The service-account key JSON; `None`: the Google credential chain, or anonymous access
    /// when `endpoint` is set (an emulator).
    pub service_account_json: Option<Secret>,
    /// `http://127.0.0.1:4443` for an emulator. `None`: Google's.
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SftpAuth {
    Password(Secret),
    /// An OpenSSH (or PEM) private key, with the passphrase that opens it when it has one.
    Key {
        private_key: Secret,
        passphrase: Option<Secret>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpSettings {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub auth: SftpAuth,
    /// The expected host key: an OpenSSH public key line (`ssh-ed25519 AAAA...`) or its
    /// `SHA256:...` fingerprint. `None`: the node's known-hosts file decides.
    pub host_key: Option<String>,
    /// The node's known-hosts file (OpenSSH format).
    pub known_hosts: Option<PathBuf>,
    /// Accept (and add to `known_hosts`) a host key seen for the first time. Off unless the
    /// node's config turns it on.
    pub trust_on_first_use: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A directory on this machine (already resolved and confined by the caller).
    Local {
        dir: PathBuf,
    },
    S3(S3Settings),
    Azure(AzureSettings),
    Gcs(GcsSettings),
    Sftp(SftpSettings),
}

/// One storage block, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    pub backend: Backend,
    /// Object names are `{path_prefix}/{file name}`; no leading or trailing `/`. Empty for
    /// local storage (its directory is the prefix).
    pub path_prefix: String,
    pub url_expiry: Duration,
}

impl StorageSettings {
    /// The object name of a file.
    pub fn key(&self, file_name: &str) -> String {
        object_key(&self.path_prefix, file_name)
    }

    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Local { .. } => "local",
            Backend::S3(s3) => s3.kind,
            Backend::Azure(_) => "azure",
            Backend::Gcs(_) => "gcs",
            Backend::Sftp(_) => "sftp",
        }
    }
}

/// `{prefix}/{name}`, or `name` when there is no prefix.
pub fn object_key(prefix: &str, name: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") }
}

/// What the node adds to every block: where SFTP host keys are known, and whether a new one
/// is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStorage {
    pub known_hosts: Option<PathBuf>,
    pub trust_on_first_use: bool,
    /// Download URLs' lifetime when a block does not say.
    pub url_expiry: Option<Duration>,
}

/// One invalid field of a block: (field name as in the contract, reason).
pub type Violation = (&'static str, String);

/// Checks a remote block (`local` is the caller's: its directory needs the node's root).
/// Returns every problem at once.
pub fn remote_settings(block: &pb::Storage, node: &NodeStorage) -> Result<StorageSettings, Vec<Violation>> {
    let mut v: Vec<Violation> = Vec::new();
    let mut need = |field: &'static str, value: &str, what: &str| {
        if value.trim().is_empty() {
            v.push((field, format!("{what} is needed for {} storage", block.r#type)));
        }
    };
    let endpoint = optional_url(&block.endpoint, "endpoint");
    let backend = match block.r#type.as_str() {
        kind @ ("s3" | "digitalocean") => {
            need("bucket", &block.bucket, "the bucket");
            let kind = if kind == "s3" { "s3" } else { "digitalocean" };
            let credentials = match (block.access_key.is_empty(), block.secret.is_empty()) {
                (true, true) => None,
                (false, false) => Some((block.access_key.clone(), Secret::new(&block.secret))),
                _ => {
                    v.push(("access_key", "give both access_key and secret, or neither (the AWS chain)".into()));
                    None
                }
            };
            let endpoint = match (&endpoint, kind) {
                (Ok(None), "digitalocean") if block.region.is_empty() => {
                    v.push((
                        "region",
                        "the region (e.g. nyc3) is needed for digitalocean storage without an endpoint".into(),
                    ));
                    None
                }
                (Ok(None), "digitalocean") => Some(format!("https://{}.digitaloceanspaces.com", block.region)),
                (Ok(e), _) => e.clone(),
                (Err(_), _) => None,
            };
            Backend::S3(S3Settings {
                kind,
                bucket: block.bucket.clone(),
                region: block.region.clone(),
                endpoint,
                credentials,
            })
        }
        "azure" => {
            need("bucket", &block.bucket, "the container (bucket)");
            need("access_key", &block.access_key, "the account name (access_key)");
            need("secret", &block.secret, "the account key (secret)");
            Backend::Azure(AzureSettings {
                container: block.bucket.clone(),
                account: block.access_key.clone(),
                account_key: Secret::new(&block.secret),
                endpoint: endpoint.clone().ok().flatten(),
            })
        }
        "gcs" => {
            need("bucket", &block.bucket, "the bucket");
            Backend::Gcs(GcsSettings {
                bucket: block.bucket.clone(),
                service_account_json: (!block.secret.is_empty()).then(|| Secret::new(&block.secret)),
                endpoint: endpoint.clone().ok().flatten(),
            })
        }
        "sftp" => sftp_settings(block, node, &mut v),
        other => {
            let reason = if other.is_empty() {
                format!("say which storage type (one of {})", STORAGE_TYPES.join(", "))
            } else {
                format!("unknown storage type {} (expected one of {})", quoted(other), STORAGE_TYPES.join(", "))
            };
            v.push(("type", reason));
            Backend::Local { dir: PathBuf::new() }
        }
    };
    if let Err(reason) = endpoint {
        v.push(("endpoint", reason));
    }
    let url_expiry = match block.url_expiry_s {
        0 => node.url_expiry.unwrap_or(DEFAULT_URL_EXPIRY),
        s => Duration::from_secs(u64::from(s)),
    };
    if url_expiry > MAX_URL_EXPIRY {
        v.push((
            "url_expiry_s",
            format!("{} s is longer than the most, {} s (7 days)", url_expiry.as_secs(), MAX_URL_EXPIRY.as_secs()),
        ));
    }
    let path_prefix = block.path_prefix.trim_matches('/').to_owned();
    if path_prefix.split('/').any(|part| part == ".." || part == ".") {
        v.push(("path_prefix", format!("{} has a `.` or `..` part", quoted(&block.path_prefix))));
    }
    if v.is_empty() { Ok(StorageSettings { backend, path_prefix, url_expiry }) } else { Err(v) }
}

fn sftp_settings(block: &pb::Storage, node: &NodeStorage, v: &mut Vec<Violation>) -> Backend {
    if block.host.trim().is_empty() {
        v.push(("host", "the host is needed for sftp storage".into()));
    }
    if block.username.trim().is_empty() {
        v.push(("username", "the username is needed for sftp storage".into()));
    }
    let port = match u16::try_from(block.port) {
        Ok(0) => 22,
        Ok(port) => port,
        Err(_) => {
            v.push(("port", format!("{} is not a TCP port", block.port)));
            22
        }
    };
    let auth = match block.auth_method.to_ascii_uppercase().as_str() {
        "PASSWORD" | "" if block.private_key.is_empty() => {
            if block.password.is_empty() {
                v.push(("password", "the password is needed with auth_method PASSWORD".into()));
            }
            SftpAuth::Password(Secret::new(&block.password))
        }
        "KEY" | "" => {
            if block.private_key.is_empty() {
                v.push(("private_key", "the private key is needed with auth_method KEY".into()));
            }
            SftpAuth::Key {
                private_key: Secret::new(&block.private_key),
                passphrase: (!block.password.is_empty()).then(|| Secret::new(&block.password)),
            }
        }
        other => {
            v.push(("auth_method", format!("{} is not KEY or PASSWORD", quoted(other))));
            SftpAuth::Password(Secret::default())
        }
    };
    // Without a host key and a known-hosts file the connection is refused (naming the key's
    // fingerprint, so the user can add it), unless the node trusts on first use.
    let host_key = (!block.host_key.trim().is_empty()).then(|| block.host_key.trim().to_owned());
    Backend::Sftp(SftpSettings {
        host: block.host.trim().to_owned(),
        port,
        username: block.username.clone(),
        auth,
        host_key,
        known_hosts: node.known_hosts.clone(),
        trust_on_first_use: node.trust_on_first_use,
    })
}

/// An optional `http://` or `https://` base URL (no query: it would be lost).
fn optional_url(value: &str, field: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    match value.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() && uri.query().is_none() =>
        {
            Ok(Some(value.trim_end_matches('/').to_owned()))
        }
        _ => Err(format!("{field} {} is not an http:// or https:// URL without a query", quoted(value))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(kind: &str) -> pb::Storage {
        pb::Storage { r#type: kind.into(), bucket: "recordings".into(), ..Default::default() }
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "(redacted) (redacted)");
        let settings = remote_settings(
            &pb::Storage { access_key: "AK".into(), secret: "SK-very-secret".into(), ..block("s3") },
            &NodeStorage::default(),
        )
        .expect("valid");
        assert!(!format!("{settings:?}").contains("SK-very-secret"));
    }

    #[test]
    fn digitalocean_endpoint_comes_from_the_region() {
        let settings =
            remote_settings(&pb::Storage { region: "nyc3".into(), ..block("digitalocean") }, &NodeStorage::default())
                .expect("valid");
        let Backend::S3(s3) = settings.backend else { panic!("s3") };
        assert_eq!(s3.endpoint.as_deref(), Some("https://nyc3.digitaloceanspaces.com"));
        assert_eq!(s3.kind, "digitalocean");
        let err = remote_settings(&block("digitalocean"), &NodeStorage::default()).expect_err("no region");
        assert_eq!(err[0].0, "region");
    }

    #[test]
    fn every_problem_is_named() {
        let err = remote_settings(
            &pb::Storage { r#type: "sftp".into(), auth_method: "TOKEN".into(), port: 70000, ..Default::default() },
            &NodeStorage::default(),
        )
        .expect_err("invalid");
        let fields: Vec<_> = err.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["host", "username", "port", "auth_method"]);
        let err = remote_settings(&pb::Storage { access_key: "AK".into(), ..block("s3") }, &NodeStorage::default())
            .expect_err("half credentials");
        assert_eq!(err[0].0, "access_key");
        let err = remote_settings(&pb::Storage { endpoint: "ftp://x".into(), ..block("gcs") }, &NodeStorage::default())
            .expect_err("bad endpoint");
        assert_eq!(err[0].0, "endpoint");
    }

    #[test]
    fn keys_join_the_prefix() {
        assert_eq!(object_key("/calls/2026/", "a b.mp4"), "calls/2026/a b.mp4");
        assert_eq!(object_key("", "a.mp4"), "a.mp4");
        let settings =
            remote_settings(&pb::Storage { path_prefix: "x/../y".into(), ..block("gcs") }, &NodeStorage::default());
        assert!(settings.is_err());
    }
}
