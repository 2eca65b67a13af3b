//! Renders `/metrics` of N tenants K times, for a profiler:
//!
//!     cargo build --profile bench --example scrape_profile
//!     valgrind --tool=callgrind target/release/examples/scrape_profile 200 5 [MODE]
//!
//! MODE: `plain` (default: what `/metrics` does, on pooled buffers),
//! `fresh` (plain on a new buffer each time), `gzip` (spliced from the
//! segment cache: what `/metrics` does for Prometheus), `stream` (gzip as
//! one stream compressed per scrape, the previous design), `naive` (a
//! prometheus Registry re-encoded), `dump` / `dump-gzip` (one body to
//! stdout). Instruction counts are stable on a loaded machine, unlike wall
//! time; `/usr/bin/time -v` shows the page faults.

#[path = "../benches/support/fixture.rs"]
mod fixture;

use m365_exporter::metrics::Encoding;
use std::hint::black_box;
use std::io::Write as _;

fn main() {
    let mut args = std::env::args().skip(1);
    let tenants: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let times: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let store = fixture::store(tenants);
    let scrape = || -> usize {
        match mode.as_str() {
            "plain" => store.scrape(None, Encoding::Identity).len(),
            "fresh" => store.render(None).len(),
            "gzip" => store.scrape(None, Encoding::Gzip).len(),
            "stream" => Encoding::Gzip.encode(store.render(None)).len(),
            "dump" => {
                let _ = std::io::stdout().write_all(&store.render(None));
                0
            }
            "dump-gzip" => {
                let _ = std::io::stdout().write_all(&store.render_gzip());
                0
            }
            _ => panic!("unknown mode {mode}"),
        }
    };
    if mode == "naive" {
        // The naive baseline: the same series in a prometheus Registry.
        let reg = fixture::registry_from(&store.render(None));
        let mut bytes = 0;
        for _ in 0..times {
            bytes = black_box(fixture::reencode(&reg)).len();
        }
        eprintln!("{tenants} tenants, {times} registry re-encodes, {bytes} bytes");
        return;
    }
    if mode.starts_with("dump") {
        scrape();
        return;
    }
    let mut bytes = 0;
    for _ in 0..times {
        bytes = black_box(scrape());
    }
    let compressed = store.gzip_cache().compressed();
    eprintln!("{tenants} tenants, {times} scrapes ({mode}), {bytes} bytes, {compressed} segments compressed");
}
