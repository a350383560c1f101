use std::sync::Arc;

use super::events::state_change;
use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::store::{JobStore, LeaseStatus, LeaseTerms, StoreError};
use crate::proto::{self as pb, JobState};

const NODE: &str = "node-a";

fn lease(node: &str) -> LeaseTerms {
    LeaseTerms { node_id: node.to_owned(), lease_ms: 30_000 }
}

fn spec(archive: &str) -> pb::RenderJobSpec {
    pb::RenderJobSpec {
        sources: vec![pb::Source { kind: Some(pb::source::Kind::RawArchive(archive.into())) }],
        ..pb::RenderJobSpec::default()
    }
}

/// The test PostgreSQL cluster (also used by the integration tests).
#[path = "../../tests/support/postgres.rs"]
mod pg_server;

/// Stores of one backend on the same data: each `open` is another node (or a restart).
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    fn open(&self) -> Arc<dyn JobStore> {
        match self {
            Backend::Sqlite(dir) => SqliteStore::open(&dir.path().join("jobs.sqlite")).expect("open SQLite"),
            Backend::Postgres(url) => PostgresStore::open(url).expect("open PostgreSQL"),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// Every backend, each on empty data.
fn backends() -> Vec<Backend> {
    vec![Backend::Sqlite(tempfile::tempdir().expect("tempdir")), Backend::Postgres(pg_server::database())]
}

/// `#[test]`s running a check on each backend.
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        mod each {
            $(
                #[test]
                fn $name() {
                    for backend in super::backends() {
                        eprintln!("{}", backend.name());
                        super::$name(&backend);
                    }
                }
            )*
        }
    };
}

on_each_backend!(
    the_same_request_id_gives_the_same_job,
    jobs_move_through_their_life_and_survive_a_restart,
    listings_page_in_submission_order_and_filter_by_state,
    every_state_change_is_an_event_numbered_per_job,
    an_expired_lease_is_taken_over_and_a_live_one_is_left_alone,
    a_cancel_is_recorded_for_the_holder_and_ends_a_job_whose_node_is_gone,
    a_watcher_wakes_on_events_another_process_writes,
    nodes_claiming_at_once_take_each_job_once,
);

fn the_same_request_id_gives_the_same_job(backend: &Backend) {
    let store = backend.open();
    let (first, created) = store.create("req-1", &spec("a.zip"), 1000).expect("create");
    assert!(created);
    assert_eq!(first.state(), JobState::Queued);
    assert_eq!(first.invoked_at_unix_ms, 1000);
    let (again, created) = store.create("req-1", &spec("other.zip"), 2000).expect("create again");
    assert!(!created);
    assert_eq!(again, first, "the first job, unchanged");
    // Without a request id every submission is a new job.
    let (a, _) = store.create("", &spec("a.zip"), 3000).expect("a");
    let (b, _) = store.create("", &spec("a.zip"), 3000).expect("b");
    assert_ne!(a.id, b.id);
}

fn jobs_move_through_their_life_and_survive_a_restart(backend: &Backend) {
    let id = {
        let store = backend.open();
        let (job, _) = store.create("req", &spec("a.zip"), 10).expect("create");
        let running = store.claim_next(&lease(NODE), 20).expect("run").expect("the job");
        assert_eq!(running.started_at_unix_ms, 20);
        let err = store.transition(&job.id, JobState::Completed, 30, None).expect_err("must upload first");
        assert!(matches!(err, StoreError::BadTransition { from: "running", to: "completed", .. }), "{err}");
        store
            .update(&job.id, |j| {
                j.outputs.push(pb::OutputFile { kind: "composite".into(), ..pb::OutputFile::default() });
                Ok(())
            })
            .expect("output");
        job.id
    };
    // The server died while running: on the next start the job is queued again, from scratch.
    let store = backend.open();
    assert_eq!(store.get(&id).expect("get").state(), JobState::Running);
    assert_eq!(store.requeue_own(NODE, 35).expect("requeue"), vec![id.clone()]);
    let job = store.get(&id).expect("get");
    assert_eq!(job.state(), JobState::Queued);
    assert!(job.outputs.is_empty());
    let claimed = store.claim_next(&lease(NODE), 40).expect("claim").expect("the queued job");
    assert_eq!(
        (claimed.id.as_str(), claimed.state(), claimed.started_at_unix_ms),
        (id.as_str(), JobState::Running, 40)
    );
    assert!(store.claim_next(&lease(NODE), 41).expect("claim").is_none(), "nothing else queued");
    store.transition(&id, JobState::Uploading, 50, Some(NODE)).expect("upload");
    let done = store.transition(&id, JobState::Completed, 60, Some(NODE)).expect("complete");
    assert_eq!(done.stopped_at_unix_ms, 60);
    assert!(store.transition(&id, JobState::Cancelled, 70, None).is_err(), "a final state is final");
    assert!(matches!(store.get("job-nope"), Err(StoreError::NotFound { .. })));
}

