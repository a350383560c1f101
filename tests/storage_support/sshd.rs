//! An OpenSSH sshd on a free loopback port, for the sftp tests: its own config, host key
//! (ed25519, from ssh-keygen), authorized keys and pid file in a temporary directory, and one
//! real local user, `tessera-sftp`, with a password (created when missing: the tests run as
//! root). Each test writes under its own directory in that user's home ([`Sshd::prefix`]),
//! removed when the harness is dropped. Restartable: kill -9 of the server and of every
//! session process it forked, then a start on the same port with the same host key.

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tessera::storage::settings::{DEFAULT_URL_EXPIRY, SftpAuth, SftpSettings};
use tessera::storage::{Backend, Secret, StorageSettings};

use super::faults::Restartable;

pub const SSHD: &str = "/usr/sbin/sshd";
pub const SSH_KEYGEN: &str = "ssh-keygen";
pub const USER: &str = "tessera-sftp";
pub const PASSWORD: &str = "tessera-sftp-test-password";
/// The passphrase of the second client key.
pub const PASSPHRASE: &str = "open sesame";

pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    home: PathBuf,
    /// Directories handed out by [`Sshd::prefix`], removed on drop.
    prefixes: Mutex<Vec<PathBuf>>,
}

impl Sshd {
    /// Starts sshd on a free loopback port (panics, with sshd's log, when it cannot).
    pub fn start() -> Sshd {
        assert!(Path::new(SSHD).exists(), "{SSHD} is missing: install openssh-server");
        let home = ensure_user();
        let dir = tempfile::Builder::new().prefix("tessera-sshd-").tempdir().expect("temporary directory");
        // sshd reads the authorized keys as the user.
        set_mode(dir.path(), 0o755);
        keygen(&dir.path().join("host_ed25519"), "", "tessera-test-host");
        keygen(&dir.path().join("client_ed25519"), "", "tessera-test-client");
        keygen(&dir.path().join("client_passphrase_ed25519"), PASSPHRASE, "tessera-test-client-passphrase");
        let authorized =
            [read(&dir.path().join("client_ed25519.pub")), read(&dir.path().join("client_passphrase_ed25519.pub"))];
        let keys_file = dir.path().join(format!("{USER}.keys"));
        std::fs::write(&keys_file, authorized.join("")).expect("write authorized keys");
        set_mode(&keys_file, 0o644);
        let port = free_port();
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {dir}/host_ed25519\n\
             PidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/%u.keys\n\
             StrictModes no\n\
             UsePAM no\n\
             UseDNS no\n\
             PasswordAuthentication yes\n\
             PubkeyAuthentication yes\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin no\n\
             AllowUsers {USER}\n\
             MaxStartups 100:30:200\n\
             MaxSessions 50\n\
             PrintMotd no\n\
             LogLevel VERBOSE\n\
             Subsystem sftp internal-sftp\n",
            dir = dir.path().display()
        );
        std::fs::write(dir.path().join("sshd_config"), config).expect("write sshd_config");
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let mut sshd = Sshd { dir, port, child: None, home, prefixes: Mutex::new(Vec::new()) };
        sshd.launch();
        sshd
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's public host key, an OpenSSH line (`ssh-ed25519 AAAA... comment`).
    pub fn host_key(&self) -> String {
        read(&self.dir.path().join("host_ed25519.pub")).trim().to_owned()
    }

