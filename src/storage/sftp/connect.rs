//! One SSH connection with its SFTP channel: TCP connect (bounded), the host key checked
//! against the expected key, its fingerprint or the known-hosts file (trust on first use only
//! when the node allows it), password or key authentication, then the SFTP subsystem and the
//! server's extensions and limits.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::known_hosts::check_known_hosts_path;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::RawSftpSession;

use super::BACKEND;
use crate::storage::object::StorageError;
use crate::storage::settings::{Secret, SftpAuth, SftpSettings};

/// The TCP connection and the SSH handshake, host key check included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Authentication, the SFTP channel and its version exchange.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);
/// An SFTP request unanswered this long fails (the connection is then dropped).
pub(super) const REQUEST_TIMEOUT_S: u64 = 30;
/// An idle connection is closed after this long; the next operation opens a new one.
const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes per read or write request when the server states its limits (OpenSSH allows up to
/// 255 KiB); without them, the 32 KiB every server must accept.
const PREFERRED_IO_LEN: u64 = 128 * 1024;
const SAFE_IO_LEN: u64 = 32 * 1024;

/// AES-GCM first: with AES instructions it outruns ChaCha20-Poly1305 (russh's first choice).
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::AES_128_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_128_CTR,
];

const POSIX_RENAME: &str = "posix-rename@openssh.com";
const LIMITS: &str = "limits@openssh.com";

/// How the client proves who it is. The decoded key is kept (never printed).
pub(super) enum Auth {
    Password(Secret),
    Key(Arc<PrivateKey>),
}

impl Auth {
    pub(super) fn from_settings(auth: &SftpAuth) -> Result<Auth, StorageError> {
        match auth {
            SftpAuth::Password(password) => Ok(Auth::Password(password.clone())),
            SftpAuth::Key { private_key, passphrase } => {
                russh::keys::decode_secret_key(private_key.expose(), passphrase.as_ref().map(Secret::expose))
                    .map(|key| Auth::Key(Arc::new(key)))
                    .map_err(|err| StorageError::Settings {
                        field: "private_key",
                        reason: format!(
                            "sftp: not a usable OpenSSH or PEM private key (or a wrong passphrase): {}",
                            key_error(&err)
                        ),
                    })
            }
        }
    }
}

/// What a key error says, without anything of the key itself.
fn key_error(err: &russh::keys::Error) -> String {
    match err {
        russh::keys::Error::KeyIsEncrypted => "the key is encrypted and no passphrase was given".into(),
        russh::keys::Error::CouldNotReadKey => "the key could not be read".into(),
        other => format!("{other}").chars().take(200).collect(),
    }
}

/// The host key the settings expect.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ExpectedKey {
    Key(Box<PublicKey>),
    /// `SHA256:` and the unpadded base64 digest, as OpenSSH prints it.
    Fingerprint(String),
}

/// How a server's host key is judged.
#[derive(Debug, Clone)]
pub(super) struct HostKeyPolicy {
    expected: Option<ExpectedKey>,
    known_hosts: Option<PathBuf>,
    trust_on_first_use: bool,
}

impl HostKeyPolicy {
    pub(super) fn from_settings(settings: &SftpSettings) -> Result<HostKeyPolicy, StorageError> {
        let expected = settings.host_key.as_deref().map(parse_expected).transpose()?;
        Ok(HostKeyPolicy {
            expected,
            known_hosts: settings.known_hosts.clone(),
            trust_on_first_use: settings.trust_on_first_use,
        })
    }

