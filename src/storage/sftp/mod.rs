//! SFTP as a backend (russh + russh-sftp). Keys are paths relative to the user's login
//! directory (SFTP's starting directory), or absolute when they start with `/`.
//!
//! One SSH connection per store, opened by [`SftpStore::connect`] (which checks the host key
//! and the credentials at once) and shared by the store's operations behind a lock; an
//! operation that finds it broken drops it, so the next attempt connects again.
//!
//! `put_file` creates the parent directories, streams the file into a hidden temporary name
//! in the same directory (`.{name}.partial-{uuid}`, several writes in flight), reads it back
//! (size, then SHA-256 over SFTP) and renames it over the final name: atomically with the
//! `posix-rename@openssh.com` extension (OpenSSH has it); a server without it only has the
//! plain SFTP rename, which refuses an existing target, so the old object is removed first and
//! there is a moment with no object under the name (never a partial one). On failure the
//! temporary file is removed (best effort: not when the connection itself is gone).

mod connect;
mod transfer;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use self::connect::{Auth, Connection, HostKeyPolicy, Purpose, host_port};
use self::transfer::{Failure, Sink};
use super::object::{DownloadUrl, FileFacts, ObjectMeta, ObjectStore, PutReceipt, StorageError};
use super::settings::SftpSettings;

const BACKEND: &str = "sftp";

/// How long cleaning up after a failed upload may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SftpStore {
    settings: SftpSettings,
    auth: Auth,
    policy: Arc<HostKeyPolicy>,
    /// The shared connection; `None` until the first use or after it broke.
    session: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

impl std::fmt::Debug for SftpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpStore")
            .field("host", &self.settings.host)
            .field("port", &self.settings.port)
            .field("username", &self.settings.username)
            .finish_non_exhaustive()
    }
}

impl SftpStore {
    /// Connects: the host key and the credentials are checked here.
    pub async fn connect(settings: &SftpSettings) -> Result<SftpStore, StorageError> {
        let store = SftpStore {
            settings: settings.clone(),
            auth: Auth::from_settings(&settings.auth)?,
            policy: Arc::new(HostKeyPolicy::from_settings(settings)?),
            session: tokio::sync::Mutex::new(None),
        };
        store.connection("connect", "").await?;
        Ok(store)
    }

    /// The shared connection, opened again when it is gone.
    async fn connection(&self, op: &'static str, key: &str) -> Result<Arc<Connection>, StorageError> {
        let mut session = self.session.lock().await;
        if let Some(connection) = session.as_ref()
            && !connection.is_closed()
        {
            return Ok(connection.clone());
        }
        *session = None;
        let location = self.location(key);
        let purpose = Purpose { op, location: &location };
        let connection = Arc::new(connect::open(&self.settings, &self.auth, &self.policy, &purpose).await?);
        tracing::debug!(host = %host_port(&self.settings.host, self.settings.port), "sftp: connected");
        *session = Some(connection.clone());
        Ok(connection)
    }

    /// Drops `connection` after a failure that says it is broken.
    async fn settle<T>(&self, connection: &Arc<Connection>, result: &Result<T, StorageError>) {
        if matches!(result, Err(StorageError::Unavailable { .. })) {
            let mut session = self.session.lock().await;
            if session.as_ref().is_some_and(|current| Arc::ptr_eq(current, connection)) {
                *session = None;
            }
        }
    }

