//! Every parser of outside data, fed truncated and mutated versions of real
//! answers: errors, never panics. (A cheap stand-in for cargo-fuzz targets,
//! which the roadmap's Hardening milestone adds.)

use m365_exporter::activity::client::parse_content_page;
use m365_exporter::activity::records::parse_blob;
use m365_exporter::auth::parse_token_response;
use m365_exporter::collect::app_credentials;
use m365_exporter::graph::{parse_json, parse_page, Application, HealthOverview, Issue, Message};
use m365_exporter::http::parse_error_body;
use m365_exporter::timefmt::parse_unix;
use rand::{Rng, SeedableRng};

const SAMPLES: &[&str] = &[
    r#"{"@odata.context":"x","value":[{"id":"Exchange","service":"Exchange Online","status":"serviceDegradation"}],"@odata.nextLink":"http://h/n?$skiptoken=5"}"#,
    r#"{"value":[{"id":"EX1","service":"Exchange Online","classification":"incident","origin":"microsoft","status":"x","isResolved":false,"featureGroup":null,"title":"t \"q\" é","startDateTime":"2026-11-27T18:00:00.0000000Z","lastModifiedDateTime":"2026-11-27T19:00:00Z"}]}"#,
    r#"{"value":[{"id":"MC1","category":"planForChange","severity":"high","isMajorChange":true,"actionRequiredByDateTime":"2026-12-01T00:00:00Z","services":["Exchange Online"]}]}"#,
    r#"[{"contentType":"Audit.Exchange","contentId":"a$b","contentUri":"http://h/blob","contentCreated":"2026-11-27T08:00:00.000Z","contentExpiration":"2026-12-04T08:00:00.000Z"}]"#,
    r#"[{"Id":"6f3c…","CreationTime":"2026-11-27T08:01:02","Workload":"Exchange","Operation":"Send","RecordType":2,"Nested":{"a":[1,2,{"b":null}]}}]"#,
    r#"{"token_type":"Bearer","expires_in":"3599","access_token":"abc"}"#,
    r#"{"@odata.context":"x","passwordCredentials":[{"customKeyIdentifier":null,"displayName":"e","endDateTime":"2027-05-01T10:00:00.1234567Z","hint":"Qx8","keyId":"6a2b6e3a-0000-4000-8000-000000000001","secretText":null}],"keyCredentials":[{"keyId":"6a2b6e3a-0000-4000-8000-000000000002","endDateTime":"2027-05-01T10:00:00Z","type":"AsymmetricX509Cert","usage":"Verify"}]}"#,
    r#"{"error":{"code":"AF20022","message":"No subscription found for the specified content type"}}"#,
];

fn all_parsers(bytes: &[u8]) {
    let _ = parse_page::<HealthOverview>(bytes);
    let _ = parse_page::<Issue>(bytes);
    let _ = parse_page::<Message>(bytes);
    if let Ok(app) = parse_json::<Application>(bytes) {
        let _ = app_credentials::render("t", &app);
    }
    let _ = parse_content_page(bytes);
    let _ = parse_blob(bytes);
    let _ = parse_error_body(bytes);
    for status in [200, 400, 401, 503] {
        let _ = parse_token_response(status, bytes);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = parse_unix(s);
    }
}

#[test]
fn truncations_never_panic() {
    for s in SAMPLES {
        let b = s.as_bytes();
        for cut in 0..=b.len() {
            all_parsers(&b[..cut]);
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x365);
    let alphabet = b"{}[]\":,\\0123456789.eE+-tfnul \xff\xc3\xa9\n";
    for _ in 0..20_000 {
        let mut b = SAMPLES[rng.random_range(0..SAMPLES.len())]
            .as_bytes()
            .to_vec();
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(0..b.len());
            match rng.random_range(0..3) {
                0 => b[i] = alphabet[rng.random_range(0..alphabet.len())],
                1 => {
                    b.remove(i);
                }
                _ => b.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
            }
            if b.is_empty() {
                break;
            }
        }
        all_parsers(&b);
    }
}