    /// Accepts the server's key, or says why not (`host` is `host:port`).
    fn judge(&self, host: &str, port: u16, presented: &PublicKeyOrCertificate) -> Result<(), StorageError> {
        let key = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(certificate) => PublicKey::from(certificate.public_key().clone()),
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let refuse = |reason: String| StorageError::HostKey {
            host: host_port(host, port),
            fingerprint: fingerprint.clone(),
            reason,
        };
        match (&self.expected, &self.known_hosts) {
            (Some(ExpectedKey::Key(expected)), _) if expected.key_data() == key.key_data() => Ok(()),
            (Some(ExpectedKey::Fingerprint(expected)), _) if *expected == fingerprint => Ok(()),
            (Some(_), _) => Err(refuse("is not the expected key".into())),
            (None, Some(path)) => match check_known_hosts_path(host, port, &key, path) {
                Ok(true) => Ok(()),
                Ok(false) if self.trust_on_first_use => {
                    learn(path, host, port, &key).map_err(|err| {
                        refuse(format!("is unknown and could not be added to {}: {err}", path.display()))
                    })?;
                    tracing::warn!(
                        host = %host_port(host, port),
                        %fingerprint,
                        known_hosts = %path.display(),
                        "sftp: trusting a host key seen for the first time (added to the known-hosts file)"
                    );
                    Ok(())
                }
                Ok(false) => {
                    Err(refuse(format!("is unknown (not in {}) and trust on first use is off", path.display())))
                }
                Err(russh::keys::Error::KeyChanged { line }) => {
                    Err(refuse(format!("changed (line {line} of {} holds another key for this host)", path.display())))
                }
                Err(err) => Err(refuse(format!("could not be checked against {}: {err}", path.display()))),
            },
            (None, None) if self.trust_on_first_use => {
                tracing::warn!(
                    host = %host_port(host, port),
                    %fingerprint,
                    "sftp: trusting a host key seen for the first time (no known-hosts file to remember it)"
                );
                Ok(())
            }
            (None, None) => {
                Err(refuse("is unknown (no host_key given, no known-hosts file) and trust on first use is off".into()))
            }
        }
    }
}

/// Appends `key` for `host` to the known-hosts file (created with its directory when missing),
/// as OpenSSH writes it: `[host]:port` for a port other than 22.
fn learn(path: &std::path::Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
    use std::io::{Read as _, Seek as _, Write as _};
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new().read(true).append(true).create(true).open(path)?;
    let mut last = [0_u8; 1];
    let needs_newline =
        file.seek(std::io::SeekFrom::End(-1)).is_ok() && file.read_exact(&mut last).is_ok() && last[0] != b'\n';
    let pattern = if port == 22 { host.to_owned() } else { format!("[{host}]:{port}") };
    let line = key.to_openssh().map_err(std::io::Error::other)?;
    let entry = format!("{}{pattern} {}\n", if needs_newline { "\n" } else { "" }, line.trim());
    file.write_all(entry.as_bytes())?;
    file.sync_all()
}

/// An OpenSSH public key line (`ssh-ed25519 AAAA... comment`, also with a known-hosts host
/// pattern in front) or a `SHA256:` fingerprint.
fn parse_expected(value: &str) -> Result<ExpectedKey, StorageError> {
    let value = value.trim();
    if let Some(digest) = value.strip_prefix("SHA256:") {
        let digest = digest.trim_end_matches('=');
        if digest.is_empty() || !digest.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/') {
            return Err(host_key_setting("the SHA256 fingerprint is not base64"));
        }
        return Ok(ExpectedKey::Fingerprint(format!("SHA256:{digest}")));
    }
    if let Ok(key) = PublicKey::from_openssh(value) {
        return Ok(ExpectedKey::Key(Box::new(key)));
    }
    // `host[,host] ssh-ed25519 AAAA...`: a line copied from a known-hosts file.
    if let Some((_, rest)) = value.split_once(char::is_whitespace)
        && let Ok(key) = PublicKey::from_openssh(rest.trim_start())
    {
        return Ok(ExpectedKey::Key(Box::new(key)));
    }
    Err(host_key_setting("not an OpenSSH public key line (`ssh-ed25519 AAAA...`) or a `SHA256:...` fingerprint"))
}

fn host_key_setting(reason: &str) -> StorageError {
    StorageError::Settings { field: "host_key", reason: format!("sftp: {reason}") }
}

/// `host:port`, with an IPv6 address in brackets.
pub(super) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The russh client: checks the host key and keeps its verdict, because russh turns a refusal
/// into its own `UnknownKey` error.
struct Client {
    policy: Arc<HostKeyPolicy>,
    host: String,
    port: u16,
    verdict: Arc<Mutex<Option<StorageError>>>,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, presented: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        match self.policy.judge(&self.host, self.port, presented) {
            Ok(()) => Ok(true),
            Err(refusal) => {
                if let Ok(mut verdict) = self.verdict.lock() {
                    *verdict = Some(refusal);
                }
                Ok(false)
            }
        }
    }
}

/// An authenticated SSH connection and its SFTP session.
pub(super) struct Connection {
    ssh: russh::client::Handle<Client>,
    pub(super) sftp: Arc<RawSftpSession>,
    /// The server renames over an existing file atomically (`posix-rename@openssh.com`).
    pub(super) posix_rename: bool,
    /// Bytes per write request.
    pub(super) write_len: usize,
    /// Bytes per read request.
    pub(super) read_len: u32,
}

