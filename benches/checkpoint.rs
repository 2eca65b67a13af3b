//! What one blob costs the checkpoint, against the size of the dedupe
//! window (remembered record ids): `full_state` is the design before the
//! pipeline (the whole state, every id inline, encoded and written with
//! fsync after every blob); `id_log` is today's save (the ids the blob
//! added appended to the id log, then the small state file replaced), the
//! same steps the checkpoint thread runs. The second must stay flat.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use m365_exporter::activity::idlog::{self, IdsMark};
use m365_exporter::activity::recent::{RecentIds, MAX_IDS};
use m365_exporter::activity::state::{self, State};
use m365_exporter::activity::Content;

const T: &str = "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b";
/// Records per blob (a typical Exchange blob).
const PER_BLOB: u128 = 20;

fn window(n: usize) -> RecentIds {
    let mut r = RecentIds::default();
    let now = 1_800_000_000;
    for i in 0..n as u128 {
        r.insert(i * 7_919 + 1, now - (i as i64 % (7 * 86_400)));
    }
    r
}

/// A small state: five cursors and a backlog of 50 blobs.
fn small_state() -> State {
    let mut s = State::default();
    for (i, ct) in [
        "Audit.Exchange",
        "Audit.SharePoint",
        "Audit.General",
        "Audit.AzureActiveDirectory",
        "DLP.All",
    ]
    .iter()
    .enumerate()
    {
        s.cursors.insert(ct.to_string(), 1_800_000_000 + i as i64);
        s.newest.insert(ct.to_string(), 1_800_000_000);
        for j in 0..10 {
            s.backlog.offer(Content {
                content_type: ct.to_string(),
                content_id: format!(
                    "20261127{i}{j:06}$20261127{i}{j:06}$audit_exchange$Audit_Exchange$emea0001"
                ),
                content_uri: format!(
                    "https://manage.office.com/api/v1.0/{T}/activity/feed/audit/{i}{j}"
                ),
                created: 1_800_000_000 - j,
                expiration: 1_800_600_000,
            });
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("checkpoint_per_blob");
    g.sample_size(10);
    for n in [10_000usize, 100_000, MAX_IDS] {
        let recent = window(n);
        let path = dir.path().join(format!("before-{n}.json"));
        let mut before = small_state();
        before.recent_ids = recent.clone();
        eprintln!(
            "bytes per save at {n} ids: full_state {}, id_log {} (state) + {} (ids)",
            state::encode(&before, T, 1_800_000_000).len(),
            state::encode(&small_state(), T, 1_800_000_000).len(),
            PER_BLOB as u64 * idlog::ENTRY
        );
        g.bench_with_input(BenchmarkId::new("full_state", n), &n, |b, _| {
            b.iter(|| {
                let bytes = state::encode(&before, T, 1_800_000_000);
                state::save(&path, &bytes).expect("save");
                bytes.len()
            })
        });
        let path = dir.path().join(format!("after-{n}.json"));
        let mut mark = idlog::compact(&path, 0, recent.entries()).expect("log");
        let mut after = small_state();
        let mut next = u128::MAX >> 2;
        g.bench_with_input(BenchmarkId::new("id_log", n), &n, |b, _| {
            b.iter(|| {
                let ids: Vec<(u128, i32)> = (0..PER_BLOB).map(|i| (next + i, 500_000)).collect();
                next += PER_BLOB;
                mark = idlog::append(&path, mark, &ids).expect("append");
                after.ids = Some(IdsMark { ..mark });
                let bytes = state::encode(&after, T, 1_800_000_000);
                state::save(&path, &bytes).expect("save");
                bytes.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
