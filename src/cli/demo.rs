//! `m365-exporter demo`: the simulator on a free loopback port and the
//! exporter against it, one command, no Microsoft account.

use crate::collect::RuntimeOptions;
use crate::config::{Config, TenantConfig};
use crate::simulator::{
    AuditOptions, SimOptions, Simulator, SIM_CLIENT_ID, SIM_CLIENT_SECRET, SIM_TENANT_ID,
};
use std::time::Duration;

/// The demo webhook's authId (the simulator is its only caller).
pub const WEBHOOK_AUTH_ID: &str = "demo-webhook-auth-id";

/// The config the demo's exporter uses against a simulator at `url`; with
/// `webhook` (the receiver's address), the feed also takes notifications.
pub fn config(url: &str, webhook: Option<&str>) -> Config {
    // Notifications bring new content at once; listing every 5 min beside
    // them, every 15 s again after 2 min without one.
    let webhook = webhook
        .map(|a| {
            format!(", webhook: {{address: \"{a}\", auth_id: {WEBHOOK_AUTH_ID}, poll_interval: 5m, silence: 2m}}")
        })
        .unwrap_or_default();
    let yaml = format!(
        r#"
tenants:
  - name: contoso
    tenant_id: {SIM_TENANT_ID}
    client_id: {SIM_CLIENT_ID}
    client_secret: {SIM_CLIENT_SECRET}
    endpoints: {{login: "{url}", graph: "{url}", management: "{url}"}}
    service_health: {{interval: 15s}}
    messages: {{interval: 30s}}
    # A small request budget makes the first catch-up take a few polls, so
    # the backlog and blob lag panels show a feed behind and draining.
    # Reconciled against the simulated Audit Log Query API at once (no
    # settle), a day at a time: the expired blob's records are repaired.
    activity: {{enabled: true, interval: 15s, lookback: 2d, start_subscriptions: true, requests_per_minute: 60, reconcile: {{enabled: true, interval: 1m, settle: 0s, window: 24h}}{webhook}}}
    # The simulated app registration: the `incident` scenario's client
    # secret expires in 20 days, so the expiry panel and warning show.
    app_credentials: {{enabled: true}}
"#
    );
    match Config::parse(&yaml, "demo") {
        Ok(c) => c,
        // The text above is fixed; failing to parse it is a bug caught by tests.
        Err(e) => panic!("demo config invalid: {e}"),
    }
}

pub async fn start_simulator(scenario: &str) -> Result<Simulator, crate::simulator::SimError> {
    Simulator::start(SimOptions {
        scenario: scenario.to_string(),
        // A live feed: each content type gets a new blob every minute.
        audit: AuditOptions {
            live_every: Some(Duration::from_secs(60)),
            ..AuditOptions::default()
        },
        ..SimOptions::default()
    })
    .await
}

/// The demo's exporter talks to its own simulator directly, whatever
/// HTTPS_PROXY/HTTP_PROXY say: the simulator is this process.
pub fn runtime_options() -> RuntimeOptions {
    RuntimeOptions {
        env_proxy: false,
        ..RuntimeOptions::default()
    }
}

/// The demo tenant, for tests that tweak it.
pub fn tenant(url: &str) -> TenantConfig {
    config(url, None).tenants.remove(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_config_is_valid() {
        let c = super::config("http://127.0.0.1:1", None);
        assert_eq!(c.tenants[0].name, "contoso");
        assert!(c.tenants[0].activity.enabled);
        let c = super::config(
            "http://127.0.0.1:1",
            Some("http://127.0.0.1:2/webhook/contoso"),
        );
        assert!(c.tenants[0].activity.webhook.is_some());
        assert!(c.tenants[0].app_credentials.enabled);
    }
}
