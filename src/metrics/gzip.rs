//! A gzip scrape body spliced from independently compressed deflate
//! segments, most of them cached across scrapes.
//!
//! The body is ONE gzip member (clients that read only the first member,
//! like `curl --compressed`, still get everything): a 10-byte header, the
//! segments' deflate data one after the other, a final empty block, then
//! the CRC-32 and length of the whole plain text. Each segment is raw
//! deflate of a run of text from a freshly reset compressor, ended with a
//! sync flush (byte aligned, not final): it refers to nothing before its
//! own start, so segments join in any order (as pigz joins its blocks), and
//! the body's CRC is combined from the segments' CRCs.
//!
//! Stable text (see [`ScrapeBody`]) is cut into blocks of 16–128 KiB whose
//! boundaries depend on the items' content only (an item ends a block with
//! a probability proportional to its size, decided by its hash), so a
//! tenant whose text changes moves no boundary elsewhere. A block's key is
//! the hash of its items' hashes; its segment is compressed on the first
//! scrape that needs it and served from the cache after. Volatile runs are
//! compressed at each scrape, at the fastest level. Why not one stream, or
//! one member per snapshot: BENCHMARKS.md, "what we tried".

use super::body::ScrapeBody;
use flate2::{Compress, Compression, Crc, FlushCompress};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// No block ends before this much text (deflate's window is 32 KiB: the
/// first kilobytes of a segment compress worse, having no history).
const MIN_BLOCK: usize = 16 * 1024;
/// Past `MIN_BLOCK`, an item of n bytes ends a block with probability
/// n / `MEAN_EXTRA`: blocks average about 64 KiB.
const MEAN_EXTRA: u64 = 48 * 1024;
/// A block ends at the first item that takes it to this size.
const MAX_BLOCK: usize = 128 * 1024;
/// zlib-rs level for cached segments: compressed once, served many times.
const STABLE_LEVEL: u32 = 6;
/// For volatile runs, compressed at every scrape: the fastest.
const VOLATILE_LEVEL: u32 = 1;

/// Raw deflate of some text, ending byte aligned and not final.
#[derive(Debug)]
pub struct Segment {
    deflate: Box<[u8]>,
    crc: Crc,
    len: u64,
}

/// Cached segments by block key, and idle compressors.
#[derive(Default)]
pub struct SegmentCache {
    state: Mutex<CacheState>,
    compressed: AtomicU64,
}

#[derive(Default)]
struct CacheState {
    segments: HashMap<u64, Arc<Segment>>,
    /// Compressors to reuse (each holds ~300 KB of tables), by level.
    idle: Vec<(u32, Compress)>,
}

impl SegmentCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stable blocks compressed so far (cache misses): what a test counts.
    pub fn compressed(&self) -> u64 {
        self.compressed.load(Relaxed)
    }

    /// Segments held.
    pub fn len(&self) -> usize {
        self.lock().segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys of the segments held (tests: which blocks a scrape reused).
    #[cfg(test)]
    pub(crate) fn keys(&self) -> std::collections::HashSet<u64> {
        self.lock().segments.keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: u64) -> Option<Arc<Segment>> {
        self.lock().segments.get(&key).cloned()
    }

    fn compressor(&self, level: u32) -> Compress {
        let mut st = self.lock();
        match st.idle.iter().position(|(l, _)| *l == level) {
            Some(i) => st.idle.swap_remove(i).1,
            None => Compress::new(Compression::new(level), false),
        }
    }

    fn give_back(&self, level: u32, c: Compress) {
        let mut st = self.lock();
        // One of each is kept (a concurrent scrape makes its own).
        if !st.idle.iter().any(|(l, _)| *l == level) {
            st.idle.push((level, c));
        }
    }
}

/// The gzip [`ScrapeBody`] of one scrape.
pub struct GzipBody<'a> {
    cache: &'a SegmentCache,
    /// Items of the block being gathered, with their hashes.
    block: Vec<(&'a str, u64)>,
    block_len: usize,
    volatile: String,
    segments: Vec<Arc<Segment>>,
    /// Blocks this scrape used, for the cache to keep.
    used: HashMap<u64, Arc<Segment>>,
    stable_c: Option<Compress>,
    volatile_c: Option<Compress>,
}

impl<'a> GzipBody<'a> {
    /// `volatile` is an empty buffer to reuse (from a pool).
    pub fn new(cache: &'a SegmentCache, volatile: String) -> Self {
        GzipBody {
            cache,
            block: Vec::new(),
            block_len: 0,
            volatile,
            segments: Vec::new(),
            used: HashMap::new(),
            stable_c: None,
            volatile_c: None,
        }
    }

