//! Two nodes on one job store: a job whose node died (its lease expired) is claimed and
//! completed by another node's runner, while a job whose node is alive (its lease renewed) is
//! left alone; a cancel recorded in the store stops a run on the node that holds it.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::files_in;
use tessera::job::config::ServeConfig;
use tessera::job::events::{EventLog, now_unix_ms, state_change};
use tessera::job::metrics::Metrics;
use tessera::job::runner::JobContext;
use tessera::job::scheduler::Scheduler;
use tessera::job::sqlite::SqliteStore;
use tessera::job::store::{JobStore, LeaseStatus, LeaseTerms};
use tessera::proto::{self as pb, JobState};
use tessera::synth::{SynthSpec, synth};

fn spec(input: &std::path::Path, out: &std::path::Path) -> pb::RenderJobSpec {
    pb::RenderJobSpec {
        sources: vec![pb::Source { kind: Some(pb::source::Kind::RawArchive(input.display().to_string())) }],
        video: Some(pb::VideoSettings { width: 160, height: 90, fps: 10, ..Default::default() }),
        outputs: vec![pb::Output { kind: "composite".into(), ..Default::default() }],
        storage: Some(pb::Storage {
            r#type: "local".into(),
            path_prefix: out.display().to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node: a scheduler with its own data directory and node id on the shared store file.
fn node(store_path: &std::path::Path, data_dir: &std::path::Path, node_id: &str) -> Arc<Scheduler> {
    let env = [
        ("TESSERA__SERVER__NODE_ID".to_owned(), node_id.to_owned()),
        ("TESSERA__SERVER__DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("TESSERA__JOBS__LEASE_S".to_owned(), "3".to_owned()),
        ("TESSERA__JOBS__MAX_CONCURRENT".to_owned(), "1".to_owned()),
    ];
    let config = Arc::new(ServeConfig::load(None, env).expect("config"));
    let store: Arc<dyn JobStore> = SqliteStore::open(store_path).expect("store");
    let events = EventLog::new(store, config.node_id().expect("node id"), None);
    Scheduler::new(JobContext { config, events, metrics: Arc::new(Metrics::new(1)), worker: None })
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_dead_nodes_job_is_taken_over_and_a_live_nodes_job_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth(&SynthSpec { participants: 2, duration_ms: 2000, width: 160, height: 90, ..SynthSpec::default() }, &input)
        .expect("synth");
    let store_path = dir.path().join("jobs.sqlite");
    let store: Arc<dyn JobStore> = SqliteStore::open(&store_path).expect("store");
    let (out_dead, out_alive) = (dir.path().join("out-dead"), dir.path().join("out-alive"));
    let (dead_job, _) = store.create("dead", &spec(&input, &out_dead), now_unix_ms()).expect("create");
    let (live_job, _) = store.create("alive", &spec(&input, &out_alive), now_unix_ms()).expect("create");
    // Node "dead" claims the first job and dies at once; node "alive" claims the second and
    // keeps renewing its lease (here, by hand).
    let short = |node: &str| LeaseTerms { node_id: node.to_owned(), lease_ms: 1500 };
    let claimed = store.claim_next(&short("dead"), now_unix_ms()).expect("claim").expect("a job");
    assert_eq!(claimed.id, dead_job.id);
    let claimed = store.claim_next(&short("alive"), now_unix_ms()).expect("claim").expect("a job");
    assert_eq!(claimed.id, live_job.id);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let taker = node(&store_path, &dir.path().join("taker"), "taker");
    runtime.spawn(taker.clone().run());

    wait_for("the dead node's job to complete on the taker", Duration::from_secs(120), || {
        assert_eq!(
            store.renew_lease(&live_job.id, &short("alive"), now_unix_ms()).expect("renew"),
            LeaseStatus::Held { cancel_requested: false },
            "the live node keeps its job"
        );
        store.get(&dead_job.id).expect("get").state() == JobState::Completed
    });
    let done = store.get(&dead_job.id).expect("get");
    assert_eq!(done.outputs.len(), 1, "{done:?}");
    let states: Vec<JobState> =
        store.events_after(&dead_job.id, 0, 100).expect("events").iter().filter_map(state_change).collect();
    use JobState::{Completed, Queued, Running, Uploading};
    assert_eq!(states, [Queued, Running, Queued, Running, Uploading, Completed], "taken over from scratch");
    let names: Vec<String> =
        files_in(&out_dead).iter().filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned())).collect();
    assert_eq!(names.len(), 2, "the composite and the manifest: {names:?}");
    let live = store.get(&live_job.id).expect("get");
    assert_eq!(live.state(), JobState::Running, "a live lease is never taken");
    assert!(!out_alive.exists());

    // A cancel recorded in the store (as by any node) reaches the node that runs the job.
    let long = dir.path().join("long");
    synth(&SynthSpec { participants: 2, duration_ms: 30_000, width: 160, height: 90, ..SynthSpec::default() }, &long)
        .expect("synth");
    let (cancelled, _) = store.create("cancelled", &spec(&long, &dir.path().join("out-c")), now_unix_ms()).expect("c");
    wait_for("the taker to claim the next job", Duration::from_secs(30), || {
        store.get(&cancelled.id).expect("get").state() == JobState::Running
    });
    store.request_cancel(&cancelled.id).expect("cancel");
    wait_for("the cancel to stop the run", Duration::from_secs(60), || {
        store.get(&cancelled.id).expect("get").state() == JobState::Cancelled
    });
    runtime.block_on(taker.shutdown(Duration::from_secs(1)));
}
