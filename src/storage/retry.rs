//! Retrying a storage call: transient failures (connection refused or reset, timeouts, 5xx,
//! throttling, an integrity mismatch) are tried again with exponential backoff and full
//! jitter (the `backon` crate); anything else ends at once.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::object::StorageError;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Six attempts over about a minute: rides out a restarting server or a minute of 503s.
    fn default() -> RetryPolicy {
        RetryPolicy { attempts: 6, first_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(30) }
    }
}

/// A failure after every attempt: the last error and how many attempts were made.
#[derive(Debug)]
pub struct GaveUp {
    pub error: StorageError,
    pub attempts: u32,
}

/// Runs `op` until it succeeds, fails for good, or `policy.attempts` are spent. `what` names
/// the operation in the warnings logged between attempts.
pub async fn retrying<T, F, Fut>(policy: &RetryPolicy, what: &str, op: F) -> Result<T, GaveUp>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StorageError>>,
{
    let attempts = std::sync::atomic::AtomicU32::new(1);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.first_backoff)
        .with_max_delay(policy.max_backoff)
        .with_max_times(policy.attempts.saturating_sub(1) as usize)
        .with_jitter();
    op.retry(backoff)
        .sleep(tokio::time::sleep)
        .when(StorageError::is_transient)
        .notify(|err, wait| {
            let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tracing::warn!(what, attempt, %err, wait_ms = wait.as_millis() as u64, "storage call failed; retrying");
        })
        .await
        .map_err(|error| GaveUp { error, attempts: attempts.load(std::sync::atomic::Ordering::SeqCst) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy { attempts, first_backoff: Duration::from_millis(1), max_backoff: Duration::from_millis(5) }
    }

    fn unavailable() -> StorageError {
        StorageError::Unavailable { backend: "s3", op: "put", location: "s3://b/k".into(), reason: "HTTP 503".into() }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let got = retrying(&quick(5), "put", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 { Err(unavailable()) } else { Ok(7) }
        })
        .await
        .expect("succeeds on the fourth");
        assert_eq!((got, calls.load(Ordering::SeqCst)), (7, 4));
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_counted() {
        let calls = AtomicU32::new(0);
        let err = retrying(&quick(3), "put", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(unavailable())
        })
        .await
        .expect_err("gives up");
        assert_eq!((err.attempts, calls.load(Ordering::SeqCst)), (3, 3));
    }

    #[tokio::test]
    async fn a_refusal_is_final() {
        let calls = AtomicU32::new(0);
        let err = retrying(&quick(5), "put", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(StorageError::Refused {
                backend: "s3",
                op: "put",
                location: "s3://b/k".into(),
                reason: "AccessDenied".into(),
            })
        })
        .await
        .expect_err("refused");
        assert_eq!((err.attempts, calls.load(Ordering::SeqCst)), (1, 1));
    }
}
