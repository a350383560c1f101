//! The watchdog of a render: the render runs with an [`Interrupt`] entered, so every wait on
//! GStreamer it starts answers to it, and a thread beside it stops that interrupt when the
//! render is cancelled or when nothing has moved (no data through a pipeline, no progress) for
//! the stall timeout. The render then ends within a fraction of a second with a named error
//! ([`RenderError::Cancelled`], or [`MediaError::Interrupted`] for a stall) and removes its
//! partial files.

use std::sync::mpsc;
use std::time::Duration;

use super::{CancelFlag, RenderError};
use crate::media::{Interrupt, MediaError, StopReason};

/// A render with no progress for this long fails, unless told otherwise.
pub const DEFAULT_STALL_TIMEOUT_S: u64 = 300;

/// How often the watchdog looks.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Runs `work` on this thread, watched: `work` gets the interrupt to note progress on.
pub fn watched<T>(
    cancel: &CancelFlag,
    stall_timeout: Duration,
    work: impl FnOnce(&Interrupt) -> Result<T, RenderError>,
) -> Result<T, RenderError> {
    let interrupt = Interrupt::default();
    let result = std::thread::scope(|scope| {
        let (done, done_rx) = mpsc::channel::<()>();
        let watching = interrupt.clone();
        let span = tracing::Span::current();
        scope.spawn(move || {
            let _span = span.enter();
            watch(cancel, &watching, stall_timeout, &done_rx);
        });
        let result = {
            let _entered = interrupt.enter();
            work(&interrupt)
        };
        drop(done);
        result
    });
    match (result, interrupt.reason()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(StopReason::Cancelled)) => Err(RenderError::Cancelled),
        (Err(err @ RenderError::Media(MediaError::Interrupted { .. })), _) => Err(err),
        // Whatever failed once the render was stopped failed because it was stopped.
        (Err(_), Some(reason)) => Err(MediaError::Interrupted { what: "rendering".into(), reason }.into()),
        (Err(err), None) => Err(err),
    }
}

/// Stops `interrupt` on a cancel or a stall; returns when `done` is dropped.
fn watch(cancel: &CancelFlag, interrupt: &Interrupt, stall_timeout: Duration, done: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(LOOK_EVERY) {
        if interrupt.reason().is_some() {
            continue;
        }
        if cancel.is_cancelled() {
            interrupt.stop(StopReason::Cancelled);
            continue;
        }
        let idle = interrupt.idle();
        if idle >= stall_timeout {
            let idle_s = idle.as_secs();
            tracing::error!(idle_s, "no progress for the stall timeout: stopping the render");
            interrupt.stop(StopReason::Stalled { idle_s });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits the way a blocked GStreamer wait does: until the interrupt stops it.
    fn blocked(interrupt: &Interrupt) -> Result<(), RenderError> {
        loop {
            Interrupt::current().check("waiting on a pipeline")?;
            assert!(Interrupt::current().reason() == interrupt.reason());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_render_that_makes_no_progress_is_stopped_as_stalled() {
        let err = watched(&CancelFlag::default(), Duration::from_millis(200), blocked).unwrap_err();
        assert!(matches!(err, RenderError::Media(MediaError::Interrupted { .. })), "{err:?}");
        assert_eq!(crate::error::failure(&err).code, "stalled", "{err}");
        assert!(err.to_string().contains("waiting on a pipeline"), "{err}");
    }

    #[test]
    fn a_cancel_ends_a_blocked_render_as_cancelled() {
        let cancel = CancelFlag::default();
        cancel.cancel();
        let err = watched(&cancel, Duration::from_secs(3600), blocked).unwrap_err();
        assert!(matches!(err, RenderError::Cancelled), "{err:?}");
    }

    #[test]
    fn progress_keeps_a_render_alive_and_its_result_comes_back() {
        let value = watched(&CancelFlag::default(), Duration::from_secs(1), |interrupt| {
            for _ in 0..40 {
                interrupt.touch();
                std::thread::sleep(Duration::from_millis(50));
                Interrupt::current().check("working").map_err(RenderError::Media)?;
            }
            Ok(7)
        });
        assert_eq!(value.expect("not stopped"), 7);
    }
}