fn listings_page_in_submission_order_and_filter_by_state(backend: &Backend) {
    let store = backend.open();
    let ids: Vec<String> =
        (0..7).map(|i| store.create(&format!("r{i}"), &spec("a.zip"), i).expect("create").0.id).collect();
    store.transition(&ids[2], JobState::Cancelled, 100, None).expect("cancel");
    let first = store.list(None, 3, "").expect("page 1");
    assert_eq!(first.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), ids[..3].to_vec());
    let second = store.list(None, 3, &first.next_page_token).expect("page 2");
    let third = store.list(None, 3, &second.next_page_token).expect("page 3");
    assert_eq!(third.jobs.len(), 1);
    assert!(third.next_page_token.is_empty());
    let queued = store.list(Some(JobState::Queued), 0, "").expect("queued");
    assert_eq!(queued.jobs.len(), 6);
    assert!(matches!(store.list(None, 3, "abc"), Err(StoreError::BadPageToken { .. })));
    let counts = store.counts().expect("counts");
    assert_eq!(counts, vec![(JobState::Queued, 6), (JobState::Cancelled, 1)]);
}

fn every_state_change_is_an_event_numbered_per_job(backend: &Backend) {
    let store = backend.open();
    let (a, _) = store.create("a", &spec("a.zip"), 1).expect("a");
    let (b, _) = store.create("b", &spec("b.zip"), 1).expect("b");
    let claimed = store.claim_next(&lease(NODE), 2).expect("claim").expect("a is first");
    assert_eq!(claimed.id, a.id);
    store
        .append_event(
            &a.id,
            3,
            pb::render_job_event::Event::Progress(pb::Progress { fraction: 0.5, ..Default::default() }),
        )
        .expect("progress");
    store.requeue(&a.id, 4, Some(NODE)).expect("requeue");
    let states = |id: &str| -> Vec<(u64, Option<i32>)> {
        store
            .events_after(id, 0, 10)
            .expect("events")
            .into_iter()
            .map(|e| {
                (
                    e.seq,
                    match e.event {
                        Some(pb::render_job_event::Event::StateChanged(s)) => Some(s),
                        _ => None,
                    },
                )
            })
            .collect()
    };
    let (queued, running) = (Some(JobState::Queued as i32), Some(JobState::Running as i32));
    assert_eq!(states(&a.id), vec![(1, queued), (2, running), (3, None), (4, queued)]);
    assert_eq!(states(&b.id), vec![(1, queued)]);
    assert_eq!(store.events_after(&a.id, 2, 10).expect("after 2").len(), 2);
    assert_eq!(store.events_after(&a.id, u64::MAX, 10).expect("after the end").len(), 0);
    assert_eq!(store.last_event_seq(&a.id).expect("a"), 4);
    assert_eq!(store.last_event_seq("job-none").expect("none"), 0);
}

