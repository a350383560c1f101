//! A composite video split by time (a job's `parallelism`): where the call's frames are cut,
//! what one slice's worker is told and answers, and the workers' side of the contract. The
//! cuts fall on the keyframe grid of a single-encoder render (every keyframe interval from
//! the first frame), so each slice starts with the keyframe a single render would have there.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::CancelFlag;

/// Frames `[first_frame, end_frame)` of the composite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub index: usize,
    pub first_frame: u64,
    pub end_frame: u64,
}

impl Slice {
    pub fn frames(&self) -> u64 {
        self.end_frame - self.first_frame
    }
}

/// Cuts frames `[first, end)` into at most `workers` slices of about equal length, each cut on
/// a multiple of `keyframe_interval_frames` from `first`. Fewer slices come back when the
/// video is too short for that many keyframe intervals (one slice: nothing to split).
pub fn cut(first: u64, end: u64, workers: u32, keyframe_interval_frames: u32) -> Vec<Slice> {
    let frames = end.saturating_sub(first);
    let gop = u64::from(keyframe_interval_frames.max(1));
    let workers = u64::from(workers.max(1));
    let mut bounds = vec![first];
    for i in 1..workers {
        let ideal = frames * i / workers;
        let cut = first + (ideal + gop / 2) / gop * gop;
        if cut > *bounds.last().unwrap_or(&first) && cut < end {
            bounds.push(cut);
        }
    }
    bounds.push(end.max(first));
    bounds
        .windows(2)
        .enumerate()
        .map(|(index, w)| Slice { index, first_frame: w[0], end_frame: w[1] })
        .filter(|s| s.end_frame > s.first_frame)
        .collect()
}

/// What one worker renders: a slice of the composite video (video only) into `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceOrder {
    pub slice: Slice,
    pub path: PathBuf,
    /// The recording as the orchestrating render opened it (an archive already extracted),
    /// when the input is a raw recording.
    pub recording_dir: Option<PathBuf>,
    /// 0 for the first try; a slice whose worker died is tried again.
    pub attempt: u32,
}

/// What a worker answers for a slice it rendered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliceDone {
    pub frames: u64,
    pub encoder: Option<String>,
    pub adapter: Option<String>,
    pub compose_cpu_s: f64,
}

/// How a slice's worker ended, when not with the slice.
#[derive(Debug, Clone, PartialEq)]
pub enum SliceFailure {
    Cancelled,
    /// The worker went away (a crash, a kill): the slice is given to a worker again.
    Died(String),
    /// The render failed: the job fails with it.
    Failed {
        callers_fault: bool,
        code: String,
        message: String,
    },
}

/// Runs slices somewhere: a child process on this node per slice (the CLI and the service).
pub trait SliceWorkers: Send + Sync {
    /// Renders `order`, blocking until it ends; `on_frames` hears the frames written so far. A
    /// cancel of `cancel` stops it.
    fn render(
        &self,
        order: &SliceOrder,
        cancel: &CancelFlag,
        on_frames: &mut dyn FnMut(u64),
    ) -> Result<SliceDone, SliceFailure>;
}

/// A composite split across workers.
#[derive(Clone)]
pub struct Parallel {
    /// At most this many slices, rendered at once.
    pub workers: u32,
    pub slices: Arc<dyn SliceWorkers>,
}

impl std::fmt::Debug for Parallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parallel").field("workers", &self.workers).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(slices: &[Slice]) -> Vec<(u64, u64)> {
        slices.iter().map(|s| (s.first_frame, s.end_frame)).collect()
    }

    #[test]
    fn cuts_fall_on_the_keyframe_grid_and_cover_every_frame_once() {
        // Ten minutes at 30 fps, a keyframe every 2 s.
        let slices = cut(0, 18_000, 4, 60);
        assert_eq!(bounds(&slices), vec![(0, 4500), (4500, 9000), (9000, 13_500), (13_500, 18_000)]);
        let slices = cut(0, 1000, 3, 60);
        assert_eq!(bounds(&slices), vec![(0, 360), (360, 660), (660, 1000)]);
        for (frames, workers, gop) in
            [(1000_u64, 3_u32, 60_u32), (18_001, 7, 50), (61, 4, 60), (5, 8, 1), (900, 16, 30)]
        {
            let slices = cut(0, frames, workers, gop);
            assert!(slices.len() <= workers as usize);
            let mut next = 0;
            for (i, s) in slices.iter().enumerate() {
                assert_eq!((s.index, s.first_frame), (i, next), "{frames}/{workers}/{gop}: {slices:?}");
                assert!(s.first_frame % u64::from(gop) == 0, "on the grid: {s:?}");
                assert!(s.frames() > 0);
                next = s.end_frame;
            }
            assert_eq!(next, frames);
        }
    }

    #[test]
    fn a_video_shorter_than_the_keyframe_intervals_asked_for_is_split_less() {
        assert_eq!(bounds(&cut(0, 100, 4, 60)), vec![(0, 60), (60, 100)]);
        assert_eq!(bounds(&cut(0, 50, 4, 60)), vec![(0, 50)]);
        assert_eq!(bounds(&cut(0, 100, 1, 60)), vec![(0, 100)]);
        assert_eq!(bounds(&cut(0, 100, 0, 0)), vec![(0, 100)]);
        assert!(cut(10, 10, 4, 60).is_empty(), "no frames, no slices");
    }
}
