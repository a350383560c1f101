//! A farm: three `tessera serve` nodes on one PostgreSQL job store. Jobs are submitted to any
//! node; one node is killed (SIGKILL) while it renders. Every job completes exactly once: one
//! whole output object each, announced once, events numbered without gaps, and a watcher
//! connected to a surviving node sees every event of the job the killed node was running.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::grpc::{self, client, is_final, runtime};
use support::postgres;
use support::server::{Server, ServerOptions};
use support::{f64_field, ffprobe, files_in};
use tessera::proto::{self as pb, JobState, render_job_event::Event};
use tessera::synth::{SynthSpec, synth};

const JOBS: usize = 30;

fn job(input: &std::path::Path, n: usize) -> serde_json::Value {
    let mut job = grpc::small_composite_job(input, &format!("farm/job-{n}"));
    job["requestId"] = serde_json::json!(format!("farm-{n}"));
    job
}

#[test]
fn three_nodes_on_one_postgres_complete_every_job_once_when_one_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth(&SynthSpec { participants: 2, duration_ms: 1000, width: 160, height: 90, ..SynthSpec::default() }, &input)
        .expect("synth");
    let url = postgres::database();
    let options = ServerOptions {
        max_concurrent: 1,
        env: vec![("TESSERA__STORE__URL".into(), url), ("TESSERA__JOBS__LEASE_S".into(), "3".into())],
        ..ServerOptions::default()
    };
    // Their folders share a parent: the local storage root every node writes outputs under.
    let nodes_dir = dir.path().join("nodes");
    let mut nodes: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(&nodes_dir.join(n), &options)).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let rt = runtime();

    // Submitted round robin: any node takes any job into the shared queue.
    let ids: Vec<String> = rt.block_on(async {
        let mut ids = Vec::new();
        for n in 0..JOBS {
            let mut c = client(&addrs[n % addrs.len()]).await;
            let created = c.create_render_job(grpc::create_request(&job(&input, n))).await.expect("create");
            ids.push(created.into_inner().id);
        }
        ids
    });
    // A watcher on node a for every job, from its first event.
    let watchers: Vec<_> =
        ids.iter()
            .map(|id| {
                let (addr, id) = (addrs[0].clone(), id.clone());
                rt.spawn(async move {
                    grpc::watch(&addr, &id, 0, |e| {
                    matches!(e.event, Some(Event::StateChanged(s)) if JobState::try_from(s).is_ok_and(is_final))
                })
                .await
                })
            })
            .collect();

    // Node c dies while it renders a job, after a few are done.
    let deadline = Instant::now() + Duration::from_secs(120);
    let completed = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let mut c = client(&addrs[0]).await;
            let request =
                pb::ListRenderJobsRequest { state: JobState::Completed as i32, page_size: 100, ..Default::default() };
            c.list_render_jobs(request).await.expect("list").into_inner().jobs.len()
        })
    };
    while !(completed(&rt) >= 3 && nodes[2].metric("tessera_jobs_running") >= 1.0) {
        assert!(Instant::now() < deadline, "node c never ran a job: {}", nodes[2].logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    nodes[2].kill();
    let killed_at_ms = tessera::job::events::now_unix_ms();
    eprintln!("killed node c with {} jobs completed", completed(&rt));

    // Everything completes on the two survivors.
    let events: Vec<Vec<pb::RenderJobEvent>> = watchers
        .into_iter()
        .map(|w| rt.block_on(async { tokio::time::timeout(Duration::from_secs(300), w).await }))
        .map(|r| r.expect("every job ends within 5 minutes").expect("watcher"))
        .collect();
    let mut rerun = Vec::new();
    rt.block_on(async {
        let mut c = client(&addrs[1]).await;
        for (id, seen) in ids.iter().zip(&events) {
            let job = c.get_render_job(pb::GetRenderJobRequest { id: id.clone() }).await.expect("get").into_inner();
            assert_eq!(job.state(), JobState::Completed, "{id}: {:?}", job.failure);
            // The watcher saw every event, numbered 1, 2, 3, ... with no gap.
            let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{id}: events in order, no gap");
            let states: Vec<JobState> = seen
                .iter()
                .filter_map(|e| match e.event {
                    Some(Event::StateChanged(s)) => JobState::try_from(s).ok(),
                    _ => None,
                })
                .collect();
            if states.iter().filter(|s| **s == JobState::Running).count() > 1 {
                // From the kill to the job running again on a survivor (the lease is 3 s).
                let running_again = seen
                    .iter()
                    .filter(|e| matches!(e.event, Some(Event::StateChanged(s)) if s == JobState::Running as i32))
                    .nth(1)
                    .map_or(0, |e| e.at_unix_ms);
                eprintln!("{id} runs again {} ms after the kill", running_again - killed_at_ms);
                rerun.push(id.clone());
            }
            // One object, announced once, whole: its bytes are the ones reported.
            let mut announced: BTreeMap<String, usize> = BTreeMap::new();
            for e in seen {
                if let Some(Event::OutputReady(file)) = &e.event {
                    *announced.entry(file.location.clone()).or_default() += 1;
                }
            }
            assert_eq!(job.outputs.len(), 1, "{id}: one output");
            let output = &job.outputs[0];
            assert_eq!(announced.get(&output.location), Some(&1), "{id}: announced once: {announced:?}");
        }
    });
    assert!(!rerun.is_empty(), "the killed node's job ran again on a survivor");
    eprintln!("taken over after the kill: {rerun:?}");
    for (n, id) in ids.iter().enumerate() {
        let files = files_in(&nodes_dir.join(format!("farm/job-{n}")));
        let names: Vec<String> =
            files.iter().filter_map(|f| f.file_name()).map(|f| f.to_string_lossy().into_owned()).collect();
        assert_eq!(names.len(), 2, "job {n}: the composite and the manifest, no partial or duplicate: {names:?}");
        assert!(names.contains(&"manifest.json".to_owned()), "job {n}: {names:?}");
        let video = files.iter().find(|f| f.extension().is_some_and(|e| e == "mp4")).expect("the composite");
        let (_, sha) = tessera::render::manifest::file_facts(video).expect("output");
        let duration_s = f64_field(&ffprobe(video)["format"], "duration");
        assert!((duration_s - 1.0).abs() < 0.25, "job {n}: whole ({duration_s} s)");
        let listed = rt.block_on(async {
            let mut c = client(&addrs[0]).await;
            c.get_render_job(pb::GetRenderJobRequest { id: id.clone() }).await.expect("get").into_inner()
        });
        assert_eq!(listed.outputs[0].sha256, sha, "job {n}: the bytes reported");
    }
}
