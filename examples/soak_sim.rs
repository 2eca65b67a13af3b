//! The simulator with a large audit backlog, for `scripts/soak-activity.sh`:
//! `cargo run --release --example soak_sim -- RECORDS BLOBS_PER_TYPE` serves
//! about RECORDS records over the last 6.5 days, in 5 × BLOBS_PER_TYPE blobs,
//! and prints its URL, the number of blobs and records and the bytes of all
//! blob bodies; it runs until interrupted. Records are the simulator's
//! realistic ones (`simulator::records`: 1–3 KB, about 1.5 KB on average).

use m365_exporter::simulator::{AuditOptions, SimOptions, Simulator};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let records = args.first().copied().unwrap_or(1_000_000);
    let per_type = args.get(1).copied().unwrap_or(400);
    let per_blob = (records / (5 * per_type)).max(1);
    let sim = Simulator::start(SimOptions {
        listen: "127.0.0.1:0".into(),
        audit: AuditOptions {
            blobs_per_type: per_type,
            span: Duration::from_secs(6 * 86_400 + 12 * 3_600),
            records_min: per_blob,
            records_max: per_blob,
            page_size: 200,
            expired_blobs: 0,
            ..AuditOptions::default()
        },
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let (truth, bytes) = {
        let audit = sim.audit();
        let bytes: usize = audit.blobs.iter().map(|b| b.body.len()).sum();
        (
            audit.truth(&m365_exporter::config::CONTENT_TYPES, 0, i64::MAX),
            bytes,
        )
    };
    println!("{} {} {} {bytes}", sim.url(), truth.blobs, truth.ids.len());
    let _ = tokio::signal::ctrl_c().await;
    sim.stop().await;
}
