//! What each fuzz target does with its input, one function per target in
//! `fuzz_targets/` (which only hands libFuzzer's bytes to it). Kept apart
//! so that the stable test suite runs the very same code over each corpus
//! (`tests/fuzz_corpus.rs` includes this file): `make fuzz` needs nightly,
//! CI has only stable.
//!
//! Only `m365_exporter` and std are used here: the test crate compiles
//! this file as one of its modules.

use m365_exporter::activity::webhook::{parse, Body, Inbox};
use m365_exporter::config::WebhookConfig;
use m365_exporter::secret::Secret;
use std::sync::OnceLock;
use std::time::Duration;

/// What a target does with libFuzzer's bytes.
pub type Target = fn(&[u8]);

/// Every target: its name (a `[[bin]]` of fuzz/Cargo.toml, a file in
/// `fuzz_targets/`, a directory of `corpus/`) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("audit_blob", audit_blob),
    ("config", config),
    ("content_listing", content_listing),
    ("graph_page", graph_page),
    ("token_answer", token_answer),
    ("web_config", web_config),
    ("webhook_notification", webhook_notification),
];

/// Audit content blobs (JSON arrays of records) and their timestamps.
pub fn audit_blob(data: &[u8]) {
    let _ = m365_exporter::activity::records::parse_blob(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = m365_exporter::timefmt::parse_unix(s);
    }
}

/// The main configuration file: any text is a config or a ConfigError.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = m365_exporter::config::Config::parse(text, "fuzz.yml") {
            let _ = c.to_redacted_yaml();
        }
    }
}

/// Management API content listings (`subscriptions/content` pages).
pub fn content_listing(data: &[u8]) {
    let _ = m365_exporter::activity::client::parse_content_page(data);
}

/// Graph pages (health overviews, issues, messages) and Graph/Management
/// error bodies.
pub fn graph_page(data: &[u8]) {
    use m365_exporter::api::graph::{parse_page, HealthOverview, Issue, Message};
    let _ = parse_page::<HealthOverview>(data);
    let _ = parse_page::<Issue>(data);
    let _ = parse_page::<Message>(data);
    let _ = m365_exporter::api::error::parse_error_body(data);
}

/// Token endpoint answers: the first byte picks the HTTP status.
pub fn token_answer(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 400, 401, 429, 500, 503][usize::from(first) % 6];
    let _ = m365_exporter::auth::grant::parse_token_response(status, body);
}

/// `--web.config.file`: any text is a web config or a ConfigError.
pub fn web_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = m365_exporter::web::web_config::WebConfig::parse(
            text,
            "web.yml",
            std::path::Path::new("/nonexistent"),
        );
    }
}

fn inbox() -> &'static Inbox {
    static INBOX: OnceLock<Inbox> = OnceLock::new();
    INBOX.get_or_init(|| {
        let cfg = WebhookConfig {
            address: "https://x/webhook/t".into(),
            auth_id: Secret::new("fuzz-auth"),
            auth_id_file: None,
            expiration: None,
            poll_interval: Duration::from_secs(900),
            silence: Duration::from_secs(1_800),
        };
        Inbox::new(
            "t",
            "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b",
            cfg,
            &["Audit.Exchange".to_string(), "DLP.All".to_string()],
            "https://manage.office.com",
        )
    })
}

/// Webhook notification bodies (`POST /webhook/{tenant}`): parsed, then
/// each item checked against a tenant's inbox and delivered, as the
/// receiver does.
pub fn webhook_notification(data: &[u8]) {
    if let Ok(Body::Items(items, _)) = parse(data) {
        let inbox = inbox();
        let mine = items
            .into_iter()
            .filter(|(c, tenant)| inbox.foreign(c, tenant.as_deref()).is_none())
            .map(|(c, _)| c)
            .collect();
        inbox.deliver(mine, 1_800_000_000);
        inbox.take();
    }
}
