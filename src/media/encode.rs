//! Encoding the composites: NV12 frames and interleaved f32 PCM in; the composite video
//! (H.264 / H.265 / AV1 + AAC in MP4, VP8 / VP9 + Opus in WebM) or an audio-only file
//! (MP3, AAC in M4A, Opus in Ogg, Matroska or WebM) out.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::decode::{AUDIO_CHANNELS, AUDIO_RATE_HZ};
use super::encoders::{VideoEncoder, VideoQuality, encoder_description, mp4_parser};
use super::frame_pool::FramePool;
use super::pipeline::{MediaError, OwnedPipeline, require_elements};
use crate::outputs::{AudioFormat, HardwarePreference, VideoCodec};

/// How the composite is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub codec: VideoCodec,
    pub hardware: HardwarePreference,
    pub quality: VideoQuality,
    pub audio_bitrate_kbps: u32,
}

impl EncodeSettings {
    /// 1080p30 H.264, x264 `veryfast` at constant quality 23, a keyframe every 2 s.
    pub fn new(width: u32, height: u32, fps: u32) -> EncodeSettings {
        EncodeSettings {
            width,
            height,
            fps,
            codec: VideoCodec::H264,
            hardware: HardwarePreference::Auto,
            quality: VideoQuality {
                preset: "veryfast".into(),
                bitrate_kbps: None,
                crf: 23,
                keyframe_interval_frames: fps.max(1) * 2,
            },
            audio_bitrate_kbps: 128,
        }
    }
}

/// Encoders put this many samples of priming before the audio, and the muxers here write no
/// edit list to hide them: the encoder is given the audio this much early instead, so what a
/// player hears lines up with the video. Opus carries its pre-skip in its header.
fn priming_frames(encoder: &str) -> u64 {
    match encoder {
        "avenc_aac" | "voaacenc" => 1024,
        // LAME's encoder delay plus the decoder's.
        "lamemp3enc" => 1105,
        _ => 0,
    }
}

fn aac_encoder() -> Result<&'static str, MediaError> {
    super::init()?;
    let aac = if gst::ElementFactory::find("avenc_aac").is_some() { "avenc_aac" } else { "voaacenc" };
    require_elements(&[aac])?;
    Ok(aac)
}

/// PCM going into an encoder: timestamps from the sample count, priming compensated.
#[derive(Debug)]
struct PcmInput {
    src: gst_app::AppSrc,
    samples_pushed: u64,
    priming_to_skip: u64,
}

const PCM_CAPS: &str = "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved";

impl PcmInput {
    fn push(&mut self, pipeline: &OwnedPipeline, samples: &[f32]) -> Result<(), MediaError> {
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
        push(pipeline, &self.src, bytes, pts, end - pts)?;
        self.samples_pushed += frames;
        Ok(())
    }
}

fn push(
    pipeline: &OwnedPipeline,
    src: &gst_app::AppSrc,
    data: impl AsMut<[u8]> + Send + 'static,
    pts_ns: u64,
    duration_ns: u64,
) -> Result<(), MediaError> {
    let mut buffer = gst::Buffer::from_mut_slice(data);
    if let Some(b) = buffer.get_mut() {
        b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
        b.set_duration(gst::ClockTime::from_nseconds(duration_ns));
    }
    pipeline.push(src, buffer)
}

/// One plane of a raw frame: its rows, the picture's bytes in each row, and where GStreamer
/// expects it in the frame's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlaneLayout {
    rows: usize,
    row_bytes: usize,
    offset: usize,
    stride: usize,
}

/// How GStreamer lays out an NV12 frame of `width` x `height` (GstVideoInfo's default: each
/// row padded to a multiple of 4 bytes), and the size of the frame's buffer.
fn nv12_layout(width: u32, height: u32) -> Result<(Vec<PlaneLayout>, usize), MediaError> {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Nv12, width, height).build().map_err(|e| {
        MediaError::InvalidSetting {
            field: "size",
            value: format!("{width}x{height}"),
            reason: format!("not an NV12 picture size: {e}"),
        }
    })?;
    let (w, h) = (width as usize, height as usize);
    let rows_and_bytes = [(h, w), (h.div_ceil(2), w.div_ceil(2) * 2)];
    let planes = rows_and_bytes
        .iter()
        .zip(info.offset().iter().zip(info.stride()))
        .map(|(&(rows, row_bytes), (&offset, &stride))| PlaneLayout {
            rows,
            row_bytes,
            offset,
            stride: usize::try_from(stride).unwrap_or(0),
        })
        .collect();
    Ok((planes, info.size()))
}

