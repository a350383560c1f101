//! Encoding the composite: NV12 frames and interleaved f32 PCM in, H.264 + AAC in MP4 out.
//! A hardware H.264 encoder is used when the node has a working one, x264 otherwise.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::decode::{AUDIO_CHANNELS, AUDIO_RATE_HZ};
use super::pipeline::{MediaError, OwnedPipeline, require_elements};

/// How the composite is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// x264 speed preset (`ultrafast` ... `veryslow`); hardware encoders map it to their own.
    pub preset: String,
    /// Target bitrate; `None` means constant quality (x264 quantizer 23, like ffmpeg's -crf 23).
    pub bitrate_kbps: Option<u32>,
    pub audio_bitrate_kbps: u32,
}

/// An H.264 encoder element that this node has shown it can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H264Encoder {
    pub element: &'static str,
    pub hardware: bool,
}

/// AAC encoders put this many samples of priming before the audio, and mp4mux here writes no
/// edit list to hide them: the encoder is given the audio this much early instead, so what a
/// player hears lines up with the video.
const AAC_PRIMING_FRAMES: u64 = 1024;

const PRESETS: &[&str] =
    &["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"];

/// Hardware encoders first: NVENC, VA-API; then x264.
const H264_CANDIDATES: &[(&str, bool)] =
    &[("nvh264enc", true), ("nvcudah264enc", true), ("vah264enc", true), ("x264enc", false)];

/// Finds the first H.264 encoder that really encodes a few frames here.
pub fn pick_h264_encoder() -> Result<H264Encoder, MediaError> {
    super::init()?;
    for (element, hardware) in H264_CANDIDATES {
        if gst::ElementFactory::find(element).is_none() {
            continue;
        }
        let description =
            format!("videotestsrc num-buffers=5 ! video/x-raw,format=NV12,width=320,height=240 ! {element} ! fakesink");
        let probe = OwnedPipeline::launch(&description, format!("probing {element}"))
            .and_then(|p| p.play().map(|()| p))
            .and_then(|p| p.wait_eos(gst::ClockTime::from_seconds(20)));
        match probe {
            Ok(()) => return Ok(H264Encoder { element, hardware: *hardware }),
            Err(err) => tracing::info!(element, %err, "H.264 encoder present but not usable"),
        }
    }
    Err(MediaError::MissingElement { element: "x264enc".into() })
}

fn video_encoder_description(encoder: &H264Encoder, settings: &EncodeSettings) -> Result<String, MediaError> {
    if !PRESETS.contains(&settings.preset.as_str()) {
        return Err(MediaError::Data {
            what: "encoder settings".into(),
            reason: format!("unknown preset `{}` (expected one of {})", settings.preset, PRESETS.join(", ")),
        });
    }
    let key_int = settings.fps.max(1) * 2;
    Ok(match (encoder.element, settings.bitrate_kbps) {
        ("x264enc", Some(kbps)) => {
            format!("x264enc speed-preset={} bitrate={kbps} key-int-max={key_int}", settings.preset)
        }
        ("x264enc", None) => {
            format!("x264enc speed-preset={} pass=qual quantizer=23 key-int-max={key_int}", settings.preset)
        }
        (element, Some(kbps)) => format!("{element} bitrate={kbps}"),
        (element, None) => element.to_owned(),
    })
}

/// A running composite encoder writing one MP4 file.
#[derive(Debug)]
pub struct CompositeEncoder {
    pipeline: OwnedPipeline,
    video: gst_app::AppSrc,
    audio: gst_app::AppSrc,
    fps: u32,
    frames_pushed: u64,
    samples_pushed: u64,
    /// Sample frames of input still to drop to compensate AAC priming.
    priming_to_skip: u64,
    pub encoder: H264Encoder,
}

