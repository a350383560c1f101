//! Runs the real `tessera serve` for the service tests, and the tools they drive it with:
//! grpcurl and Python grpcio from the venv `scripts/install-deps.sh` makes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The venv with grpcurl and grpcio (made by scripts/install-deps.sh).
pub fn tools_venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/venv")
}

/// A tool from the venv; fails loudly when it is missing.
pub fn venv_tool(name: &str) -> PathBuf {
    let path = tools_venv().join("bin").join(name);
    assert!(path.exists(), "{} is required by this test and is missing (run scripts/install-deps.sh)", path.display());
    path
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub max_concurrent: u32,
    pub shutdown_grace_s: u64,
    pub bearer_tokens: Vec<String>,
    /// PEM certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub webhook_initial_backoff_ms: u64,
    /// Leave `storage.local_root` unset (outputs under `data_dir/outputs`); otherwise it is the
    /// folder that holds the server's folder, where the tests put their outputs.
    pub default_output_root: bool,
    /// `jobs.stall_timeout_s`, when set.
    pub stall_timeout_s: Option<u64>,
    /// Extra environment of the server process.
    pub env: Vec<(String, String)>,
    /// Extra lines of the `[storage]` section (and any sections after it).
    pub storage_config: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_concurrent: 2,
            shutdown_grace_s: 30,
            bearer_tokens: Vec::new(),
            tls: None,
            webhook_initial_backoff_ms: 50,
            default_output_root: false,
            stall_timeout_s: None,
            env: Vec::new(),
            storage_config: String::new(),
        }
    }
}

/// A running `tessera serve` with its own data directory.
pub struct Server {
    child: Option<Child>,
    dir: PathBuf,
    config: PathBuf,
    /// `127.0.0.1:PORT` of the gRPC listener and the metrics endpoint.
    pub addr: String,
    pub metrics_addr: String,
    starts: usize,
    env: Vec<(String, String)>,
}

impl Server {
    pub fn start(dir: &Path, options: &ServerOptions) -> Server {
        std::fs::create_dir_all(dir).expect("server dir");
        let tokens: Vec<String> = options.bearer_tokens.iter().map(|t| format!("{t:?}")).collect();
        let tls = options.tls.as_ref().map_or(String::new(), |(cert, key)| {
            format!("cert_path = {:?}\nkey_path = {:?}\n", cert.display().to_string(), key.display().to_string())
        });
        let storage = match dir.parent() {
            Some(parent) if !options.default_output_root => {
                format!("local_root = {:?}\n", parent.display().to_string())
            }
            _ => String::new(),
        };
        let stall = options.stall_timeout_s.map_or(String::new(), |s| format!("stall_timeout_s = {s}\n"));
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\
             [storage]\n{storage}{}\n\
             [jobs]\nmax_concurrent = {}\nshutdown_grace_s = {}\n{stall}\
             [auth]\nbearer_tokens = [{}]\n[tls]\n{tls}\
             [webhooks]\ninitial_backoff_ms = {}\nmax_backoff_ms = 1000\ntimeout_ms = 5000\n\
             [log]\nformat = \"json\"\nlevel = \"info\"\n",
            dir.join("data").display().to_string(),
            options.storage_config,
            options.max_concurrent,
            options.shutdown_grace_s,
            tokens.join(", "),
            options.webhook_initial_backoff_ms,
        );
        let config_path = dir.join("tessera.toml");
        std::fs::write(&config_path, config).expect("config");
        let mut server = Server {
            env: options.env.clone(),
            child: None,
            dir: dir.to_path_buf(),
            config: config_path,
            addr: String::new(),
            metrics_addr: String::new(),
            starts: 0,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("serve-{}.log", self.starts))).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--config"])
            .arg(&self.config)
            // Nothing a server writes by a relative path lands in the repository.
            .current_dir(&self.dir)
            .env("WGPU_BACKEND", std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into()))
            .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start tessera serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut grpc, mut metrics) = (None, None);
        while grpc.is_none() || metrics.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("tessera serve did not start: {}", self.logs()));
            let after = |marker: &str| {
                line.split(marker).nth(1).and_then(|rest| rest.split([' ', '/']).next()).map(str::to_owned)
            };
            grpc = grpc.or_else(|| after("listening on "));
            metrics = metrics.or_else(|| after("metrics on http://"));
        }
        self.addr = grpc.unwrap_or_default();
        self.metrics_addr = metrics.unwrap_or_default();
        self.child = Some(child);
    }

    /// Starts the server again on the same data directory (new ports).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.launch();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// Kills the server with SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.send_term();
        self.wait_exit()
    }

    /// SIGTERM, without waiting: the server begins its shutdown.
    pub fn send_term(&self) {
        let child = self.child.as_ref().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill -TERM");
        assert!(status.success());
    }

    /// Waits for the process to exit (after [`Server::send_term`]).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "tessera serve did not stop after SIGTERM: {}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Everything the server logged, every start.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.dir.join(format!("serve-{n}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// The Prometheus text from `/metrics`.
    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.metrics_addr).expect("metrics connect");
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.metrics_addr)
            .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
    }

    /// The value of a metric line (`name{labels}` as written).
    pub fn metric(&self, series: &str) -> f64 {
        let text = self.metrics();
        text.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs grpcurl with `args`; returns (success, stdout, stderr).
pub fn grpcurl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(venv_tool("grpcurl")).args(args).output().expect("run grpcurl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON objects grpcurl printed one after another (a server stream).
pub fn json_objects(text: &str) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON objects ({e}): {text}"))
}

/// A job file from `examples/job.json` with this test's archive and output directory, no
/// webhook, and `outputs`.
pub fn job_json(
    request_id: &str,
    archive: &Path,
    out: &Path,
    size: (u32, u32),
    outputs: serde_json::Value,
) -> serde_json::Value {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/job.json");
    let mut job: serde_json::Value =
        serde_json::from_slice(&std::fs::read(example).expect("examples/job.json")).expect("json");
    job["requestId"] = request_id.into();
    let spec = &mut job["spec"];
    spec["sources"][0]["rawArchive"] = archive.display().to_string().into();
    spec["storage"]["pathPrefix"] = out.display().to_string().into();
    spec["video"]["width"] = size.0.into();
    spec["video"]["height"] = size.1.into();
    spec["video"]["preset"] = "ultrafast".into();
    spec["outputs"] = outputs;
    spec.as_object_mut().expect("spec").remove("webhook");
    job
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Pids of the render processes (`tessera job-worker`) whose parent is `parent_pid`.
pub fn render_processes(parent_pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let ppid = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent_pid) && String::from_utf8_lossy(&cmdline).contains("job-worker")
        })
        .collect()
}
