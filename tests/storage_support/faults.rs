//! Faults put between a backend and its server: a TCP proxy on loopback that can be down
//! (connections refused), answer HTTP errors or reset connections for a while, or be slow;
//! and the fault suite every backend passes through it (down then up, errors for a while, a
//! slow server, the server killed mid-upload and restarted).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera::storage::ObjectStore;
use tessera::storage::retry::{RetryPolicy, retrying};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::conformance::{sha256_file, write_pattern};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Not listening: connections are refused.
    Down,
    /// The next `remaining` connections get this HTTP status (and are closed).
    Status {
        code: u16,
        remaining: u32,
    },
    /// The next `remaining` connections are closed at once.
    Reset {
        remaining: u32,
    },
    /// Every byte passes, at this rate each way.
    Slow {
        bytes_per_s: u64,
    },
}

pub struct FaultProxy {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    changed: Arc<tokio::sync::Notify>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:upstream_port`.
    pub async fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let changed = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(serve(listener, port, upstream_port, mode.clone(), changed.clone()));
        FaultProxy { port, mode, changed }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
        self.changed.notify_waiters();
    }

    pub fn mode(&self) -> Mode {
        *self.mode.lock().expect("mode")
    }
}

async fn serve(
    mut listener: TcpListener,
    port: u16,
    upstream_port: u16,
    mode: Arc<Mutex<Mode>>,
    changed: Arc<tokio::sync::Notify>,
) {
    loop {
        let current = *mode.lock().expect("mode");
        if current == Mode::Down {
            drop(listener);
            loop {
                let notified = changed.notified();
                if *mode.lock().expect("mode") != Mode::Down {
                    break;
                }
                notified.await;
            }
            listener = loop {
                match TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(listener) => break listener,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            continue;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = changed.notified() => continue,
        };
        let Ok((client, _)) = accepted else { continue };
        let action = {
            let mut guard = mode.lock().expect("mode");
            let action = *guard;
            match &mut *guard {
                Mode::Status { remaining, .. } | Mode::Reset { remaining } => {
                    *remaining -= 1;
                    if *remaining == 0 {
                        *guard = Mode::Pass;
                    }
                }
                _ => {}
            }
            action
        };
        tokio::spawn(handle(client, upstream_port, action, mode.clone(), changed.clone()));
    }
}

/// Returns once [`FaultProxy::set`] has put the proxy in a fault mode of another kind than
/// `action`: a connection does not live on into the next fault (else a client's pooled
/// connection would dodge the errors, the outage or the slowness that follow). A return to
/// `Pass` leaves connections be (cutting them would fail the checks that follow).
async fn mode_leaves(mode: &Mutex<Mode>, changed: &tokio::sync::Notify, action: Mode) {
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = *mode.lock().expect("mode");
        if now != Mode::Pass && std::mem::discriminant(&now) != std::mem::discriminant(&action) {
            return;
        }
        notified.await;
    }
}

async fn handle(
    mut client: TcpStream,
    upstream_port: u16,
    action: Mode,
    mode: Arc<Mutex<Mode>>,
    changed: Arc<tokio::sync::Notify>,
) {
    match action {
        Mode::Reset { .. } | Mode::Down => drop(client),
        Mode::Status { code, .. } => {
            // Read the request head, answer, close.
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                match tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>";
            let answer = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(answer.as_bytes()).await;
            let _ = client.shutdown().await;
        }
        Mode::Pass | Mode::Slow { .. } => {
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else { return };
            let rate = match action {
                Mode::Slow { bytes_per_s } => Some(bytes_per_s),
                _ => None,
            };
            let (cr, cw) = client.into_split();
            let (ur, uw) = upstream.into_split();
            let both = async { tokio::join!(pump(cr, uw, rate), pump(ur, cw, rate)) };
            // Cut (both halves dropped) when the mode changes under the connection.
            tokio::select! {
                _ = both => {}
                () = mode_leaves(&mode, &changed, action) => {}
            }
        }
    }
}

async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, rate: Option<u64>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if let Some(rate) = rate {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
    }
    let _ = to.shutdown().await;
}

/// A storage server the suite can kill and start again (on the same port, ready, with its
/// bucket/container/directory there again).
pub trait Restartable: Send {
    fn kill(&mut self);
    fn restart(&mut self);
}

/// Retries quick enough for a test, long enough to ride out each fault.
pub fn test_policy() -> RetryPolicy {
    RetryPolicy { attempts: 8, first_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(3) }
}

async fn put_retrying(
    store: &dyn ObjectStore,
    key: &str,
    path: &Path,
    facts: &tessera::storage::FileFacts,
) -> Result<(), String> {
    retrying(&test_policy(), "put", || store.put_file(key, path, facts))
        .await
        .map(|_| ())
        .map_err(|gave_up| format!("after {} attempts: {}", gave_up.attempts, gave_up.error))
}

async fn assert_whole(store: &dyn ObjectStore, key: &str, facts: &tessera::storage::FileFacts, scratch: &Path) {
    let got = scratch.join("fault.got");
    store.get_file(key, &got, u64::MAX).await.unwrap_or_else(|e| panic!("get {key}: {e}"));
    assert_eq!(sha256_file(&got), facts.sha256, "{key} is whole");
}

/// The fault suite. `proxy` forwards to the server (start it with [`FaultProxy::start`] before
/// the server when the server must know the proxy's port, e.g. for the URLs it hands out);
/// `store` is the backend pointed at `127.0.0.1:{proxy.port()}`; `http`: the backend speaks
/// HTTP (errors are 500/503 answers; else connection resets).
pub async fn fault_suite(
    kind: &str,
    store: Arc<dyn ObjectStore>,
    server: &mut dyn Restartable,
    proxy: &FaultProxy,
    http: bool,
    prefix: &str,
    scratch: &Path,
) {
    let key = |name: &str| format!("{prefix}/{name}");

    // Down at the start, then up.
    let file = scratch.join("fault-1.bin");
    let facts = write_pattern(&file, 1 << 20, 11);
    proxy.set(Mode::Down);
    let up_later = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        proxy.set(Mode::Pass);
    };
    let down_key = key("down-then-up.bin");
    let (result, ()) = tokio::join!(put_retrying(&*store, &down_key, &file, &facts), up_later);
    result.unwrap_or_else(|e| panic!("{kind}: server down then up: {e}"));
    assert_whole(&*store, &key("down-then-up.bin"), &facts, scratch).await;

    // Errors for a while.
    let file = scratch.join("fault-2.bin");
    let facts = write_pattern(&file, 2 << 20, 12);
    proxy.set(if http { Mode::Status { code: 503, remaining: 3 } } else { Mode::Reset { remaining: 3 } });
    put_retrying(&*store, &key("errors-for-a-while.bin"), &file, &facts)
        .await
        .unwrap_or_else(|e| panic!("{kind}: errors for a while: {e}"));
    assert_eq!(proxy.mode(), Mode::Pass, "every injected error was met");
    assert_whole(&*store, &key("errors-for-a-while.bin"), &facts, scratch).await;
    if http {
        proxy.set(Mode::Status { code: 500, remaining: 2 });
        put_retrying(&*store, &key("errors-for-a-while.bin"), &file, &facts)
            .await
            .unwrap_or_else(|e| panic!("{kind}: 500s for a while: {e}"));
        assert_eq!(proxy.mode(), Mode::Pass, "every injected 500 was met");
    }

    // A slow server.
    let file = scratch.join("fault-3.bin");
    let facts = write_pattern(&file, 6 << 20, 13);
    proxy.set(Mode::Slow { bytes_per_s: 4 << 20 });
    put_retrying(&*store, &key("slow.bin"), &file, &facts).await.unwrap_or_else(|e| panic!("{kind}: slow server: {e}"));
    proxy.set(Mode::Pass);
    assert_whole(&*store, &key("slow.bin"), &facts, scratch).await;

    // Killed mid-upload and restarted.
    let file = scratch.join("fault-4.bin");
    let facts = write_pattern(&file, 40 << 20, 14);
    proxy.set(Mode::Slow { bytes_per_s: 10 << 20 });
    let killed_key = key("killed.bin");
    let upload = put_retrying(&*store, &killed_key, &file, &facts);
    let chaos = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        proxy.set(Mode::Pass);
        server.restart();
    };
    let (result, ()) = tokio::join!(upload, chaos);
    match result {
        Ok(()) => assert_whole(&*store, &key("killed.bin"), &facts, scratch).await,
        Err(message) => {
            assert!(message.contains(kind), "{kind}: the failure names the backend: {message}");
            match store.stat(&key("killed.bin")).await.expect("stat after a failed upload") {
                None => {}
                Some(meta) => {
                    assert_eq!(meta.size_bytes, facts.size_bytes, "no partial object under the final name");
                    assert_whole(&*store, &key("killed.bin"), &facts, scratch).await;
                }
            }
            eprintln!("{kind}: killed mid-upload: failed cleanly: {message}");
        }
    }
    assert!(file.exists(), "the local copy is kept");
}
