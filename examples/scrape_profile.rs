//! Renders `/metrics` of N tenants K times, for a profiler:
//!
//!     cargo build --profile bench --example scrape_profile
//!     valgrind --tool=callgrind target/release/examples/scrape_profile 200 5
//!
//! (instruction counts are stable on a loaded machine, unlike wall time).

#[path = "../benches/support/fixture.rs"]
mod fixture;

use m365_exporter::metrics::Encoding;

fn main() {
    let mut args = std::env::args().skip(1);
    let tenants: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let times: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let gzip = args.next().as_deref() == Some("gzip");
    let store = fixture::store(tenants);
    let mut bytes = 0;
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
