//! How long a job waits when its node dies: two `tessera serve` nodes on one PostgreSQL (the
//! tests' own: Debian's server in a temporary cluster on loopback), a job rendering a long
//! call on one of them, that node killed with SIGKILL mid-render. Reported: the time from the
//! kill to the job's second `RUNNING` event (the other node claimed it and started it), for
//! each lease in BENCH_LEASES_S (`30,3`: the default lease, and the shortest allowed). The
//! bound is the lease: a dead node's lease expires at most one lease after its last renewal,
//! and a claiming node looks about once a second (sooner on a NOTIFY).
//!
//! Run with `cargo bench --bench farm_takeover`; without `--bench` it measures a 3 s lease
//! only, on a shorter call.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::grpc::{self, client, runtime, small_composite_job};
use support::postgres;
use support::server::{Server, ServerOptions, render_processes};
use tessera::proto::{self as pb, JobState, render_job_event::Event};
use tessera::synth::{SynthSpec, synth};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Kills the node rendering a new job; returns ms from the kill to the job running again.
fn takeover_ms(dir: &std::path::Path, input: &std::path::Path, lease_s: u64) -> anyhow::Result<i64> {
    let options = ServerOptions {
        max_concurrent: 1,
        env: vec![
            ("TESSERA__STORE__URL".into(), postgres::database()),
            ("TESSERA__JOBS__LEASE_S".into(), lease_s.to_string()),
        ],
        ..ServerOptions::default()
    };
    let nodes_dir = dir.join(format!("lease-{lease_s}"));
    let mut nodes: Vec<Server> = ["a", "b"].iter().map(|n| Server::start(&nodes_dir.join(n), &options)).collect();
    let rt = runtime();
    let addr = nodes[0].addr.clone();
    let id = rt.block_on(async {
        let mut c = client(&addr).await;
        let job = small_composite_job(input, &format!("takeover-{lease_s}"));
        c.create_render_job(grpc::create_request(&job)).await.map(|r| r.into_inner().id)
    })?;
    // The node whose render process renders it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = loop {
        if let Some(i) = nodes.iter().position(|n| !render_processes(n.pid()).is_empty()) {
            break i;
        }
        anyhow::ensure!(Instant::now() < deadline, "no node started the job");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    let killed_at_ms = now_ms();
    nodes[running].kill();
    let survivor = nodes[1 - running].addr.clone();
    let again_ms = rt.block_on(async {
        let mut runs = 0;
        let events = grpc::watch(&survivor, &id, 0, |e| {
            if matches!(e.event, Some(Event::StateChanged(s)) if s == JobState::Running as i32) {
                runs += 1;
            }
            runs == 2
        })
        .await;
        let mut c = client(&survivor).await;
        let _ = c.cancel_render_job(pb::CancelRenderJobRequest { id: id.clone() }).await;
        events.last().map(|e| e.at_unix_ms)
    });
    let again_ms = again_ms.ok_or_else(|| anyhow::anyhow!("the job did not run again"))?;
    Ok(again_ms - killed_at_ms)
}

fn main() -> anyhow::Result<()> {
    let bench = std::env::args().any(|a| a == "--bench");
    let leases: Vec<u64> = std::env::var("BENCH_LEASES_S")
        .unwrap_or_else(|_| if bench { "30,3".into() } else { "3".into() })
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("call");
    // Long enough to be rendering still when its node is killed, and when it runs again.
    let duration_ms = if bench { 600_000 } else { 120_000 };
    let spec = SynthSpec { participants: 2, duration_ms, width: 160, height: 90, ..SynthSpec::default() };
    synth(&spec, &input)?;
    println!("| lease | from the kill to the job running on the other node |");
    println!("| --- | --- |");
    for lease_s in leases {
        let ms = takeover_ms(dir.path(), &input, lease_s)?;
        println!("| {lease_s} s | {:.2} s |", ms as f64 / 1000.0);
    }
    Ok(())
}
