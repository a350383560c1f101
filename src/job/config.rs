//! `tessera serve`'s configuration: a TOML file (every key optional, unknown keys refused with
//! their path), then environment overrides `TESSERA__SECTION__KEY=value` (the value read as a
//! TOML value when it is one, as a string otherwise). `config.example.toml` lists every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::render::DEFAULT_MAX_CALL_SPAN_H;
use crate::render::watchdog::DEFAULT_STALL_TIMEOUT_S;

/// Prefix of the environment overrides.
pub const ENV_PREFIX: &str = "TESSERA__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub jobs: JobsConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub webhooks: WebhookConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// gRPC address; port 0 picks a free one (printed at start).
    pub listen: SocketAddr,
    /// Prometheus metrics (`/metrics`) address; empty: no metrics endpoint.
    pub metrics_listen: String,
    /// The job store and the jobs' working files live here.
    pub data_dir: PathBuf,
    /// This node's name on the job store (the holder of its jobs' leases); empty: a name made
    /// once and kept in `data_dir/node-id`.
    pub node_id: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The shared job store of a farm: `postgres://user:password@host:port/database`. Empty:
    /// the embedded SQLite file under `server.data_dir` (one node).
    pub url: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs rendered at once; the rest wait in the queue.
    pub max_concurrent: u32,
    /// On SIGTERM/SIGINT, running jobs get this long to finish before they are stopped and
    /// queued again for the next start.
    pub shutdown_grace_s: u64,
    /// Progress events and stored progress at most this often (at least 1000).
    pub progress_interval_ms: u64,
    /// A running job is leased to its node for this long and renewed every third of it; a node
    /// that dies loses its jobs to the other nodes after at most this long.
    pub lease_s: u64,
    /// A render that makes no progress (no media moving, no frame or file done) for this long
    /// fails (code `stalled`) and frees its slot.
    pub stall_timeout_s: u64,
    /// A call whose media lies further than this from its start (metadata placing a
    /// participant years away) is refused (code `call_too_long`) before anything is rendered.
    pub max_call_span_h: u64,
    /// Each job renders in a child process of its own: a crash in GStreamer, a codec or the
    /// GPU driver fails that job and the node goes on. False: on the server's threads.
    pub isolate: bool,
    /// Where GPU memory can be measured (`nvidia-smi`), take a job only while a GPU has this
    /// much free (0: do not look).
    pub min_gpu_free_mib: u64,
    /// Where encoder sessions can be measured, take a job only while a GPU has fewer open
    /// (0: no limit; consumer NVIDIA GPUs allow a handful).
    pub max_encoder_sessions: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Local outputs (`storage.path_prefix`) go under this directory: a relative path_prefix
    /// is taken relative to it, an absolute one must lie under it, `..` is refused. Not set:
    /// `data_dir/outputs`.
    pub local_root: Option<PathBuf>,
    /// When not empty, local raw archives must lie under one of these directories.
    pub source_roots: Vec<PathBuf>,
    /// Largest raw archive downloaded from a remote source.
    pub max_download_bytes: u64,
    /// The storage of a job that names none (`[storage.default]`: the fields of a job's
    /// storage block, snake_case). Not set: every job names its storage.
    pub default: Option<StorageBlock>,
    /// Credentials for sources in storage (`s3://`, `gs://`, `sftp://`, Azure blob URLs) when
    /// a job gives no `source_storage` of the source's type (`[storage.source]`); then
    /// `default` is tried.
    pub source: Option<StorageBlock>,
    /// OpenSSH known-hosts file for SFTP servers whose job gives no `host_key`.
    pub known_hosts: Option<PathBuf>,
    /// Accept an SFTP host key never seen before (and add it to `known_hosts`). A changed key
    /// is refused whatever this says.
    pub trust_on_first_use: bool,
    /// Lifetime of the outputs' download URLs (presigned, SAS) when the job does not say.
    pub url_expiry_s: u64,
    /// Downloaded sources are kept here and revalidated by ETag; not set: `data_dir/cache`.
    pub cache_dir: Option<PathBuf>,
    /// The cache's size; the least recently used sources are evicted beyond it.
    pub cache_max_bytes: u64,
    /// Attempts per upload or download (the first included), with exponential backoff and
    /// jitter from `retry_first_backoff_ms` up to `retry_max_backoff_ms`.
    pub retry_attempts: u32,
    pub retry_first_backoff_ms: u64,
    pub retry_max_backoff_ms: u64,
}

