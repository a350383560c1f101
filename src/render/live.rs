//! A live call: tracks join and leave while the composite is being made. Senders (the
//! PushMedia sessions of `live/`) put each track's pictures and samples, already placed on the
//! call clock, into bounded queues; the live pass (`live_pass`) takes them at the pace of the
//! wall clock. A full queue makes its sender wait, so a sender faster than real time is slowed
//! by flow control and the memory of a track is bounded; the pass never waits for a sender.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::source::{AudioSource, PlacedAudio, VideoSource};
use crate::ingest::{CallInfo, TrackKind};
use crate::media::MediaError;
use crate::media::decode::VideoFrame;
use crate::timeline::Stamped;
use crate::timeline::live_clock::{LiveClock, LiveClockSettings};

/// How a live call is composed and when it ends by itself.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSettings {
    /// Output frame t is composed at wall time t + this: what arrives later misses it.
    pub latency_ms: u64,
    /// A track's last picture stays on its tile this long after its capture time; then the
    /// tile shows its placeholder (a sender that stopped sending).
    pub hold_ms: u64,
    /// Stop once nobody has been sending for this long (from the start, or from the last
    /// track's end); `None`: never.
    pub idle_timeout_ms: Option<u64>,
    /// Stop when the call is this long; `None`: never.
    pub max_duration_ms: Option<u64>,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings { latency_ms: 500, hold_ms: 2000, idle_timeout_ms: Some(60_000), max_duration_ms: None }
    }
}

impl LiveSettings {
    /// Pictures a track may have queued: the latency's worth at 60 fps, and a second more.
    pub fn video_queue_frames(&self) -> usize {
        usize::try_from(self.latency_ms.saturating_mul(60) / 1000).unwrap_or(usize::MAX).saturating_add(60)
    }

    /// Audio chunks a track may have queued: the latency's worth of 10 ms chunks, and 2 s more.
    pub fn audio_queue_chunks(&self) -> usize {
        usize::try_from(self.latency_ms / 10).unwrap_or(usize::MAX).saturating_add(200)
    }
}

/// Why a live call stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    ApiCall,
    AllPeersLeft,
    MaxDuration,
    InternalError,
    /// The node shuts down: the call cannot move to another node (its senders are connected
    /// here), so it stops and its files are delivered.
    NodeShutdown,
}

/// Where a live call stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LiveState {
    Running,
    /// Media is taken and dropped: the outputs have a cut here.
    Paused,
    /// Stopped at call time `at_ms`: what lies before it is still composed, then the files end.
    Stopping {
        reason: StopReason,
        at_ms: f64,
    },
    /// The pass has finished; nothing more is taken.
    Ended {
        reason: StopReason,
    },
}

/// A live call as a render's input (equal when it is the same call).
#[derive(Debug, Clone)]
pub struct LiveInput(pub Arc<LiveCall>);

impl PartialEq for LiveInput {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Who a pushed track belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTrackInfo {
    pub participant_id: String,
    pub user_session_id: String,
    pub track_id: String,
    pub kind: TrackKind,
    pub screenshare: bool,
    /// The sender's name for the participant ("" when it gave none); the job's own list wins.
    pub display_name: String,
}

/// A track that joined at call time `joined_ms`, with the receiving end of its queue, waiting
/// for the pass to take it.
pub struct Joined {
    pub info: LiveTrackInfo,
    pub joined_ms: f64,
    pub media: JoinedMedia,
}

pub enum JoinedMedia {
    Video(LiveVideo),
    Audio(LiveAudio),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LiveError {
    #[error("the live call has ended")]
    Ended,
    #[error("track `{track_id}` of participant `{participant_id}` is already being sent")]
    Duplicate { participant_id: String, track_id: String },
    #[error("the live call is {state}: it cannot be {action}")]
    WrongState { state: &'static str, action: &'static str },
}

struct Control {
    state: LiveState,
    joined: Vec<Joined>,
    /// Tracks with a sender connected: (participant, session, track).
    open: Vec<(String, String, String)>,
    /// Call time the last open track closed (0 before anyone joined).
    last_left_ms: f64,
    /// Pauses as call-time intervals `[from, until)` (`until` infinite while paused), oldest
    /// first; the pass forgets those it is past.
    pauses: Vec<(f64, f64)>,
}

/// Clock domains a call keeps apart at most; senders naming more share the first.
const MAX_CLOCK_DOMAINS: usize = 1024;

/// One live call, shared by its senders and its pass.
pub struct LiveCall {
    /// Wall-clock instant of call time 0: set when the pass is ready to compose.
    epoch: OnceLock<Instant>,
    /// True once the clock started or the call ended: senders wait for it before joining.
    open: watch::Sender<bool>,
    call: CallInfo,
    settings: LiveSettings,
    control: Mutex<Control>,
    /// One clock per sender clock domain (`""` unless senders name theirs): every track whose
    /// capture timestamps come from one clock is placed with one offset, so they stay in sync
    /// with each other however differently their streams' first packets were delayed.
    clocks: Mutex<Vec<(String, LiveClock)>>,
}

impl std::fmt::Debug for LiveCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCall").field("call", &self.call).field("settings", &self.settings).finish()
    }
}

