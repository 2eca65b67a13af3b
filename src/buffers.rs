//! Big buffers reused instead of mapped afresh: scrape bodies, audit blobs.
//!
//! With glibc's malloc and a fixed mmap threshold (the allocator before
//! jemalloc), every buffer above 256 KiB was a fresh mmap: a 10 MB scrape
//! body (1,000 tenants) page-faulted ~2,600 fresh pages per scrape, and
//! each audit blob its own hundreds, in the kernel, before anything was
//! written (BENCHMARKS.md). jemalloc (`crate::allocator`) gives freed pages
//! back about a second later, so a big buffer freed between scrapes would
//! fault in again all the same: the pool keeps them. A buffer leaves
//! as [`Bytes`] whose owner hands it back here once the last reader (hyper
//! sending a body, the feed applying a blob) drops it.

use bytes::Bytes;
use std::sync::{Arc, Mutex};

/// Scrape buffers kept: a plain body, a gzip body and a gzip scrape's
/// volatile text; more at once (concurrent scrapes) are freed.
const KEEP: usize = 3;
/// Bigger scrape buffers are never kept.
const MAX_KEPT: usize = 256 << 20;

pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    /// At most this many idle buffers…
    keep: usize,
    /// …each of at most this capacity.
    max_kept: usize,
}

impl Default for BufferPool {
    fn default() -> Self {
        Self {
            free: Mutex::default(),
            keep: KEEP,
            max_kept: MAX_KEPT,
        }
    }
}

impl BufferPool {
    /// The scrape pool.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A pool that keeps at most `keep` idle buffers of at most `max_kept`
    /// bytes each: what it can hold idle is bounded by their product.
    pub fn bounded(keep: usize, max_kept: usize) -> Arc<Self> {
        Arc::new(Self {
            free: Mutex::default(),
            keep,
            max_kept,
        })
    }

    /// An empty buffer, of at least `capacity` if one that big is kept
    /// (the smallest such), else the biggest kept one, grown.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let fits = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= capacity)
            .min_by_key(|(_, b)| b.capacity())
            .or_else(|| free.iter().enumerate().max_by_key(|(_, b)| b.capacity()))
            .map(|(i, _)| i);
        let mut buf = match fits {
            Some(i) => free.swap_remove(i),
            None => Vec::new(),
        };
        drop(free);
        buf.reserve(capacity);
        buf
    }

    /// An empty string on a pooled buffer.
    pub fn take_string(&self, capacity: usize) -> String {
        // An empty buffer is valid UTF-8.
        String::from_utf8(self.take(capacity)).unwrap_or_default()
    }

    /// Keep `buf` for a later [`BufferPool::take`].
    pub fn give_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > self.max_kept || self.keep == 0 {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.push(buf);
        if free.len() > self.keep {
            // The smallest goes: the big ones are what page-faults.
            if let Some(i) = free
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i)
            {
                free.swap_remove(i);
            }
        }
    }

    /// `buf` as a response body; its buffer comes back when it is dropped.
    pub fn bytes(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.clone(),
        })
    }

    /// Bytes of memory held by idle buffers.
    pub fn held(&self) -> usize {
        let free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.iter().map(Vec::capacity).sum()
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_buffer_returns_when_sent() {
        let pool = BufferPool::new();
        let mut buf = pool.take(1 << 20);
        let cap = buf.capacity();
        let ptr = buf.as_ptr();
        buf.extend_from_slice(b"hello");
        let body = pool.bytes(buf);
        let clone = body.clone();
        drop(body);
        assert_eq!(pool.held(), 0, "still referenced");
        assert_eq!(&clone[..], b"hello");
        drop(clone);
        assert_eq!(pool.held(), cap);
        let again = pool.take(1000);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the same memory");
        assert_eq!(pool.held(), 0);
    }

    #[test]
    fn a_bounded_pool_holds_no_more_than_its_bounds() {
        let pool = BufferPool::bounded(2, 8 << 10);
        for kb in [1, 16, 4, 2, 8] {
            pool.give_back(Vec::with_capacity(kb << 10));
        }
        // 16 KiB is over the per-buffer bound; of the rest the two biggest stay.
        assert_eq!(pool.held(), (8 + 4) << 10);
    }

    #[test]
    fn keeps_the_biggest_few() {
        let pool = BufferPool::new();
        for kb in [1, 8, 4, 2] {
            pool.give_back(Vec::with_capacity(kb << 10));
        }
        assert_eq!(pool.held(), (8 + 4 + 2) << 10);
        assert_eq!(pool.take(3 << 10).capacity(), 4 << 10, "smallest that fits");
        assert!(pool.take(64 << 10).capacity() >= 64 << 10);
        assert_eq!(pool.held(), 2 << 10);
    }
}
