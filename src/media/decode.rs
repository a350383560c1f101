//! Decoding one segment: the packets of its `.rtpdump` go into
//! `appsrc -> depayloader -> [parser] -> decoder -> convert -> appsink`, or, to remux without
//! decoding, `appsrc -> depayloader -> [parser] -> appsink` (whole encoded frames).
//! A feeder thread streams the packets it is given (see [`PacketSource`]) into the pipeline,
//! so memory does not grow with the segment's length: appsrc blocks when its queue is full,
//! and appsink holds a few buffers. A feed that cannot read its packets is the recording's
//! fault ([`MediaError::Data`]) unless the failure is ours (an I/O error, a panic:
//! [`MediaError::Internal`]).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::pipeline::{MediaError, OwnedPipeline, require_elements};
use super::rtp_feed::{feed, rtp_caps, uses_inband_fec};
use crate::ingest::IngestError;
use crate::ingest::packets::PacketSource;
use crate::ingest::redundancy::AuxiliaryPayloads;
use crate::ingest::sdp::{Codec, MediaKind};

/// Sample rate and channel count of every decoded audio chunk.
pub const AUDIO_RATE_HZ: u32 = 48_000;
pub const AUDIO_CHANNELS: usize = 2;

/// Packets queued ahead of a segment's depayloader: at most this many bytes of RTP and this
/// much media time (ns), whichever comes first. Bytes alone let a low-rate stream queue
/// minutes (1 MiB is some 125 s of Opus), and with it a GstBuffer and an allocation per
/// packet: memory that grows with the stream's packet count rather than its size.
const FEED_MAX_BYTES: u32 = 1 << 20;
const FEED_MAX_NS: u64 = 2_000_000_000;

/// A decoder that produces nothing for this long is considered stuck.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a segment decoder needs to know about its input.
#[derive(Debug, Clone)]
pub struct DecodeSpec {
    pub rtpdump_path: PathBuf,
    pub codec: Codec,
    pub payload_type: u8,
    pub clock_rate_hz: u32,
    pub fmtp: Vec<(String, String)>,
    pub aux: AuxiliaryPayloads,
}

/// A picture in I420. A decoded one is read where the decoder wrote it: its buffer is kept
/// mapped, not copied (one copy of every picture of every participant less, and no
/// allocation); a live sender's is owned.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub data: FrameBytes,
    /// Byte offset and stride of the Y, U and V planes inside `data`.
    pub plane_offsets: [usize; 3],
    pub plane_strides: [usize; 3],
    /// BT.709 matrix (else BT.601).
    pub bt709: bool,
    /// Time since the segment's first packet.
    pub pts_ms: f64,
}

/// The bytes of a picture: a decoder's buffer kept mapped for reading, or bytes owned (a
/// frame pushed by a live sender, converted). Shared: a clone is a reference.
#[derive(Clone)]
pub struct FrameBytes(Arc<dyn AsRef<[u8]> + Send + Sync>);

impl FrameBytes {
    pub fn from_vec(bytes: Vec<u8>) -> FrameBytes {
        FrameBytes(Arc::new(bytes))
    }

    fn mapped(buffer: gst::MappedBuffer<gst::buffer::Readable>) -> FrameBytes {
        FrameBytes(Arc::new(buffer))
    }
}

impl std::fmt::Debug for FrameBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrameBytes({} bytes)", self.len())
    }
}

impl std::ops::Deref for FrameBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl VideoFrame {
    /// A picture of tightly packed I420 planes (Y, then U and V of `ceil(width / 2)` by
    /// `ceil(height / 2)`) in `data`.
    pub fn packed_i420(width: u32, height: u32, data: Vec<u8>, bt709: bool) -> VideoFrame {
        let (w, cw) = (width as usize, width.div_ceil(2) as usize);
        let (ys, cs) = (w * height as usize, cw * height.div_ceil(2) as usize);
        VideoFrame {
            width,
            height,
            data: FrameBytes::from_vec(data),
            plane_offsets: [0, ys, ys + cs],
            plane_strides: [w, cw, cw],
            bt709,
            pts_ms: 0.0,
        }
    }
}