impl LiveCall {
    /// A call whose clock starts when its pass is ready (see [`LiveCall::start`]).
    pub fn new(call: CallInfo, settings: LiveSettings) -> Arc<LiveCall> {
        let control = Control {
            state: LiveState::Running,
            joined: Vec::new(),
            open: Vec::new(),
            last_left_ms: 0.0,
            pauses: Vec::new(),
        };
        Arc::new(LiveCall {
            epoch: OnceLock::new(),
            open: watch::Sender::new(false),
            call,
            settings,
            control: Mutex::new(control),
            clocks: Mutex::new(Vec::new()),
        })
    }

    /// Starts the call clock: call time 0 is now. The pass calls it once its encoders run, so
    /// that the first ticks are not late for the time the encoders took to start.
    pub fn start(&self) {
        let _ = self.epoch.get_or_init(Instant::now);
        self.open.send_replace(true);
    }

    /// Waits until the clock started or the call ended; false when `timeout` passed first.
    pub async fn started(&self, timeout: Duration) -> bool {
        let mut open = self.open.subscribe();
        matches!(tokio::time::timeout(timeout, open.wait_for(|open| *open)).await, Ok(Ok(_)))
    }

    /// [`LiveCall::started`] for a thread outside the runtime.
    pub fn wait_started(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !*self.open.borrow() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Call time now: milliseconds since the call started (0 until it does).
    pub fn now_ms(&self) -> f64 {
        self.epoch.get().map_or(0.0, |epoch| epoch.elapsed().as_secs_f64() * 1000.0)
    }

    /// The wall-clock instant of call time 0, once the call started.
    pub fn epoch(&self) -> Option<Instant> {
        self.epoch.get().copied()
    }

    pub fn call(&self) -> &CallInfo {
        &self.call
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        // A panic while holding this lock leaves nothing half-done in it.
        self.control.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> LiveState {
        self.control().state
    }

    /// The call time of media captured at `capture_ms` on clock `domain`, arriving now.
    pub fn place(&self, domain: &str, capture_ms: f64) -> f64 {
        let mut clocks = self.clocks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Taken under the lock: arrivals reach each clock in order.
        let now_ms = self.now_ms();
        let index = match clocks.iter().position(|(d, _)| d == domain) {
            Some(index) => index,
            None if clocks.len() < MAX_CLOCK_DOMAINS => {
                clocks.push((domain.to_owned(), LiveClock::new(LiveClockSettings::default())));
                clocks.len() - 1
            }
            None => 0,
        };
        clocks[index].1.place(capture_ms, now_ms)
    }

    /// How often clock `domain`'s timestamps jumped and were re-anchored.
    pub fn clock_jumps(&self, domain: &str) -> u32 {
        let clocks = self.clocks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clocks.iter().find(|(d, _)| d == domain).map_or(0, |(_, clock)| clock.jumps())
    }

    /// A new video track: pictures sent on the returned sender reach the composite.
    pub fn join_video(self: &Arc<Self>, info: LiveTrackInfo) -> Result<TrackSender<Stamped<VideoFrame>>, LiveError> {
        let (tx, rx) = mpsc::channel(self.settings.video_queue_frames());
        self.join(info, tx, JoinedMedia::Video(LiveQueue::new(rx)))
    }

    /// A new audio track: chunks sent on the returned sender reach the mix.
    pub fn join_audio(self: &Arc<Self>, info: LiveTrackInfo) -> Result<TrackSender<PlacedAudio>, LiveError> {
        let (tx, rx) = mpsc::channel(self.settings.audio_queue_chunks());
        self.join(info, tx, JoinedMedia::Audio(LiveQueue::new(rx)))
    }

    fn join<T>(
        self: &Arc<Self>,
        info: LiveTrackInfo,
        tx: mpsc::Sender<T>,
        media: JoinedMedia,
    ) -> Result<TrackSender<T>, LiveError> {
        let joined_ms = self.now_ms();
        let mut control = self.control();
        if matches!(control.state, LiveState::Stopping { .. } | LiveState::Ended { .. }) {
            return Err(LiveError::Ended);
        }
        let key = (info.participant_id.clone(), info.user_session_id.clone(), info.track_id.clone());
        if control.open.contains(&key) {
            return Err(LiveError::Duplicate { participant_id: key.0, track_id: key.2 });
        }
        control.open.push(key.clone());
        control.joined.push(Joined { info, joined_ms, media });
        Ok(TrackSender { tx, call: Arc::clone(self), key })
    }

    fn left(&self, key: &(String, String, String)) {
        let now = self.now_ms();
        let mut control = self.control();
        control.open.retain(|k| k != key);
        if control.open.is_empty() {
            control.last_left_ms = now;
        }
    }

    /// Pauses a running call: what is captured from now until it resumes is left out.
    pub fn pause(&self) -> Result<(), LiveError> {
        let at_ms = self.now_ms();
        self.transition("paused", |state| (*state == LiveState::Running).then_some(LiveState::Paused))?;
        self.control().pauses.push((at_ms, f64::INFINITY));
        Ok(())
    }

    /// Resumes a paused call.
    pub fn resume(&self) -> Result<(), LiveError> {
        let at_ms = self.now_ms();
        self.transition("resumed", |state| (*state == LiveState::Paused).then_some(LiveState::Running))?;
        if let Some(pause) = self.control().pauses.last_mut() {
            pause.1 = at_ms;
        }
        Ok(())
    }

    /// Whether call time `t_ms` lies in a pause; pauses that ended before it are forgotten
    /// (the pass asks in call time order).
    pub(super) fn paused_at(&self, t_ms: f64) -> bool {
        let mut control = self.control();
        control.pauses.retain(|&(_, until)| until > t_ms);
        control.pauses.iter().any(|&(from, until)| (from..until).contains(&t_ms))
    }

    /// Stops the call now (a running or paused one; stopping twice keeps the first reason).
    pub fn stop(&self, reason: StopReason) -> Result<(), LiveError> {
        let at_ms = self.now_ms();
        self.transition("stopped", |state| match state {
            LiveState::Running | LiveState::Paused => Some(LiveState::Stopping { reason, at_ms }),
            LiveState::Stopping { .. } => Some(*state),
            LiveState::Ended { .. } => None,
        })
    }

    fn transition(
        &self,
        action: &'static str,
        next: impl FnOnce(&LiveState) -> Option<LiveState>,
    ) -> Result<(), LiveError> {
        let mut control = self.control();
        match next(&control.state) {
            Some(state) => {
                control.state = state;
                Ok(())
            }
            None => Err(LiveError::WrongState { state: state_name(&control.state), action }),
        }
    }

    /// The tracks that joined since the last call (for the pass).
    pub(super) fn take_joined(&self) -> Vec<Joined> {
        std::mem::take(&mut self.control().joined)
    }

    /// Whether no track is open, and since when (call time).
    pub(super) fn idle_since_ms(&self) -> Option<f64> {
        let control = self.control();
        control.open.is_empty().then_some(control.last_left_ms)
    }

    /// The pass is done: senders are refused from now on.
    pub(super) fn end(&self, reason: StopReason) {
        // Senders waiting for the start learn that it ended.
        self.open.send_replace(true);
        let mut control = self.control();
        control.state = LiveState::Ended { reason };
        control.joined.clear();
    }
}

fn state_name(state: &LiveState) -> &'static str {
    match state {
        LiveState::Running => "running",
        LiveState::Paused => "paused",
        LiveState::Stopping { .. } => "stopping",
        LiveState::Ended { .. } => "ended",
    }
}

/// The sending end of one track's queue; dropping it ends the track.
pub struct TrackSender<T> {
    tx: mpsc::Sender<T>,
    call: Arc<LiveCall>,
    key: (String, String, String),
}

impl<T> TrackSender<T> {
    /// Queues `item`, waiting while the queue is full; `Err(Ended)` once the pass has ended.
    pub async fn send(&self, item: T) -> Result<(), LiveError> {
        self.tx.send(item).await.map_err(|_| LiveError::Ended)
    }

