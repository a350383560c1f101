//! What a job writes: output kinds in the platforms' vocabulary, their formats and file names.
//! Pure: no media is touched here.

pub mod individual;
pub mod naming;

use std::fmt;
use std::str::FromStr;

/// A per-participant-session file, as platforms name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndividualKind {
    AudioOnly,
    VideoOnly,
    AudioVideo,
    ScreenshareAudioOnly,
    ScreenshareVideoOnly,
    ScreenshareAudioVideo,
}

impl IndividualKind {
    pub const ALL: [IndividualKind; 6] = [
        IndividualKind::AudioOnly,
        IndividualKind::VideoOnly,
        IndividualKind::AudioVideo,
        IndividualKind::ScreenshareAudioOnly,
        IndividualKind::ScreenshareVideoOnly,
        IndividualKind::ScreenshareAudioVideo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IndividualKind::AudioOnly => "audio_only",
            IndividualKind::VideoOnly => "video_only",
            IndividualKind::AudioVideo => "audio_video",
            IndividualKind::ScreenshareAudioOnly => "screenshare_audio_only",
            IndividualKind::ScreenshareVideoOnly => "screenshare_video_only",
            IndividualKind::ScreenshareAudioVideo => "screenshare_audio_video",
        }
    }

    pub fn screenshare(self) -> bool {
        matches!(
            self,
            IndividualKind::ScreenshareAudioOnly
                | IndividualKind::ScreenshareVideoOnly
                | IndividualKind::ScreenshareAudioVideo
        )
    }

    pub fn wants_audio(self) -> bool {
        !matches!(self, IndividualKind::VideoOnly | IndividualKind::ScreenshareVideoOnly)
    }

    pub fn wants_video(self) -> bool {
        !matches!(self, IndividualKind::AudioOnly | IndividualKind::ScreenshareAudioOnly)
    }

    /// The media part of Stream's file names: `audio_only`, `shared_video_only`, ...
    pub fn stream_name_part(self) -> &'static str {
        match self {
            IndividualKind::AudioOnly => "audio_only",
            IndividualKind::VideoOnly => "video_only",
            IndividualKind::AudioVideo => "audio_video",
            IndividualKind::ScreenshareAudioOnly => "shared_audio_only",
            IndividualKind::ScreenshareVideoOnly => "shared_video_only",
            IndividualKind::ScreenshareAudioVideo => "shared_audio_video",
        }
    }
}

impl fmt::Display for IndividualKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn one_of<T: Copy>(text: &str, all: &[T], name: impl Fn(T) -> &'static str, what: &str) -> Result<T, String> {
    all.iter().copied().find(|v| name(*v) == text).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
        format!("unknown {what} `{text}` (expected one of {})", names.join(", "))
    })
}

impl FromStr for IndividualKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        one_of(text, &IndividualKind::ALL, IndividualKind::as_str, "individual output")
    }
}

/// The audio-only composite (the mix) and its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// MP3 (LAME).
    Mp3,
    /// AAC in MP4.
    M4a,
    /// Opus in Ogg.
    Ogg,
    /// Opus in Matroska (`stream-cli`'s default for `mix-audio`).
    Mkv,
    /// Opus in Matroska audio.
    Mka,
    /// Opus in WebM.
    Webm,
    /// Opus in WebM, `.weba`.
    Weba,
}

impl AudioFormat {
    pub const ALL: [AudioFormat; 7] = [
        AudioFormat::Mp3,
        AudioFormat::M4a,
        AudioFormat::Ogg,
        AudioFormat::Mkv,
        AudioFormat::Mka,
        AudioFormat::Webm,
        AudioFormat::Weba,
    ];

    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::M4a => "m4a",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Mkv => "mkv",
            AudioFormat::Mka => "mka",
            AudioFormat::Webm => "webm",
            AudioFormat::Weba => "weba",
        }
    }

    /// The codec inside, as ffprobe names it.
    pub fn codec_name(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::M4a => "aac",
            _ => "opus",
        }
    }
}

impl FromStr for AudioFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        one_of(text, &AudioFormat::ALL, AudioFormat::extension, "audio format")
    }
}

/// Video codec of the composite. H.264, H.265 and AV1 go into MP4 with AAC; VP8 and VP9
/// into WebM with Opus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VideoCodec {
    #[default]
    H264,
    H265,
    Av1,
    Vp8,
    Vp9,
}

impl VideoCodec {
    pub const ALL: [VideoCodec; 5] =
        [VideoCodec::H264, VideoCodec::H265, VideoCodec::Av1, VideoCodec::Vp8, VideoCodec::Vp9];