/// Decoded audio: interleaved stereo f32 at 48 kHz.
#[derive(Debug, Clone)]
pub struct AudioChunk {
    pub samples: Vec<f32>,
    /// Time since the segment's first packet.
    pub pts_ms: f64,
}

/// One encoded frame as sent (depayloaded, parsed), for remuxing.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    pub buffer: gst::Buffer,
    pub caps: gst::Caps,
    /// Time since the segment's first packet.
    pub pts_ms: f64,
    pub duration_ms: Option<f64>,
    pub keyframe: bool,
}

#[derive(Debug)]
pub enum Decoded {
    Video(VideoFrame),
    Audio(AudioChunk),
    Encoded(EncodedFrame),
}

/// How far a [`SegmentDecoder`] takes the media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Decode,
    Depayload,
}

/// A running decoder for one segment.
#[derive(Debug)]
pub struct SegmentDecoder {
    pipeline: OwnedPipeline,
    sink: gst_app::AppSink,
    feeder: Option<JoinHandle<Result<(), IngestError>>>,
    media: MediaKind,
    stage: Stage,
    done: bool,
    /// Extended RTP timestamp of the first packet pushed: decoded PTS count from it.
    first_ticks: Arc<OnceLock<i64>>,
}

fn decoder_chain(spec: &DecodeSpec) -> (&'static str, &'static [&'static str]) {
    match spec.codec {
        Codec::Opus if uses_inband_fec(spec) => {
            ("rtpopusdepay ! opusdec plc=true use-inband-fec=true", &["rtpopusdepay", "opusdec"])
        }
        Codec::Opus => ("rtpopusdepay ! opusdec plc=true", &["rtpopusdepay", "opusdec"]),
        Codec::Vp8 => ("rtpvp8depay ! vp8dec", &["rtpvp8depay", "vp8dec"]),
        Codec::Vp9 => ("rtpvp9depay ! vp9dec", &["rtpvp9depay", "vp9dec"]),
        Codec::H264 => ("rtph264depay ! h264parse ! avdec_h264", &["rtph264depay", "h264parse", "avdec_h264"]),
        Codec::Av1 => ("rtpav1depay ! av1parse ! av1dec", &["rtpav1depay", "av1parse", "av1dec"]),
    }
}

/// The depayloader and parser that turn a codec's RTP into whole encoded frames, as Matroska
/// and MP4 take them.
pub fn depayload_chain(codec: Codec) -> (&'static str, &'static [&'static str]) {
    match codec {
        Codec::Opus => ("rtpopusdepay", &["rtpopusdepay"]),
        Codec::Vp8 => ("rtpvp8depay", &["rtpvp8depay"]),
        Codec::Vp9 => ("rtpvp9depay ! vp9parse", &["rtpvp9depay", "vp9parse"]),
        Codec::H264 => (
            "rtph264depay ! h264parse config-interval=-1 ! video/x-h264,stream-format=avc,alignment=au",
            &["rtph264depay", "h264parse"],
        ),
        Codec::Av1 => ("rtpav1depay ! av1parse", &["rtpav1depay", "av1parse"]),
    }
}

impl SegmentDecoder {
    /// Builds and starts a decoding pipeline and its feeder thread, which streams `packets`.
    pub fn start(spec: &DecodeSpec, packets: Box<dyn PacketSource>) -> Result<SegmentDecoder, MediaError> {
        let media = spec.codec.media_kind();
        let (chain, elements) = decoder_chain(spec);
        require_elements(elements)?;
        let convert = match media {
            MediaKind::Video => "videoconvert ! video/x-raw,format=I420",
            MediaKind::Audio => {
                "audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved"
            }
        };
        Self::launch(
            spec,
            packets,
            &format!("{chain} ! {convert}"),
            Stage::Decode,
            format!("decoding {}", spec.rtpdump_path.display()),
        )
    }

    /// Builds and starts a pipeline that only depayloads: [`Decoded::Encoded`] frames come out.
    pub fn depayload(spec: &DecodeSpec, packets: Box<dyn PacketSource>) -> Result<SegmentDecoder, MediaError> {
        let (chain, elements) = depayload_chain(spec.codec);
        require_elements(elements)?;
        Self::launch(spec, packets, chain, Stage::Depayload, format!("reading {}", spec.rtpdump_path.display()))
    }

    fn launch(
        spec: &DecodeSpec,
        mut packets: Box<dyn PacketSource>,
        chain: &str,
        stage: Stage,
        what: String,
    ) -> Result<SegmentDecoder, MediaError> {
        super::init()?;
        let media = spec.codec.media_kind();
        let description = format!(
            "appsrc name=src format=time is-live=false block=true max-bytes={FEED_MAX_BYTES} \
             max-time={FEED_MAX_NS} ! {chain} ! appsink name=sink sync=false max-buffers=8 drop=false"
        );
        tracing::debug!(pipeline = %what, "segment pipeline started");
        let pipeline = OwnedPipeline::launch(&description, what)?;
        let src: gst_app::AppSrc = pipeline.element("src")?;
        let sink: gst_app::AppSink = pipeline.element("sink")?;
        src.set_caps(Some(&rtp_caps(spec)));
        if media == MediaKind::Video && stage == Stage::Decode {
            accept_video_meta(&sink);
        }
        pipeline.play()?;
        let feed_spec = spec.clone();
        let first_ticks = Arc::new(OnceLock::new());
        let first = Arc::clone(&first_ticks);
        // The feeder logs inside the caller's span (a job's lines keep its id).
        let span = tracing::Span::current();
        let feeder = std::thread::Builder::new()
            .name("tessera-feed".into())
            .spawn(move || span.in_scope(|| feed(&feed_spec, packets.as_mut(), &src, &first)))
            .map_err(|e| MediaError::Internal {
                what: pipeline.what.clone(),
                reason: format!("cannot start feeder thread: {e}"),
            })?;
        Ok(SegmentDecoder { pipeline, sink, feeder: Some(feeder), media, stage, done: false, first_ticks })
    }

    /// Extended RTP timestamp of the first packet fed to the decoder (the origin of decoded
    /// PTS), once known: always known when [`SegmentDecoder::pull`] has returned something.
    pub fn first_ticks(&self) -> Option<i64> {
        self.first_ticks.get().copied()
    }

    /// The next decoded frame or chunk; `Ok(None)` once the segment is exhausted.
    pub fn pull(&mut self) -> Result<Option<Decoded>, MediaError> {
        if self.done {
            return Ok(None);
        }
        let (pipeline, feeder) = (&self.pipeline, &mut self.feeder);
        // A feeder that failed (or panicked, and so never ended the stream) ends the decode
        // with its error; one that ended well has sent end of stream.
        let pulled = pull_sample(pipeline, &self.sink, || {
            if feeder.as_ref().is_some_and(JoinHandle::is_finished) {
                join_feeder(feeder, &pipeline.what)
            } else {
                Ok(())
            }
        });
        match pulled {
            Ok(Some(sample)) => {
                convert(&sample, self.media, self.stage == Stage::Depayload, &self.pipeline.what).map(Some)
            }
            Ok(None) => {
                self.done = true;
                join_feeder(&mut self.feeder, &self.pipeline.what).map(|()| None)
            }
            Err(err) => {
                self.done = true;
                Err(err)
            }
        }
    }
}

/// Waits for the feeder to end; its failure (or panic) as the decode's error.
fn join_feeder(feeder: &mut Option<JoinHandle<Result<(), IngestError>>>, what: &str) -> Result<(), MediaError> {
    let Some(handle) = feeder.take() else { return Ok(()) };
    match handle.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(feed_error(what.to_owned(), err)),
        Err(_) => Err(MediaError::Internal { what: what.to_owned(), reason: "feeder thread panicked".into() }),
    }
}

/// The next sample of `sink`, or `None` at the end of the stream. `idle` runs whenever nothing
/// came for 100 ms (a chance to notice a producer that failed); a pipeline error, the
/// pipeline's interrupt, or nothing for [`STALL_TIMEOUT`], ends the wait with an error.
pub(crate) fn pull_sample(
    pipeline: &OwnedPipeline,
    sink: &gst_app::AppSink,
    mut idle: impl FnMut() -> Result<(), MediaError>,
) -> Result<Option<gst::Sample>, MediaError> {
    let started = Instant::now();
    loop {
        pipeline.check_interrupt()?;
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            pipeline.touch();
            return Ok(Some(sample));
        }
        if let Some(err) = pipeline.first_error() {
            return Err(err);
        }
        if sink.is_eos() {
            return Ok(None);
        }
        idle()?;
        if started.elapsed() > STALL_TIMEOUT {
            return Err(MediaError::Internal {
                what: pipeline.what.clone(),
                reason: format!("no output for {} s", STALL_TIMEOUT.as_secs()),
            });
        }
    }
}