    /// Queues `item` from a thread that is not async (tests, the CLI's own senders).
    pub fn blocking_send(&self, item: T) -> Result<(), LiveError> {
        self.tx.blocking_send(item).map_err(|_| LiveError::Ended)
    }

    pub fn call(&self) -> &Arc<LiveCall> {
        &self.call
    }
}

impl<T> Drop for TrackSender<T> {
    fn drop(&mut self) {
        self.call.left(&self.key);
    }
}

/// The receiving end of a track's queue: a frame source of the pass (video) or an audio
/// source (audio).
pub struct LiveQueue<T> {
    rx: mpsc::Receiver<T>,
    /// Set once the sender is gone and everything it sent has been taken.
    ended: Arc<AtomicBool>,
}

/// A video track's queue.
pub type LiveVideo = LiveQueue<Stamped<VideoFrame>>;
/// An audio track's queue.
pub type LiveAudio = LiveQueue<PlacedAudio>;

impl<T> LiveQueue<T> {
    fn new(rx: mpsc::Receiver<T>) -> LiveQueue<T> {
        LiveQueue { rx, ended: Arc::new(AtomicBool::new(false)) }
    }

    /// Whether the sender is gone and everything it sent has been taken.
    pub fn ended_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ended)
    }

    fn receive(&mut self) -> Option<T> {
        match self.rx.try_recv() {
            Ok(item) => Some(item),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                self.ended.store(true, Ordering::Relaxed);
                None
            }
        }
    }
}

