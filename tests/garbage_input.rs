//! Every parser of outside data, fed truncated and mutated versions of real
//! answers: errors, never panics. The stable smoke run of the cargo-fuzz
//! targets in fuzz/ (`make fuzz`, nightly). A positive control first: each
//! unmutated sample parses with the parser it was written for, so the
//! mutations start from input that reaches the parsers' deep paths, not from
//! something rejected at the first byte.

use m365_exporter::activity::client::parse_content_page;
use m365_exporter::activity::records::parse_blob;
use m365_exporter::activity::webhook;
use m365_exporter::api::error::parse_error_body;
use m365_exporter::api::graph::{
    parse_json, parse_page, Application, HealthOverview, Issue, Message,
};
use m365_exporter::auth::grant::parse_token_response;
use m365_exporter::collect::app_credentials;
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
    r#"{"validationCode":"b0b5e8b9-3c3c-4b5e-8f4a-1c2d3e4f5a6b"}"#,
    r#"[{"tenantId":"8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b","clientId":"c","contentType":"Audit.Exchange","contentId":"a$b","contentUri":"https://manage.office.com/api/v1.0/t/activity/feed/audit/a$b","contentCreated":"2026-11-27T08:00:00.000Z","contentExpiration":"2026-12-04T08:00:00.000Z"},{"contentId":"no uri"}]"#,
];

/// Which parser accepts each of [`SAMPLES`], in order: the positive control.
fn sample_parses(i: usize, b: &[u8]) -> bool {
    match i {
        0 => parse_page::<HealthOverview>(b).is_ok(),
        1 => parse_page::<Issue>(b).is_ok(),
        2 => parse_page::<Message>(b).is_ok(),
        3 => parse_content_page(b).is_ok_and(|(items, skipped)| (items.len(), skipped) == (1, 0)),
        4 => parse_blob(b).is_ok_and(|r| r.len() == 1 && r[0].id.is_some()),
        5 => parse_token_response(200, b).is_ok(),
        6 => parse_json::<Application>(b).is_ok_and(|a| {
            let out = app_credentials::render("t", &a);
            out.failing.is_none()
        }),
        7 => parse_error_body(b).0.as_deref() == Some("AF20022"),
        8 => webhook::parse(b) == Ok(webhook::Body::Validation),
        9 => matches!(webhook::parse(b), Ok(webhook::Body::Items(items, 1)) if items.len() == 1),
        _ => false,
    }
}

fn all_parsers(bytes: &[u8]) {
    let _ = parse_page::<HealthOverview>(bytes);
    let _ = parse_page::<Issue>(bytes);
    let _ = parse_page::<Message>(bytes);
    if let Ok(app) = parse_json::<Application>(bytes) {
        let _ = app_credentials::render("t", &app);
    }
    let _ = parse_content_page(bytes);
    let _ = parse_blob(bytes);
    let _ = webhook::parse(bytes);
    let _ = parse_error_body(bytes);
    for status in [200, 400, 401, 503] {
        let _ = parse_token_response(status, bytes);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = parse_unix(s);
    }
}

#[test]
fn every_unmutated_sample_parses() {
    for (i, s) in SAMPLES.iter().enumerate() {
        assert!(
            sample_parses(i, s.as_bytes()),
            "sample {i} does not parse: {s}"
        );
    }
    use m365_exporter::config::Config;
    use m365_exporter::web::web_config::WebConfig;
    Config::parse(YAML_SAMPLES[0], "g.yml").expect("the config sample parses");
    let dir = tempfile::tempdir().unwrap();
    for f in ["s.crt", "s.key", "ca.crt"] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    WebConfig::parse(YAML_SAMPLES[1], "g.yml", dir.path()).expect("the web config sample parses");
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
        all_parsers(&mutate(&mut rng, SAMPLES, alphabet));
    }
}

/// One of `samples` with 1–5 random byte changes, insertions or removals.
fn mutate(rng: &mut rand::rngs::StdRng, samples: &[&str], alphabet: &[u8]) -> Vec<u8> {
    let mut b = samples[rng.random_range(0..samples.len())]
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
    b
}

const YAML_SAMPLES: &[&str] = &[
    "defaults:\n  service_health: {interval: 30s}\ntenants:\n  - name: contoso\n    tenant_id: 8f3c2a1e-1111-2222-3333-444455556666\n    client_id: 0c1d2e3f-1111-2222-3333-444455556666\n    client_secret: x\n    activity: {enabled: true, lookback: 7d, overlap: 1h, content_types: [Audit.Exchange]}\n",
    "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\nhttp_server_config:\n  headers: {X-Frame-Options: deny}\nbasic_auth_users:\n  prom: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\n",
];

/// Both YAML files (main config, web config), truncated and mutated:
/// a config or a ConfigError, never a panic.
#[test]
fn config_files_never_panic() {
    use m365_exporter::config::Config;
    use m365_exporter::web::web_config::WebConfig;
    let parse = |text: &str| {
        let _ = Config::parse(text, "g.yml");
        let _ = WebConfig::parse(text, "g.yml", std::path::Path::new("/nonexistent"));
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x16);
    let alphabet = b"{}[]:,-|>&*!%@'\"\n \t#?0123456789aZ\xc3\xa9";
    for s in YAML_SAMPLES {
        for cut in 0..=s.len() {
            if let Some(t) = s.get(..cut) {
                parse(t);
            }
        }
    }
    for _ in 0..3_000 {
        let b = mutate(&mut rng, YAML_SAMPLES, alphabet);
        if let Ok(t) = std::str::from_utf8(&b) {
            parse(t);
        }
    }
}