fn an_expired_lease_is_taken_over_and_a_live_one_is_left_alone(backend: &Backend) {
    // Two nodes on one store file.
    let (gone, alive) = (backend.open(), backend.open());
    let (a, _) = gone.create("a", &spec("a.zip"), 0).expect("a");
    let (b, _) = gone.create("b", &spec("b.zip"), 0).expect("b");
    let short = |node: &str| LeaseTerms { node_id: node.to_owned(), lease_ms: 1000 };
    assert_eq!(gone.claim_next(&short("gone"), 10).expect("claim").map(|j| j.id), Some(a.id.clone()));
    gone.update(&a.id, |job| {
        job.outputs.push(pb::OutputFile { kind: "composite".into(), ..Default::default() });
        Ok(())
    })
    .expect("half done");
    assert_eq!(alive.claim_next(&short("alive"), 20).expect("claim").map(|j| j.id), Some(b.id.clone()));
    // Before either lease expires, a third node finds nothing to take.
    let third = backend.open();
    assert!(third.claim_next(&short("third"), 900).expect("claim").is_none(), "both leases are live");
    // `alive` renews; `gone` does not.
    assert_eq!(
        alive.renew_lease(&b.id, &short("alive"), 900).expect("renew"),
        LeaseStatus::Held { cancel_requested: false }
    );
    let taken = third.claim_next(&short("third"), 1500).expect("claim").expect("a's lease expired");
    assert_eq!(taken.id, a.id);
    assert_eq!((taken.state(), taken.started_at_unix_ms), (JobState::Running, 1500));
    assert!(taken.outputs.is_empty(), "the run starts from scratch");
    assert!(third.claim_next(&short("third"), 1600).expect("claim").is_none(), "b's renewed lease is live");
    // The old holder can no longer write, nor renew; the new one can.
    assert!(matches!(
        gone.transition(&a.id, JobState::Uploading, 1700, Some("gone")),
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(gone.renew_lease(&a.id, &short("gone"), 1700).expect("renew"), LeaseStatus::Lost);
    third.transition(&a.id, JobState::Uploading, 1800, Some("third")).expect("upload");
    third.transition(&a.id, JobState::Completed, 1900, Some("third")).expect("complete");
    let states: Vec<JobState> =
        third.events_after(&a.id, 0, 20).expect("events").iter().filter_map(state_change).collect();
    use JobState::{Completed, Queued, Running, Uploading};
    assert_eq!(states, [Queued, Running, Queued, Running, Uploading, Completed]);
    // A restarted `alive` re-queues only its own job.
    assert_eq!(third.requeue_own("alive", 2000).expect("requeue"), vec![b.id.clone()]);
    assert!(third.requeue_own("gone", 2000).expect("requeue").is_empty());
}

fn a_cancel_is_recorded_for_the_holder_and_ends_a_job_whose_node_is_gone(backend: &Backend) {
    let store = backend.open();
    let (a, _) = store.create("a", &spec("a.zip"), 0).expect("a");
    let terms = LeaseTerms { node_id: "n1".into(), lease_ms: 1000 };
    store.claim_next(&terms, 10).expect("claim").expect("a");
    store.request_cancel(&a.id).expect("cancel");
    assert_eq!(store.renew_lease(&a.id, &terms, 20).expect("renew"), LeaseStatus::Held { cancel_requested: true });
    // The holder dies before it stops the run: the next claim ends the job instead of running it.
    let other = LeaseTerms { node_id: "n2".into(), lease_ms: 1000 };
    assert!(store.claim_next(&other, 5000).expect("claim").is_none());
    let job = store.get(&a.id).expect("get");
    assert_eq!((job.state(), job.stopped_at_unix_ms), (JobState::Cancelled, 5000));
    assert!(matches!(store.request_cancel("job-nope"), Err(StoreError::NotFound { .. })));
}

fn a_watcher_wakes_on_events_another_process_writes(backend: &Backend) {
    let (here, elsewhere) = (backend.open(), backend.open());
    let mut woken = here.subscribe();
    woken.mark_unchanged();
    elsewhere.create("x", &spec("x.zip"), 0).expect("create");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !woken.has_changed().expect("store alive") {
        assert!(std::time::Instant::now() < deadline, "no notification for the other connection's event");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn nodes_claiming_at_once_take_each_job_once(backend: &Backend) {
    let store = backend.open();
    let jobs: Vec<String> =
        (0..24).map(|i| store.create("", &spec(&format!("{i}.zip")), i).expect("create").0.id).collect();
    let nodes: Vec<_> = (0..4)
        .map(|n| {
            let store = backend.open();
            std::thread::spawn(move || {
                let mut taken = Vec::new();
                while let Some(job) = store.claim_next(&lease(&format!("node-{n}")), 100).expect("claim") {
                    taken.push(job.id);
                }
                taken
            })
        })
        .collect();
    let mut taken: Vec<String> = nodes.into_iter().flat_map(|n| n.join().expect("node")).collect();
    taken.sort();
    let mut expected = jobs;
    expected.sort();
    assert_eq!(taken, expected, "every job claimed, and once");
}
