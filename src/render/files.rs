//! The files a render writes, and in which pass: the composite video, the audio-only
//! composites and every individual file re-encoded to another codec come out of one composite
//! pass (one decode); the individual files kept in the sender's codec are remuxed after it.
//! Each file is written under a hidden partial name and committed (renamed, measured) once
//! complete; a failed individual file is reported and the others are still written.

use std::path::{Path, PathBuf};

use tracing::info_span;

use super::composite::composite_output;
use super::individual::{self, WrittenIndividual};
use super::manifest::{OutputEntry, StreamEntry, file_facts};
use super::pass::{self, Entry, OutputResult};
use super::plan::{RenderPlan, TrackPlan};
use super::sliced::Sliced;
use super::transcode::{self, Transcode};
use super::{FileReady, PartialFile, Progress, RenderError, RenderRequest};
use crate::outputs::individual::{IndividualFile, TrackRef, select};
use crate::outputs::{AudioFormat, naming};

/// What [`write_outputs`] wrote.
pub struct Written {
    /// Every committed file, composites first, then individual files in selection order.
    pub entries: Vec<OutputEntry>,
    /// The individual files that failed, each with its reason.
    pub failed: Vec<String>,
    /// The composite pass's result for the composite, when one was asked for.
    pub composite: Option<OutputResult>,
}

pub fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |source| RenderError::Io { path: path.to_path_buf(), source }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A finished file's manifest entry.
struct Finished {
    kind: String,
    session: Option<(String, String)>,
    streams: Vec<StreamEntry>,
    encoder: Option<String>,
    offset_ms: f64,
    duration_ms: f64,
}

/// Moves a complete file to its final name and describes it.
fn commit(partial: PartialFile, path: &Path, finished: Finished) -> Result<OutputEntry, RenderError> {
    partial.commit().map_err(io_error(path))?;
    let (size_bytes, sha256) = file_facts(path).map_err(io_error(path))?;
    let (participant_id, user_session_id) = finished.session.unzip();
    Ok(OutputEntry {
        file: file_name(path),
        kind: finished.kind,
        participant_id,
        user_session_id,
        streams: finished.streams,
        encoder: finished.encoder,
        offset_ms: finished.offset_ms,
        duration_ms: finished.duration_ms,
        size_bytes,
        sha256,
    })
}

/// A file of the pass, before it is committed.
pub(super) struct Planned {
    pub path: PathBuf,
    pub partial: PartialFile,
}

impl Planned {
    pub fn new(path: PathBuf) -> Result<Planned, RenderError> {
        let partial = PartialFile::new(&path).map_err(io_error(&path))?;
        Ok(Planned { path, partial })
    }
}

/// An individual file, with how it is written.
struct Individual {
    file: IndividualFile,
    /// `None`: remuxed.
    how: Option<Transcode>,
    path: PathBuf,
}

