//! What a node can take besides its slots: GPU memory and hardware encoder sessions, where they
//! can be measured. On an NVIDIA node `nvidia-smi` says both (memory used and total, NVENC
//! sessions open, per GPU); elsewhere nothing is measured and only the slots count. A node
//! whose GPUs all lack `jobs.min_gpu_free_mib` of free memory, or hold `jobs.max_encoder_sessions`
//! sessions each, claims nothing until that changes: the job waits in the queue for a node
//! that can run it, instead of failing here.

use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One GPU's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuLoad {
    pub memory_total_mib: u64,
    pub memory_used_mib: u64,
    pub encoder_sessions: u32,
}

impl GpuLoad {
    pub fn memory_free_mib(&self) -> u64 {
        self.memory_total_mib.saturating_sub(self.memory_used_mib)
    }
}

/// The query `nvidia-smi` answers, one CSV line per GPU.
const QUERY: &str = "--query-gpu=memory.total,memory.used,encoder.stats.sessionCount";

/// A reading is used for this long: a node waiting for work asks at every claim attempt (about
/// once a second), and `nvidia-smi` costs tens of milliseconds.
const READING_TTL: Duration = Duration::from_secs(5);

/// The last reading, and when it was taken.
static READING: Mutex<Option<(Instant, Option<Vec<GpuLoad>>)>> = Mutex::new(None);
/// Set once `nvidia-smi` is found missing: it is not looked for again.
static ABSENT: OnceLock<bool> = OnceLock::new();

/// The node's GPUs as `nvidia-smi` sees them (a reading at most [`READING_TTL`] old); `None`
/// where it is absent or fails (no NVIDIA GPU, no driver): nothing is measured.
pub fn measure() -> Option<Vec<GpuLoad>> {
    if ABSENT.get().copied().unwrap_or(false) {
        return None;
    }
    let mut reading = READING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((at, gpus)) = reading.as_ref()
        && at.elapsed() < READING_TTL
    {
        return gpus.clone();
    }
    let output = Command::new("nvidia-smi").args([QUERY, "--format=csv,noheader,nounits"]).output();
    let gpus = match output {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let _ = ABSENT.set(true);
            return None;
        }
        Ok(output) if output.status.success() => parse(&String::from_utf8_lossy(&output.stdout)),
        _ => None,
    };
    *reading = Some((Instant::now(), gpus.clone()));
    gpus
}

/// `nvidia-smi`'s CSV answer read; `None` when a line is not three numbers (a field reported
/// as `[N/A]` or `[Not Supported]` counts as 0).
pub fn parse(csv: &str) -> Option<Vec<GpuLoad>> {
    let number = |field: &str| -> Option<u64> {
        let field = field.trim();
        if field.starts_with('[') { Some(0) } else { field.parse().ok() }
    };
    let gpus: Option<Vec<GpuLoad>> = csv
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let [total, used, sessions] = fields.as_slice() else { return None };
            Some(GpuLoad {
                memory_total_mib: number(total)?,
                memory_used_mib: number(used)?,
                encoder_sessions: u32::try_from(number(sessions)?).unwrap_or(u32::MAX),
            })
        })
        .collect();
    gpus.filter(|g| !g.is_empty())
}

/// What a node needs free on one of its GPUs to take a job (0: no need).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    pub min_gpu_free_mib: u64,
    pub max_encoder_sessions: u32,
}

/// Why a node with these GPUs cannot take a job now; `None` when one of them can (or nothing
/// was measured).
pub fn refusal(gpus: Option<&[GpuLoad]>, needs: Needs) -> Option<String> {
    let gpus = gpus?;
    let fits = |g: &&GpuLoad| {
        g.memory_free_mib() >= needs.min_gpu_free_mib
            && (needs.max_encoder_sessions == 0 || g.encoder_sessions < needs.max_encoder_sessions)
    };
    if gpus.iter().any(|g| fits(&g)) {
        return None;
    }
    let each: Vec<String> = gpus
        .iter()
        .map(|g| format!("{} MiB free, {} encoder sessions", g.memory_free_mib(), g.encoder_sessions))
        .collect();
    Some(format!(
        "no GPU has {} MiB free and fewer than {} encoder sessions ({})",
        needs.min_gpu_free_mib,
        needs.max_encoder_sessions,
        each.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_answers_are_read_and_odd_ones_refused() {
        let two = parse("81559, 1024, 0\n81559, 80000, 3\n").expect("two GPUs");
        assert_eq!(two[0], GpuLoad { memory_total_mib: 81559, memory_used_mib: 1024, encoder_sessions: 0 });
        assert_eq!(two[1].memory_free_mib(), 1559);
        // Hopper has no NVENC: its session count is not supported.
        let h100 = parse("81559, 0, [Not Supported]\n").expect("one GPU");
        assert_eq!(h100[0].encoder_sessions, 0);
        assert_eq!(parse(""), None);
        assert_eq!(parse("81559, 0\n"), None);
        assert_eq!(parse("lots, 0, 0\n"), None);
    }

    #[test]
    fn a_node_takes_a_job_when_one_gpu_has_room() {
        let needs = Needs { min_gpu_free_mib: 4096, max_encoder_sessions: 3 };
        let busy = GpuLoad { memory_total_mib: 8192, memory_used_mib: 6000, encoder_sessions: 1 };
        let full_encoder = GpuLoad { memory_total_mib: 81920, memory_used_mib: 0, encoder_sessions: 3 };
        let free = GpuLoad { memory_total_mib: 81920, memory_used_mib: 0, encoder_sessions: 0 };
        assert_eq!(refusal(None, needs), None, "nothing measured: the slots alone count");
        assert_eq!(refusal(Some(&[busy, free]), needs), None);
        let refused = refusal(Some(&[busy, full_encoder]), needs).expect("no room");
        assert!(refused.contains("2192 MiB free, 1 encoder sessions"), "{refused}");
        assert_eq!(refusal(Some(&[busy]), Needs::default()), None, "no needs configured");
    }
}
