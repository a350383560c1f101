//! Frame sources over a media file (a track-file source): one medium of the file, decoded
//! when the render reaches the file's start, every frame and chunk placed at the file's start
//! offset plus its timestamp. The file is demuxed and decoded directly, never transcoded to an
//! intermediate.

use super::plan::{FileTrack, TrackPlan};
use super::source::{AudioSource, ChunkPlacer, PlacedAudio, VideoSource, ms_to_frames};
use crate::ingest::sdp::MediaKind;
use crate::media::MediaError;
use crate::media::decode::{AUDIO_CHANNELS, Decoded, VideoFrame};
use crate::media::file_decode::FileDecoder;
use crate::timeline::Stamped;
use crate::timeline::due::{DUE_EPSILON_MS, VIDEO_HOLD_MS};

/// One medium of a file, started on demand.
struct FileMedium {
    file: FileTrack,
    media: MediaKind,
    /// The file's span on the call clock.
    span_ms: (f64, f64),
    decoder: Option<FileDecoder>,
    finished: bool,
}

impl FileMedium {
    fn new(track: &TrackPlan, file: FileTrack, media: MediaKind) -> FileMedium {
        FileMedium {
            file,
            media,
            span_ms: (track.span.start_ms(), track.span.end_ms()),
            decoder: None,
            finished: false,
        }
    }

    /// The next decoded item, once `due` says the file has begun.
    fn next(&mut self, due: bool) -> Result<Option<Decoded>, MediaError> {
        if self.finished {
            return Ok(None);
        }
        if self.decoder.is_none() {
            if !due {
                return Ok(None);
            }
            self.decoder = Some(FileDecoder::start(&self.file.path, self.media)?);
        }
        let Some(decoder) = self.decoder.as_mut() else { return Ok(None) };
        let next = decoder.pull()?;
        if next.is_none() {
            self.finished = true;
            self.decoder = None;
        }
        Ok(next)
    }
}

/// A file's pictures.
pub struct FileVideo {
    medium: FileMedium,
}

impl FileVideo {
    /// `None` when `track` is not a file track.
    pub fn new(track: &TrackPlan) -> Option<FileVideo> {
        Some(FileVideo { medium: FileMedium::new(track, track.file.clone()?, MediaKind::Video) })
    }
}

impl VideoSource for FileVideo {
    fn next_frame(&mut self, t_ms: f64) -> Result<Option<Stamped<VideoFrame>>, MediaError> {
        let (start_ms, end_ms) = self.medium.span_ms;
        loop {
            match self.medium.next(start_ms <= t_ms + DUE_EPSILON_MS)? {
                Some(Decoded::Video(frame)) => {
                    return Ok(Some(Stamped {
                        at_ms: self.medium.file.start_offset_ms + frame.pts_ms,
                        show_from_ms: start_ms,
                        show_until_ms: end_ms + VIDEO_HOLD_MS,
                        item: frame,
                    }));
                }
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }
}

/// A file's samples.
pub struct FileAudio {
    medium: FileMedium,
    placer: ChunkPlacer,
}

impl FileAudio {
    /// `None` when `track` is not a file track.
    pub fn new(track: &TrackPlan) -> Option<FileAudio> {
        Some(FileAudio {
            medium: FileMedium::new(track, track.file.clone()?, MediaKind::Audio),
            placer: ChunkPlacer::default(),
        })
    }
}

impl AudioSource for FileAudio {
    fn next_chunk(&mut self, horizon: u64) -> Result<Option<PlacedAudio>, MediaError> {
        let start = ms_to_frames(self.medium.span_ms.0);
        loop {
            match self.medium.next(start < horizon)? {
                Some(Decoded::Audio(chunk)) => {
                    let at = ms_to_frames(self.medium.file.start_offset_ms + chunk.pts_ms);
                    let position = self.placer.continues(at).unwrap_or(at);
                    self.placer.ended_at(position + (chunk.samples.len() / AUDIO_CHANNELS) as u64);
                    return Ok(Some(PlacedAudio { position, samples: chunk.samples }));
                }
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }
}
