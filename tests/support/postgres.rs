//! A PostgreSQL server for tests: Debian's PostgreSQL, a cluster of its own in a temporary
//! directory, on a free loopback port; one per test process, started on first use, stopped
//! with the process (`setpriv --pdeathsig`). Each caller gets a database of its own. Run as
//! root, the server runs as the `postgres` user (PostgreSQL refuses root). Shared by the unit
//! tests of the job store (included by path) and the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running test cluster.
pub struct PgServer {
    pub port: u16,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// Where Debian keeps PostgreSQL's programs (the newest version installed).
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not installed ({}: {e}); run scripts/install-deps.sh", root.display())
        })
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("a PostgreSQL server under /usr/lib/postgresql; run scripts/install-deps.sh")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, dying with its parent thread, as the `postgres` user when we are root.
fn as_server_user(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command.arg("--pdeathsig=QUIT");
    if is_root() {
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    command.arg(program);
    command
}

/// Removes the clusters of test processes that are gone.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("tessera-pg-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port()
}

fn start() -> PgServer {
    let bin = bin_dir();
    sweep_stale();
    let dir = std::env::temp_dir().join(format!("tessera-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sock")).expect("cluster dir");
    if is_root() {
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().expect("chown");
        assert!(status.success(), "chown {}", dir.display());
    }
    let data = dir.join("data");
    let init = as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "tessera", "--no-sync", "-E", "UTF8"])
        .output()
        .expect("initdb");
    assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
    let port = free_port();
    // The server's parent is a thread that lives as long as the process: the server gets
    // SIGTERM when the process ends, however it ends.
    let (tx, rx) = std::sync::mpsc::channel();
    let (bin_postgres, data_dir, sock, log) = (bin.join("postgres"), data.clone(), dir.join("sock"), dir.join("log"));
    std::thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || {
            let log = std::fs::File::create(&log).expect("server log");
            let child = as_server_user(&bin_postgres)
                .arg("-D")
                .arg(&data_dir)
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .args(["-c", "max_connections=200", "-k"])
                .arg(&sock)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn();
            let _ = tx.send(child.map(|_| ()));
            loop {
                std::thread::park();
            }
        })
        .expect("server thread");
    rx.recv().expect("server thread").expect("postgres starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Accepting connections is not yet accepting queries: wait for a query to pass.
    let url = format!("postgres://tessera@127.0.0.1:{port}/postgres");
    while postgres::Client::connect(&url, postgres::NoTls).and_then(|mut c| c.batch_execute("SELECT 1")).is_err() {
        assert!(Instant::now() < deadline, "PostgreSQL does not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    PgServer { port }
}

/// The test cluster (started on first use).
pub fn server() -> &'static PgServer {
    SERVER.get_or_init(start)
}

/// A new, empty database on the test cluster; returns its URL.
pub fn database() -> String {
    let server = server();
    let name = format!("t{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst));
    let admin = format!("postgres://tessera@127.0.0.1:{}/postgres", server.port);
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the test cluster");
    client.batch_execute(&format!("CREATE DATABASE {name}")).expect("create database");
    format!("postgres://tessera@127.0.0.1:{}/{name}", server.port)
}