    pub fn as_str(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
            VideoCodec::Av1 => "av1",
            VideoCodec::Vp8 => "vp8",
            VideoCodec::Vp9 => "vp9",
        }
    }

    /// ffprobe's name for it.
    pub fn codec_name(self) -> &'static str {
        match self {
            VideoCodec::H265 => "hevc",
            other => other.as_str(),
        }
    }

    /// True for WebM (VP8/VP9 + Opus), false for MP4 (+ AAC).
    pub fn webm(self) -> bool {
        matches!(self, VideoCodec::Vp8 | VideoCodec::Vp9)
    }

    pub fn extension(self) -> &'static str {
        if self.webm() { "webm" } else { "mp4" }
    }
}

impl FromStr for VideoCodec {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = if text == "hevc" { "h265" } else { text };
        one_of(text, &VideoCodec::ALL, VideoCodec::as_str, "video codec")
    }
}

/// Whether to use a hardware encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HardwarePreference {
    /// A hardware encoder when one works on this node, software otherwise.
    #[default]
    Auto,
    /// A hardware encoder or fail.
    Require,
    /// Software only.
    Off,
}

impl FromStr for HardwarePreference {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(HardwarePreference::Auto),
            "require" => Ok(HardwarePreference::Require),
            "off" => Ok(HardwarePreference::Off),
            other => Err(format!("unknown hardware preference `{other}` (expected auto, require or off)")),
        }
    }
}

/// Every output a job asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputSet {
    /// The composite video, in this codec.
    pub composite_video: Option<VideoCodec>,
    /// The audio-only composites (the mix).
    pub composite_audio: Vec<AudioFormat>,
    /// Per-participant-session files.
    pub individual: Vec<IndividualKind>,
    /// Individual files start at the call's start and run to its end (silence, and no
    /// pictures, where the participant was absent) instead of covering only the participant.
    pub align_to_call: bool,
    /// How individual audio is filled (see [`GapFill`]).
    pub gap_fill: GapFill,
    /// Individual files with video in this codec (re-encoded where the sender used another);
    /// `None` keeps the sender's codec (remux, Matroska).
    pub individual_video_codec: Option<VideoCodec>,
    /// Individual files without video in this format (re-encoded); `None`: Opus remuxed.
    pub individual_audio_format: Option<AudioFormat>,
    /// Leave screenshare audio out of the mix (`stream-cli`'s `process-all` does).
    pub mix_without_screenshare_audio: bool,
}

/// Where individual audio files get Opus silence so that they decode to the right length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapFill {
    /// Between segments (mute, republish) and, with `align_to_call`, before and after.
    pub between_segments: bool,
    /// Inside a segment: DTX silences and lost packets.
    pub inside_segments: bool,
}

impl Default for GapFill {
    fn default() -> Self {
        GapFill { between_segments: true, inside_segments: true }
    }
}

/// Which tracks a job works on: all, or those of one participant, one session or one track.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackFilter {
    pub participant_id: Option<String>,
    pub user_session_id: Option<String>,
    pub track_id: Option<String>,
}

impl TrackFilter {
    pub fn matches(&self, participant_id: &str, user_session_id: &str, track_id: &str) -> bool {
        self.participant_id.as_deref().is_none_or(|p| p == participant_id)
            && self.user_session_id.as_deref().is_none_or(|s| s == user_session_id)
            && self.track_id.as_deref().is_none_or(|t| t == track_id)
    }
}

impl OutputSet {
    /// The composite MP4 alone: what `tessera raw composite` writes by default.
    pub fn composite() -> OutputSet {
        OutputSet { composite_video: Some(VideoCodec::H264), ..OutputSet::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.composite_video.is_none() && self.composite_audio.is_empty() && self.individual.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for kind in IndividualKind::ALL {
            assert_eq!(kind.as_str().parse::<IndividualKind>(), Ok(kind));
        }
        for format in AudioFormat::ALL {
            assert_eq!(format.extension().parse::<AudioFormat>(), Ok(format));
        }
        for codec in VideoCodec::ALL {
            assert_eq!(codec.as_str().parse::<VideoCodec>(), Ok(codec));
        }
        assert_eq!("hevc".parse::<VideoCodec>(), Ok(VideoCodec::H265));
        let err = "wav".parse::<AudioFormat>().unwrap_err();
        assert!(err.contains("`wav`") && err.contains("mp3, m4a, ogg"), "{err}");
        assert!("both".parse::<IndividualKind>().unwrap_err().contains("screenshare_audio_video"));
        assert!("gpu".parse::<HardwarePreference>().is_err());
    }

    #[test]
    fn kinds_know_their_media() {
        assert!(IndividualKind::AudioVideo.wants_audio() && IndividualKind::AudioVideo.wants_video());
        assert!(!IndividualKind::ScreenshareAudioOnly.wants_video());
        assert!(IndividualKind::ScreenshareVideoOnly.screenshare() && !IndividualKind::VideoOnly.screenshare());
        assert_eq!(IndividualKind::ScreenshareAudioVideo.stream_name_part(), "shared_audio_video");
    }
}
