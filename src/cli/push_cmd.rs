//! `tessera push`: a raw recording decoded here and pushed into a new live job on a server,
//! as the media node of a call would: each participant's pictures and PCM at real-time pace
//! by the call clock, participants joining and leaving when the recording says. Then it stops
//! the job, waits for it to finish, and prints the job id and its outputs. This is how tests
//! and benchmarks drive live jobs, and how a user tries the live path with a recording.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use super::push_track::{TrackTotals, push_track};
use tessera::ingest::Recording;
use tessera::proto::{self as pb, JobState, render_service_client::RenderServiceClient};
use tessera::render::RenderPlan;

/// The gRPC client every track's streams go through (bearer token added when given).
pub type Client = RenderServiceClient<InterceptedService<Channel, Token>>;

#[derive(Args)]
pub struct PushArgs {
    /// The server's gRPC address, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    server: String,
    /// The raw recording: a .zip, a .tar.gz or a directory.
    #[arg(long)]
    input_file: PathBuf,
    /// Bearer token, when the server asks for one.
    #[arg(long, env = "TESSERA_TOKEN")]
    token: Option<String>,
    /// Layout of the composite.
    #[arg(long, default_value = "grid")]
    layout: String,
    /// Composite size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720", value_parser = super::parse_size)]
    size: (u32, u32),
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Encoder speed preset (x264 names).
    #[arg(long, default_value = "veryfast")]
    preset: String,
    /// Where the server writes the outputs (its local storage); empty: its default.
    #[arg(long, default_value = "")]
    storage_prefix: String,
    /// The outputs to ask for, comma-separated: composite, composite_audio and the individual
    /// kinds (audio_video, audio_only, video_only, screenshare_*), encoded from the pushed media.
    #[arg(long, value_delimiter = ',', default_value = "composite,composite_audio")]
    outputs: Vec<String>,
    /// The job's latency: output frame t is composed at t + this.
    #[arg(long, default_value_t = 500)]
    latency_ms: u32,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Token(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub fn push(args: &PushArgs) -> anyhow::Result<()> {
    let work = tempfile::tempdir().context("a working directory")?;
    let recording = Recording::open_in(&args.input_file, work.path())?;
    let plan = RenderPlan::build(&recording)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(run(args, &plan))
}

fn spec(args: &PushArgs, plan: &RenderPlan) -> pb::RenderJobSpec {
    let live = pb::LiveSource {
        call_type: plan.call.call_type.clone(),
        call_id: plan.call.call_id.clone(),
        latency_ms: args.latency_ms,
        ..Default::default()
    };
    pb::RenderJobSpec {
        sources: vec![pb::Source { kind: Some(pb::source::Kind::Live(live)) }],
        layout: args.layout.clone(),
        video: Some(pb::VideoSettings {
            width: args.size.0,
            height: args.size.1,
            fps: args.fps,
            preset: args.preset.clone(),
            ..Default::default()
        }),
        outputs: args.outputs.iter().map(|kind| pb::Output { kind: kind.clone(), ..Default::default() }).collect(),
        storage: Some(pb::Storage {
            r#type: "local".into(),
            path_prefix: args.storage_prefix.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run(args: &PushArgs, plan: &RenderPlan) -> anyhow::Result<()> {
    let channel = Endpoint::from_shared(args.server.clone())
        .with_context(|| format!("server address `{}`", args.server))?
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    let token = match &args.token {
        Some(token) => Some(format!("Bearer {token}").parse().context("the token is not ASCII")?),
        None => None,
    };
    let max = tessera::api::MAX_MESSAGE_BYTES;
    let mut client: Client = RenderServiceClient::with_interceptor(channel, Token(token))
        .max_encoding_message_size(max)
        .max_decoding_message_size(max);
    let request = pb::CreateRenderJobRequest { request_id: String::new(), spec: Some(spec(args, plan)) };
    let job = client.create_render_job(request).await.context("CreateRenderJob")?.into_inner();
    let id = job.id.clone();
    eprintln!("job {id}: waiting for its call to start");
    // Phase `live`: the job's encoders run and its call clock has started.
    wait_for(&mut client, &id, |job| job.progress.as_ref().is_some_and(|p| p.phase == "live")).await?;
    // The recording's call time 0 is now.
    let epoch = Instant::now();
    eprintln!("job {id}: pushing {} tracks of a {:.1} s call", plan.tracks.len(), plan.timeline.duration_ms / 1000.0);
    let senders: Vec<_> = plan
        .tracks
        .iter()
        .map(|track| tokio::spawn(push_track(client.clone(), id.clone(), track.clone(), epoch)))
        .collect();
    let mut totals = TrackTotals::default();
    for sender in senders {
        let track = sender.await.context("track task")??;
        totals.frames += track.frames;
        totals.chunks += track.chunks;
        totals.bytes += track.bytes;
        totals.streams += track.streams;
    }
    let elapsed_s = epoch.elapsed().as_secs_f64();
    eprintln!(
        "job {id}: pushed {} pictures and {} chunks ({:.1} MB) over {} streams in {elapsed_s:.1} s; stopping",
        totals.frames,
        totals.chunks,
        totals.bytes as f64 / 1e6,
        totals.streams
    );
    client.stop_render_job(pb::StopRenderJobRequest { id: id.clone() }).await.context("StopRenderJob")?;
    let job = wait_for(&mut client, &id, |job| {
        matches!(job.state(), JobState::Completed | JobState::Failed | JobState::Cancelled)
    })
    .await?;
    println!("{id}");
    if job.state() != JobState::Completed {
        let failure = job.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default();
        bail!("job {id} ended {:?}: {failure}", job.state());
    }
    for output in &job.outputs {
        println!(
            "  {} {} ({} bytes, {:.1} s)",
            output.kind,
            output.location,
            output.size_bytes,
            output.duration_ms as f64 / 1000.0
        );
    }
    Ok(())
}

/// Polls job `id` until `done` says so of it; returns the job then.
async fn wait_for(
    client: &mut Client,
    id: &str,
    done: impl Fn(&pb::RenderJob) -> bool,
) -> anyhow::Result<pb::RenderJob> {
    loop {
        let job = client.get_render_job(pb::GetRenderJobRequest { id: id.to_owned() }).await.context("GetRenderJob")?;
        let job = job.into_inner();
        if done(&job) {
            return Ok(job);
        }
        if matches!(job.state(), JobState::Failed | JobState::Cancelled | JobState::Completed) {
            bail!("job {id} ended {:?} early: {}", job.state(), job.failure.map(|f| f.message).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