/// A storage block of the node's config: the contract's `Storage`, never printed (it holds
/// credentials).
#[derive(Clone, Deserialize, PartialEq, Default)]
#[serde(transparent)]
pub struct StorageBlock(pub crate::proto::Storage);

impl std::fmt::Debug for StorageBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StorageBlock({:?}, credentials not shown)", self.0.r#type)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accepted bearer tokens (`authorization: Bearer <token>`); empty: no authentication.
    pub bearer_tokens: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain and private key; both or neither.
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Attempts per event, the first included.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Per attempt.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (one object per line, with the job id of every line inside a job) or `text`.
    pub format: String,
    /// A `tracing` filter (`info`, `tessera=debug,info`); RUST_LOG wins when set.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: "127.0.0.1:9464".into(),
            data_dir: PathBuf::from("tessera-data"),
            node_id: String::new(),
        }
    }
}

impl JobsConfig {
    /// What a GPU must have free for this node to take a job.
    pub fn needs(&self) -> crate::job::capacity::Needs {
        crate::job::capacity::Needs {
            min_gpu_free_mib: self.min_gpu_free_mib,
            max_encoder_sessions: self.max_encoder_sessions,
        }
    }
}

impl Default for JobsConfig {
    fn default() -> JobsConfig {
        JobsConfig {
            max_concurrent: 2,
            shutdown_grace_s: 30,
            progress_interval_ms: 1000,
            lease_s: 30,
            isolate: true,
            min_gpu_free_mib: 1024,
            max_encoder_sessions: 0,
            stall_timeout_s: DEFAULT_STALL_TIMEOUT_S,
            max_call_span_h: DEFAULT_MAX_CALL_SPAN_H,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            local_root: None,
            source_roots: Vec::new(),
            max_download_bytes: 64 << 30,
            default: None,
            source: None,
            known_hosts: None,
            trust_on_first_use: false,
            url_expiry_s: 86_400,
            cache_dir: None,
            cache_max_bytes: 50 << 30,
            retry_attempts: 6,
            retry_first_backoff_ms: 1000,
            retry_max_backoff_ms: 30_000,
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig { max_attempts: 6, initial_backoff_ms: 500, max_backoff_ms: 30_000, timeout_ms: 10_000 }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig { format: "json".into(), level: "info".into() }
    }
}

impl ServeConfig {
    /// Reads `path` (or starts from the defaults), then applies the `TESSERA__*` variables of
    /// `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServeConfig, ConfigError> {
        let (origin, text) = match path {
            Some(path) => {
                let shown = path.display().to_string();
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: shown.clone(), source })?;
                (shown, text)
            }
            None => ("(defaults)".to_owned(), String::new()),
        };
        // The error's position and reason, not the line itself (it may hold a token).
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(0, |span| text[..span.start.min(text.len())].lines().count().max(1));
            ConfigError::Invalid { origin: origin.clone(), message: format!("line {line}: {}", e.message()) }
        })?;
        let mut overridden = Vec::new();
        for (name, value) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else { continue };
            set_path(&mut table, &key.to_ascii_lowercase(), &value)
                .map_err(|message| ConfigError::Invalid { origin: name.clone(), message })?;
            overridden.push(name);
        }
        let origin = if overridden.is_empty() { origin } else { format!("{origin} with {}", overridden.join(", ")) };
        let config: ServeConfig = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
            let path = err.path().to_string();
            // Serde repeats the bad value; a token must not end up in a log.
            let reason = if path.starts_with("auth") {
                "invalid value (not shown); expected a list of strings".to_owned()
            } else if path.starts_with("storage.default") || path.starts_with("storage.source") {
                "invalid value (not shown: storage blocks hold credentials)".to_owned()
            } else {
                err.inner().to_string()
            };
            ConfigError::Invalid { origin: origin.clone(), message: format!("`{path}`: {reason}") }
        })?;
        config.check().map_err(|message| ConfigError::Invalid { origin, message })?;
        Ok(config)
    }

    /// The metrics endpoint's address, if there is one.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, String> {
        let text = self.server.metrics_listen.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| format!("`server.metrics_listen` is `{text}`: expected HOST:PORT or empty"))
    }

    pub fn check(&self) -> Result<(), String> {
        self.metrics_addr()?;
        if self.jobs.max_concurrent == 0 {
            return Err("`jobs.max_concurrent` must be at least 1".into());
        }
        if self.tls.cert_path.is_some() != self.tls.key_path.is_some() {
            return Err("`tls.cert_path` and `tls.key_path` go together".into());
        }
        if self.jobs.progress_interval_ms < 1000 {
            return Err("`jobs.progress_interval_ms` must be at least 1000 (progress at most once a second)".into());
        }
        if self.jobs.max_call_span_h == 0 {
            return Err("`jobs.max_call_span_h` must be at least 1".into());
        }
        if self.jobs.stall_timeout_s == 0 {
            return Err("`jobs.stall_timeout_s` must be at least 1".into());
        }
        if self.jobs.lease_s < 3 {
            return Err("`jobs.lease_s` must be at least 3 (the lease is renewed every third of it)".into());
        }
        if self.webhooks.max_attempts == 0 {
            return Err("`webhooks.max_attempts` must be at least 1".into());
        }
        if !matches!(self.log.format.as_str(), "json" | "text") {
            return Err(format!("`log.format` is `{}`: expected json or text", self.log.format));
        }
        if self.storage.retry_attempts == 0 {
            return Err("`storage.retry_attempts` must be at least 1".into());
        }
        if self.storage.url_expiry_s == 0 || self.storage.url_expiry_s > 7 * 86_400 {
            return Err("`storage.url_expiry_s` must be 1 s to 7 days (604800)".into());
        }
        let url = &self.store.url;
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(format!(
                "`store.url` must be a postgres:// URL (or empty for the embedded store), not `{}`",
                crate::job::postgres::redacted(url)
            ));
        }
        if self.auth.bearer_tokens.iter().any(|t| t.len() < 16) {
            return Err("`auth.bearer_tokens`: tokens must be at least 16 characters".into());
        }
        Ok(())
    }

    pub fn store_path(&self) -> PathBuf {
        self.server.data_dir.join("jobs.sqlite")
    }

    /// This node's name on the job store: `server.node_id`, else the one kept in the data
    /// directory (made on first use: the host name and a random suffix).
    pub fn node_id(&self) -> Result<String, ConfigError> {
        if !self.server.node_id.is_empty() {
            return Ok(self.server.node_id.clone());
        }
        let path = self.server.data_dir.join("node-id");
        let io = |source| ConfigError::Io { path: path.display().to_string(), source };
        match std::fs::read_to_string(&path) {
            Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(err)),
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host: String = host.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{}-{}", if host.is_empty() { "node" } else { &host }, &suffix[..8]);
        std::fs::create_dir_all(&self.server.data_dir).map_err(io)?;
        std::fs::write(&path, &id).map_err(io)?;
        Ok(id)
    }

    /// Where local outputs go: `storage.local_root`, else `data_dir/outputs`; absolute.
    pub fn output_root(&self) -> PathBuf {
        let root = self.storage.local_root.clone().unwrap_or_else(|| self.server.data_dir.join("outputs"));
        std::path::absolute(&root).unwrap_or(root)
    }

    /// What the node adds to every storage block.
    pub fn node_storage(&self) -> crate::storage::NodeStorage {
        crate::storage::NodeStorage {
            known_hosts: self.storage.known_hosts.clone(),
            trust_on_first_use: self.storage.trust_on_first_use,
            url_expiry: Some(std::time::Duration::from_secs(self.storage.url_expiry_s)),
        }
    }

    pub fn retry_policy(&self) -> crate::storage::retry::RetryPolicy {
        crate::storage::retry::RetryPolicy {
            attempts: self.storage.retry_attempts,
            first_backoff: std::time::Duration::from_millis(self.storage.retry_first_backoff_ms),
            max_backoff: std::time::Duration::from_millis(self.storage.retry_max_backoff_ms),
        }
    }

    /// The node's cache of downloaded sources.
    pub fn source_cache(&self) -> crate::storage::cache::SourceCache {
        let dir = self.storage.cache_dir.clone().unwrap_or_else(|| self.server.data_dir.join("cache"));
        crate::storage::cache::SourceCache::new(dir, self.storage.cache_max_bytes)
    }

    /// Where a job's files are rendered before they are published.
    pub fn work_dir(&self, job_id: &str) -> PathBuf {
        self.work_root().join(job_id)
    }

    /// Where the jobs' work directories are.
    pub fn work_root(&self) -> PathBuf {
        self.server.data_dir.join("work")
    }
}