impl Connection {
    pub(super) fn is_closed(&self) -> bool {
        self.ssh.is_closed()
    }
}

/// Where a connection is opened from, for its errors: the operation and the object's location.
pub(super) struct Purpose<'a> {
    pub op: &'static str,
    pub location: &'a str,
}

impl Purpose<'_> {
    fn unavailable(&self, reason: String) -> StorageError {
        StorageError::Unavailable { backend: BACKEND, op: self.op, location: self.location.to_owned(), reason }
    }

    fn refused(&self, reason: String) -> StorageError {
        StorageError::Refused { backend: BACKEND, op: self.op, location: self.location.to_owned(), reason }
    }
}

/// Connects, checks the host key, authenticates and starts SFTP.
pub(super) async fn open(
    settings: &SftpSettings,
    auth: &Auth,
    policy: &Arc<HostKeyPolicy>,
    purpose: &Purpose<'_>,
) -> Result<Connection, StorageError> {
    let address = host_port(&settings.host, settings.port);
    let config = Arc::new(russh::client::Config {
        preferred: russh::Preferred { cipher: std::borrow::Cow::Borrowed(CIPHERS), ..russh::Preferred::DEFAULT },
        inactivity_timeout: Some(INACTIVITY_TIMEOUT),
        nodelay: true,
        ..Default::default()
    });
    let verdict = Arc::new(Mutex::new(None));
    let client =
        Client { policy: policy.clone(), host: settings.host.clone(), port: settings.port, verdict: verdict.clone() };
    let connecting = russh::client::connect(config, (settings.host.as_str(), settings.port), client);
    let mut ssh = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => {
            return Err(
                purpose.unavailable(format!("no SSH handshake with {address} within {} s", CONNECT_TIMEOUT.as_secs()))
            );
        }
        Ok(Err(err)) => {
            if let Some(refusal) = verdict.lock().ok().and_then(|mut v| v.take()) {
                return Err(refusal);
            }
            return Err(match err {
                russh::Error::Version | russh::Error::NoCommonAlgo { .. } => {
                    purpose.refused(format!("{address} does not speak SSH as this client does: {err}"))
                }
                other => purpose.unavailable(format!("could not connect to {address}: {other}")),
            });
        }
        Ok(Ok(ssh)) => ssh,
    };
    let setup = async {
        authenticate(&mut ssh, settings, auth, purpose, &address).await?;
        start_sftp(&ssh, purpose).await
    };
    let (sftp, posix_rename, write_len, read_len) =
        tokio::time::timeout(SETUP_TIMEOUT, setup).await.map_err(|_| {
            purpose.unavailable(format!("{address} did not start SFTP within {} s", SETUP_TIMEOUT.as_secs()))
        })??;
    Ok(Connection { ssh, sftp, posix_rename, write_len, read_len })
}

