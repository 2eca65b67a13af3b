//! Heap profiling for finding where a tenant's memory goes: build with
//! `--features dhat-heap`, run, stop with SIGTERM/Ctrl-C; `dhat-heap.json`
//! is written to the working directory on exit (open it in dhat's viewer,
//! `dh_view.html` from valgrind). Without the feature this is a no-op.

/// Keep the returned guard alive for the whole run; the profile is written
/// when it drops.
#[cfg(feature = "dhat-heap")]
pub fn heap() -> Option<dhat::Profiler> {
    Some(dhat::Profiler::new_heap())
}

#[cfg(not(feature = "dhat-heap"))]
pub fn heap() -> Option<()> {
    None
}

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;