/// Sets `section__key` (as lower-cased from the variable name) in `table`.
fn set_path(table: &mut toml::Table, key: &str, value: &str) -> Result<(), String> {
    let parts: Vec<&str> = key.split("__").collect();
    let (last, sections) = parts.split_last().ok_or("empty key")?;
    let mut current = table;
    for section in sections {
        current = current
            .entry((*section).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{section}` is not a section"))?;
    }
    // `4`, `true`, `["a", "b"]` are TOML values; anything else is a string.
    let parsed = format!("v = {value}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v"));
    current.insert((*last).to_owned(), parsed.unwrap_or_else(|| toml::Value::String(value.to_owned())));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_example_config_is_valid_and_says_what_the_defaults_are() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let example = ServeConfig::load(Some(&path), env(&[])).expect("config.example.toml");
        let mut expected = ServeConfig::default();
        expected.server.data_dir = PathBuf::from("/var/lib/tessera");
        assert_eq!(example, expected, "config.example.toml shows the defaults (data_dir aside)");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[jobs]\nmax_concurent = 4\n").expect("write");
        let err = ServeConfig::load(Some(&path), env(&[])).expect_err("typo");
        let message = err.to_string();
        assert!(message.contains("c.toml") && message.contains("max_concurent"), "{message}");
        std::fs::write(&path, "[job]\nmax_concurrent = 4\n").expect("write");
        let message = ServeConfig::load(Some(&path), env(&[])).expect_err("unknown section").to_string();
        assert!(message.contains("job"), "{message}");
    }

    #[test]
    fn environment_variables_override_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[jobs]\nmax_concurrent = 4\n[server]\nlisten = \"0.0.0.0:1\"\n").expect("write");
        let config = ServeConfig::load(
            Some(&path),
            env(&[
                ("TESSERA__JOBS__MAX_CONCURRENT", "8"),
                ("TESSERA__SERVER__DATA_DIR", "/srv/tessera"),
                ("TESSERA__AUTH__BEARER_TOKENS", r#"["0123456789abcdef"]"#),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("load");
        assert_eq!(config.jobs.max_concurrent, 8);
        assert_eq!(config.server.data_dir, PathBuf::from("/srv/tessera"));
        assert_eq!(config.server.listen, "0.0.0.0:1".parse().expect("addr"), "from the file");
        assert_eq!(config.auth.bearer_tokens, vec!["0123456789abcdef".to_owned()]);
        let err = ServeConfig::load(None, env(&[("TESSERA__JOBS__MAX_CONCURRENT", "many")])).expect_err("not a number");
        assert!(err.to_string().contains("TESSERA__JOBS__MAX_CONCURRENT"), "{err}");
        let err = ServeConfig::load(None, env(&[("TESSERA__AUTH__BEARER_TOKENS", "secret-token-value")]))
            .expect_err("not a list");
        assert!(
            err.to_string().contains("auth.bearer_tokens") && !err.to_string().contains("secret-token-value"),
            "{err}"
        );
        let err = ServeConfig::load(None, env(&[("TESSERA__JOBS__MAX_CONCURRENT", "0")])).expect_err("zero");
        assert!(err.to_string().contains("max_concurrent"), "{err}");
    }
}
