//! Memory allocator of the binary, and the optional heap profile.
//!
//! jemalloc (`tikv-jemallocator`) with background purging: unused dirty
//! pages go back to the kernel on a timer (`dirty_decay_ms`, 10 s), from a
//! background thread, whether or not the process allocates again. glibc's
//! malloc kept fragments of transient peaks (a refresh round of 1,000
//! tenants, a scrape body) in its thread arenas: RSS crept for tens of
//! minutes and `malloc_trim` gave nothing back. jemalloc's size classes and
//! per-extent purging held the same load flat (BENCHMARKS.md, "Memory").
//!
//! Heap profiling, to find where a tenant's memory goes: build with
//! `--features dhat-heap` (dhat's allocator then wraps the system one),
//! run, stop with SIGTERM/Ctrl-C; `dhat-heap.json` is written to the
//! working directory on exit (open it in dhat's viewer, `dh_view.html` from
//! valgrind). Fuzz builds (`cfg(fuzzing)`) keep the system allocator so the
//! sanitizer sees every allocation.

/// Apply the allocator settings and start the heap profile (with the
/// feature). Keep the returned guard alive for the whole run.
pub fn start() -> Guard {
    #[cfg(feature = "dhat-heap")]
    {
        tune_glibc();
        Some(dhat::Profiler::new_heap())
    }
    #[cfg(not(feature = "dhat-heap"))]
    None
}

#[cfg(feature = "dhat-heap")]
pub type Guard = Option<dhat::Profiler>;
#[cfg(not(feature = "dhat-heap"))]
pub type Guard = Option<()>;

#[cfg(all(not(feature = "dhat-heap"), not(fuzzing), not(target_env = "msvc")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it initialises (its `malloc_conf`, under
/// the `_rjem_` prefix tikv-jemalloc-sys builds it with):
/// `background_thread` purges dirty pages on the decay timer from its own
/// thread (without it, purging happens only inside later allocations, so
/// an idle process keeps its last peak); `dirty_decay_ms:1000` (jemalloc's
/// default is 10 s) gives freed pages back within about a second, so RSS
/// follows the live heap after a burst (an audit catch-up's multi-MB blobs)
/// instead of holding ten seconds of it: peak RSS of a 600,000-record
/// catch-up 93 -> 72 MiB, nothing measurable at 1,000 tenants or idle
/// (BENCHMARKS.md); `narenas:1`: one arena for every thread, instead of
/// four per CPU (jemalloc's default): each arena keeps its own partly used
/// slabs of every size class, so a small, mostly idle heap spread over
/// the runtime's threads held several sets of them (idle RSS, and holes
/// between 1,000 tenants' long-lived snapshots); on two to a few cores the
/// one arena's lock is not contended (threads allocate from their own
/// caches, the arena only refills them). `_RJEM_MALLOC_CONF` in the
/// environment still overrides.
#[cfg(all(not(feature = "dhat-heap"), not(fuzzing), not(target_env = "msvc")))]
#[used]
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: &[u8; 53] = b"background_thread:true,dirty_decay_ms:1000,narenas:1\0";

/// The heap profile wraps the system allocator: glibc's malloc, whose
/// dynamic mmap threshold would keep freed multi-megabyte scrape bodies in
/// the heap (RSS +37 MiB over 20 scrapes at 1,000 tenants): a fixed
/// threshold returns them to the kernel when freed.
#[cfg(all(feature = "dhat-heap", target_os = "linux", target_env = "gnu"))]
fn tune_glibc() {
    // SAFETY: mallopt only changes allocator parameters (glibc serialises
    // it); called from main before the runtime's threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(all(
    feature = "dhat-heap",
    not(all(target_os = "linux", target_env = "gnu"))
))]
fn tune_glibc() {}

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[cfg(all(test, not(feature = "dhat-heap"), not(target_env = "msvc")))]
mod tests {
    /// jemalloc is the allocator and read our options: the background
    /// purging thread is on, dirty pages decay in a second.
    #[test]
    fn jemalloc_with_background_purging() {
        let mut on: u8 = 0;
        let mut len = std::mem::size_of::<u8>();
        // SAFETY: `opt.background_thread` is a bool option; `on` and `len`
        // are valid for writes of its size.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"opt.background_thread".as_ptr(),
                (&raw mut on).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, 0, "mallctl failed: jemalloc is not linked");
        assert_eq!(on, 1, "background_thread is off");
        let mut ms: isize = 0;
        let mut len = std::mem::size_of::<isize>();
        // SAFETY: `opt.dirty_decay_ms` is an ssize_t option; `ms` and `len`
        // are valid for writes of its size.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"opt.dirty_decay_ms".as_ptr(),
                (&raw mut ms).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!((rc, ms), (0, 1000));
        let mut n: u32 = 0;
        let mut len = std::mem::size_of::<u32>();
        // SAFETY: `opt.narenas` is an unsigned option; `n` and `len` are
        // valid for writes of its size.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"opt.narenas".as_ptr(),
                (&raw mut n).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!((rc, n), (0, 1), "one arena");
    }
}
