//! Renders `/metrics` of N tenants K times, for a profiler:
//!
//!     cargo build --profile bench --example scrape_profile
//!     valgrind --tool=callgrind target/release/examples/scrape_profile 200 5 [gzip|naive]
//!
//! (instruction counts are stable on a loaded machine, unlike wall time).

#[path = "../benches/support/fixture.rs"]
mod fixture;

use m365_exporter::metrics::Encoding;

fn main() {
    let mut args = std::env::args().skip(1);
    let tenants: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let times: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let mode = args.next().unwrap_or_default();
    let store = fixture::store(tenants);
    let mut bytes = 0;
    if mode == "naive" {
        // The naive baseline: the same series in a prometheus Registry.
        let reg = fixture::registry_from(&store.render(None));
        for _ in 0..times {
            bytes = std::hint::black_box(fixture::reencode(&reg)).len();
        }
        println!("{tenants} tenants, {times} registry re-encodes, {bytes} bytes");
        return;
    }
    let gzip = mode == "gzip";
    for _ in 0..times {
        let body = store.render(None);
        bytes = if gzip {
            Encoding::Gzip.encode(body).len()
        } else {
            body.len()
        };
    }
    println!("{tenants} tenants, {times} renders, {bytes} bytes");
}
