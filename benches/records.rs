//! Audit blob parsing throughput: records of realistic size and shape
//! (Exchange/SharePoint/Azure AD records carry 20–40 fields, ~1–2 KB).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use m365_exporter::activity::records::parse_blob;

fn blob(records: usize) -> Vec<u8> {
    let mut out = String::from("[");
    for i in 0..records {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"CreationTime":"2026-11-27T08:{:02}:{:02}","Id":"{:08x}-4b1c-4d2e-9f3a-1b2c3d4e5f60","Operation":"{}","OrganizationId":"8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b","RecordType":{},"ResultStatus":"Succeeded","UserKey":"10032001A2B3C4D5","UserType":0,"Version":1,"Workload":"{}","ClientIP":"203.0.113.{}","ObjectId":"https://contoso.sharepoint.com/sites/finance/Shared Documents/Q4/report-{i}.xlsx","UserId":"user{}@contoso.onmicrosoft.com","CorrelationId":"a1b2c3d4-0000-4000-8000-{:012x}","EventSource":"SharePoint","ItemType":"File","ListId":"f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9","ListItemUniqueId":"0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9","Site":"5d6e7f80-91a2-4b3c-8d4e-5f6071829304","UserAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","WebId":"6e7f8091-a2b3-4c4d-9e5f-607182930415","SourceFileExtension":"xlsx","SiteUrl":"https://contoso.sharepoint.com/sites/finance/","SourceFileName":"report-{i}.xlsx","SourceRelativeUrl":"Shared Documents/Q4","AuditData":{{"Nested":[1,2,3],"Flag":true,"Text":"escaped \"quote\" and \\ backslash"}}}}"#,
            i % 60,
            i % 60,
            i,
            ["FileAccessed", "FileModified", "UserLoggedIn", "MailItemsAccessed"][i % 4],
            6 + i % 20,
            ["SharePoint", "Exchange", "AzureActiveDirectory", "OneDrive"][i % 4],
            i % 250,
            i % 500,
            i
        ));
    }
    out.push(']');
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let body = blob(2_000);
    let n = parse_blob(&body).expect("valid blob").len();
    assert_eq!(n, 2_000);
    let mut g = c.benchmark_group("records");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse_blob_2000_records", |b| {
        b.iter(|| parse_blob(&body).map(|r| r.len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
