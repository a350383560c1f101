//! One output of the composite pass: which visuals it shows through which layout, which tracks
//! it hears, over which frames, and its encoders. The composite is one; each individual file
//! re-encoded to another codec is another (one tile at the sender's picture size, the mix of
//! the file's own audio), all fed by the same decode.
//!
//! A re-encoded individual file learns its picture size from the first picture the pass
//! decodes for it: until then its frames are counted (they will be black) and its audio kept
//! (in memory, then in an unnamed temporary file), and both are replayed, tick by tick, into
//! the encoder once it starts.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::RenderError;
use super::plan::Visual;
use super::stage::Stage;
use crate::audio::Limiter;
use crate::gpu::Compositor;
use crate::gpu::OverlayCache;
use crate::media::decode::{AUDIO_CHANNELS, AUDIO_RATE_HZ};
use crate::media::encode::{AudioFileEncoder, CompositeEncoder, EncodeSettings};
use crate::media::encoders::{VideoEncoder, pick_video_encoder};
use crate::timeline::CallTimeline;

/// Audio kept in memory while an output waits for its first picture; past this it goes to a
/// temporary file (30 s of stereo f32).
const BACKLOG_MEMORY_SAMPLES: usize = 30 * AUDIO_RATE_HZ as usize * AUDIO_CHANNELS;

/// The sample frames of tick `n` at `fps`: `[n * rate / fps, (n + 1) * rate / fps)`.
pub fn tick_samples(n: u64, fps: u32) -> (u64, u64) {
    let at = |n: u64| n * u64::from(AUDIO_RATE_HZ) / u64::from(fps);
    (at(n), at(n + 1))
}

/// The video side of an output.
pub enum VideoOut {
    /// No video (an audio-only output).
    None,
    /// Encoding.
    Running(Box<RunningVideo>),
    /// Waiting for the first picture to learn the size (a re-encoded individual file).
    Waiting(Box<Waiting>),
}

/// A started video: the compositor, the encoder, and which picture of each visual is uploaded.
pub struct RunningVideo {
    pub compositor: Compositor,
    pub encoder: CompositeEncoder,
    pub uploaded: Vec<Option<u64>>,
    /// Labels and avatars uploaded to the compositor.
    pub overlays: OverlayCache,
}

/// What a waiting output needs to start, and what it has to replay.
pub struct Waiting {
    pub path: PathBuf,
    pub settings: EncodeSettings,
    pub with_audio: bool,
    /// Ticks from the output's first frame that passed without a picture.
    pub ticks: u64,
    pub backlog: AudioBacklog,
}

/// Audio of the ticks an output has not encoded yet.
#[derive(Default)]
pub struct AudioBacklog {
    memory: Vec<f32>,
    spill: Option<BufWriter<File>>,
}

impl AudioBacklog {
    fn push(&mut self, samples: &[f32]) -> std::io::Result<()> {
        if let Some(spill) = self.spill.as_mut() {
            return samples.iter().try_for_each(|s| spill.write_all(&s.to_le_bytes()));
        }
        self.memory.extend_from_slice(samples);
        if self.memory.len() > BACKLOG_MEMORY_SAMPLES {
            let mut spill = BufWriter::new(tempfile::tempfile()?);
            self.memory.iter().try_for_each(|s| spill.write_all(&s.to_le_bytes()))?;
            self.memory = Vec::new();
            self.spill = Some(spill);
        }
        Ok(())
    }

    /// Hands the kept audio back in order, `sizes` samples at a time.
    fn replay(
        self,
        sizes: impl Iterator<Item = usize>,
        mut each: impl FnMut(&[f32]) -> Result<(), RenderError>,
    ) -> Result<(), RenderError> {
        let io = |source| RenderError::Io { path: PathBuf::from("(audio backlog)"), source };
        match self.spill {
            None => {
                let mut rest = self.memory.as_slice();
                for size in sizes {
                    let (chunk, tail) = rest.split_at(size.min(rest.len()));
                    each(chunk)?;
                    rest = tail;
                }
            }
            Some(spill) => {
                let mut file = spill.into_inner().map_err(|e| io(e.into_error()))?;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                let mut reader = BufReader::new(file);
                let (mut bytes, mut chunk) = (Vec::new(), Vec::new());
                for size in sizes {
                    bytes.resize(size * 4, 0);
                    reader.read_exact(&mut bytes).map_err(io)?;
                    chunk.clear();
                    chunk.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                    each(&chunk)?;
                }
            }
        }
        Ok(())
    }
}

/// One output of the pass.
pub struct PassOutput {
    /// Frames `[first_frame, end_frame)` of the pass's frame grid.
    pub first_frame: u64,
    pub end_frame: u64,
    /// From this frame on (up to `first_frame`) the output follows the call without writing:
    /// its stage hears and places who is there, so its first written frame is the one a render
    /// from here would have (a slice of the composite, see `sliced`).
    pub warm_from: u64,
    /// The call-clock window the frames cover.
    pub window_ms: (f64, f64),
    /// What it shows (tracks indexed in the full plan), through which layout.
    pub visuals: Vec<Visual>,
    /// What it shows, tick by tick.
    pub stage: Stage,
    /// The tracks whose audio it mixes.
    pub audio_tracks: Vec<usize>,
    pub limiter: Limiter,
    pub video: VideoOut,
    pub audio_files: Vec<AudioFileEncoder>,
    pub fps: u32,
    /// The video encoder element and the GPU adapter, once the video started.
    pub encoder: Option<String>,
    pub adapter: Option<String>,
    /// CPU seconds of the composing thread spent composing frames.
    pub compose_cpu_s: f64,
}