/// Writes every file `request` asks for into its output directory.
pub fn write_outputs(
    plan: &RenderPlan,
    request: &RenderRequest,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<Written, RenderError> {
    let (dir, wanted) = (&request.output_dir, &request.outputs);
    let individual: Vec<Individual> = individual_files(plan, &wanted.individual)
        .into_iter()
        .map(|file| {
            let tracks: Vec<&TrackPlan> = file.tracks.iter().filter_map(|&i| plan.tracks.get(i)).collect();
            let how = transcode::choose(&tracks, wanted.individual_video_codec, wanted.individual_audio_format);
            let extension = how.map_or("mkv", Transcode::extension);
            let name = naming::individual(
                &plan.call,
                &file.participant_id,
                &file.user_session_id,
                file.kind,
                file.n,
                extension,
            );
            Individual { file, how, path: dir.join(name) }
        })
        .collect();

    // The composite pass: composites and re-encoded individual files.
    let mut encode = request.encode.clone();
    if let Some(codec) = wanted.composite_video {
        encode.codec = codec;
    }
    let request = &RenderRequest { encode, ..request.clone() };
    let (video, audio) = planned_composites(plan, request)?;
    // The composite video in slices by several workers: the pass writes its mix instead.
    let sliced = if video.is_some() { Sliced::plan(plan, request)? } else { None };
    let mix = sliced.as_ref().map(Sliced::mix_path);
    let mut entries = Vec::new();
    let wants_composite = video.is_some() || !audio.is_empty();
    if wants_composite {
        let mut targets: Vec<_> = audio.iter().map(|(format, planned)| (*format, planned.partial.path())).collect();
        let in_pass = match &mix {
            Some(mix) => {
                targets.push((AudioFormat::M4a, mix.as_path()));
                None
            }
            None => video.as_ref().map(|v| (v.partial.path(), true)),
        };
        let output = composite_output(plan, request, in_pass, &targets)?;
        entries.push(Entry { output, isolated: false, reports_progress: true });
    }
    // Re-encoded individual files: a partial file and an output each (or the reason it failed).
    let mut transcoded: Vec<(usize, Transcode, Result<Planned, RenderError>)> = Vec::new();
    for (index, file) in individual.iter().enumerate() {
        let Some(how) = file.how else { continue };
        let planned = Planned::new(file.path.clone()).and_then(|planned| {
            let output = transcode::individual_output(plan, &file.file, request, how, planned.partial.path())?;
            entries.push(Entry { output, isolated: true, reports_progress: false });
            Ok(planned)
        });
        transcoded.push((index, how, planned));
    }
    let mut sliced_video = None;
    let mut results = {
        let _span = info_span!("composite", call_id = %plan.call.call_id).entered();
        match (&sliced, &video) {
            (Some(sliced), Some(video)) => {
                let (results, joined) = sliced.run(plan, request, entries, video.partial.path(), on_progress)?;
                sliced_video = Some(joined);
                results
            }
            _ => pass::run(plan, request, entries, on_progress)?,
        }
        .into_iter()
    };

    let mut written = Written { entries: Vec::new(), failed: Vec::new(), composite: None };
    if wants_composite {
        let mut result = results.next().unwrap_or(Err(RenderError::Cancelled))?;
        if let Some(joined) = sliced_video {
            (result.encoder, result.adapter, result.compose_cpu_s) =
                (joined.encoder, joined.adapter, joined.compose_cpu_s);
        }
        for entry in commit_composites(request, video, audio, &result)? {
            FileReady::notify(request, &entry);
            written.entries.push(entry);
        }
        written.composite = Some(result);
    }
    let mut from_pass: Vec<Option<Result<(Planned, WrittenIndividual), RenderError>>> =
        (0..individual.len()).map(|_| None).collect();
    for (index, how, planned) in transcoded {
        let outcome = planned.and_then(|planned| {
            let result = results.next().unwrap_or(Err(RenderError::Cancelled))?;
            let tracks = individual[index].file.tracks.iter().filter_map(|&i| plan.tracks.get(i));
            Ok((planned, transcode::written(tracks.map(|t| (t.track_id.as_str(), t.kind)), how, result)))
        });
        from_pass[index] = Some(outcome);
    }

    // The individual files in order: committed from the pass, or remuxed now.
    let _span = info_span!("individual", call_id = %plan.call.call_id).entered();
    let total = individual.len() as u64;
    for (done, (file, outcome)) in individual.iter().zip(from_pass).enumerate() {
        request.cancel.check()?;
        let entry = match outcome {
            Some(outcome) => outcome.and_then(|(planned, w)| commit_individual(&file.file, planned, w, false)),
            None => remux(plan, &file.file, request, &file.path),
        };
        match entry {
            Ok(entry) => {
                FileReady::notify(request, &entry);
                written.entries.push(entry);
            }
            Err(RenderError::Cancelled) => return Err(RenderError::Cancelled),
            Err(err) => {
                let what =
                    format!("{} of {} / {}", file.file.kind, file.file.participant_id, file.file.user_session_id);
                tracing::error!(%err, "{what} failed");
                written.failed.push(format!("{what}: {err}"));
            }
        }
        on_progress(Progress {
            phase: "individual",
            done: done as u64 + 1,
            total,
            media_done_ms: plan.timeline.duration_ms,
            media_total_ms: plan.timeline.duration_ms,
        });
    }
    Ok(written)
}

/// The composite video and the audio-only composites, each to be written as a partial file.
pub(super) type PlannedComposites = (Option<Planned>, Vec<(AudioFormat, Planned)>);

/// The composite video and audio-only composites `request` asks for, each a partial file.
pub(super) fn planned_composites(plan: &RenderPlan, request: &RenderRequest) -> Result<PlannedComposites, RenderError> {
    let (dir, wanted) = (&request.output_dir, &request.outputs);
    let video = wanted.composite_video.map(|codec| Planned::new(dir.join(naming::composite_video(&plan.call, codec))));
    let audio = wanted
        .composite_audio
        .iter()
        .map(|&format| Ok((format, Planned::new(dir.join(naming::composite_audio(&plan.call, format)))?)))
        .collect::<Result<Vec<_>, RenderError>>()?;
    Ok((video.transpose()?, audio))
}

/// Commits the composite video and audio-only composites of the pass.
pub(super) fn commit_composites(
    request: &RenderRequest,
    video: Option<Planned>,
    audio: Vec<(AudioFormat, Planned)>,
    result: &OutputResult,
) -> Result<Vec<OutputEntry>, RenderError> {
    let stream = |kind: &str, codec: &str| StreamEntry {
        kind: kind.to_owned(),
        codec: codec.to_owned(),
        track_id: None,
        remuxed: false,
    };
    let finished = |kind: &str, streams, encoder| Finished {
        kind: kind.to_owned(),
        session: None,
        streams,
        encoder,
        offset_ms: 0.0,
        duration_ms: result.duration_ms,
    };
    let mut entries = Vec::new();
    if let Some(Planned { path, partial }) = video {
        let codec = request.encode.codec;
        let streams =
            vec![stream("video", codec.codec_name()), stream("audio", if codec.webm() { "opus" } else { "aac" })];
        entries.push(commit(partial, &path, finished("composite", streams, result.encoder.clone()))?);
    }
    for (format, Planned { path, partial }) in audio {
        let streams = vec![stream("audio", format.codec_name())];
        entries.push(commit(partial, &path, finished("composite_audio", streams, None))?);
    }
    Ok(entries)
}

/// The individual files of `kinds` for this plan.
pub fn individual_files(plan: &RenderPlan, kinds: &[crate::outputs::IndividualKind]) -> Vec<IndividualFile> {
    let refs: Vec<TrackRef<'_>> = plan
        .tracks
        .iter()
        .map(|t| TrackRef {
            participant_id: &t.participant_id,
            user_session_id: &t.user_session_id,
            track_id: &t.track_id,
            kind: t.kind,
            screenshare: t.screenshare,
            start_ms: t.span.start_ms(),
        })
        .collect();
    select(&refs, kinds)
}

/// Remuxes one individual file (the sender's codec) to `path`.
fn remux(
    plan: &RenderPlan,
    file: &IndividualFile,
    request: &RenderRequest,
    path: &Path,
) -> Result<OutputEntry, RenderError> {
    let outputs = &request.outputs;
    let planned = Planned::new(path.to_path_buf())?;
    let written =
        individual::write_individual(plan, file, outputs.align_to_call, outputs.gap_fill, planned.partial.path())?;
    commit_individual(file, planned, written, true)
}

pub(super) fn commit_individual(
    file: &IndividualFile,
    planned: Planned,
    written: WrittenIndividual,
    remuxed: bool,
) -> Result<OutputEntry, RenderError> {
    let streams = written
        .streams
        .iter()
        .map(|s| StreamEntry {
            kind: s.kind.as_str().to_owned(),
            codec: s.codec.clone(),
            track_id: Some(s.track_id.clone()),
            remuxed,
        })
        .collect();
    let finished = Finished {
        kind: file.kind.as_str().into(),
        session: Some((file.participant_id.clone(), file.user_session_id.clone())),
        streams,
        encoder: written.encoder,
        offset_ms: written.offset_ms,
        duration_ms: written.duration_ms,
    };
    commit(planned.partial, &planned.path, finished)
}