impl CompositeEncoder {
    pub fn start(path: &Path, encoder: H264Encoder, settings: &EncodeSettings) -> Result<CompositeEncoder, MediaError> {
        super::init()?;
        require_elements(&["appsrc", "h264parse", "mp4mux", "filesink", "audioconvert"])?;
        let aac = if gst::ElementFactory::find("avenc_aac").is_some() { "avenc_aac" } else { "voaacenc" };
        require_elements(&[aac])?;
        let video_encoder = video_encoder_description(&encoder, settings)?;
        let (w, h, fps) = (settings.width, settings.height, settings.fps);
        let frame_bytes = u64::from(w) * u64::from(h) * 3 / 2;
        let description = format!(
            "appsrc name=video format=time is-live=false block=true max-bytes={max_video} \
               caps=video/x-raw,format=NV12,width={w},height={h},framerate={fps}/1,pixel-aspect-ratio=1/1,colorimetry=bt709 \
             ! queue max-size-buffers=4 max-size-bytes=0 max-size-time=0 \
             ! {video_encoder} ! video/x-h264,profile=high ! h264parse ! queue max-size-time=10000000000 max-size-bytes=0 max-size-buffers=0 \
             ! mp4mux name=mux faststart=true ! filesink name=out \
             appsrc name=audio format=time is-live=false block=true max-bytes=4194304 \
               caps=audio/x-raw,format=F32LE,rate={AUDIO_RATE_HZ},channels={AUDIO_CHANNELS},layout=interleaved \
             ! queue max-size-time=10000000000 max-size-bytes=0 max-size-buffers=0 \
             ! audioconvert ! {aac} bitrate={abps} ! queue max-size-time=10000000000 max-size-bytes=0 max-size-buffers=0 ! mux.",
            max_video = frame_bytes * 4,
            abps = settings.audio_bitrate_kbps * 1000,
        );
        let pipeline = OwnedPipeline::launch(&description, format!("encoding {}", path.display()))?;
        let sink: gst::Element = pipeline.element("out")?;
        sink.set_property("location", path.to_string_lossy().as_ref());
        let video = pipeline.element("video")?;
        let audio = pipeline.element("audio")?;
        pipeline.play()?;
        Ok(CompositeEncoder {
            pipeline,
            video,
            audio,
            fps,
            frames_pushed: 0,
            samples_pushed: 0,
            priming_to_skip: AAC_PRIMING_FRAMES,
            encoder,
        })
    }

    /// Pushes the next NV12 frame; its time is `frames pushed / fps`.
    pub fn push_video(&mut self, nv12: Vec<u8>) -> Result<(), MediaError> {
        let n = self.frames_pushed;
        let pts = n * 1_000_000_000 / u64::from(self.fps);
        let next = (n + 1) * 1_000_000_000 / u64::from(self.fps);
        self.push(&self.video.clone(), nv12, pts, next - pts)?;
        self.frames_pushed += 1;
        Ok(())
    }

    /// Pushes the next interleaved stereo samples at 48 kHz, right after the previous ones.
    pub fn push_audio(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        let skip = (samples.len() / AUDIO_CHANNELS).min(usize::try_from(self.priming_to_skip).unwrap_or(usize::MAX));
        self.priming_to_skip -= skip as u64;
        let samples = &samples[skip * AUDIO_CHANNELS..];
        let frames = (samples.len() / AUDIO_CHANNELS) as u64;
        if frames == 0 {
            return Ok(());
        }
        let rate = u64::from(AUDIO_RATE_HZ);
        let pts = self.samples_pushed * 1_000_000_000 / rate;
        let end = (self.samples_pushed + frames) * 1_000_000_000 / rate;
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.push(&self.audio.clone(), bytes, pts, end - pts)?;
        self.samples_pushed += frames;
        Ok(())
    }

    fn push(&self, src: &gst_app::AppSrc, data: Vec<u8>, pts_ns: u64, duration_ns: u64) -> Result<(), MediaError> {
        let mut buffer = gst::Buffer::from_mut_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
            b.set_duration(gst::ClockTime::from_nseconds(duration_ns));
        }
        src.push_buffer(buffer).map(|_| ()).map_err(|flow| {
            self.pipeline.first_error().unwrap_or_else(|| MediaError::Data {
                what: self.pipeline.what.clone(),
                reason: format!("encoder refused data: {flow:?}"),
            })
        })
    }

    /// Ends both streams and waits until the file is complete.
    pub fn finish(self) -> Result<(), MediaError> {
        let _ = self.video.end_of_stream();
        let _ = self.audio.end_of_stream();
        self.pipeline.wait_eos(gst::ClockTime::from_seconds(600))
    }
}
