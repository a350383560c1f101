//! Streaming over one SFTP session: a local file sent with several write requests in flight,
//! and a remote file read in order with several read requests in flight into a sink (memory,
//! a local file written on a blocking thread, or a SHA-256 computed on one). Memory stays
//! bounded: a few queued chunks plus the requests in flight.

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use sha2::Digest as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::connect::Connection;

/// Requests in flight at once (16 of 128 KiB: 2 MiB, the size of the SSH channel's window).
const IN_FLIGHT: usize = 16;
/// Chunks queued between a file thread and the session.
const QUEUED: usize = 8;

/// Why a transfer stopped.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server's answer, or the session broke.
    Sftp(SftpError),
    /// This node's file.
    Local(PathBuf, std::io::Error),
    /// More than the limit.
    TooLarge,
    /// The sink's thread stopped taking data (its own error says why).
    SinkClosed,
}

impl From<SftpError> for Failure {
    fn from(err: SftpError) -> Failure {
        Failure::Sftp(err)
    }
}

/// A request under way: its offset, its length, its task.
type Request<T> = (u64, u64, JoinHandle<Result<T, SftpError>>);

/// Spawned requests in order, aborted when dropped: an error or a cancelled call leaves none
/// running.
struct InFlight<T> {
    tasks: VecDeque<Request<T>>,
}

impl<T> InFlight<T> {
    fn new() -> InFlight<T> {
        InFlight { tasks: VecDeque::new() }
    }

    fn abort_all(&mut self) {
        for (_, _, task) in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl<T> Drop for InFlight<T> {
    fn drop(&mut self) {
        self.abort_all();
    }
}

/// A request's outcome; a request task that died is a broken session.
async fn joined<T>(task: JoinHandle<Result<T, SftpError>>) -> Result<T, SftpError> {
    task.await.unwrap_or_else(|err| Err(SftpError::UnexpectedBehavior(format!("request task failed: {err}"))))
}

/// Writes the local file `path` into the open remote file `handle` from offset 0; returns the
/// bytes sent.
pub(super) async fn upload(conn: &Connection, handle: &str, path: &Path) -> Result<u64, Failure> {
    let (sender, mut chunks) = mpsc::channel::<std::io::Result<Vec<u8>>>(QUEUED);
    let source = path.to_path_buf();
    let chunk_len = conn.write_len;
    let reader = tokio::task::spawn_blocking(move || read_chunks(&source, chunk_len, &sender));
    let mut in_flight = InFlight::<()>::new();
    let mut offset = 0_u64;
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.map_err(|err| Failure::Local(path.to_path_buf(), err))?;
        if in_flight.tasks.len() >= IN_FLIGHT
            && let Some((_, _, task)) = in_flight.tasks.pop_front()
        {
            joined(task).await?;
        }
        let (sftp, handle, at, len) = (conn.sftp.clone(), handle.to_owned(), offset, chunk.len() as u64);
        let task = tokio::spawn(async move { sftp.write(handle, at, chunk).await.map(|_| ()) });
        in_flight.tasks.push_back((at, len, task));
        offset += len;
    }
    while let Some((_, _, task)) = in_flight.tasks.pop_front() {
        joined(task).await?;
    }
    reader.await.map_err(|err| Failure::Local(path.to_path_buf(), std::io::Error::other(err.to_string())))?;
    Ok(offset)
}

/// The file thread of [`upload`]: chunks of `chunk_len` bytes (the last one shorter), or the
/// read error.
fn read_chunks(path: &Path, chunk_len: usize, sender: &mpsc::Sender<std::io::Result<Vec<u8>>>) {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) => {
            let _ = sender.blocking_send(Err(err));
            return;
        }
    };
    loop {
        let mut chunk = vec![0_u8; chunk_len];
        let mut filled = 0;
        while filled < chunk_len {
            match file.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let _ = sender.blocking_send(Err(err));
                    return;
                }
            }
        }
        if filled == 0 {
            return;
        }
        chunk.truncate(filled);
        if sender.blocking_send(Ok(chunk)).is_err() || filled < chunk_len {
            return;
        }
    }
}

/// Where downloaded bytes go.
pub(super) enum Sink {
    Memory(Vec<u8>),
    /// A thread's queue ([`hashing`], [`writing`]).
    Thread(mpsc::Sender<Vec<u8>>),
}

impl Sink {
    async fn take(&mut self, data: Vec<u8>) -> Result<(), Failure> {
        match self {
            Sink::Memory(bytes) => {
                bytes.extend_from_slice(&data);
                Ok(())
            }
            Sink::Thread(sender) => sender.send(data).await.map_err(|_| Failure::SinkClosed),
        }
    }
}

/// A sink that computes the SHA-256 (lower-case hex) of what it is given, off the async
/// threads. Drop the sink, then await the digest.
pub(super) fn hashing() -> (Sink, JoinHandle<String>) {
    let (sender, mut chunks) = mpsc::channel::<Vec<u8>>(QUEUED);
    let digest = tokio::task::spawn_blocking(move || {
        let mut hasher = sha2::Sha256::new();
        while let Some(chunk) = chunks.blocking_recv() {
            hasher.update(&chunk);
        }
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    });
    (Sink::Thread(sender), digest)
}

/// A sink that writes `dest` (created or truncated). Drop the sink, then await the outcome.
pub(super) fn writing(dest: PathBuf) -> (Sink, JoinHandle<std::io::Result<()>>) {
    let (sender, mut chunks) = mpsc::channel::<Vec<u8>>(QUEUED);
    let written = tokio::task::spawn_blocking(move || {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&dest)?);
        while let Some(chunk) = chunks.blocking_recv() {
            file.write_all(&chunk)?;
        }
        file.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()
    });
    (Sink::Thread(sender), written)
}

/// Reads `range` of the open remote file `handle` in order into `sink`, stopping at the end of
/// the file; more than `limit` bytes is [`Failure::TooLarge`] (the sink never gets more than
/// `limit`). Returns the bytes read.
pub(super) async fn download(
    conn: &Connection,
    handle: &str,
    range: Range<u64>,
    limit: u64,
    sink: &mut Sink,
) -> Result<u64, Failure> {
    let mut in_flight = InFlight::<Vec<u8>>::new();
    let mut next = range.start;
    let mut total = 0_u64;
    loop {
        while in_flight.tasks.len() < IN_FLIGHT && next < range.end {
            let len = (range.end - next).min(u64::from(conn.read_len));
            let (sftp, handle, at) = (conn.sftp.clone(), handle.to_owned(), next);
            let task = tokio::spawn(async move {
                // `len` <= read_len, a u32.
                let len = u32::try_from(len).unwrap_or(u32::MAX);
                sftp.read(handle, at, len).await.map(|data| data.data)
            });
            in_flight.tasks.push_back((at, len, task));
            next += len;
        }
        let Some((at, asked, task)) = in_flight.tasks.pop_front() else { break };
        let data = match joined(task).await {
            Ok(data) => data,
            Err(SftpError::Status(status)) if status.status_code == StatusCode::Eof => break,
            Err(err) => return Err(err.into()),
        };
        let got = data.len() as u64;
        if got == 0 {
            break;
        }
        if total.saturating_add(got) > limit {
            return Err(Failure::TooLarge);
        }
        total += got;
        sink.take(data).await?;
        if got < asked {
            // The end of the file, or a server that answers with less: ask again from here.
            in_flight.abort_all();
            next = at + got;
        }
    }
    Ok(total)
}
