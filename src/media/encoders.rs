//! Video encoders: which ones this node can really run (each candidate encodes a few frames
//! before it is trusted, finding the element is not enough), chosen by codec and hardware
//! preference, and their settings (bitrate or constant quality, speed preset, keyframe
//! interval) in each element's own terms.

use std::sync::Mutex;

use gstreamer as gst;

use super::pipeline::{MediaError, OwnedPipeline};
use crate::outputs::{HardwarePreference, VideoCodec};

/// x264's speed presets, the scale every encoder's speed is given on.
pub const PRESETS: &[&str] =
    &["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"];

/// Hardware first (NVENC, VA-API, Quick Sync), then software.
fn candidates(codec: VideoCodec) -> &'static [(&'static str, bool)] {
    match codec {
        VideoCodec::H264 => &[
            ("nvh264enc", true),
            ("nvcudah264enc", true),
            ("vah264enc", true),
            ("qsvh264enc", true),
            ("x264enc", false),
        ],
        VideoCodec::H265 => &[
            ("nvh265enc", true),
            ("nvcudah265enc", true),
            ("vah265enc", true),
            ("qsvh265enc", true),
            ("x265enc", false),
        ],
        VideoCodec::Av1 => &[("nvav1enc", true), ("vaav1enc", true), ("qsvav1enc", true), ("av1enc", false)],
        VideoCodec::Vp8 => &[("vavp8enc", true), ("vp8enc", false)],
        VideoCodec::Vp9 => &[("vavp9enc", true), ("qsvvp9enc", true), ("vp9enc", false)],
    }
}

/// An encoder element this node has shown it can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoEncoder {
    pub element: &'static str,
    pub hardware: bool,
    pub codec: VideoCodec,
}

/// The constant qualities offered, on x264's scale: 0 would be lossless, which the High
/// profile the H.264 caps ask for cannot carry.
pub const CRF_RANGE: std::ops::RangeInclusive<u32> = 1..=51;

/// How the video is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoQuality {
    /// Speed preset on x264's scale (`ultrafast` ... `veryslow`).
    pub preset: String,
    /// Target bitrate; `None` means constant quality `crf`.
    pub bitrate_kbps: Option<u32>,
    /// Constant quality on x264's scale, [`CRF_RANGE`] (lower is better; outside it, the
    /// nearest end); other encoders get the equivalent on theirs.
    pub crf: u32,
    pub keyframe_interval_frames: u32,
}

/// What goes between our NV12 frames and `element`: hardware encoders and x264 take NV12,
/// libvpx, libaom and x265 want planar 4:2:0.
fn input_conversion(element: &str) -> &'static str {
    match element {
        "vp8enc" | "vp9enc" | "av1enc" | "x265enc" => "videoconvert ! video/x-raw,format=I420 ! ",
        _ => "",
    }
}

/// Whether `element` encodes five frames here.
fn works(element: &str) -> bool {
    let convert = input_conversion(element);
    let description = format!(
        "videotestsrc num-buffers=5 ! video/x-raw,format=NV12,width=320,height=240 ! {convert}{element} ! fakesink"
    );
    let probe = OwnedPipeline::launch(&description, format!("probing {element}"))
        .and_then(|p| p.play().map(|()| p))
        .and_then(|p| p.wait_eos(gst::ClockTime::from_seconds(30)));
    match probe {
        Ok(()) => true,
        Err(err) => {
            tracing::info!(element, %err, "encoder present but not usable");
            false
        }
    }
}

/// Encoders chosen so far in this process: a node's encoders do not change while it runs.
static CHOSEN: Mutex<Vec<(VideoCodec, HardwarePreference, VideoEncoder)>> = Mutex::new(Vec::new());

/// The first working encoder for `codec` that `hardware` allows (probed once per process).
pub fn pick_video_encoder(codec: VideoCodec, hardware: HardwarePreference) -> Result<VideoEncoder, MediaError> {
    let cached = |list: &[(VideoCodec, HardwarePreference, VideoEncoder)]| {
        list.iter().find(|(c, h, _)| *c == codec && *h == hardware).map(|(_, _, e)| e.clone())
    };
    if let Some(encoder) = cached(&CHOSEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)) {
        return Ok(encoder);
    }
    let encoder = probe_for(codec, hardware)?;
    CHOSEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((codec, hardware, encoder.clone()));
    Ok(encoder)
}

/// Whether `hardware` lets an encoder of this kind be used.
fn allowed(hardware: HardwarePreference, is_hardware: bool) -> bool {
    match hardware {
        HardwarePreference::Auto => true,
        HardwarePreference::Require => is_hardware,
        HardwarePreference::Off => !is_hardware,
    }
}

