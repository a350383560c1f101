//! Joining a video rendered in slices into one MP4 without re-encoding: each slice is an MP4
//! whose video starts with a keyframe at a known call time; its encoded frames are read back
//! (`filesrc ! qtdemux ! appsink`) and written, moved to that time, into one muxer
//! (`appsrc ! mp4mux ! filesink`) beside the audio, encoded once for the whole call and copied
//! as it is (never joined from pieces, so no encoder priming lands inside the file).
//!
//! Timestamps: a slice's reordered (B-frame) video decodes before it shows, so its first
//! decode times lie before its first presentation time, and the demuxer hands frames out with
//! the edit list's shift still in them (its segment starts there). Every frame goes to the
//! muxer at `BASE + slice offset + (timestamp - segment start)` in a segment starting at
//! `BASE`: presentation times land where a single encoder would put them, and the first
//! slice's early decode times become the same negative running times (and the same edit
//! list) a single encoder's would.

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::decode::pull_sample;
use super::interrupt::Interrupt;
use super::pipeline::{MediaError, OwnedPipeline, require_elements};

/// Where the joined file's timestamps are counted from (see the module's note): far more than
/// any encoder's reorder delay.
const BASE_NS: u64 = 3_600_000_000_000;

/// One piece to copy: a file whose first stream is copied, and the call time its start goes to
/// (a slice of the video: the call time of its first frame; the mix: 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub path: PathBuf,
    pub offset_ns: u64,
}

/// Writes `out`: the video of `parts` in order, and the audio of `audio` (an M4A or MP4 whose
/// first stream is the audio), both copied. The parts must share their stream's format (one
/// encoder, one set of settings).
pub fn join_mp4(parts: &[Part], audio: Option<&Path>, out: &Path) -> Result<(), MediaError> {
    require_elements(&["filesrc", "qtdemux", "appsink", "appsrc", "queue", "mp4mux", "filesink"])?;
    let first = parts.first().ok_or_else(|| MediaError::Internal {
        what: format!("joining {}", out.display()),
        reason: "no video slices to join".into(),
    })?;
    let mut description = String::from(
        "mp4mux name=mux faststart=true ! filesink name=out \
         appsrc name=video format=time is-live=false block=true max-bytes=16777216 handle-segment-change=true \
         ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=0 ! mux.video_%u ",
    );
    if audio.is_some() {
        description.push_str(
            "appsrc name=audio format=time is-live=false block=true max-bytes=4194304 handle-segment-change=true \
             ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=0 ! mux.audio_%u",
        );
    }
    let writer = OwnedPipeline::launch(&description, format!("joining {}", out.display()))?;
    let sink: gst::Element = writer.element("out")?;
    sink.set_property("location", out.to_string_lossy().as_ref());
    let video: gst_app::AppSrc = writer.element("video")?;
    let audio_src: Option<gst_app::AppSrc> = audio.map(|_| writer.element("audio")).transpose()?;
    writer.play()?;
    let interrupt = Interrupt::current();
    let (video_result, audio_result) = std::thread::scope(|scope| {
        let audio_thread = audio.zip(audio_src.as_ref()).map(|(path, src)| {
            let (writer, interrupt) = (&writer, interrupt.clone());
            scope.spawn(move || {
                let _entered = interrupt.enter();
                let mix = Part { path: path.to_path_buf(), offset_ns: 0 };
                let result = copy_parts(writer, src, std::slice::from_ref(&mix), "audio");
                let _ = src.end_of_stream();
                result
            })
        });
        let video_result = copy_parts(&writer, &video, parts, "video");
        let _ = video.end_of_stream();
        if video_result.is_err() {
            // The audio's pushes end on the pipeline's stop.
            let _ = writer.pipeline.set_state(gst::State::Null);
        }
        let audio_result = match audio_thread.map(|t| t.join()) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => {
                Err(MediaError::Internal { what: writer.what.clone(), reason: "audio copy panicked".into() })
            }
        };
        (video_result, audio_result)
    });
    video_result?;
    audio_result?;
    tracing::debug!(slices = parts.len(), first = %first.path.display(), "joined");
    writer.wait_eos(gst::ClockTime::from_seconds(600))
}

/// Copies the first stream of each part, in order, into `src`, each moved to its offset.
fn copy_parts(writer: &OwnedPipeline, src: &gst_app::AppSrc, parts: &[Part], medium: &str) -> Result<(), MediaError> {
    let segment = {
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(gst::ClockTime::from_nseconds(BASE_NS));
        segment.set_time(gst::ClockTime::ZERO);
        segment
    };
    let mut caps: Option<gst::Caps> = None;
    for (index, part) in parts.iter().enumerate() {
        let what = format!("reading the {medium} of {}", part.path.display());
        let reader = OwnedPipeline::launch(
            "filesrc name=src ! qtdemux ! appsink name=sink sync=false max-buffers=64 drop=false",
            what.clone(),
        )?;
        let file: gst::Element = reader.element("src")?;
        file.set_property("location", part.path.to_string_lossy().as_ref());
        let sink: gst_app::AppSink = reader.element("sink")?;
        reader.play()?;
        while let Some(sample) = pull_sample(&reader, &sink, || writer.first_error().map_or(Ok(()), Err))? {
            let sample_caps = sample.caps().map(gst::CapsRef::to_owned);
            match (&caps, sample_caps) {
                (None, Some(found)) => caps = Some(found),
                (Some(known), Some(found)) if !same_stream(known, &found) => {
                    return Err(MediaError::Data {
                        what,
                        reason: format!(
                            "slice {index}'s {medium} is not in the first slice's format ({found} after {known}); \
                             slices must come from one encoder with one set of settings"
                        ),
                    });
                }
                _ => {}
            }
            let Some(buffer) = sample.buffer_owned() else { continue };
            let shift_ns = sample
                .segment()
                .and_then(|s| s.downcast_ref::<gst::ClockTime>())
                .and_then(|s| s.start())
                .map_or(0, gst::ClockTime::nseconds);
            let moved = |t: Option<gst::ClockTime>| {
                t.map(|t| {
                    gst::ClockTime::from_nseconds((BASE_NS + part.offset_ns + t.nseconds()).saturating_sub(shift_ns))
                })
            };
            let mut buffer = buffer;
            {
                let b = buffer.make_mut();
                let (pts, dts) = (moved(b.pts()), moved(b.dts()));
                b.set_pts(pts);
                b.set_dts(dts);
            }
            let out = gst::Sample::builder().buffer(&buffer).segment(&segment);
            let out = match &caps {
                Some(caps) => out.caps(caps).build(),
                None => out.build(),
            };
            writer.push_sample(src, &out)?;
        }
    }
    Ok(())
}