/// Whether a frame whose planes are packed one after another, rows unpadded, is already laid
/// out as `planes` say.
fn is_packed(planes: &[PlaneLayout], size: usize) -> bool {
    let mut offset = 0;
    for plane in planes {
        if plane.offset != offset || plane.stride != plane.row_bytes {
            return false;
        }
        offset += plane.rows * plane.row_bytes;
    }
    offset == size
}

/// Copies `packed` (planes one after another, rows unpadded) into a buffer of `size` bytes
/// laid out as `planes` say; `None` when `packed` is not the frame's size.
fn lay_out(packed: &[u8], planes: &[PlaneLayout], size: usize) -> Option<Vec<u8>> {
    let mut out = vec![0_u8; size];
    let mut from = 0;
    for plane in planes {
        for row in 0..plane.rows {
            let src = packed.get(from..from + plane.row_bytes)?;
            let at = plane.offset + row * plane.stride;
            out.get_mut(at..at + plane.row_bytes)?.copy_from_slice(src);
            from += plane.row_bytes;
        }
    }
    (from == packed.len()).then_some(out)
}

const QUEUE_10S: &str = "queue max-size-time=10000000000 max-size-bytes=0 max-size-buffers=0";

/// Test hook: with `TESSERA_TEST_STALL_ENCODER_AFTER_FRAMES=N` set, the video encoder stops
/// taking frames after N of them (its input is blocked, as a wedged encoder would leave it), so
/// tests can see a stalled render stopped by the watchdog. No input can cause this.
const STALL_HOOK: &str = "TESSERA_TEST_STALL_ENCODER_AFTER_FRAMES";

fn stall_for_tests(pipeline: &OwnedPipeline) -> Result<(), MediaError> {
    let Some(after) = std::env::var(STALL_HOOK).ok().and_then(|v| v.parse::<u64>().ok()) else { return Ok(()) };
    tracing::warn!(after, "test hook {STALL_HOOK}: the video encoder will stall");
    let queue: gst::Element = pipeline.element("vqueue")?;
    let pad = queue.static_pad("src").ok_or_else(|| MediaError::Internal {
        what: pipeline.what.clone(),
        reason: "the video queue has no src pad".into(),
    })?;
    let seen = std::sync::atomic::AtomicU64::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BLOCK, move |_, _| {
        let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n > after { gst::PadProbeReturn::Ok } else { gst::PadProbeReturn::Pass }
    });
    Ok(())
}

/// A running composite encoder writing one MP4 or WebM file.
#[derive(Debug)]
pub struct CompositeEncoder {
    pipeline: OwnedPipeline,
    video: gst_app::AppSrc,
    /// None for a file without sound.
    audio: Option<PcmInput>,
    fps: u32,
    frames_pushed: u64,
    /// Where GStreamer expects the planes of each frame, and the frame's size.
    planes: Vec<PlaneLayout>,
    frame_size_bytes: usize,
    pub encoder: VideoEncoder,
    /// Frame buffers GStreamer has finished with, for the next frames.
    frames: FramePool,
}

