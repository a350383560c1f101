//! How loud each audio track is per output tick, for the active speaker: the RFC 6464 levels
//! its packets carry when every segment's SDP names the extension (real WebRTC senders send
//! it; reading it costs no decode), else the RMS of its decoded audio.

use super::plan::TrackPlan;
use crate::audio::level;
use crate::ingest::TrackKind;
use crate::ingest::audio_level::{segment_levels, window_level};
use crate::media::decode::AUDIO_RATE_HZ;

/// Where one track's levels come from.
pub enum LevelSource {
    /// `(call_ms, linear level)` of every packet, in call time order.
    Extension(Vec<(f64, f32)>),
    Decoded,
}

impl LevelSource {
    /// The source for `track`: its packets' levels when every segment carries the
    /// extension and they can be read, else the decoded audio.
    pub fn for_track(track: &TrackPlan) -> LevelSource {
        if track.kind != TrackKind::Audio || track.segments.is_empty() {
            return LevelSource::Decoded;
        }
        let mut placed = Vec::new();
        for segment in &track.segments {
            let Some(ext_id) = segment.audio_level_ext else { return LevelSource::Decoded };
            let spec = &segment.spec;
            match segment_levels(&spec.rtpdump_path, spec.payload_type, spec.clock_rate_hz, &spec.aux, ext_id) {
                Ok(points) => {
                    placed.extend(points.iter().map(|p| (segment.clock.call_ms(p.ticks), p.level.linear())));
                }
                Err(err) => {
                    tracing::warn!(%err, track = %track.track_id, "audio levels unreadable; measuring the decoded audio");
                    return LevelSource::Decoded;
                }
            }
        }
        placed.sort_by(|a, b| a.0.total_cmp(&b.0));
        LevelSource::Extension(placed)
    }

    /// The level of the tick of sample frames `[from, until)` whose decoded audio is `pcm`.
    pub fn level(&self, (from, until): (u64, u64), pcm: &[f32]) -> f32 {
        match self {
            LevelSource::Decoded => level::rms(pcm),
            LevelSource::Extension(placed) => {
                let ms = |sample: u64| sample as f64 * 1000.0 / f64::from(AUDIO_RATE_HZ);
                window_level(placed, ms(from), ms(until))
            }
        }
    }
}
