//! Azurite (the Azure Storage emulator, blob service only) on a free loopback port, with its
//! data in a temporary directory (so a restart keeps the blobs), the well-known development
//! account, and one container made with tessera's own client. Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tessera::storage::azure::AzureStore;
use tessera::storage::settings::{AzureSettings, DEFAULT_URL_EXPIRY};
use tessera::storage::{Backend, Secret, StorageError, StorageSettings};

use super::faults::Restartable;

/// Azurite's blob service entry point, installed by the test-tools script.
pub const AZURITE_BLOB_MAIN: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-tools/azurite/node_modules/azurite/dist/src/blob/main.js");
/// The development account every Azurite has.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its well-known key (public: Microsoft documents it for the emulator).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const CONTAINER: &str = "tessera-test";
const READY_WITHIN: Duration = Duration::from_secs(30);

pub struct Azurite {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Azurite {
    /// Starts Azurite and creates [`CONTAINER`]; panics (with Azurite's output) when it
    /// cannot.
    pub fn start() -> Azurite {
        let port = free_port();
        let dir = tempfile::Builder::new().prefix("azurite-").tempdir().expect("azurite temporary directory");
        let mut azurite = Azurite { port, dir, child: None };
        azurite.launch();
        azurite
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The blob service's base URL at `port` (Azurite's own, or a proxy's).
    pub fn endpoint(port: u16) -> String {
        format!("http://127.0.0.1:{port}/{ACCOUNT}")
    }

    /// Settings pointing straight at Azurite.
    pub fn settings(&self, path_prefix: &str) -> StorageSettings {
        self.settings_via(self.port, path_prefix)
    }

    /// Settings pointing at `port` on loopback (a fault proxy in front of Azurite).
    pub fn settings_via(&self, port: u16, path_prefix: &str) -> StorageSettings {
        StorageSettings {
            backend: Backend::Azure(AzureSettings {
                container: CONTAINER.to_owned(),
                account: ACCOUNT.to_owned(),
                account_key: Secret::new(ACCOUNT_KEY),
                endpoint: Some(Azurite::endpoint(port)),
            }),
            path_prefix: path_prefix.trim_matches('/').to_owned(),
            url_expiry: DEFAULT_URL_EXPIRY,
        }
    }

    /// The proto3-JSON `Storage` block a render job carries to reach this Azurite.
    pub fn storage_block(&self, path_prefix: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "azure",
            "bucket": CONTAINER,
            "endpoint": Azurite::endpoint(self.port),
            "pathPrefix": path_prefix,
            "accessKey": ACCOUNT,
            "secret": ACCOUNT_KEY,
        })
    }

    fn launch(&mut self) {
        assert!(
            Path::new(AZURITE_BLOB_MAIN).is_file(),
            "Azurite is not installed: {AZURITE_BLOB_MAIN} is missing (install the storage test tools)"
        );
        let log = |name: &str| std::fs::File::create(self.log_path(name)).expect("azurite log file");
        let child = Command::new("node")
            .arg(AZURITE_BLOB_MAIN)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &self.port.to_string(), "--location"])
            .arg(self.dir.path().join("data"))
            .args(["--skipApiVersionCheck", "--disableTelemetry", "--silent"])
            .stdin(Stdio::null())
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node for Azurite (is node installed?): {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
        format!("stdout:\n{}\nstderr:\n{}", read("stdout.log"), read("stderr.log"))
    }

    /// Until the container exists (made now, or kept from before a restart).
    fn wait_ready(&mut self) {
        let settings = self.settings("");
        let Backend::Azure(azure) = settings.backend else { unreachable!() };
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("Azurite exited at start ({status}):\n{}", self.output());
            }
            match create_container(&azure) {
                Ok(()) => return,
                Err(StorageError::Unavailable { .. }) if started.elapsed() < READY_WITHIN => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(err) => panic!("Azurite not ready on port {}: {err}\n{}", self.port, self.output()),
            }
        }
    }
}

/// Creates the container on a thread of its own (callers may be inside a runtime).
fn create_container(settings: &AzureSettings) -> Result<(), StorageError> {
    let settings = settings.clone();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime for the harness");
        runtime.block_on(async {
            let store = AzureStore::connect(&settings).await?;
            store.create_container_if_missing().await
        })
    })
    .join()
    .expect("container thread")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl Restartable for Azurite {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.kill();
    }
}