impl PassOutput {
    pub fn covers(&self, n: u64) -> bool {
        (self.first_frame..self.end_frame).contains(&n)
    }

    /// Whether frame `n` is one the output follows without writing (see `warm_from`).
    pub fn rehearses(&self, n: u64) -> bool {
        (self.warm_from..self.first_frame).contains(&n)
    }

    /// Starts the waiting video at `(width, height)` (made even, at least 16x16) and replays
    /// the ticks it waited through: black frames, and their audio.
    pub fn start_video(&mut self, size: (u32, u32)) -> Result<(), RenderError> {
        let VideoOut::Waiting(waiting) = std::mem::replace(&mut self.video, VideoOut::None) else { return Ok(()) };
        let Waiting { path, mut settings, with_audio, ticks, backlog } = *waiting;
        let even = |v: u32| v.max(16).div_ceil(2) * 2;
        (settings.width, settings.height) = (even(size.0), even(size.1));
        let (compositor, mut encoder) = start_video(&path, &settings, with_audio)?;
        self.encoder = Some(encoder.encoder.element.to_owned());
        self.adapter = Some(compositor.adapter_summary());
        let (mut compositor, mut black) = (compositor, Vec::new());
        let background = self.stage.background(CallTimeline::frame_time_ms(self.first_frame, self.fps));
        compositor.compose(&[], background.0, &mut black)?;
        let (first, fps) = (self.first_frame, self.fps);
        backlog.replay(
            (first..first + ticks).map(|n| {
                let (from, until) = tick_samples(n, fps);
                usize::try_from(until - from).unwrap_or(0) * AUDIO_CHANNELS
            }),
            |pcm| {
                encoder.push_video(black.clone())?;
                encoder.push_audio(pcm)?;
                Ok(())
            },
        )?;
        let uploaded = vec![None; self.visuals.len()];
        let overlays = OverlayCache::new()?;
        self.video = VideoOut::Running(Box::new(RunningVideo { compositor, encoder, uploaded, overlays }));
        Ok(())
    }

    /// A tick passed without a picture for a waiting output: it will be black.
    pub fn wait(&mut self, pcm: &[f32]) -> Result<(), RenderError> {
        if let VideoOut::Waiting(waiting) = &mut self.video {
            waiting.ticks += 1;
            if waiting.with_audio {
                waiting.backlog.push(pcm).map_err(|source| RenderError::Io { path: waiting.path.clone(), source })?;
            }
        }
        Ok(())
    }

    /// Ends every encoder; the files are complete when this returns. Returns the video encoder
    /// element and the GPU adapter, when there is video.
    pub fn finish(mut self, fallback_size: (u32, u32)) -> Result<(Option<String>, Option<String>), RenderError> {
        if matches!(self.video, VideoOut::Waiting(_)) {
            // No picture at all: the file is black, at a fallback size.
            self.start_video(fallback_size)?;
        }
        if let VideoOut::Running(running) = self.video {
            running.encoder.finish()?;
        }
        for sink in self.audio_files {
            sink.finish()?;
        }
        Ok((self.encoder, self.adapter))
    }

    /// Frames this output covers.
    pub fn frames(&self) -> u64 {
        self.end_frame - self.first_frame
    }
}

/// A compositor and encoder for `settings` writing `path`.
pub fn start_video(
    path: &Path,
    settings: &EncodeSettings,
    with_audio: bool,
) -> Result<(Compositor, CompositeEncoder), RenderError> {
    let chosen: VideoEncoder = tracing::info_span!("probe_encoders")
        .in_scope(|| pick_video_encoder(settings.codec, settings.hardware))
        .map_err(RenderError::Media)?;
    let compositor = Compositor::new(settings.width, settings.height)?;
    let encoder = CompositeEncoder::start(path, chosen, settings, with_audio)?;
    Ok((compositor, encoder))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replayed(backlog: AudioBacklog, sizes: &[usize]) -> Vec<Vec<f32>> {
        let mut chunks = Vec::new();
        backlog
            .replay(sizes.iter().copied(), |chunk| {
                chunks.push(chunk.to_vec());
                Ok(())
            })
            .expect("replay");
        chunks
    }

    #[test]
    fn a_backlog_replays_what_it_kept_in_memory_or_spilled_to_disk() {
        for seconds in [1_usize, 40] {
            let mut backlog = AudioBacklog::default();
            let tick = tick_samples(0, 30).1 as usize * AUDIO_CHANNELS;
            let ticks = seconds * 30;
            let mut expected = Vec::new();
            for n in 0..ticks {
                let chunk: Vec<f32> = (0..tick).map(|i| (n * tick + i) as f32).collect();
                backlog.push(&chunk).expect("push");
                expected.push(chunk);
            }
            assert_eq!(backlog.spill.is_some(), seconds > 30, "spilled past 30 s");
            assert_eq!(replayed(backlog, &vec![tick; ticks]), expected, "{seconds} s");
        }
    }

    #[test]
    fn ticks_cover_the_samples_without_gaps_at_any_rate() {
        for fps in [1, 24, 25, 30, 60, 120] {
            let mut next = 0;
            for n in 0..(fps as u64 * 3) {
                let (from, until) = tick_samples(n, fps);
                assert_eq!(from, next, "fps {fps} tick {n}");
                next = until;
            }
            assert_eq!(next, 3 * u64::from(AUDIO_RATE_HZ));
        }
    }
}