    /// The remote path of `key`: relative to the login directory, or absolute.
    fn remote_path(&self, key: &str) -> Result<String, StorageError> {
        let relative = key.strip_prefix('/').unwrap_or(key);
        if relative.is_empty() || relative.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(StorageError::Settings {
                field: "key",
                reason: format!("sftp: {} is not a plain file path", self.location(key)),
            });
        }
        Ok(key.to_owned())
    }

    /// What an SFTP failure means for `op` on `key`.
    fn failure(&self, op: &'static str, key: &str, err: SftpError) -> StorageError {
        let location = self.location(key);
        match err {
            SftpError::Status(status) => match status.status_code {
                StatusCode::NoSuchFile => StorageError::NotFound { backend: BACKEND, location },
                StatusCode::NoConnection | StatusCode::ConnectionLost => StorageError::Unavailable {
                    backend: BACKEND,
                    op,
                    location,
                    reason: format!("connection lost: {}", status.error_message),
                },
                code => StorageError::Refused {
                    backend: BACKEND,
                    op,
                    location,
                    reason: match status.error_message.trim() {
                        "" => code.to_string().to_lowercase(),
                        message => format!("{}: {message}", code.to_string().to_lowercase()),
                    },
                },
            },
            SftpError::Timeout => StorageError::Unavailable {
                backend: BACKEND,
                op,
                location,
                reason: format!("no answer within {} s", connect::REQUEST_TIMEOUT_S),
            },
            other => {
                StorageError::Unavailable { backend: BACKEND, op, location, reason: format!("session broke: {other}") }
            }
        }
    }

    fn transfer_failure(&self, op: &'static str, key: &str, failure: Failure, limit: u64) -> StorageError {
        match failure {
            Failure::Sftp(err) => self.failure(op, key, err),
            Failure::Local(path, source) => self.local(op, key, path, source),
            Failure::TooLarge => {
                StorageError::TooLarge { backend: BACKEND, location: self.location(key), limit_bytes: limit }
            }
            Failure::SinkClosed => StorageError::Io {
                path: std::path::PathBuf::new(),
                source: std::io::Error::other(format!("sftp {op} {}: the local side stopped", self.location(key))),
            },
        }
    }

    /// This node's file failed: the error keeps its kind and names the transfer.
    fn local(&self, op: &'static str, key: &str, path: std::path::PathBuf, source: std::io::Error) -> StorageError {
        let source = std::io::Error::new(source.kind(), format!("sftp {op} {}: {source}", self.location(key)));
        StorageError::Io { path, source }
    }

    async fn put(
        &self,
        conn: &Connection,
        key: &str,
        path: &Path,
        expected: &FileFacts,
    ) -> Result<PutReceipt, StorageError> {
        let remote = self.remote_path(key)?;
        let (dir, name) = match remote.rsplit_once('/') {
            Some(("", name)) => (Some("/"), name),
            Some((dir, name)) => (Some(dir), name),
            None => (None, remote.as_str()),
        };
        if let Some(dir) = dir {
            make_dirs(conn, dir).await.map_err(|err| self.failure("put", key, err))?;
        }
        let temporary_name = format!(".{name}.partial-{}", uuid::Uuid::new_v4().simple());
        let temporary = match dir {
            Some("/") => format!("/{temporary_name}"),
            Some(dir) => format!("{dir}/{temporary_name}"),
            None => temporary_name,
        };
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE | OpenFlags::EXCLUDE;
        let handle = conn
            .sftp
            .open(temporary.as_str(), flags, FileAttributes::empty())
            .await
            .map_err(|err| self.failure("put", key, err))?
            .handle;
        let result = self.fill_check_rename(conn, key, &remote, &temporary, &handle, path, expected).await;
        if result.is_err() {
            let cleanup = async {
                let _ = conn.sftp.close(handle.as_str()).await;
                let _ = conn.sftp.remove(temporary.as_str()).await;
            };
            let _ = tokio::time::timeout(CLEANUP_TIMEOUT, cleanup).await;
        }
        result
    }

    #[expect(clippy::too_many_arguments, reason = "the steps of one upload, split off for its cleanup")]
    async fn fill_check_rename(
        &self,
        conn: &Connection,
        key: &str,
        remote: &str,
        temporary: &str,
        handle: &str,
        path: &Path,
        expected: &FileFacts,
    ) -> Result<PutReceipt, StorageError> {
        let fail = |err| self.failure("put", key, err);
        let sent =
            transfer::upload(conn, handle, path).await.map_err(|f| self.transfer_failure("put", key, f, u64::MAX))?;
        conn.sftp.close(handle).await.map_err(fail)?;
        let mismatch =
            |reason: String| StorageError::Mismatch { backend: BACKEND, location: self.location(key), reason };
        if sent != expected.size_bytes {
            return Err(mismatch(format!(
                "sent {sent} bytes of {}; expected {} bytes",
                path.display(),
                expected.size_bytes
            )));
        }
        let stored = conn.sftp.stat(temporary).await.map_err(fail)?.attrs;
        if stored.size != Some(expected.size_bytes) {
            return Err(mismatch(format!(
                "the server holds {:?} bytes; expected {}",
                stored.size, expected.size_bytes
            )));
        }
        let (read_back, sha256) = self.hash_remote(conn, key, temporary).await?;
        if read_back != expected.size_bytes || sha256 != expected.sha256 {
            return Err(mismatch(format!(
                "read back {read_back} bytes, sha256 {sha256}; expected {} bytes, {}",
                expected.size_bytes, expected.sha256
            )));
        }
        self.rename(conn, temporary, remote).await.map_err(fail)?;
        let attrs = conn.sftp.stat(remote).await.map_err(fail)?.attrs;
        Ok(PutReceipt { meta: meta_of(&attrs), verified: "size and SHA-256 read back over SFTP".into() })
    }

    /// Size and SHA-256 of a remote file, read over SFTP.
    async fn hash_remote(&self, conn: &Connection, key: &str, remote: &str) -> Result<(u64, String), StorageError> {
        let fail = |err| self.failure("put", key, err);
        let handle = conn.sftp.open(remote, OpenFlags::READ, FileAttributes::empty()).await.map_err(fail)?.handle;
        let (mut sink, digest) = transfer::hashing();
        let read = transfer::download(conn, &handle, 0..u64::MAX, u64::MAX, &mut sink).await;
        drop(sink);
        let read = read.map_err(|f| self.transfer_failure("put", key, f, u64::MAX))?;
        conn.sftp.close(handle.as_str()).await.map_err(fail)?;
        let digest = digest.await.map_err(|err| StorageError::Io {
            path: std::path::PathBuf::new(),
            source: std::io::Error::other(format!("sftp put {}: hashing failed: {err}", self.location(key))),
        })?;
        Ok((read, digest))
    }

    /// Renames `from` over `to`.
    async fn rename(&self, conn: &Connection, from: &str, to: &str) -> Result<(), SftpError> {
        if conn.posix_rename {
            let mut data = Vec::with_capacity(8 + from.len() + to.len());
            for path in [from, to] {
                data.extend_from_slice(&u32::try_from(path.len()).unwrap_or(u32::MAX).to_be_bytes());
                data.extend_from_slice(path.as_bytes());
            }
            return match conn.sftp.extended("posix-rename@openssh.com", data).await? {
                Packet::Status(status) if status.status_code == StatusCode::Ok => Ok(()),
                Packet::Status(status) => Err(SftpError::Status(status)),
                _ => Err(SftpError::UnexpectedPacket),
            };
        }
        match conn.sftp.remove(to).await {
            Ok(_) => {}
            Err(SftpError::Status(status)) if status.status_code == StatusCode::NoSuchFile => {}
            Err(err) => return Err(err),
        }
        conn.sftp.rename(from, to).await.map(|_| ())
    }

    async fn get(&self, conn: &Connection, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectMeta, StorageError> {
        let remote = self.remote_path(key)?;
        let fail = |err| self.failure("get", key, err);
        let attrs = conn.sftp.stat(remote.as_str()).await.map_err(fail)?.attrs;
        if attrs.is_dir() {
            return Err(StorageError::NotFound { backend: BACKEND, location: self.location(key) });
        }
        if attrs.size.is_some_and(|size| size > max_bytes) {
            return Err(StorageError::TooLarge {
                backend: BACKEND,
                location: self.location(key),
                limit_bytes: max_bytes,
            });
        }
        let handle =
            conn.sftp.open(remote.as_str(), OpenFlags::READ, FileAttributes::empty()).await.map_err(fail)?.handle;
        let (mut sink, written) = transfer::writing(dest.to_path_buf());
        let read = transfer::download(conn, &handle, 0..max_bytes.saturating_add(1), max_bytes, &mut sink).await;
        drop(sink);
        let written = written.await.map_err(std::io::Error::other).and_then(|outcome| outcome);
        let outcome = match (read, written) {
            (Ok(size), Ok(())) => Ok(size),
            // The local file's own error says more than a closed queue.
            (Ok(_) | Err(Failure::SinkClosed), Err(source)) => Err(self.local("get", key, dest.to_path_buf(), source)),
            (Err(failure), _) => Err(self.transfer_failure("get", key, failure, max_bytes)),
        };
        let _ = conn.sftp.close(handle.as_str()).await;
        match outcome {
            Ok(size) => Ok(ObjectMeta { size_bytes: size, etag: etag(size, &attrs) }),
            Err(err) => {
                let _ = std::fs::remove_file(dest);
                Err(err)
            }
        }
    }

    async fn range(&self, conn: &Connection, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let remote = self.remote_path(key)?;
        let fail = |err| self.failure("get", key, err);
        let handle =
            conn.sftp.open(remote.as_str(), OpenFlags::READ, FileAttributes::empty()).await.map_err(fail)?.handle;
        let capacity = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(0).min(16 << 20);
        let mut sink = Sink::Memory(Vec::with_capacity(capacity));
        let read = transfer::download(conn, &handle, range, u64::MAX, &mut sink).await;
        let _ = conn.sftp.close(handle.as_str()).await;
        read.map_err(|f| self.transfer_failure("get", key, f, u64::MAX))?;
        match sink {
            Sink::Memory(bytes) => Ok(Bytes::from(bytes)),
            Sink::Thread(_) => Ok(Bytes::new()),
        }
    }

    async fn metadata(&self, conn: &Connection, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let remote = self.remote_path(key)?;
        match conn.sftp.stat(remote).await {
            Ok(attrs) if attrs.attrs.is_dir() => Ok(None),
            Ok(attrs) => Ok(Some(meta_of(&attrs.attrs))),
            Err(SftpError::Status(status)) if status.status_code == StatusCode::NoSuchFile => Ok(None),
            Err(err) => Err(self.failure("stat", key, err)),
        }
    }

    async fn remove(&self, conn: &Connection, key: &str) -> Result<(), StorageError> {
        let remote = self.remote_path(key)?;
        match conn.sftp.remove(remote).await {
            Ok(_) => Ok(()),
            Err(SftpError::Status(status)) if status.status_code == StatusCode::NoSuchFile => Ok(()),
            Err(err) => Err(self.failure("delete", key, err)),
        }
    }
}

