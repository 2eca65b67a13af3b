//! `POST /webhook/{tenant}`: where Microsoft posts audit feed notifications.
//!
//! Served on the main listener, or on its own (`--webhook.listen-address`)
//! so that Microsoft can reach it while `/metrics` stays internal. The order
//! of checks is the order of cost: unknown tenant (404), `Webhook-AuthID`
//! in constant time (401), size (413), body (400); then the validation POST
//! is answered 200, or the tenant's items go to its [`Inbox`] (items for
//! another tenant, a content type not followed, or a URI off the tenant's
//! Management root are dropped). Every outcome is counted in
//! `m365_activity_webhook_notifications_total`; each kind of refusal is
//! logged once per tenant (a misconfigured sender would otherwise flood the
//! log), and the authId never appears in either.

use crate::activity::webhook::{parse, Body, Inbox, MAX_BODY};
use crate::collect::fleet::Inboxes;
use crate::metrics::Live;
use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The request path (axum syntax).
pub const PATH: &str = "/webhook/{tenant}";

/// Finds a tenant's webhook inbox among the running tenants (a reload may
/// add or remove them), and counts what the receiver does.
pub struct Hub {
    /// Published by the fleet.
    inboxes: Arc<Inboxes>,
    live: Arc<Live>,
    /// (tenant, result) already logged.
    logged: Mutex<HashSet<(String, &'static str)>>,
}

impl Hub {
    pub fn new(inboxes: Arc<Inboxes>, live: Arc<Live>) -> Self {
        Hub {
            inboxes,
            live,
            logged: Mutex::default(),
        }
    }

    /// The inbox of a running tenant with `activity.webhook`.
    fn inbox(&self, tenant: &str) -> Option<Arc<Inbox>> {
        self.inboxes.load().get(tenant).cloned()
    }

    fn count(&self, tenant: &str, result: &'static str, n: u64) {
        if n > 0 {
            self.live
                .webhook_notifications
                .with_label_values(&[tenant, result])
                .inc_by(n);
        }
    }

    /// Log a refusal the first time it happens for this tenant.
    fn once(&self, tenant: &str, result: &'static str, what: &str) {
        let first = self
            .logged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tenant.to_string(), result));
        if first {
            tracing::warn!(tenant = %tenant, result, "webhook request refused: {what} (logged once per kind; counted in m365_activity_webhook_notifications_total)");
        }
    }
}

/// The receiver's route, with its own state.
pub fn routes<S>(hub: Arc<Hub>) -> Router<S> {
    Router::new().route(PATH, post(receive)).with_state(hub)
}

fn answer(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn receive(
    State(hub): State<Arc<Hub>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: HttpBody,
) -> Response {
    let Some(inbox) = hub.inbox(&tenant) else {
        // Not a label value: the path is the sender's choice.
        hub.count("", "unknown_tenant", 1);
        hub.once(
            "",
            "unknown_tenant",
            "no tenant with activity.webhook has this name",
        );
        return answer(StatusCode::NOT_FOUND, "no webhook for this tenant\n");
    };
    let t = inbox.tenant.as_str();
    if !inbox.authorized(headers.get("Webhook-AuthID").map(|v| v.as_bytes())) {
        hub.count(t, "unauthorized", 1);
        hub.once(t, "unauthorized", "missing or wrong Webhook-AuthID");
        return answer(StatusCode::UNAUTHORIZED, "wrong Webhook-AuthID\n");
    }
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = |hub: &Hub| {
        hub.count(t, "too_large", 1);
        hub.once(t, "too_large", "body over 1 MiB");
        answer(StatusCode::PAYLOAD_TOO_LARGE, "body over 1 MiB\n")
    };
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large(&hub);
    }
    let bytes = match read_capped(body).await {
        Ok(Some(b)) => b,
        Ok(None) => return too_large(&hub),
        Err(()) => {
            hub.count(t, "malformed", 1);
            hub.once(t, "malformed", "the body could not be read");
            return answer(StatusCode::BAD_REQUEST, "body could not be read\n");
        }
    };
    match parse(&bytes) {
        Err(e) => {
            hub.count(t, "malformed", 1);
            hub.once(t, "malformed", &format!("not a notification ({e})"));
            answer(StatusCode::BAD_REQUEST, "not a notification\n")
        }
        Ok(Body::Validation) => {
            hub.count(t, "validation", 1);
            tracing::info!(tenant = %t, "webhook validation answered");
            answer(StatusCode::OK, "")
        }
        Ok(Body::Items(items, skipped)) => {
            let now = crate::timefmt::now_unix() as i64;
            let mut mine = Vec::with_capacity(items.len());
            let mut foreign = 0;
            for (c, tenant_id) in items {
                match inbox.foreign(&c, tenant_id.as_deref()) {
                    None => mine.push(c),
                    Some(why) => {
                        foreign += 1;
                        hub.once(
                            t,
                            "foreign",
                            &format!("an item with {} was dropped", why.as_str()),
                        );
                    }
                }
            }
            let offered = mine.len();
            let queued = inbox.deliver(mine, now);
            hub.count(t, "accepted", queued as u64);
            hub.count(t, "foreign", foreign);
            if skipped > 0 {
                hub.count(t, "malformed", skipped as u64);
                hub.once(
                    t,
                    "malformed",
                    "items without contentId, contentUri or contentCreated were dropped",
                );
            }
            if queued < offered {
                tracing::warn!(tenant = %t, dropped = offered - queued, "webhook inbox full; the safety-net listing will find these items");
            }
            answer(StatusCode::OK, "")
        }
    }
}

/// The body, or None once it passes [`MAX_BODY`] (a chunked body announces
/// no length); `Err` when the client went away mid-body.
async fn read_capped(body: HttpBody) -> Result<Option<Vec<u8>>, ()> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ())?;
        if out.len() + chunk.len() > MAX_BODY {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}
