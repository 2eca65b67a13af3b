//! Webhook notification bodies (`POST /webhook/{tenant}`): parsed, then each
//! item checked against a tenant's inbox and delivered, as the receiver does.
#![no_main]
use libfuzzer_sys::fuzz_target;
use m365_exporter::activity::webhook::{parse, Body, Inbox};
use m365_exporter::config::WebhookConfig;
use m365_exporter::secret::Secret;
use std::sync::OnceLock;
use std::time::Duration;

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

fuzz_target!(|data: &[u8]| {
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
});