    /// The host key's fingerprint as `ssh-keygen -l -E sha256` prints it (`SHA256:...`).
    pub fn host_key_fingerprint(&self) -> String {
        let output = Command::new(SSH_KEYGEN)
            .args(["-l", "-E", "sha256", "-f"])
            .arg(self.dir.path().join("host_ed25519.pub"))
            .output()
            .expect("run ssh-keygen -l");
        assert!(output.status.success(), "ssh-keygen -l: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.split_whitespace().find(|w| w.starts_with("SHA256:")).expect("a SHA256 fingerprint").to_owned()
    }

    /// The client's private key (OpenSSH format, no passphrase), authorized for [`USER`].
    pub fn private_key(&self) -> String {
        read(&self.dir.path().join("client_ed25519"))
    }

    /// A second authorized private key, opened by [`PASSPHRASE`].
    pub fn private_key_with_passphrase(&self) -> String {
        read(&self.dir.path().join("client_passphrase_ed25519"))
    }

    /// The user's login directory (SFTP's starting directory).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// A fresh directory name (relative to the login directory) for one test; removed when the
    /// harness is dropped.
    pub fn prefix(&self, name: &str) -> String {
        let prefix = format!("tessera-tests/{name}-{}", uuid::Uuid::new_v4().simple());
        self.prefixes.lock().expect("prefixes").push(self.home.join(&prefix));
        prefix
    }

    /// Key authentication, the host key pinned, straight to the server.
    pub fn settings(&self, path_prefix: &str) -> StorageSettings {
        self.settings_via(self.port, path_prefix)
    }

    /// As [`Sshd::settings`], at another loopback port (a fault proxy in front of the server).
    pub fn settings_via(&self, port: u16, path_prefix: &str) -> StorageSettings {
        let auth = SftpAuth::Key { private_key: Secret::new(self.private_key()), passphrase: None };
        storage(self.sftp_settings(port, auth), path_prefix)
    }

    /// Password authentication, the host key pinned.
    pub fn password_settings(&self, path_prefix: &str) -> StorageSettings {
        storage(self.sftp_settings(self.port, SftpAuth::Password(Secret::new(PASSWORD))), path_prefix)
    }

    /// The backend's settings with `auth`, the host key pinned (change fields for other cases).
    pub fn sftp_settings(&self, port: u16, auth: SftpAuth) -> SftpSettings {
        SftpSettings {
            host: "127.0.0.1".into(),
            port,
            username: USER.into(),
            auth,
            host_key: Some(self.host_key()),
            known_hosts: None,
            trust_on_first_use: false,
        }
    }

    /// The proto3-JSON `Storage` block a render job carries to reach this server: password
    /// authentication, the host key pinned.
    pub fn storage_block(&self, path_prefix: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "sftp",
            "host": "127.0.0.1",
            "port": self.port,
            "username": USER,
            "authMethod": "PASSWORD",
            "password": PASSWORD,
            "hostKey": self.host_key(),
            "pathPrefix": path_prefix,
        })
    }

    /// As [`Sshd::storage_block`], with key authentication.
    pub fn storage_block_key(&self, path_prefix: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "sftp",
            "host": "127.0.0.1",
            "port": self.port,
            "username": USER,
            "authMethod": "KEY",
            "privateKey": self.private_key(),
            "hostKey": self.host_key(),
            "pathPrefix": path_prefix,
        })
    }

    /// Gives the server a new host key (kill, new key, start on the same port).
    pub fn change_host_key(&mut self) {
        self.kill();
        for name in ["host_ed25519", "host_ed25519.pub"] {
            let _ = std::fs::remove_file(self.dir.path().join(name));
        }
        keygen(&self.dir.path().join("host_ed25519"), "", "tessera-test-host-2");
        self.launch();
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "sshd is running already");
        let log = std::fs::File::create(self.log_path()).expect("create sshd log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {SSHD}: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Until the port answers with an SSH banner (30 s at most).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("sshd exited ({status}) on port {}:\n{}", self.port, self.log());
            }
            if let Ok(mut stream) =
                TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1))
            {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0_u8; 4];
                if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("sshd did not answer on port {} within 30 s:\n{}", self.port, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Restartable for Sshd {
    /// kill -9 of the server and every process it forked (the sessions: they call setsid, so
    /// they are not in its process group; they are found by their parents in /proc).
    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id();
        // Stopped, the listener forks no more sessions while they are collected.
        let _ = Command::new("kill").args(["-STOP", &pid.to_string()]).status();
        let mut doomed = descendants(pid);
        doomed.push(pid);
        let _ =
            Command::new("kill").arg("-KILL").args(doomed.iter().map(u32::to_string)).stderr(Stdio::null()).status();
        let _ = child.kill();
        let _ = child.wait();
    }

    fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
        for prefix in self.prefixes.lock().map(|p| p.clone()).unwrap_or_default() {
            let _ = std::fs::remove_dir_all(prefix);
        }
    }
}

fn storage(sftp: SftpSettings, path_prefix: &str) -> StorageSettings {
    StorageSettings {
        backend: Backend::Sftp(sftp),
        path_prefix: path_prefix.trim_matches('/').to_owned(),
        url_expiry: DEFAULT_URL_EXPIRY,
    }
}

/// Every process below `root` (children, their children, ...), from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    found.remove(0);
    found
}

/// The user exists with [`PASSWORD`] (set once per process); returns its home directory.
fn ensure_user() -> PathBuf {
    static READY: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(home) = ready.as_ref() {
        return home.clone();
    }
    let root = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if home_of(USER).is_none() {
        assert!(
            matches!(root, Ok(true)),
            "the sftp tests need the local user {USER} (with password {PASSWORD:?}); run them as root to create it, \
             or create it: useradd -m {USER} && echo '{USER}:{PASSWORD}' | chpasswd"
        );
        let status = Command::new("useradd").args(["-m", "-s", "/bin/sh", USER]).status().expect("run useradd");
        // Another test process may have created it meanwhile.
        assert!(status.success() || home_of(USER).is_some(), "useradd {USER} failed: {status}");
    }
    if matches!(root, Ok(true)) {
        let mut chpasswd = Command::new("chpasswd").stdin(Stdio::piped()).spawn().expect("run chpasswd");
        {
            use std::io::Write as _;
            let mut stdin = chpasswd.stdin.take().expect("chpasswd stdin");
            stdin.write_all(format!("{USER}:{PASSWORD}\n").as_bytes()).expect("write to chpasswd");
        }
        let status = chpasswd.wait().expect("chpasswd");
        assert!(status.success(), "chpasswd for {USER} failed: {status}");
    }
    let home = home_of(USER).unwrap_or_else(|| panic!("{USER} has no home directory"));
    std::fs::create_dir_all(&home).expect("home directory");
    *ready = Some(home.clone());
    home
}

/// The login directory of `user`, from the passwd database.
fn home_of(user: &str) -> Option<PathBuf> {
    let output = Command::new("getent").args(["passwd", user]).output().ok()?;
    let line = String::from_utf8_lossy(&output.stdout).into_owned();
    line.trim().split(':').nth(5).filter(|h| !h.is_empty()).map(PathBuf::from)
}

fn keygen(path: &Path, passphrase: &str, comment: &str) {
    let output = Command::new(SSH_KEYGEN)
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("run {SSH_KEYGEN}: {e}"));
    assert!(output.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&output.stderr));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A loopback port nothing listens on (the OS picks it; free a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
