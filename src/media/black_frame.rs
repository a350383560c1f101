//! One black keyframe in a sender's codec and picture size, to show black over a hole in a
//! remuxed video track (a mute, a rejoin, the time before a participant joined) without
//! re-encoding anything else. H.264 carries its own parameter sets in-band, so it decodes in
//! a stream whose container parameter sets came from the sender.

use gstreamer as gst;
use gstreamer_app as gst_app;

use super::mux::MuxInput;
use super::pipeline::{MediaError, OwnedPipeline, require_elements};
use crate::ingest::sdp::Codec;

/// An encoded black keyframe and the caps it came with.
#[derive(Debug, Clone)]
pub struct BlackFrame {
    pub buffer: gst::Buffer,
    pub caps: gst::Caps,
}

fn encoder(codec: Codec) -> Option<(&'static str, &'static [&'static str])> {
    match codec {
        Codec::Vp8 => Some(("vp8enc deadline=1 keyframe-max-dist=1", &["vp8enc"])),
        Codec::Vp9 => Some(("vp9enc deadline=1 keyframe-max-dist=1", &["vp9enc"])),
        Codec::H264 => Some((
            "x264enc key-int-max=1 speed-preset=ultrafast ! video/x-h264,profile=constrained-baseline \
             ! h264parse config-interval=-1 ! video/x-h264,stream-format=avc,alignment=au",
            &["x264enc", "h264parse"],
        )),
        Codec::Opus | Codec::Av1 => None,
    }
}

/// Encodes a black `width` x `height` keyframe in `codec`; `None` for codecs without a
/// filler (audio, AV1).
pub fn black_keyframe(codec: Codec, width: u32, height: u32) -> Result<Option<BlackFrame>, MediaError> {
    let Some((chain, elements)) = encoder(codec) else { return Ok(None) };
    require_elements(elements)?;
    require_elements(&["videotestsrc", "appsink"])?;
    let (w, h) = (width.max(2) / 2 * 2, height.max(2) / 2 * 2);
    let description = format!(
        "videotestsrc pattern=black num-buffers=1 ! video/x-raw,format=I420,width={w},height={h},framerate=30/1 \
         ! {chain} ! appsink name=sink sync=false"
    );
    let pipeline = OwnedPipeline::launch(&description, format!("encoding a black {w}x{h} {codec:?} frame"))?;
    let sink: gst_app::AppSink = pipeline.element("sink")?;
    pipeline.play()?;
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(20));
    let frame = sample.and_then(|s| Some(BlackFrame { buffer: s.buffer()?.copy(), caps: s.caps()?.to_owned() }));
    if frame.is_none() {
        return Err(pipeline.first_error().unwrap_or_else(|| MediaError::Internal {
            what: pipeline.what.clone(),
            reason: "the encoder produced no frame".into(),
        }));
    }
    Ok(frame)
}

/// Black keyframes for the holes of one remuxed video stream, encoded once per codec and size.
#[derive(Debug, Default)]
pub struct BlackFiller {
    cache: Vec<(Codec, (u32, u32), Option<BlackFrame>)>,
    /// Codec and caps of the last frame written.
    last: Option<(Codec, gst::Caps)>,
    pub frames_written: u64,
}

fn caps_size(caps: &gst::Caps) -> Option<(u32, u32)> {
    let s = caps.structure(0)?;
    let (w, h) = (s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?);
    (w > 0 && h > 0).then(|| (w.unsigned_abs(), h.unsigned_abs()))
}

impl BlackFiller {
    /// Notes the codec and caps of a frame just written (the size of later black frames).
    pub fn remember(&mut self, codec: Codec, caps: &gst::Caps) {
        self.last = Some((codec, caps.clone()));
    }

    /// Writes a black keyframe at `at_ms`, the size of frames with `caps` (or of the last
    /// frame written when `caps` is `None`). Returns false when the codec has no filler.
    pub fn push(
        &mut self,
        input: &mut MuxInput,
        like: Option<(Codec, &gst::Caps)>,
        at_ms: f64,
        duration_ms: f64,
    ) -> Result<bool, MediaError> {
        let Some((codec, size)) = like
            .and_then(|(codec, caps)| Some((codec, caps_size(caps)?)))
            .or_else(|| self.last.as_ref().and_then(|(codec, caps)| Some((*codec, caps_size(caps)?))))
        else {
            return Ok(false);
        };
        let index = match self.cache.iter().position(|(c, s, _)| *c == codec && *s == size) {
            Some(index) => index,
            None => {
                self.cache.push((codec, size, black_keyframe(codec, size.0, size.1)?));
                self.cache.len() - 1
            }
        };
        let Some(frame) = self.cache.get(index).and_then(|(_, _, f)| f.as_ref()) else { return Ok(false) };
        input.use_caps(&frame.caps);
        input.push_buffer(frame.buffer.clone(), at_ms, Some(duration_ms))?;
        self.frames_written += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_keyframes_for_every_remuxable_video_codec() {
        for codec in [Codec::Vp8, Codec::Vp9, Codec::H264] {
            let frame = black_keyframe(codec, 320, 180).expect("encode").expect("a frame");
            assert!(!frame.buffer.flags().contains(gst::BufferFlags::DELTA_UNIT), "{codec:?} keyframe");
            let s = frame.caps.structure(0).expect("caps");
            assert_eq!(s.get::<i32>("width").ok(), Some(320), "{codec:?} {:?}", frame.caps);
        }
        assert!(black_keyframe(Codec::Opus, 320, 180).expect("no error").is_none());
    }
}