impl VideoSource for LiveVideo {
    fn next_frame(&mut self, _t_ms: f64) -> Result<Option<Stamped<VideoFrame>>, MediaError> {
        Ok(self.receive())
    }
}

impl AudioSource for LiveAudio {
    fn next_chunk(&mut self, _horizon: u64) -> Result<Option<PlacedAudio>, MediaError> {
        Ok(self.receive())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(participant: &str, track: &str, kind: TrackKind) -> LiveTrackInfo {
        LiveTrackInfo {
            participant_id: participant.into(),
            user_session_id: format!("{participant}-s"),
            track_id: track.into(),
            kind,
            screenshare: false,
            display_name: String::new(),
        }
    }

    fn call() -> Arc<LiveCall> {
        let info = CallInfo {
            call_type: "default".into(),
            call_id: "live".into(),
            call_session_id: String::new(),
            call_start_unix_ms: 0,
        };
        let call = LiveCall::new(info, LiveSettings::default());
        call.start();
        call
    }

    #[test]
    fn a_track_is_sent_once_at_a_time_and_leaving_makes_the_call_idle() {
        let call = call();
        assert_eq!(call.idle_since_ms(), Some(0.0));
        let sender = call.join_audio(info("a", "mic", TrackKind::Audio)).unwrap();
        assert!(matches!(call.join_audio(info("a", "mic", TrackKind::Audio)), Err(LiveError::Duplicate { .. })));
        assert_eq!(call.idle_since_ms(), None);
        let mut joined = call.take_joined();
        assert_eq!(joined.len(), 1);
        sender.blocking_send(PlacedAudio { position: 0, samples: vec![0.5; 4] }).unwrap();
        drop(sender);
        assert!(call.idle_since_ms().is_some());
        let Some(Joined { media: JoinedMedia::Audio(mut source), .. }) = joined.pop() else { panic!("audio track") };
        let ended = source.ended_flag();
        assert_eq!(source.next_chunk(0).unwrap().unwrap().samples, vec![0.5; 4]);
        assert!(!ended.load(Ordering::Relaxed), "not ended while something is queued");
        assert!(source.next_chunk(0).unwrap().is_none());
        assert!(ended.load(Ordering::Relaxed));
        // The same track may be sent again once its sender is gone.
        assert!(call.join_audio(info("a", "mic", TrackKind::Audio)).is_ok());
    }

    #[test]
    fn pause_resume_and_stop_follow_the_states() {
        let call = call();
        assert!(call.resume().is_err());
        call.pause().unwrap();
        assert_eq!(call.state(), LiveState::Paused);
        assert!(call.pause().is_err());
        call.resume().unwrap();
        call.stop(StopReason::ApiCall).unwrap();
        call.stop(StopReason::MaxDuration).unwrap();
        assert!(matches!(call.state(), LiveState::Stopping { reason: StopReason::ApiCall, .. }));
        assert_eq!(call.join_video(info("b", "cam", TrackKind::Video)).err(), Some(LiveError::Ended));
        call.end(StopReason::ApiCall);
        assert!(call.stop(StopReason::ApiCall).is_err());
    }

    #[test]
    fn a_full_queue_refuses_more_until_the_pass_takes_some() {
        let call = call();
        let sender = call.join_video(info("a", "cam", TrackKind::Video)).unwrap();
        let capacity = call.settings().video_queue_frames();
        let frame = |at_ms: f64| Stamped {
            at_ms,
            show_from_ms: at_ms,
            show_until_ms: at_ms + 100.0,
            item: VideoFrame::packed_i420(2, 2, vec![16, 16, 16, 16, 128, 128], false),
        };
        for i in 0..capacity {
            sender.tx.try_send(frame(i as f64)).unwrap();
        }
        assert!(sender.tx.try_send(frame(0.0)).is_err(), "bounded");
        let Some(Joined { media: JoinedMedia::Video(mut source), .. }) = call.take_joined().pop() else {
            panic!("video track")
        };
        assert!(source.next_frame(0.0).unwrap().is_some());
        assert!(sender.tx.try_send(frame(0.0)).is_ok());
    }
}
