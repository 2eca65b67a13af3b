//! Microsoft's side of audit feed webhooks: `subscriptions/start` with a
//! `webhook` object validates the address at once (a POST with
//! `Webhook-AuthID`, `Webhook-ValidationCode` and `{"validationCode": …}`;
//! anything but 200 fails `/start` with AF20021), then a notifier posts each
//! blob as it is published, as a JSON array of content items, to every
//! enabled webhook of its content type. Faults ([`super::Faults`]): late,
//! duplicated and missing notifications, a wrong authId; and, as Microsoft
//! does, a webhook whose endpoint keeps failing is disabled.

use super::audit::{iso_ms, SentNotification, SimBlob, SimWebhook};
use super::SimState;
use std::sync::Arc;
use std::time::Duration;

/// Deliveries that fail in a row before a webhook is disabled.
pub const DISABLE_AFTER_FAILURES: u32 = 3;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// The validation POST of `/start`: Ok when the address answered 200.
pub async fn validate(address: &str, auth_id: &str) -> Result<(), String> {
    let code = uuid::Uuid::new_v4().to_string();
    let resp = http()
        .post(address)
        .header("Webhook-AuthID", auth_id)
        .header("Webhook-ValidationCode", &code)
        .json(&serde_json::json!({ "validationCode": code }))
        .send()
        .await
        .map_err(|e| format!("the validation POST failed: {}", e.without_url()))?;
    match resp.status().as_u16() {
        200 => Ok(()),
        s => Err(format!("the validation POST was answered {s}")),
    }
}

/// `{tenantId, clientId, contentType, contentId, contentUri, contentCreated, contentExpiration}`.
pub fn notification_item(b: &SimBlob, base: &str, tenant: &str, client: &str) -> serde_json::Value {
    serde_json::json!({
        "tenantId": tenant,
        "clientId": client,
        "contentType": b.content_type,
        "contentId": b.content_id,
        "contentUri": format!("{base}/api/v1.0/{tenant}/activity/feed/audit/{}", b.content_id),
        "contentCreated": iso_ms(b.created_ms),
        "contentExpiration": iso_ms(b.expiration_ms),
    })
}

/// Post notifications for newly published blobs every `tick`, until aborted.
pub async fn notifier(st: Arc<SimState>, base: String, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let now_ms = (crate::timefmt::now_unix() * 1_000.0) as i64;
        for (ct, hook, items) in due(&st, &base, now_ms) {
            let st = st.clone();
            tokio::spawn(deliver(st, ct, hook, items));
        }
    }
}

/// What to send now: per enabled webhook, the blobs published since its last
/// notification (the watermark moves even when a fault drops them).
fn due(
    st: &SimState,
    base: &str,
    now_ms: i64,
) -> Vec<(String, SimWebhook, Vec<serde_json::Value>)> {
    let (tenant, client) = (st.opts.tenant_id.clone(), st.opts.client_id.clone());
    let mut audit = st.audit();
    let mut out = Vec::new();
    let types: Vec<String> = audit.webhooks.keys().cloned().collect();
    for ct in types {
        let Some(hook) = audit.webhooks.get(&ct).cloned() else {
            continue;
        };
        if hook.status != "enabled" {
            continue;
        }
        let items: Vec<serde_json::Value> = audit
            .blobs
            .iter()
            .filter(|b| {
                b.content_type == ct
                    && b.published_ms > hook.notified_until_ms
                    && b.published_ms <= now_ms
            })
            .map(|b| notification_item(b, base, &tenant, &client))
            .collect();
        if let Some(h) = audit.webhooks.get_mut(&ct) {
            h.notified_until_ms = now_ms;
        }
        if !items.is_empty() {
            out.push((ct, hook, items));
        }
    }
    out
}

async fn deliver(st: Arc<SimState>, ct: String, hook: SimWebhook, items: Vec<serde_json::Value>) {
    let (drop_every, duplicate, delay, wrong_auth) = {
        let f = st.faults();
        (
            f.webhook_drop_every,
            f.webhook_duplicate,
            f.webhook_delay,
            f.webhook_wrong_auth,
        )
    };
    let n = st
        .webhook_posts
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    if drop_every > 0 && n.is_multiple_of(u64::from(drop_every)) {
        st.count_injected("webhook_dropped");
        return; // a missing notification
    }
    if !delay.is_zero() {
        st.count_injected("webhook_late");
        tokio::time::sleep(delay).await; // a late one
    }
    if duplicate {
        st.count_injected("webhook_duplicate");
    }
    let auth = if wrong_auth {
        "not-the-registered-auth-id".to_string()
    } else {
        hook.auth_id.clone()
    };
    let ids: Vec<String> = items
        .iter()
        .filter_map(|i| i["contentId"].as_str().map(str::to_string))
        .collect();
    let body = serde_json::Value::Array(items).to_string();
    for _ in 0..if duplicate { 2 } else { 1 } {
        let status = match http()
            .post(&hook.address)
            .header("Webhook-AuthID", &auth)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        let mut audit = st.audit();
        audit.notifications.push(SentNotification {
            content_type: ct.clone(),
            content_ids: ids.clone(),
            status,
            at: std::time::Instant::now(),
        });
        if let Some(h) = audit.webhooks.get_mut(&ct) {
            if (200..300).contains(&status) {
                h.failures = 0;
            } else {
                h.failures += 1;
                if h.failures >= DISABLE_AFTER_FAILURES {
                    h.status = "disabled".into();
                }
            }
        }
    }
}