impl CompositeEncoder {
    /// Starts writing `path`; `with_audio` adds the audio stream.
    pub fn start(
        path: &Path,
        encoder: VideoEncoder,
        settings: &EncodeSettings,
        with_audio: bool,
    ) -> Result<CompositeEncoder, MediaError> {
        super::init()?;
        let video_encoder = encoder_description(&encoder, &settings.quality)?;
        let (muxer, parser, audio_encoder) = if encoder.codec.webm() {
            ("webmmux", String::new(), "opusenc".to_owned())
        } else {
            let parser = mp4_parser(encoder.codec).map(|p| format!("! {p} ")).unwrap_or_default();
            ("mp4mux faststart=true", parser, aac_encoder()?.to_owned())
        };
        require_elements(&["appsrc", "filesink", "audioconvert", &audio_encoder])?;
        require_elements(&[muxer.split(' ').next().unwrap_or(muxer)])?;
        let (w, h, fps) = (settings.width, settings.height, settings.fps);
        let (planes, frame_size_bytes) = nv12_layout(w, h)?;
        let frame_bytes = frame_size_bytes as u64;
        let mut description = format!(
            "appsrc name=video format=time is-live=false block=true max-bytes={max_video} \
               caps=video/x-raw,format=NV12,width={w},height={h},framerate={fps}/1,pixel-aspect-ratio=1/1,colorimetry=bt709 \
             ! queue name=vqueue max-size-buffers=4 max-size-bytes=0 max-size-time=0 \
             ! {video_encoder} {parser}! {QUEUE_10S} ! {muxer} name=mux ! filesink name=out ",
            max_video = frame_bytes * 4,
        );
        if with_audio {
            description.push_str(&format!(
                "appsrc name=audio format=time is-live=false block=true max-bytes=4194304 caps={PCM_CAPS} \
                 ! {QUEUE_10S} ! audioconvert ! {audio_encoder} bitrate={abps} ! {QUEUE_10S} ! mux.",
                abps = settings.audio_bitrate_kbps * 1000,
            ));
        }
        let pipeline = OwnedPipeline::launch(&description, format!("encoding {}", path.display()))?;
        let sink: gst::Element = pipeline.element("out")?;
        sink.set_property("location", path.to_string_lossy().as_ref());
        let video = pipeline.element("video")?;
        let audio = if with_audio {
            let src = pipeline.element("audio")?;
            Some(PcmInput { src, samples_pushed: 0, priming_to_skip: priming_frames(&audio_encoder) })
        } else {
            None
        };
        stall_for_tests(&pipeline)?;
        pipeline.play()?;
        Ok(CompositeEncoder {
            pipeline,
            video,
            audio,
            fps,
            frames_pushed: 0,
            planes,
            frame_size_bytes,
            encoder,
            frames: FramePool::default(),
        })
    }

    /// Pushes the next NV12 frame, its planes packed one after another without row padding
    /// (laid out here as GStreamer expects, when that differs); its time is
    /// `frames pushed / fps`.
    /// A buffer for the next frame: one GStreamer has finished with when there is one (its
    /// bytes are an old frame's), else an empty one.
    pub fn frame_buffer(&self) -> Vec<u8> {
        self.frames.take()
    }

    pub fn push_video(&mut self, nv12: Vec<u8>) -> Result<(), MediaError> {
        let nv12 = if is_packed(&self.planes, self.frame_size_bytes) && nv12.len() == self.frame_size_bytes {
            nv12
        } else {
            lay_out(&nv12, &self.planes, self.frame_size_bytes).ok_or_else(|| MediaError::Internal {
                what: self.pipeline.what.clone(),
                reason: format!("an NV12 frame of {} bytes does not fit the picture size", nv12.len()),
            })?
        };
        let n = self.frames_pushed;
        let pts = n * 1_000_000_000 / u64::from(self.fps);
        let next = (n + 1) * 1_000_000_000 / u64::from(self.fps);
        push(&self.pipeline, &self.video, self.frames.lend(nv12), pts, next - pts)?;
        self.frames_pushed += 1;
        Ok(())
    }

    /// Pushes the next interleaved stereo samples at 48 kHz, right after the previous ones.
    pub fn push_audio(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        match self.audio.as_mut() {
            Some(audio) => audio.push(&self.pipeline, samples),
            None => Ok(()),
        }
    }

    /// Ends both streams and waits until the file is complete.
    pub fn finish(self) -> Result<(), MediaError> {
        let _ = self.video.end_of_stream();
        if let Some(audio) = &self.audio {
            let _ = audio.src.end_of_stream();
        }
        self.pipeline.wait_eos(gst::ClockTime::from_seconds(600))
    }
}

/// A running encoder writing one audio-only file.
#[derive(Debug)]
pub struct AudioFileEncoder {
    pipeline: OwnedPipeline,
    audio: PcmInput,
    pub encoder: &'static str,
}