/// `mkdir -p dir` (directories that are there already are fine).
async fn make_dirs(conn: &Connection, dir: &str) -> Result<(), SftpError> {
    if is_dir(conn, dir).await? {
        return Ok(());
    }
    let mut prefix = String::new();
    for part in dir.split('/') {
        if part.is_empty() {
            if prefix.is_empty() {
                prefix.push('/');
            }
            continue;
        }
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        prefix.push_str(part);
        if let Err(err) = conn.sftp.mkdir(prefix.as_str(), FileAttributes::empty()).await
            && !is_dir(conn, &prefix).await?
        {
            return Err(err);
        }
    }
    Ok(())
}

async fn is_dir(conn: &Connection, path: &str) -> Result<bool, SftpError> {
    match conn.sftp.stat(path).await {
        Ok(attrs) => Ok(attrs.attrs.is_dir()),
        Err(SftpError::Status(status)) if status.status_code == StatusCode::NoSuchFile => Ok(false),
        Err(err) => Err(err),
    }
}

/// SFTP has no entity tag: size and modification time (seconds) stand in for one.
fn etag(size: u64, attrs: &FileAttributes) -> Option<String> {
    Some(format!("{size}-{}", attrs.mtime.unwrap_or(0)))
}

fn meta_of(attrs: &FileAttributes) -> ObjectMeta {
    let size_bytes = attrs.size.unwrap_or(0);
    ObjectMeta { size_bytes, etag: etag(size_bytes, attrs) }
}