fn probe_for(codec: VideoCodec, hardware: HardwarePreference) -> Result<VideoEncoder, MediaError> {
    super::init()?;
    for &(element, is_hardware) in candidates(codec) {
        if allowed(hardware, is_hardware) && gst::ElementFactory::find(element).is_some() && works(element) {
            return Ok(VideoEncoder { element, hardware: is_hardware, codec });
        }
    }
    let names: Vec<&str> =
        candidates(codec).iter().filter(|(_, is_hardware)| allowed(hardware, *is_hardware)).map(|(e, _)| *e).collect();
    Err(MediaError::NoEncoder {
        codec: codec.as_str(),
        hardware: format!("{hardware:?}").to_lowercase(),
        tried: names.join(", "),
        hardware_required: hardware == HardwarePreference::Require,
    })
}

fn preset_index(preset: &str) -> Result<usize, MediaError> {
    PRESETS.iter().position(|p| *p == preset).ok_or_else(|| MediaError::InvalidSetting {
        field: "preset",
        value: preset.to_owned(),
        reason: format!("unknown preset `{preset}` (expected one of {})", PRESETS.join(", ")),
    })
}

/// The encoder's element description with `quality` applied.
pub fn encoder_description(encoder: &VideoEncoder, quality: &VideoQuality) -> Result<String, MediaError> {
    let speed = preset_index(&quality.preset)?;
    let key = quality.keyframe_interval_frames.max(1);
    let crf = quality.crf.clamp(*CRF_RANGE.start(), *CRF_RANGE.end());
    // libvpx and libaom take quality on a 0-63 scale.
    let cq_level = (crf * 63).div_ceil(51);
    let element = encoder.element;
    let encoder_part = match (element, quality.bitrate_kbps) {
        ("x264enc", Some(kbps)) => {
            format!(
                "x264enc speed-preset={} bitrate={kbps} key-int-max={key} ! video/x-h264,profile=high",
                quality.preset
            )
        }
        // Constant quality as libx264's CRF: x264enc would also cap the rate at its default
        // `bitrate` (2048 kbit/s VBV), which libx264 does not, starving flashes and cuts.
        ("x264enc", None) => format!(
            "x264enc speed-preset={} pass=qual quantizer={crf} vbv-buf-capacity=0 key-int-max={key} ! \
             video/x-h264,profile=high",
            quality.preset
        ),
        ("x265enc", Some(kbps)) => format!("x265enc speed-preset={} bitrate={kbps} key-int-max={key}", quality.preset),
        ("x265enc", None) => {
            format!("x265enc speed-preset={} option-string=crf={crf} key-int-max={key}", quality.preset)
        }
        ("av1enc", bitrate) => {
            // cpu-used 8 (fastest) for ultrafast down to 2 for veryslow.
            let cpu_used = 8usize.saturating_sub(speed * 6 / (PRESETS.len() - 1));
            let rate = match bitrate {
                Some(kbps) => format!("end-usage=vbr target-bitrate={kbps}"),
                // GStreamer's av1enc has no cq-level: pin the quantizer instead.
                None => format!("end-usage=q min-quantizer={cq_level} max-quantizer={cq_level}"),
            };
            format!(
                "av1enc usage-profile=realtime lag-in-frames=0 cpu-used={cpu_used} row-mt=true keyframe-max-dist={key} {rate}"
            )
        }
        ("vp8enc" | "vp9enc", bitrate) => {
            let cpu_used = 8usize.saturating_sub(speed * 8 / (PRESETS.len() - 1));
            let rate = match bitrate {
                Some(kbps) => format!("end-usage=vbr target-bitrate={}", u64::from(kbps) * 1000),
                None => format!("end-usage=cq cq-level={cq_level} target-bitrate=50000000"),
            };
            let row_mt = if element == "vp9enc" { " row-mt=true" } else { "" };
            format!("{element} deadline=1 cpu-used={cpu_used} threads=4 keyframe-max-dist={key} {rate}{row_mt}")
        }
        (hw, bitrate) => {
            let gop = if hw.starts_with("va") { "key-int-max" } else { "gop-size" };
            let rate = bitrate.map(|kbps| format!(" bitrate={kbps}")).unwrap_or_default();
            format!("{hw} {gop}={key}{rate}")
        }
    };
    Ok(format!("{}{encoder_part}", input_conversion(element)))
}