    fn push(&mut self, text: &'a str, hash: u64) {
        self.flush_volatile();
        self.block.push((text, hash));
        let len = text.len();
        self.block_len += len;
        // The top 32 bits of the hash, uniform in [0, 2^32), decide.
        let weight = (len.min(MAX_BLOCK) as u64) << 32;
        let ends = self.block_len >= MAX_BLOCK
            || (self.block_len >= MIN_BLOCK && (hash >> 32) * MEAN_EXTRA < weight);
        if ends {
            self.end_block();
        }
    }

    fn end_block(&mut self) {
        if self.block.is_empty() {
            return;
        }
        // The items' hashes are keyed SipHash already: mixing them in order
        // is enough (a colliding key is caught by the length check).
        let key = self.block.iter().fold(self.block_len as u64, |k, (_, h)| {
            (k.rotate_left(23) ^ h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        });
        let seg = match self.used.get(&key).cloned().or_else(|| self.cache.get(key)) {
            // The length check guards against a colliding key.
            Some(seg) if seg.len == self.block_len as u64 => seg,
            _ => {
                let c = self
                    .stable_c
                    .get_or_insert_with(|| self.cache.compressor(STABLE_LEVEL));
                let texts = self.block.iter().map(|(t, _)| t.as_bytes());
                self.cache.compressed.fetch_add(1, Relaxed);
                Arc::new(deflate_segment(c, texts, self.block_len))
            }
        };
        self.used.insert(key, seg.clone());
        self.segments.push(seg);
        self.block.clear();
        self.block_len = 0;
    }

    fn flush_volatile(&mut self) {
        if self.volatile.is_empty() {
            return;
        }
        let c = self
            .volatile_c
            .get_or_insert_with(|| self.cache.compressor(VOLATILE_LEVEL));
        let seg = deflate_segment(
            c,
            std::iter::once(self.volatile.as_bytes()),
            self.volatile.len(),
        );
        self.segments.push(Arc::new(seg));
        self.volatile.clear();
    }

    /// The gzip body, written into `out` (a buffer to reuse), and the
    /// volatile buffer back. The cache keeps only the segments this scrape
    /// used: what a full scrape did not use is gone from the exposition
    /// (memory stays about the size of one gzip body).
    pub fn finish(mut self, out: Vec<u8>) -> (Vec<u8>, String) {
        self.flush_volatile();
        self.end_block();
        let body = splice(&self.segments, out);
        if let Some(c) = self.stable_c.take() {
            self.cache.give_back(STABLE_LEVEL, c);
        }
        if let Some(c) = self.volatile_c.take() {
            self.cache.give_back(VOLATILE_LEVEL, c);
        }
        self.cache.lock().segments = std::mem::take(&mut self.used);
        (body, self.volatile)
    }
}

impl<'a> ScrapeBody<'a> for GzipBody<'a> {
    fn stable(&mut self, hash: u64, text: &'a str) {
        if !text.is_empty() {
            self.push(text, hash);
        }
    }

    fn volatile(&mut self) -> &mut String {
        self.end_block();
        &mut self.volatile
    }
}

/// Deflate `texts` as one segment: from a reset compressor, sync-flushed.
fn deflate_segment<'t>(
    c: &mut Compress,
    texts: impl Iterator<Item = &'t [u8]>,
    len: usize,
) -> Segment {
    c.reset();
    let mut out = Vec::with_capacity(len / 6 + 64);
    let mut crc = Crc::new();
    for t in texts {
        crc.update(t);
        deflate(c, t, &mut out, FlushCompress::None);
    }
    deflate(c, &[], &mut out, FlushCompress::Sync);
    Segment {
        deflate: out.into_boxed_slice(),
        crc,
        len: len as u64,
    }
}

/// Feed `input` to `c`, growing `out` as needed; with a flush, until the
/// flush is complete (output space left over).
fn deflate(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) {
    loop {
        if out.capacity() - out.len() < 256 {
            out.reserve(out.len().max(4096));
        }
        let (before_in, before_out) = (c.total_in(), c.total_out());
        let status = c.compress_vec(input, out, flush);
        let consumed = (c.total_in() - before_in) as usize;
        input = &input[consumed..];
        let room_left = out.len() < out.capacity();
        let stuck = c.total_in() == before_in && c.total_out() == before_out;
        if (input.is_empty() && room_left) || (status.is_err() && stuck) {
            return;
        }
    }
}