#[async_trait::async_trait]
impl ObjectStore for SftpStore {
    fn kind(&self) -> &'static str {
        BACKEND
    }

    /// `sftp://host:port/key` (a relative key is under the login directory; an absolute one
    /// shows as `sftp://host:port//abs/path`). No user, no password.
    fn location(&self, key: &str) -> String {
        format!("sftp://{}/{key}", host_port(&self.settings.host, self.settings.port))
    }

    async fn put_file(&self, key: &str, path: &Path, expected: &FileFacts) -> Result<PutReceipt, StorageError> {
        let conn = self.connection("put", key).await?;
        let started = std::time::Instant::now();
        let result = self.put(&conn, key, path, expected).await;
        self.settle(&conn, &result).await;
        tracing::debug!(location = %self.location(key), bytes = expected.size_bytes, ok = result.is_ok(), elapsed_ms = started.elapsed().as_millis() as u64, "sftp put");
        result
    }

    async fn get_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectMeta, StorageError> {
        let conn = self.connection("get", key).await?;
        let result = self.get(&conn, key, dest, max_bytes).await;
        self.settle(&conn, &result).await;
        tracing::debug!(location = %self.location(key), ok = result.is_ok(), "sftp get");
        result
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let conn = self.connection("get", key).await?;
        let result = self.range(&conn, key, range.clone()).await;
        self.settle(&conn, &result).await;
        tracing::debug!(location = %self.location(key), start = range.start, end = range.end, ok = result.is_ok(), "sftp get range");
        result
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let conn = self.connection("stat", key).await?;
        let result = self.metadata(&conn, key).await;
        self.settle(&conn, &result).await;
        tracing::debug!(location = %self.location(key), ok = result.is_ok(), "sftp stat");
        result
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let conn = self.connection("delete", key).await?;
        let result = self.remove(&conn, key).await;
        self.settle(&conn, &result).await;
        tracing::debug!(location = %self.location(key), ok = result.is_ok(), "sftp delete");
        result
    }

    async fn download_url(&self, _key: &str, _expires_in: Duration) -> Result<Option<DownloadUrl>, StorageError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::settings::{Secret, SftpAuth};

    fn store(host: &str) -> SftpStore {
        let settings = SftpSettings {
            host: host.into(),
            port: 2222,
            username: "u".into(),
            auth: SftpAuth::Password(Secret::new("pw")),
            host_key: Some("SHA256:abc".into()),
            known_hosts: None,
            trust_on_first_use: false,
        };
        SftpStore {
            auth: Auth::from_settings(&settings.auth).expect("auth"),
            policy: Arc::new(HostKeyPolicy::from_settings(&settings).expect("policy")),
            settings,
            session: tokio::sync::Mutex::new(None),
        }
    }

    #[test]
    fn locations_name_host_port_and_path_but_no_credentials() {
        let named = store("files.example.com");
        assert_eq!(named.location("calls/a b.mp4"), "sftp://files.example.com:2222/calls/a b.mp4");
        assert_eq!(named.location("/srv/x.mp4"), "sftp://files.example.com:2222//srv/x.mp4");
        assert_eq!(store("::1").location("x"), "sftp://[::1]:2222/x");
        let debug = format!("{named:?}");
        assert!(debug.contains("files.example.com") && !debug.contains("pw"), "{debug}");
    }

    #[test]
    fn keys_are_plain_paths() {
        let store = store("h");
        for good in ["a", "a/b c/ü.mp4", "/srv/out/x.mp4"] {
            assert_eq!(store.remote_path(good).expect(good), good);
        }
        for bad in ["", "/", "a//b", "a/../b", "./a", "a/", "//a"] {
            let err = store.remote_path(bad).expect_err(bad);
            assert!(matches!(err, StorageError::Settings { field: "key", .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn status_codes_map_to_errors() {
        let store = store("h");
        let status = |code| {
            SftpError::Status(russh_sftp::protocol::Status {
                id: 1,
                status_code: code,
                error_message: "msg".into(),
                language_tag: String::new(),
            })
        };
        assert!(matches!(store.failure("get", "k", status(StatusCode::NoSuchFile)), StorageError::NotFound { .. }));
        let denied = store.failure("put", "k", status(StatusCode::PermissionDenied));
        assert!(matches!(denied, StorageError::Refused { .. }), "{denied}");
        assert_eq!(denied.to_string(), "sftp put sftp://h:2222/k: refused: permission denied: msg");
        for transient in [status(StatusCode::ConnectionLost), SftpError::Timeout, SftpError::IO("reset".into())] {
            assert!(store.failure("put", "k", transient).is_transient());
        }
    }
}