/// Whether two slices' caps describe one stream: the same format, picture size and decoder
/// configuration (the demuxer derives other fields, such as the frame rate, from each file).
fn same_stream(a: &gst::Caps, b: &gst::Caps) -> bool {
    let (Some(a), Some(b)) = (a.structure(0), b.structure(0)) else { return false };
    a.name() == b.name()
        && ["codec_data", "width", "height", "stream-format", "rate", "channels"].iter().all(|&field| {
            a.value(field).ok().map(|v| v.serialize().ok()) == b.value(field).ok().map(|v| v.serialize().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::encode::{AudioFileEncoder, CompositeEncoder, EncodeSettings};
    use crate::media::encoders::pick_video_encoder;
    use crate::outputs::{AudioFormat, HardwarePreference, VideoCodec};

    const FPS: u32 = 30;
    const SIZE: (u32, u32) = (64, 36);

    /// A slice of `frames` frames whose luma counts up from `first`.
    fn slice(path: &Path, first: u64, frames: u64) {
        let settings = EncodeSettings::new(SIZE.0, SIZE.1, FPS);
        let encoder = pick_video_encoder(VideoCodec::H264, HardwarePreference::Off).expect("x264");
        let mut sink = CompositeEncoder::start(path, encoder, &settings, false).expect("encoder");
        for n in first..first + frames {
            let (w, h) = (SIZE.0 as usize, SIZE.1 as usize);
            let mut nv12 = vec![(16 + (n * 2) % 220) as u8; w * h];
            nv12.resize(w * h * 3 / 2, 128);
            sink.push_video(nv12).expect("push");
        }
        sink.finish().expect("finish");
    }

    fn probe(path: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error"])
            .args(args)
            .arg(path)
            .output()
            .expect("ffprobe runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn slices_join_into_one_file_with_every_frame_where_one_encoder_puts_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cuts = [(0_u64, 60_u64), (60, 30), (90, 45)];
        let mut parts = Vec::new();
        for (i, (first, frames)) in cuts.iter().enumerate() {
            let path = dir.path().join(format!("slice{i}.mp4"));
            slice(&path, *first, *frames);
            parts.push(Part { path, offset_ns: first * 1_000_000_000 / u64::from(FPS) });
        }
        let audio = dir.path().join("mix.m4a");
        let mut mix = AudioFileEncoder::start(&audio, AudioFormat::M4a, 128).expect("aac");
        mix.push_audio(&vec![0.1_f32; 48_000 * 2 * 9 / 2]).expect("audio");
        mix.finish().expect("finish aac");
        let out = dir.path().join("joined.mp4");
        join_mp4(&parts, Some(&audio), &out).expect("join");

        let packets =
            probe(&out, &["-select_streams", "v", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"]);
        let mut pts: Vec<(f64, bool)> = packets
            .lines()
            .filter_map(|l| {
                let (t, flags) = l.split_once(',')?;
                Some((t.parse().ok()?, flags.starts_with('K')))
            })
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(pts.len(), 135, "every frame of every slice");
        for (n, (t, _)) in pts.iter().enumerate() {
            assert!((t - n as f64 / f64::from(FPS)).abs() < 1e-4, "frame {n} at {t} s");
        }
        for first in [0, 60, 90] {
            assert!(pts[first].1, "slice starting at frame {first} starts with a keyframe");
        }
        let streams = probe(&out, &["-show_entries", "stream=codec_type,start_time,duration", "-of", "csv=p=0"]);
        assert!(streams.contains("video,0.000000,4.500000"), "{streams}");
        assert!(streams.contains("audio,0.000000,4.5"), "{streams}");
        let decoded = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&out)
            .args(["-f", "null", "-"])
            .output()
            .expect("ffmpeg runs");
        assert!(decoded.status.success() && decoded.stderr.is_empty(), "{}", String::from_utf8_lossy(&decoded.stderr));
    }

    #[test]
    fn a_slice_from_another_encoder_setting_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.mp4");
        slice(&a, 0, 10);
        let b = dir.path().join("b.mp4");
        let settings = EncodeSettings::new(96, 54, FPS);
        let encoder = pick_video_encoder(VideoCodec::H264, HardwarePreference::Off).expect("x264");
        let mut sink = CompositeEncoder::start(&b, encoder, &settings, false).expect("encoder");
        for _ in 0..10 {
            sink.push_video(vec![80; 96 * 54 * 3 / 2]).expect("push");
        }
        sink.finish().expect("finish");
        let parts = [Part { path: a, offset_ns: 0 }, Part { path: b.clone(), offset_ns: 333_333_333 }];
        let err = join_mp4(&parts, None, &dir.path().join("out.mp4")).expect_err("refused");
        assert!(err.to_string().contains("slice 1") && err.to_string().contains("b.mp4"), "{err}");
    }
}