/// The gzip member: header, segments, an empty final block, CRC-32, ISIZE.
fn splice(segments: &[Arc<Segment>], mut out: Vec<u8>) -> Vec<u8> {
    let size = segments.iter().map(|s| s.deflate.len()).sum::<usize>() + 20;
    out.clear();
    out.reserve(size);
    // ID1 ID2, CM = deflate, no flags, no mtime, no extra flags, OS unknown.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut crc = Crc::new();
    let mut len = 0u64;
    for s in segments {
        out.extend_from_slice(&s.deflate);
        crc.combine(&s.crc);
        len += s.len;
    }
    // A final fixed-Huffman block holding only end-of-block.
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the length modulo 2^32.
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::hash::Hasher as _;
    use std::io::Read as _;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        // Single-member decoder: the whole text must be in the first member.
        GzDecoder::new(gz).read_to_end(&mut back).unwrap();
        back
    }

    /// Lines like a tenant's snapshot families (~1 KB per item), with an
    /// unkeyed hash: block boundaries are the same at every run.
    fn items(tenants: usize, version: usize) -> Vec<(String, u64)> {
        (0..tenants)
            .map(|t| {
                let text: String = (0..12)
                    .map(|s| {
                        format!("m365_service_status{{tenant=\"t{t}\",service=\"svc{s}\",status=\"v{version}\"}} 1\n")
                    })
                    .collect();
                let mut h = std::hash::DefaultHasher::new();
                h.write(text.as_bytes());
                (text, h.finish())
            })
            .collect()
    }

    fn scrape(cache: &SegmentCache, items: &[(String, u64)], volatile: &str) -> (Vec<u8>, String) {
        let mut body = GzipBody::new(cache, String::new());
        let mut plain = String::new();
        for (i, (text, h)) in items.iter().enumerate() {
            body.stable(*h, text);
            plain.push_str(text);
            if i == items.len() / 2 {
                body.volatile().push_str(volatile);
                plain.push_str(volatile);
            }
        }
        (body.finish(Vec::new()).0, plain)
    }

    #[test]
    fn one_member_that_decodes_to_the_plain_text() {
        let cache = SegmentCache::new();
        let items = items(800, 0);
        let (gz, plain) = scrape(&cache, &items, "volatile 1\n");
        assert!(
            plain.len() > 4 * MAX_BLOCK,
            "several blocks: {}",
            plain.len()
        );
        assert_eq!(gunzip(&gz), plain.as_bytes());
        assert!(
            gz.len() * 10 < plain.len(),
            "{} of {}",
            gz.len(),
            plain.len()
        );
        let n = gz.len();
        assert_eq!(
            u32::from_le_bytes(gz[n - 4..].try_into().unwrap()),
            plain.len() as u32
        );
    }

    #[test]
    fn cached_blocks_are_reused_and_unused_ones_dropped() {
        let cache = SegmentCache::new();
        let mut items = items(500, 0);
        let (gz, plain) = scrape(&cache, &items, "volatile 1\n");
        assert_eq!(gunzip(&gz), plain.as_bytes());
        let first = cache.compressed();
        assert!(first >= 5, "{first}");
        assert_eq!(cache.len() as u64, first);

        // Nothing stable changed: only the volatile run is compressed.
        let (gz, plain) = scrape(&cache, &items, "volatile 22\n");
        assert_eq!(gunzip(&gz), plain.as_bytes());
        assert_eq!(cache.compressed(), first);

        // One item changed: one or two blocks (its own; the next one if
        // it ended a block and now does not) are compressed again.
        let fresh = self::items(500, 1);
        items[100] = fresh[100].clone();
        let (gz, plain) = scrape(&cache, &items, "volatile 3\n");
        assert_eq!(gunzip(&gz), plain.as_bytes());
        let again = cache.compressed() - first;
        assert!((1..=2).contains(&again), "{again}");
        assert!(
            cache.len() as u64 <= first + 1,
            "the replaced blocks are gone"
        );

        // Items removed and added: still exact, the cache holds only what
        // this scrape used.
        items.drain(10..60);
        items.extend(fresh[400..].iter().cloned());
        let (gz, plain) = scrape(&cache, &items, "");
        assert_eq!(gunzip(&gz), plain.as_bytes());
        let (gz2, _) = scrape(&cache, &items, "");
        assert_eq!(gz, gz2, "same text, same body");
    }

    #[test]
    fn empty_body_is_a_valid_member() {
        let cache = SegmentCache::new();
        let (gz, _) = GzipBody::new(&cache, String::new()).finish(Vec::new());
        assert_eq!(gunzip(&gz), b"");
        assert_eq!(gz.len(), 20);
    }

    #[test]
    fn isize_is_modulo_2_pow_32() {
        // Two segments whose lengths add up past 2^32 (only their lengths
        // and CRCs matter to the trailer): ISIZE wraps.
        let seg = |len: u64| {
            let mut crc = Crc::new();
            crc.update(b"x");
            Arc::new(Segment {
                deflate: Box::new([]),
                crc,
                len,
            })
        };
        let body = splice(&[seg(u32::MAX as u64), seg(3)], Vec::new());
        let n = body.len();
        assert_eq!(u32::from_le_bytes(body[n - 4..].try_into().unwrap()), 2);
        let mut c = Crc::new();
        c.update(b"xx");
        assert_eq!(
            u32::from_le_bytes(body[n - 8..n - 4].try_into().unwrap()),
            c.sum()
        );
    }
}
