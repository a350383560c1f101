//! Video frame buffers handed to GStreamer and given back when it frees them, so that a
//! render fills the same few buffers again instead of allocating (and the kernel zeroing) a
//! fresh one for every frame.

use std::sync::{Arc, Mutex, PoisonError};

/// Buffers kept for reuse at most: the encoder's queue and appsrc hold about eight frames.
const KEEP: usize = 12;

/// The buffers GStreamer has finished with.
#[derive(Clone, Default)]
pub struct FramePool(Arc<Mutex<Vec<Vec<u8>>>>);

impl std::fmt::Debug for FramePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("FramePool").field("kept", &kept).finish()
    }
}

impl FramePool {
    /// A buffer to fill: a returned one when there is one (its bytes are the old frame's),
    /// else an empty one.
    pub fn take(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default()
    }

    /// `data` wrapped so that it comes back here when GStreamer frees it.
    pub(crate) fn lend(&self, data: Vec<u8>) -> Lent {
        Lent { data, pool: self.clone() }
    }

    fn give_back(&self, data: Vec<u8>) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEEP {
            kept.push(data);
        }
    }
}

/// A buffer lent to GStreamer.
pub(crate) struct Lent {
    data: Vec<u8>,
    pool: FramePool,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl AsMut<[u8]> for Lent {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lent_buffers_come_back_when_dropped() {
        let pool = FramePool::default();
        assert!(pool.take().is_empty());
        let lent = pool.lend(vec![7; 16]);
        assert_eq!(lent.as_ref().len(), 16);
        drop(lent);
        assert_eq!(pool.take(), vec![7; 16]);
        for _ in 0..KEEP + 5 {
            drop(pool.lend(vec![1]));
        }
        assert_eq!(pool.0.lock().expect("lock").len(), KEEP);
    }
}