async fn authenticate(
    ssh: &mut russh::client::Handle<Client>,
    settings: &SftpSettings,
    auth: &Auth,
    purpose: &Purpose<'_>,
    address: &str,
) -> Result<(), StorageError> {
    let user = settings.username.as_str();
    let (result, method) = match auth {
        Auth::Password(password) => (ssh.authenticate_password(user, password.expose()).await, "password"),
        Auth::Key(key) => {
            // RSA keys sign with the best hash the server accepts; others ignore it.
            let hash = if key.algorithm().is_rsa() {
                ssh.best_supported_rsa_hash().await.ok().flatten().flatten()
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(key.clone(), hash);
            (ssh.authenticate_publickey(user, key).await, "key")
        }
    };
    match result {
        Ok(outcome) if outcome.success() => Ok(()),
        Ok(_) => Err(purpose.refused(format!("authentication of {user} at {address} failed ({method})"))),
        Err(err) => Err(purpose.unavailable(format!("authentication at {address} broke off: {err}"))),
    }
}

/// Opens the SFTP channel; returns the session, whether `posix-rename` is there, and the
/// write and read request sizes.
async fn start_sftp(
    ssh: &russh::client::Handle<Client>,
    purpose: &Purpose<'_>,
) -> Result<(Arc<RawSftpSession>, bool, usize, u32), StorageError> {
    let channel = ssh
        .channel_open_session()
        .await
        .map_err(|err| purpose.unavailable(format!("could not open an SSH channel: {err}")))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|err| purpose.unavailable(format!("could not start the SFTP subsystem: {err}")))?;
    let config = russh_sftp::client::Config { request_timeout_secs: REQUEST_TIMEOUT_S, ..Default::default() };
    let sftp = RawSftpSession::new_with_config(channel.into_stream(), config);
    let version = sftp.init().await.map_err(|err| match err {
        russh_sftp::client::error::Error::Status(status) => {
            purpose.refused(format!("the server refused SFTP: {}", status.error_message))
        }
        other => purpose.unavailable(format!("SFTP did not start: {other}")),
    })?;
    let offers = |name: &str| version.extensions.get(name).is_some_and(|v| v == "1");
    let (mut write_len, mut read_len) = (SAFE_IO_LEN, SAFE_IO_LEN);
    if offers(LIMITS)
        && let Ok(limits) = sftp.limits().await
    {
        let within = |limit: u64| if limit == 0 { PREFERRED_IO_LEN } else { limit.min(PREFERRED_IO_LEN) };
        write_len = within(limits.max_write_len);
        read_len = within(limits.max_read_len);
    }
    let write_len = usize::try_from(write_len).unwrap_or(32 * 1024);
    let read_len = u32::try_from(read_len).unwrap_or(32 * 1024);
    Ok((Arc::new(sftp), offers(POSIX_RENAME), write_len, read_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    fn presented(line: &str) -> PublicKeyOrCertificate {
        PublicKeyOrCertificate::PublicKey { key: PublicKey::from_openssh(line).expect("key"), hash_alg: None }
    }

    fn policy(expected: Option<&str>) -> HostKeyPolicy {
        HostKeyPolicy {
            expected: expected.map(|e| parse_expected(e).expect("expected key")),
            known_hosts: None,
            trust_on_first_use: false,
        }
    }

    #[test]
    fn expected_keys_parse_in_every_form() {
        assert!(matches!(parse_expected(KEY), Ok(ExpectedKey::Key(_))));
        assert!(matches!(parse_expected(&format!("{KEY} root@host")), Ok(ExpectedKey::Key(_))));
        assert!(matches!(parse_expected(&format!("[10.0.0.1]:2222 {KEY}")), Ok(ExpectedKey::Key(_))));
        assert!(matches!(parse_expected("SHA256:abc+/="), Ok(ExpectedKey::Fingerprint(f)) if f == "SHA256:abc+/"));
        for bad in ["", "SHA256:", "SHA256:not base64!", "MD5:aa:bb", "ssh-ed25519 nonsense"] {
            let err = parse_expected(bad).expect_err(bad);
            assert!(matches!(err, StorageError::Settings { field: "host_key", .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn keys_and_fingerprints_are_compared() {
        let fingerprint = PublicKey::from_openssh(KEY).expect("key").fingerprint(HashAlg::Sha256).to_string();
        assert!(fingerprint.starts_with("SHA256:") && !fingerprint.ends_with('='), "{fingerprint}");
        policy(Some(KEY)).judge("h", 22, &presented(KEY)).expect("same key");
        policy(Some(&fingerprint)).judge("h", 22, &presented(KEY)).expect("same fingerprint");
        let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";
        for expected in [KEY, fingerprint.as_str()] {
            let err = policy(Some(expected)).judge("h", 2222, &presented(other)).expect_err("another key");
            let StorageError::HostKey { host, fingerprint: seen, reason } = &err else { panic!("{err}") };
            assert_eq!(host, "h:2222");
            assert_ne!(*seen, fingerprint);
            assert_eq!(reason, "is not the expected key");
        }
        let err = policy(None).judge("h", 22, &presented(KEY)).expect_err("nothing to check against");
        assert!(err.to_string().contains("trust on first use is off"), "{err}");
    }

    #[test]
    fn learned_keys_are_found_again() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ssh/known_hosts");
        let key = PublicKey::from_openssh(KEY).expect("key");
        learn(&path, "10.0.0.1", 2222, &key).expect("learn");
        std::fs::write(&path, std::fs::read_to_string(&path).expect("read").trim_end()).expect("no final newline");
        learn(&path, "10.0.0.2", 22, &key).expect("learn again");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("[10.0.0.1]:2222 {KEY}\n10.0.0.2 {KEY}\n"));
        assert!(check_known_hosts_path("10.0.0.1", 2222, &key, &path).expect("check"));
        assert!(check_known_hosts_path("10.0.0.2", 22, &key, &path).expect("check"));
        assert!(!check_known_hosts_path("10.0.0.1", 22, &key, &path).expect("check"));
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(host_port("::1", 22), "[::1]:22");
        assert_eq!(host_port("example.com", 2222), "example.com:2222");
    }
}