/// The parser between encoder and MP4 muxer (WebM needs none).
pub fn mp4_parser(codec: VideoCodec) -> Option<&'static str> {
    match codec {
        VideoCodec::H264 => Some("h264parse"),
        VideoCodec::H265 => Some("h265parse"),
        VideoCodec::Av1 => Some("av1parse"),
        VideoCodec::Vp8 | VideoCodec::Vp9 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quality(preset: &str, bitrate_kbps: Option<u32>) -> VideoQuality {
        VideoQuality { preset: preset.into(), bitrate_kbps, crf: 23, keyframe_interval_frames: 60 }
    }

    fn software(codec: VideoCodec) -> VideoEncoder {
        let element = candidates(codec).iter().find(|(_, h)| !h).map(|(e, _)| *e).expect("a software encoder");
        VideoEncoder { element, hardware: false, codec }
    }

    #[test]
    fn every_codec_has_a_software_encoder_with_settings() {
        for codec in VideoCodec::ALL {
            let cq = encoder_description(&software(codec), &quality("veryfast", None)).expect("cq");
            let vbr = encoder_description(&software(codec), &quality("slow", Some(2500))).expect("vbr");
            assert!(cq.contains("60") && vbr.contains("2500"), "{cq} / {vbr}");
        }
        let vp8 = encoder_description(&software(VideoCodec::Vp8), &quality("medium", Some(2500))).expect("vp8");
        assert!(vp8.contains("target-bitrate=2500000"), "libvpx takes bits per second: {vp8}");
        let av1 = encoder_description(&software(VideoCodec::Av1), &quality("ultrafast", None)).expect("av1");
        assert!(av1.contains("cpu-used=8") && av1.contains("max-quantizer=29"), "{av1}");
    }

    /// The settings x264 writes into its stream (the SEI's `options:` part), without the
    /// thread counts, which follow the machine.
    fn x264_options(file: &std::path::Path) -> Vec<String> {
        let bytes = std::fs::read(file).expect("read the encoded file");
        let at = bytes.windows(12).position(|w| w == b"x264 - core ").expect("an x264 SEI");
        let text: String = bytes[at..].iter().take_while(|&&b| b != 0).map(|&b| char::from(b)).collect();
        let options = text.split_once("options: ").expect("x264 options").1;
        options.split_whitespace().filter(|o| !o.contains("threads")).map(str::to_owned).collect()
    }

    #[test]
    fn x264_settings_are_libx264s_at_the_same_preset_and_crf() {
        super::super::init().expect("GStreamer");
        let dir = tempfile::tempdir().expect("tempdir");
        for preset in ["veryfast", "medium"] {
            let ours = dir.path().join(format!("tessera-{preset}.mp4"));
            let encoder = encoder_description(&software(VideoCodec::H264), &quality(preset, None)).expect("x264");
            let description = format!(
                "videotestsrc num-buffers=10 ! video/x-raw,format=NV12,width=320,height=180,framerate=30/1 ! \
                 {encoder} ! h264parse ! mp4mux ! filesink location={}",
                ours.display()
            );
            let pipeline = OwnedPipeline::launch(&description, "encoding".into()).expect("pipeline");
            pipeline.play().expect("play");
            pipeline.wait_eos(gst::ClockTime::from_seconds(60)).expect("encoded");
            let theirs = dir.path().join(format!("ffmpeg-{preset}.mp4"));
            let status = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-frames:v", "10"])
                .args(["-c:v", "libx264", "-preset", preset, "-crf", "23", "-g", "60", "-pix_fmt", "nv12"])
                .arg(&theirs)
                .status()
                .expect("ffmpeg runs");
            assert!(status.success(), "ffmpeg failed");
            assert_eq!(x264_options(&ours), x264_options(&theirs), "x264 settings at {preset}");
        }
    }

    #[test]
    fn unknown_presets_are_refused() {
        let err = encoder_description(&software(VideoCodec::H264), &quality("turbo", None)).unwrap_err();
        assert!(err.to_string().contains("`turbo`"), "{err}");
    }

    #[test]
    fn hardware_encoders_get_their_own_property_names() {
        let nv = VideoEncoder { element: "nvh264enc", hardware: true, codec: VideoCodec::H264 };
        assert_eq!(
            encoder_description(&nv, &quality("fast", Some(4000))).expect("nv"),
            "nvh264enc gop-size=60 bitrate=4000"
        );
        let va = VideoEncoder { element: "vah265enc", hardware: true, codec: VideoCodec::H265 };
        assert_eq!(encoder_description(&va, &quality("fast", None)).expect("va"), "vah265enc key-int-max=60");
    }
}
