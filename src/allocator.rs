//! Memory allocator settings of the binary, and the optional heap profile.
//!
//! glibc's malloc, left alone, raises its mmap threshold when a big mmapped
//! block is freed, so the next multi-megabyte scrape body comes from the
//! heap and its pages stay resident: at 1,000 tenants RSS grew by 37 MiB
//! over 20 scrapes; with a fixed threshold, by 0.3 MiB (BENCHMARKS.md).
//!
//! Heap profiling, to find where a tenant's memory goes: build with
//! `--features dhat-heap`, run, stop with SIGTERM/Ctrl-C; `dhat-heap.json` is
//! written to the working directory on exit (open it in dhat's viewer,
//! `dh_view.html` from valgrind).

/// Apply the allocator settings and start the heap profile (with the
/// feature). Keep the returned guard alive for the whole run.
pub fn start() -> Guard {
    tune_glibc();
    #[cfg(feature = "dhat-heap")]
    return Some(dhat::Profiler::new_heap());
    #[cfg(not(feature = "dhat-heap"))]
    None
}

#[cfg(feature = "dhat-heap")]
pub type Guard = Option<dhat::Profiler>;
#[cfg(not(feature = "dhat-heap"))]
pub type Guard = Option<()>;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_glibc() {
    // SAFETY: mallopt only changes allocator parameters (glibc serialises
    // it); called from main before the runtime's threads exist.
    unsafe {
        // Allocations from 256 KiB (scrape bodies, big pages) are mmapped
        // and returned to the kernel when freed; a fixed value also turns
        // off the dynamic threshold.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_glibc() {}

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;
