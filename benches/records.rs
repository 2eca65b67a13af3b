//! Audit blob parsing throughput on realistic records: the simulator's
//! generator (`simulator::records`), 1–3 KB records of all five content
//! types with nested `ExtendedProperties`, `PolicyDetails`, escapes and
//! UTF-8. `two_pass_baseline` is the parser before issue 18 (a
//! `Vec<&RawValue>` pass, then a serde pass per record), kept here so the
//! ratio is measured in the same run. `apply_2000_realistic` is the whole
//! per-record path of a fetched blob (parse, dedupe against an empty id set,
//! count into the live metrics, sink lines kept): what the feed's events
//! must not make dearer.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use m365_exporter::activity::apply::Applier;
use m365_exporter::activity::events::Events;
use m365_exporter::activity::recent::RecentIds;
use m365_exporter::activity::records::parse_blob;
use m365_exporter::activity::Content;
use m365_exporter::config::CONTENT_TYPES;
use m365_exporter::simulator::records::{blob, SizeStats};
use m365_exporter::simulator::SIM_TENANT_ID;
use serde_json::value::RawValue;

/// The former `parse_blob`: the whole array as raw values, then each record
/// deserialised again for its four fields.
fn two_pass_baseline(body: &[u8]) -> Result<usize, String> {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Fields<'a> {
        #[serde(rename = "Id", borrow, default)]
        id: Option<std::borrow::Cow<'a, str>>,
        #[serde(rename = "CreationTime", borrow, default)]
        creation_time: Option<std::borrow::Cow<'a, str>>,
        #[serde(rename = "Workload", borrow, default)]
        workload: Option<std::borrow::Cow<'a, str>>,
        #[serde(rename = "Operation", borrow, default)]
        operation: Option<std::borrow::Cow<'a, str>>,
    }
    let raws: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut n = 0;
    for raw in raws {
        let f: Fields<'_> = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
        n += usize::from(f.id.is_some());
    }
    Ok(n)
}

fn bench(c: &mut Criterion) {
    let body = blob(18, &CONTENT_TYPES, 2_000, SIM_TENANT_ID, 1_800_000_000);
    let n = parse_blob(&body).expect("valid blob").len();
    assert_eq!(n, 2_000);
    assert_eq!(two_pass_baseline(&body), Ok(2_000));
    eprintln!(
        "records: blob of {} bytes, {}",
        body.len(),
        SizeStats::of(
            parse_blob(&body)
                .expect("valid blob")
                .iter()
                .map(|r| r.raw.len())
                .collect()
        )
    );
    let mut g = c.benchmark_group("records");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse_blob_2000_realistic", |b| {
        b.iter(|| parse_blob(&body).map(|r| r.len()))
    });
    g.bench_function("two_pass_baseline_2000_realistic", |b| {
        b.iter(|| two_pass_baseline(&body))
    });
    let body = bytes::Bytes::from(body);
    let content = Content {
        content_type: "Audit.Exchange".into(),
        content_id: "bench".into(),
        content_uri: "https://manage.office.com/bench".into(),
        created: 1_800_000_000,
        expiration: 1_800_604_800,
    };
    let live = m365_exporter::metrics::Live::new();
    let operations = vec!["FileAccessed".to_string(), "MailItemsAccessed".to_string()];
    let mut events = Events::new(
        &live,
        "t",
        std::slice::from_ref(&content.content_type),
        false,
    );
    let ev = events.of(&content.content_type);
    g.bench_function("apply_2000_realistic", |b| {
        b.iter_batched(
            || Applier::new("t", &operations, true, RecentIds::default()),
            |mut applier| {
                let a = applier.apply(&body, &content, ev).map(|a| a.records);
                (a, applier)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