impl AudioFileEncoder {
    pub fn start(path: &Path, format: AudioFormat, bitrate_kbps: u32) -> Result<AudioFileEncoder, MediaError> {
        super::init()?;
        let (encoder, chain) = match format {
            AudioFormat::Mp3 => {
                ("lamemp3enc", format!("lamemp3enc target=bitrate cbr=true bitrate={bitrate_kbps} ! xingmux"))
            }
            AudioFormat::M4a => {
                let aac = aac_encoder()?;
                (aac, format!("{aac} bitrate={} ! mp4mux faststart=true", bitrate_kbps * 1000))
            }
            AudioFormat::Ogg => {
                ("opusenc", format!("opusenc bitrate-type=vbr bitrate={} ! oggmux", bitrate_kbps * 1000))
            }
            AudioFormat::Mkv | AudioFormat::Mka => {
                ("opusenc", format!("opusenc bitrate-type=vbr bitrate={} ! matroskamux", bitrate_kbps * 1000))
            }
            AudioFormat::Webm | AudioFormat::Weba => {
                ("opusenc", format!("opusenc bitrate-type=vbr bitrate={} ! webmmux", bitrate_kbps * 1000))
            }
        };
        let elements: Vec<&str> = chain.split('!').filter_map(|part| part.split_whitespace().next()).collect();
        require_elements(&elements)?;
        let description = format!(
            "appsrc name=audio format=time is-live=false block=true max-bytes=4194304 caps={PCM_CAPS} \
             ! {QUEUE_10S} ! audioconvert ! {chain} ! filesink name=out"
        );
        let pipeline = OwnedPipeline::launch(&description, format!("encoding {}", path.display()))?;
        let sink: gst::Element = pipeline.element("out")?;
        sink.set_property("location", path.to_string_lossy().as_ref());
        let audio =
            PcmInput { src: pipeline.element("audio")?, samples_pushed: 0, priming_to_skip: priming_frames(encoder) };
        pipeline.play()?;
        Ok(AudioFileEncoder { pipeline, audio, encoder })
    }

    /// Pushes the next interleaved stereo samples at 48 kHz, right after the previous ones.
    pub fn push_audio(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        self.audio.push(&self.pipeline, samples)
    }

    /// Ends the stream and waits until the file is complete.
    pub fn finish(self) -> Result<(), MediaError> {
        let _ = self.audio.src.end_of_stream();
        self.pipeline.wait_eos(gst::ClockTime::from_seconds(600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packed frame whose every byte says its plane, row and column.
    fn packed(planes: &[PlaneLayout]) -> Vec<u8> {
        planes
            .iter()
            .enumerate()
            .flat_map(|(p, plane)| {
                (0..plane.rows).flat_map(move |r| (0..plane.row_bytes).map(move |c| (p * 100 + r * 7 + c) as u8))
            })
            .collect()
    }

    #[test]
    fn widths_whose_rows_gstreamer_pads_are_laid_out_row_by_row() {
        super::super::init().expect("gst");
        for (w, h) in [(322_u32, 180_u32), (326, 180), (1366, 768), (323, 181), (18, 16)] {
            let (planes, size) = nv12_layout(w, h).expect("layout");
            assert!(!is_packed(&planes, size), "{w}x{h}: GStreamer pads these rows");
            let frame = packed(&planes);
            let out = lay_out(&frame, &planes, size).expect("fits");
            let mut from = 0;
            for plane in &planes {
                assert_eq!(plane.stride % 4, 0, "{w}x{h} {plane:?}");
                for row in 0..plane.rows {
                    let at = plane.offset + row * plane.stride;
                    assert_eq!(out[at..at + plane.row_bytes], frame[from..from + plane.row_bytes], "{w}x{h}");
                    from += plane.row_bytes;
                }
            }
            assert!(lay_out(&frame[1..], &planes, size).is_none(), "a short frame is refused");
        }
        for (w, h) in [(320_u32, 180_u32), (1920, 1080)] {
            let (planes, size) = nv12_layout(w, h).expect("layout");
            assert!(is_packed(&planes, size), "{w}x{h} rows need no padding");
            assert_eq!(size, (w * h * 3 / 2) as usize);
        }
    }
}