/// Tells the decoder upstream of `sink` that padded planes are fine (their offsets and strides
/// travel in a `GstVideoMeta`, which [`convert`] reads): libvpx's and libav's decoders then
/// hand out the pictures they decoded into instead of copying each into a tight buffer.
pub(crate) fn accept_video_meta(sink: &gst_app::AppSink) {
    let Some(pad) = sink.static_pad("sink") else { return };
    pad.add_probe(gst::PadProbeType::QUERY_DOWNSTREAM, |_, info| {
        if let Some(gst::PadProbeData::Query(query)) = &mut info.data
            && let gst::QueryViewMut::Allocation(allocation) = query.view_mut()
        {
            allocation.add_allocation_meta::<gst_video::VideoMeta>(None);
        }
        gst::PadProbeReturn::Ok
    });
}

/// A sample from an appsink as a decoded frame or chunk (`encoded`: as an encoded frame).
pub(crate) fn convert(
    sample: &gst::Sample,
    media: MediaKind,
    encoded: bool,
    what: &str,
) -> Result<Decoded, MediaError> {
    let data_error = |reason: &str| MediaError::Data { what: what.to_owned(), reason: reason.to_owned() };
    let buffer = sample.buffer().ok_or_else(|| data_error("sample without buffer"))?;
    let pts_ms = buffer.pts().map_or(0.0, |t| t.nseconds() as f64 / 1e6);
    if encoded {
        let caps = sample.caps().ok_or_else(|| data_error("encoded sample without caps"))?;
        return Ok(Decoded::Encoded(EncodedFrame {
            buffer: buffer.copy(),
            caps: caps.to_owned(),
            pts_ms,
            duration_ms: buffer.duration().map(|d| d.nseconds() as f64 / 1e6),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        }));
    }
    match media {
        MediaKind::Video => {
            let caps = sample.caps().ok_or_else(|| data_error("video sample without caps"))?;
            let info = gst_video::VideoInfo::from_caps(caps).map_err(|_| data_error("unreadable video caps"))?;
            if info.format() != gst_video::VideoFormat::I420 {
                return Err(data_error(&format!("decoded {:?}, not I420", info.format())));
            }
            // Where the decoder put the planes: its video meta when it padded them, else the
            // caps' layout.
            let (offsets, strides) = match buffer.meta::<gst_video::VideoMeta>() {
                Some(meta) if meta.n_planes() == 3 => (meta.offset().to_vec(), meta.stride().to_vec()),
                _ => (info.offset().to_vec(), info.stride().to_vec()),
            };
            let mut plane_offsets = [0_usize; 3];
            let mut plane_strides = [0_usize; 3];
            for plane in 0..3 {
                plane_offsets[plane] = offsets.get(plane).copied().ok_or_else(|| data_error("missing video plane"))?;
                plane_strides[plane] = strides.get(plane).and_then(|&s| usize::try_from(s).ok()).unwrap_or(0);
            }
            let data = sample
                .buffer_owned()
                .ok_or_else(|| data_error("sample without buffer"))?
                .into_mapped_buffer_readable()
                .map_err(|_| data_error("cannot map video frame"))?;
            Ok(Decoded::Video(VideoFrame {
                width: info.width(),
                height: info.height(),
                data: FrameBytes::mapped(data),
                plane_offsets,
                plane_strides,
                bt709: info.colorimetry().matrix() == gst_video::VideoColorMatrix::Bt709,
                pts_ms,
            }))
        }
        MediaKind::Audio => {
            let map = buffer.map_readable().map_err(|_| data_error("cannot map audio buffer"))?;
            let samples =
                map.as_slice().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok(Decoded::Audio(AudioChunk { samples, pts_ms }))
        }
    }
}

