//! The moto harness: an in-memory S3 server (`moto_server`) on a free loopback port, with
//! static credentials "test"/"test", region us-east-1 and one bucket, created with the SDK
//! after every start. Killed on drop; `Restartable` kills it with SIGKILL and starts it again
//! on the same port (empty: moto keeps everything in memory), bucket included.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use tessera::storage::settings::{Backend, DEFAULT_URL_EXPIRY, S3Settings, Secret, StorageSettings};

use super::faults::Restartable;

const VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-tools/storage-venv");
pub const ACCESS_KEY: &str = "test";
pub const SECRET: &str = "test";
pub const REGION: &str = "us-east-1";
pub const BUCKET: &str = "tessera-test";
const READY_WITHIN: Duration = Duration::from_secs(30);

pub struct Moto {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto on a free loopback port, ready, with [`BUCKET`] in it. Panics (with the
    /// server's output) when it cannot.
    pub fn start() -> Moto {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let mut moto = Moto { port, child: None, dir: tempfile::tempdir().expect("moto temp dir") };
        moto.launch();
        moto
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An "s3" block straight at the server.
    pub fn settings(&self, path_prefix: &str) -> StorageSettings {
        self.settings_as("s3", self.port, path_prefix)
    }

    /// The same at another loopback port (a fault proxy in front of the server).
    pub fn settings_via(&self, port: u16, path_prefix: &str) -> StorageSettings {
        self.settings_as("s3", port, path_prefix)
    }

    /// `kind` ("s3" or "digitalocean") at `127.0.0.1:{port}`.
    pub fn settings_as(&self, kind: &'static str, port: u16, path_prefix: &str) -> StorageSettings {
        StorageSettings {
            backend: Backend::S3(S3Settings {
                kind,
                bucket: BUCKET.into(),
                region: REGION.into(),
                endpoint: Some(format!("http://127.0.0.1:{port}")),
                credentials: Some((ACCESS_KEY.into(), Secret::new(SECRET))),
            }),
            path_prefix: path_prefix.trim_matches('/').to_owned(),
            url_expiry: DEFAULT_URL_EXPIRY,
        }
    }

    /// The `Storage` block (proto3 JSON) a render job carries to reach this server.
    pub fn storage_block(&self, path_prefix: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "s3",
            "bucket": BUCKET,
            "region": REGION,
            "endpoint": self.endpoint(),
            "pathPrefix": path_prefix,
            "accessKey": ACCESS_KEY,
            "secret": SECRET,
        })
    }

    /// An SDK client of its own for the tests (path-style, static credentials).
    pub fn client(&self) -> aws_sdk_s3::Client {
        client(&self.endpoint())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("moto.log")
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn launch(&mut self) {
        let python = Path::new(VENV).join("bin/python3");
        let script = Path::new(VENV).join("bin/moto_server");
        assert!(
            python.exists() && script.exists(),
            "moto_server is not installed at {} (the storage test tools are installed into target/test-tools)",
            script.display()
        );
        // Output to a file: a pipe nobody reads would fill up and stall the server.
        let log = File::options().create(true).append(true).open(self.log_path()).expect("moto log file");
        let child = Command::new(&python)
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", script.display()));
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, self.port).into(), Duration::from_millis(200)).is_err()
        {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("moto_server exited ({status}) before it answered:\n{}", self.log());
            }
            if started.elapsed() > READY_WITHIN {
                panic!("moto_server did not answer on port {} within {READY_WITHIN:?}:\n{}", self.port, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Err(err) = create_bucket(&self.endpoint()) {
            panic!("create bucket {BUCKET} in moto: {err}\n{}", self.log());
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Restartable for Moto {
    fn kill(&mut self) {
        self.stop();
    }

    fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An SDK client for the server at `endpoint`.
pub fn client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET, None, None, "moto-harness"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Creates [`BUCKET`] on its own thread and runtime: callers may be inside a runtime (a
/// restart during the fault suite) or not.
fn create_bucket(endpoint: &str) -> Result<(), String> {
    let endpoint = endpoint.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let client = client(&endpoint);
            let mut last = String::new();
            for _ in 0..50 {
                match client.create_bucket().bucket(BUCKET).send().await {
                    Ok(_) => return Ok(()),
                    Err(err) => {
                        use aws_sdk_s3::error::ProvideErrorMetadata as _;
                        if err.code() == Some("BucketAlreadyOwnedByYou") {
                            return Ok(());
                        }
                        last = aws_sdk_s3::error::DisplayErrorContext(&err).to_string();
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(last)
        })
    })
    .join()
    .map_err(|_| "the bucket thread panicked".to_owned())?
}
