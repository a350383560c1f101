use super::store::{JobStore, StoreError};
use crate::api::pb::{self, JobState};

fn spec(archive: &str) -> pb::RenderJobSpec {
    pb::RenderJobSpec {
        sources: vec![pb::Source { kind: Some(pb::source::Kind::RawArchive(archive.into())) }],
        ..pb::RenderJobSpec::default()
    }
}

fn store() -> (tempfile::TempDir, JobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = JobStore::open(&dir.path().join("jobs.sqlite")).expect("open");
    (dir, store)
}

#[test]
fn the_same_request_id_gives_the_same_job() {
    let (_dir, store) = store();
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

#[test]
fn jobs_move_through_their_life_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jobs.sqlite");
    let id = {
        let store = JobStore::open(&path).expect("open");
        let (job, _) = store.create("req", &spec("a.zip"), 10).expect("create");
        let running = store.transition(&job.id, JobState::Running, 20).expect("run");
        assert_eq!(running.started_at_unix_ms, 20);
        let err = store.transition(&job.id, JobState::Completed, 30).expect_err("must upload first");
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
    let store = JobStore::open(&path).expect("reopen");
    assert_eq!(store.get(&id).expect("get").state(), JobState::Running);
    assert_eq!(store.requeue_interrupted(35).expect("requeue"), vec![id.clone()]);
    let job = store.get(&id).expect("get");
    assert_eq!(job.state(), JobState::Queued);
    assert!(job.outputs.is_empty());
    let claimed = store.claim_next(40).expect("claim").expect("the queued job");
    assert_eq!(
        (claimed.id.as_str(), claimed.state(), claimed.started_at_unix_ms),
        (id.as_str(), JobState::Running, 40)
    );
    assert!(store.claim_next(41).expect("claim").is_none(), "nothing else queued");
    store.transition(&id, JobState::Uploading, 50).expect("upload");
    let done = store.transition(&id, JobState::Completed, 60).expect("complete");
    assert_eq!(done.stopped_at_unix_ms, 60);
    assert!(store.transition(&id, JobState::Cancelled, 70).is_err(), "a final state is final");
    assert!(matches!(store.get("job-nope"), Err(StoreError::NotFound { .. })));
}

#[test]
fn listings_page_in_submission_order_and_filter_by_state() {
    let (_dir, store) = store();
    let ids: Vec<String> =
        (0..7).map(|i| store.create(&format!("r{i}"), &spec("a.zip"), i).expect("create").0.id).collect();
    store.transition(&ids[2], JobState::Cancelled, 100).expect("cancel");
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

#[test]
fn every_state_change_is_an_event_numbered_per_job() {
    let (_dir, store) = store();
    let (a, _) = store.create("a", &spec("a.zip"), 1).expect("a");
    let (b, _) = store.create("b", &spec("b.zip"), 1).expect("b");
    let claimed = store.claim_next(2).expect("claim").expect("a is first");
    assert_eq!(claimed.id, a.id);
    store
        .append_event(
            &a.id,
            3,
            pb::render_job_event::Event::Progress(pb::Progress { fraction: 0.5, ..Default::default() }),
        )
        .expect("progress");
    store.requeue(&a.id, 4).expect("requeue");
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