/// A feed that failed: reading the packets failed on our side (I/O) or the recording is bad.
pub fn feed_error(what: String, err: IngestError) -> MediaError {
    match err {
        IngestError::Io { .. } => MediaError::Internal { what, reason: err.to_string() },
        _ => MediaError::Data { what, reason: err.to_string() },
    }
}

impl Drop for SegmentDecoder {
    fn drop(&mut self) {
        // Stop the pipeline first so a feeder blocked in push_buffer returns.
        let _ = self.pipeline.pipeline.set_state(gst::State::Null);
        if let Some(handle) = self.feeder.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    //! Whose fault a feed failure is: a feeder that panics or cannot read its packets for a
    //! reason of ours ends the job as ours (CAUSE_INTERNAL); a recording whose packets cannot
    //! be read ends it as the caller's (CAUSE_BAD_INPUT).

    use std::path::PathBuf;

    use super::*;
    use crate::error::failure;
    use crate::ingest::packets::MediaPacket;
    use crate::ingest::rtpdump::RtpDumpError;
    use crate::proto::failure::Cause;

    enum Fails {
        Panic,
        Io,
        Corrupt,
    }

    /// Two good Opus packets (silence frames), then the failure.
    struct Failing {
        sent: u32,
        how: Fails,
    }

    impl PacketSource for Failing {
        fn next_packet(&mut self) -> Result<Option<MediaPacket>, IngestError> {
            self.sent += 1;
            if self.sent <= 2 {
                let packet = MediaPacket {
                    sequence: i64::from(self.sent),
                    ticks: i64::from(self.sent) * 960,
                    marker: false,
                    // TOC: SILK-only WB 20 ms, one frame; an empty frame decodes as silence.
                    payload: vec![0x48],
                    arrival_ms: self.sent * 20,
                    lost_before: 0,
                    origin: crate::ingest::packets::PacketOrigin::Media,
                };
                return Ok(Some(packet));
            }
            let path = PathBuf::from("call/track.rtpdump");
            match self.how {
                Fails::Panic => panic!("a bug in the feed"),
                Fails::Io => Err(IngestError::Io { path, source: std::io::Error::other("disk went away") }),
                Fails::Corrupt => Err(IngestError::Rtpdump {
                    path,
                    source: RtpDumpError::ZeroLength { record_index: 3, byte_offset: 120 },
                }),
            }
        }
    }

    fn opus() -> DecodeSpec {
        DecodeSpec {
            rtpdump_path: PathBuf::from("call/track.rtpdump"),
            codec: Codec::Opus,
            payload_type: 111,
            clock_rate_hz: 48_000,
            fmtp: Vec::new(),
            aux: AuxiliaryPayloads::default(),
        }
    }

    fn decode_until_error(how: Fails) -> MediaError {
        let mut decoder = SegmentDecoder::start(&opus(), Box::new(Failing { sent: 0, how })).expect("start");
        loop {
            match decoder.pull() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the feed's failure was not reported"),
                Err(err) => return err,
            }
        }
    }

    #[test]
    fn a_feeder_that_panics_or_fails_on_our_side_is_our_fault() {
        for how in [Fails::Panic, Fails::Io] {
            let err = decode_until_error(how);
            assert!(matches!(err, MediaError::Internal { .. }), "{err:?}");
            let failure = failure(&err);
            assert_eq!(failure.cause(), Cause::Internal, "{failure:?}");
        }
    }

    #[test]
    fn packets_the_recording_cannot_give_are_the_callers_fault() {
        let err = decode_until_error(Fails::Corrupt);
        assert!(matches!(err, MediaError::Data { .. }), "{err:?}");
        assert!(err.to_string().contains("call/track.rtpdump"), "{err}");
        let failure = failure(&err);
        assert_eq!((failure.cause(), failure.code.as_str()), (Cause::BadInput, "undecodable_media"));
    }
}
