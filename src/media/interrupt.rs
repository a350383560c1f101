//! Stopping waits on GStreamer from outside. A render makes one [`Interrupt`] and enters it on
//! each thread that starts pipelines; every [`super::pipeline::OwnedPipeline`] takes the
//! interrupt of the thread that launched it, and each of its waits (a push into an appsrc with
//! no room, a pull from an appsink, the wait for end of stream) checks it a few times a second.
//! Once stopped (a cancel, or a watchdog that saw no progress for too long) those waits end
//! with [`MediaError::Interrupted`] instead of blocking for good. Data moving through a
//! pipeline counts as progress ([`Interrupt::touch`]).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::MediaError;

/// Why waits were stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The render was cancelled (a cancel request, a shutdown, a lost lease).
    Cancelled,
    /// Nothing moved for `idle_s` seconds, past the stall timeout.
    Stalled { idle_s: u64 },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Cancelled => write!(f, "cancelled"),
            StopReason::Stalled { idle_s } => {
                write!(f, "stalled: no progress for {idle_s} s (the stall timeout, jobs.stall_timeout_s)")
            }
        }
    }
}

#[derive(Debug)]
struct Shared {
    stopped: OnceLock<StopReason>,
    created: Instant,
    /// Milliseconds from `created` to the last progress.
    last_progress_ms: AtomicU64,
}

/// A stop signal shared by a render's pipelines, and the time of its last progress.
#[derive(Debug, Clone)]
pub struct Interrupt(Arc<Shared>);

impl Default for Interrupt {
    fn default() -> Interrupt {
        Interrupt(Arc::new(Shared {
            stopped: OnceLock::new(),
            created: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
        }))
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Interrupt>> = const { RefCell::new(None) };
}

/// Keeps an interrupt entered on this thread; the previous one comes back when dropped.
#[derive(Debug)]
#[must_use = "the interrupt is entered only while this guard lives"]
pub struct Entered {
    previous: Option<Interrupt>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

impl Interrupt {
    /// Stops every wait; the first reason given wins. Returns whether this call stopped it.
    pub fn stop(&self, reason: StopReason) -> bool {
        self.0.stopped.set(reason).is_ok()
    }

    /// Why it was stopped, once it is.
    pub fn reason(&self) -> Option<StopReason> {
        self.0.stopped.get().copied()
    }

    /// Notes progress now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.0.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_progress_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time since the last progress (or since it was made).
    pub fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.0.last_progress_ms.load(Ordering::Relaxed));
        self.0.created.elapsed().saturating_sub(last)
    }

    /// The interrupt entered on this thread, or a new one nobody stops.
    pub fn current() -> Interrupt {
        CURRENT.with(|current| current.borrow().clone()).unwrap_or_default()
    }

    /// Makes this the interrupt of the pipelines this thread launches while the guard lives.
    pub fn enter(&self) -> Entered {
        let previous = CURRENT.with(|current| current.borrow_mut().replace(self.clone()));
        Entered { previous }
    }

    /// `Err(Interrupted)` naming `what` once stopped.
    pub fn check(&self, what: &str) -> Result<(), MediaError> {
        match self.reason() {
            Some(reason) => Err(MediaError::Interrupted { what: what.to_owned(), reason }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins_and_is_reported_with_what_waited() {
        let interrupt = Interrupt::default();
        assert!(interrupt.check("encoding out.mp4").is_ok());
        assert!(interrupt.stop(StopReason::Stalled { idle_s: 30 }));
        assert!(!interrupt.stop(StopReason::Cancelled));
        let err = interrupt.check("encoding out.mp4").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("encoding out.mp4") && text.contains("30 s"), "{text}");
        assert_eq!(crate::error::failure(&err).code, "stalled");
    }

    #[test]
    fn entering_sets_the_threads_interrupt_until_the_guard_drops() {
        let outer = Interrupt::default();
        outer.stop(StopReason::Cancelled);
        {
            let _entered = outer.enter();
            assert_eq!(Interrupt::current().reason(), Some(StopReason::Cancelled));
            let inner = Interrupt::default();
            {
                let _inner = inner.enter();
                assert_eq!(Interrupt::current().reason(), None);
            }
            assert_eq!(Interrupt::current().reason(), Some(StopReason::Cancelled));
        }
        assert_eq!(Interrupt::current().reason(), None);
    }

    #[test]
    fn touching_resets_the_idle_time() {
        let interrupt = Interrupt::default();
        std::thread::sleep(Duration::from_millis(30));
        let before = interrupt.idle();
        interrupt.touch();
        assert!(interrupt.idle() < before);
    }
}
