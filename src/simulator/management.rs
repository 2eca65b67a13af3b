//! The Office 365 Management Activity API, as Microsoft documents it and as
//! it behaves in practice: subscriptions list/start, content listing with
//! window validation and paging by `NextPageUri` (or the troubleshooting
//! guide's `NextPageUrl`), blob GETs, the tenant in the URL as a GUID
//! (AF20013 otherwise), and Microsoft's
//! `{"error":{"code":"AF…","message":"…"}}` answers. Every request goes
//! through [`gate`] (auth and the generic faults) and is recorded by the
//! simulator's request log, `PublisherIdentifier` included.

use super::audit::{listing_item, SimWebhook, SubStatus};
use super::faults::Faults;
use super::graph::gate;
use super::webhooks;
use super::{base_url, url_param, SimState};
use crate::config::CONTENT_TYPES;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDateTime;
use std::sync::Arc;

const FEED: &str = "/api/v1.0/{tenant}/activity/feed";

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            &format!("{FEED}/subscriptions/list"),
            get(list_subscriptions),
        )
        .route(&format!("{FEED}/subscriptions/start"), post(start))
        .route(&format!("{FEED}/subscriptions/content"), get(content))
        .route(&format!("{FEED}/audit/{{id}}"), get(blob))
}

/// Microsoft's Management API error body.
pub fn mgmt_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn json(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Auth and faults, then the checks every feed call shares.
async fn preamble(st: &SimState, tenant: &str, headers: &HeaderMap) -> Result<(), Response> {
    while st.faults().management_hang {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    gate(st, headers).await?;
    if !crate::config::is_guid(tenant) {
        return Err(mgmt_error(
            StatusCode::BAD_REQUEST,
            "AF20013",
            &format!("The tenant ID passed in the URL ({tenant}) is not a valid GUID."),
        ));
    }
    if !tenant.eq_ignore_ascii_case(&st.opts.tenant_id) {
        return Err(mgmt_error(
            StatusCode::BAD_REQUEST,
            "AF20010",
            &format!("The tenant ID passed in the URL ({tenant}) does not match the tenant ID passed in the access token ({}).", st.opts.tenant_id),
        ));
    }
    if st.audit().opts.missing_permission {
        return Err(mgmt_error(
            StatusCode::UNAUTHORIZED,
            "AF10001",
            "The permission set () sent in the request does not include the expected permission.",
        ));
    }
    Ok(())
}

/// A call `hold` (a fault) says to hang: counted in `calls_held`, then not
/// answered while the fault lasts.
async fn held(st: &SimState, hold: fn(&Faults) -> bool) {
    if !hold(&st.faults()) {
        return;
    }
    st.audit().calls_held += 1;
    while hold(&st.faults()) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// [`preamble`], then the query and its `contentType`.
async fn typed_preamble(
    st: &SimState,
    tenant: &str,
    q: Option<String>,
    headers: &HeaderMap,
) -> Result<(String, String), Response> {
    preamble(st, tenant, headers).await?;
    let q = q.unwrap_or_default();
    let ct = content_type_of(&q).map_err(|r| *r)?;
    Ok((q, ct))
}

/// The `contentType` parameter, or Microsoft's AF20020 answer.
fn content_type_of(query: &str) -> Result<String, Box<Response>> {
    match url_param(query, "contentType") {
        Some(ct) if CONTENT_TYPES.contains(&ct.as_str()) => Ok(ct),
        other => Err(Box::new(mgmt_error(
            StatusCode::BAD_REQUEST,
            "AF20020",
            &format!(
                "The specified content type is not valid: {}",
                other.unwrap_or_default()
            ),
        ))),
    }
}

async fn list_subscriptions(
    State(st): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = preamble(&st, &tenant, &headers).await {
        return r;
    }
    let audit = st.audit();
    let items: Vec<serde_json::Value> = audit
        .subs
        .iter()
        .map(|(ct, s)| {
            let status = match s {
                SubStatus::Enabled => "enabled",
                SubStatus::DisabledByAdmin => "disabled",
            };
            serde_json::json!({"contentType": ct, "status": status, "webhook": webhook_json(audit.webhooks.get(ct))})
        })
        .collect();
    json(serde_json::Value::Array(items).to_string())
}

/// A subscription's `webhook` object as Microsoft shows it (or null).
fn webhook_json(h: Option<&SimWebhook>) -> serde_json::Value {
    match h {
        None => serde_json::Value::Null,
        Some(h) => serde_json::json!({
            "status": h.status,
            "address": h.address,
            "authId": h.auth_id,
            "expiration": h.expiration,
        }),
    }
}

/// The `webhook` of a `/start` body, if any: (address, authId, expiration).
fn start_webhook(body: &[u8]) -> Result<Option<(String, String, Option<String>)>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the request body is not JSON: {e}"))?;
    let Some(w) = v.get("webhook").filter(|w| !w.is_null()) else {
        return Ok(None);
    };
    let address = w["address"]
        .as_str()
        .ok_or("webhook.address is missing")?
        .to_string();
    let auth = w["authId"].as_str().unwrap_or_default().to_string();
    let expiration = w["expiration"].as_str().map(str::to_string);
    Ok(Some((address, auth, expiration)))
}

async fn start(
    State(st): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    held(&st, |f| f.start_hang).await;
    let (q, ct) = match typed_preamble(&st, &tenant, q, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let webhook = match start_webhook(&body) {
        Ok(w) => w,
        Err(why) => return mgmt_error(StatusCode::BAD_REQUEST, "AF20001", &why),
    };
    {
        let audit = st.audit();
        if audit.opts.audit_log_off {
            // The shapes seen in practice: the .NET exception's text split
            // at its first ": " between `code` and `message`.
            let publisher = url_param(&q, "PublisherIdentifier").unwrap_or_default();
            let (code, message) =
                audit
                    .opts
                    .audit_off_split
                    .body(&tenant, &ct, &st.opts.client_id, &publisher);
            return mgmt_error(StatusCode::BAD_REQUEST, &code, &message);
        }
        if audit.subs.get(&ct) == Some(&SubStatus::DisabledByAdmin) {
            return mgmt_error(
                StatusCode::BAD_REQUEST,
                "AF20023",
                "The subscription was disabled by an admin.",
            );
        }
        if webhook.is_none() && audit.subs.get(&ct) == Some(&SubStatus::Enabled) {
            return mgmt_error(
                StatusCode::BAD_REQUEST,
                "AF20024",
                "The subscription is already enabled. No property change.",
            );
        }
    }
    // Microsoft validates the address before it answers (no lock held);
    // an address that is not https it refuses outright.
    if let Some((address, _, _)) = &webhook {
        let https = address
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        if st.audit().opts.https_webhooks && !https {
            return mgmt_error(
                StatusCode::BAD_REQUEST,
                "AF20021",
                &format!("The webhook endpoint {address} could not be validated. The address must begin with HTTPS."),
            );
        }
    }
    if let Some((address, auth, _)) = &webhook {
        if let Err(why) = webhooks::validate(address, auth).await {
            return mgmt_error(
                StatusCode::BAD_REQUEST,
                "AF20021",
                &format!("Webhook validation failed for {address}: {why}."),
            );
        }
    }
    let mut audit = st.audit();
    audit.subs.insert(ct.clone(), SubStatus::Enabled);
    match webhook {
        Some((address, auth_id, expiration)) => {
            let now_ms = (crate::timefmt::now_unix() * 1_000.0) as i64;
            audit.webhooks.insert(
                ct.clone(),
                SimWebhook {
                    address,
                    auth_id,
                    expiration,
                    status: "enabled".into(),
                    notified_until_ms: now_ms,
                    failures: 0,
                },
            );
        }
        // A start without a webhook removes the one registered.
        None => {
            audit.webhooks.remove(&ct);
        }
    }
    let hook = webhook_json(audit.webhooks.get(&ct));
    json(serde_json::json!({"contentType": ct, "status": "enabled", "webhook": hook}).to_string())
}

/// `startTime`/`endTime` in the forms Microsoft accepts, UTC.
fn parse_window_time(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// The window a listing asks for, or why Microsoft would refuse it.
pub fn validate_window(
    start: Option<&str>,
    end: Option<&str>,
    now_ms: i64,
) -> Result<(i64, i64), String> {
    const DAY: i64 = 86_400_000;
    match (start, end) {
        (None, None) => Ok((now_ms - DAY, now_ms)),
        (Some(s), Some(e)) => {
            let (Some(s), Some(e)) = (parse_window_time(s), parse_window_time(e)) else {
                return Err(
                    "startTime and endTime must be valid dates (yyyy-MM-ddTHH:mm:ss)".into(),
                );
            };
            if e <= s {
                Err("endTime must be later than startTime".into())
            } else if e - s > DAY {
                Err("startTime and endTime must not be more than 24 hours apart".into())
            } else if s < now_ms - 7 * DAY {
                Err("startTime must not be more than 7 days in the past".into())
            } else {
                Ok((s, e))
            }
        }
        _ => Err("startTime and endTime must both be specified (or both omitted)".into()),
    }
}

async fn content(
    State(st): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    held(&st, |f| f.listing_hang).await;
    let (q, ct) = match typed_preamble(&st, &tenant, q, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now_ms = crate::timefmt::now_unix() as i64 * 1_000;
    let base = base_url(&headers);
    let (throttle_every, next_page_fail) = {
        let f = st.faults();
        (f.listing_429_every, f.next_page_fail_percent)
    };
    let mut audit = st.audit();
    if audit.opts.forbidden_types.contains(&ct) {
        return mgmt_error(
            StatusCode::UNAUTHORIZED,
            "AF10001",
            "The permission set (ActivityFeed.Read) sent in the request does not include the expected permission.",
        );
    }
    audit.listings += 1;
    if throttle_every > 0 && audit.listings % u64::from(throttle_every) == 0 {
        st.count_injected("listing_af429");
        let mut r = mgmt_error(
            StatusCode::TOO_MANY_REQUESTS,
            "AF429",
            "Too many requests. Method=ListContent, PublisherId=00000000-0000-0000-0000-000000000000",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    match audit.subs.get(&ct) {
        Some(SubStatus::Enabled) => {}
        Some(SubStatus::DisabledByAdmin) => {
            return mgmt_error(
                StatusCode::BAD_REQUEST,
                "AF20023",
                "The subscription was disabled by an admin.",
            )
        }
        None => {
            return mgmt_error(
                StatusCode::BAD_REQUEST,
                "AF20022",
                "No subscription found for the specified content type",
            )
        }
    }
    let start = url_param(&q, "startTime");
    let end = url_param(&q, "endTime");
    let (from, to) = match validate_window(start.as_deref(), end.as_deref(), now_ms) {
        Ok(w) => w,
        Err(why) => {
            audit.rejected_windows += 1;
            return mgmt_error(StatusCode::BAD_REQUEST, "AF20030", &why);
        }
    };
    let offset = match url_param(&q, "nextPage") {
        None => 0,
        Some(token) => match token
            .strip_prefix("sim")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => {
                return mgmt_error(
                    StatusCode::BAD_REQUEST,
                    "AF20031",
                    "Invalid nextPage Input: the token is not valid.",
                )
            }
        },
    };
    // A repeatable spread of the listings: a fixed share of continuation
    // pages fails, a different one on each attempt.
    if offset > 0 && mix(audit.listings) % 100 < u64::from(next_page_fail) {
        st.count_injected("next_page_503");
        return mgmt_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "AF50000",
            "An internal error occurred. Retry the request.",
        );
    }
    let all = audit.listable(&ct, from, to, now_ms);
    let size = audit.opts.page_size.max(1);
    let header_name = audit.opts.next_page_header.clone();
    let end_ix = (offset + size).min(all.len());
    let page: Vec<serde_json::Value> = all
        .get(offset..end_ix)
        .unwrap_or(&[])
        .iter()
        .map(|b| listing_item(b, &base, &tenant))
        .collect();
    let mut resp = json(serde_json::Value::Array(page).to_string());
    if end_ix < all.len() {
        // An absolute URL with every parameter of the request, as Microsoft sends it.
        let mut next = reqwest::Url::parse(&format!(
            "{base}/api/v1.0/{tenant}/activity/feed/subscriptions/content"
        ))
        .unwrap_or_else(|_| reqwest::Url::parse("http://127.0.0.1/").expect("literal URL"));
        {
            let mut qp = next.query_pairs_mut();
            qp.append_pair("contentType", &ct);
            if let (Some(s), Some(e)) = (&start, &end) {
                qp.append_pair("startTime", s).append_pair("endTime", e);
            }
            if let Some(p) = url_param(&q, "PublisherIdentifier") {
                qp.append_pair("PublisherIdentifier", &p);
            }
            qp.append_pair("nextPage", &format!("sim{end_ix}"));
        }
        if let (Ok(name), Ok(v)) = (
            axum::http::HeaderName::from_bytes(header_name.as_bytes()),
            HeaderValue::from_str(next.as_str()),
        ) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// SplitMix64's finaliser: a repeatable, well-spread value per request
/// number (consecutive failures as likely as in a random run).
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn blob(
    State(st): State<Arc<SimState>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if st.faults().management_hang {
        st.audit().blob_gets_held += 1;
    }
    if let Err(r) = preamble(&st, &tenant, &headers).await {
        return r;
    }
    let (every, delay) = {
        let f = st.faults();
        (f.blob_af429_every, f.blob_delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut audit = st.audit();
    audit.blob_gets += 1;
    if every > 0 && audit.blob_gets % u64::from(every) == 0 {
        st.count_injected("blob_af429");
        // Blob throttling arrives as HTTP 403 with AF429, without Retry-After.
        return mgmt_error(
            StatusCode::FORBIDDEN,
            "AF429",
            "Too many requests. Method=GetBlob, PublisherId=00000000-0000-0000-0000-000000000000",
        );
    }
    match audit.blob(&id) {
        None => mgmt_error(
            StatusCode::BAD_REQUEST,
            "AF20050",
            &format!("The specified content ({id}) doesn't exist."),
        ),
        Some(b) if b.expired => mgmt_error(
            StatusCode::BAD_REQUEST,
            "AF20051",
            &format!("Content requested with the key {id} has already expired. Content older than 7 days cannot be retrieved."),
        ),
        Some(b) => json(b.body.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_as_microsoft_validates_them() {
        let now = 1_800_000_000_000;
        let t = |unix_ms: i64| crate::activity::wire_time(unix_ms / 1_000);
        let day = 86_400_000;
        assert_eq!(validate_window(None, None, now), Ok((now - day, now)));
        assert_eq!(
            validate_window(Some(&t(now - day)), Some(&t(now)), now),
            Ok((now - day, now))
        );
        assert!(validate_window(Some(&t(now - day - 1_000)), Some(&t(now)), now).is_err());
        assert!(validate_window(Some(&t(now - 8 * day)), Some(&t(now - 7 * day)), now).is_err());
        assert!(validate_window(Some(&t(now)), None, now).is_err());
        assert!(validate_window(None, Some(&t(now)), now).is_err());
        assert!(validate_window(Some(&t(now)), Some(&t(now)), now).is_err());
        assert!(validate_window(Some("yesterday"), Some(&t(now)), now).is_err());
        assert_eq!(
            parse_window_time("2025-11-27T10:30"),
            parse_window_time("2025-11-27T10:30:00Z")
        );
        assert_eq!(
            parse_window_time("2025-11-27"),
            parse_window_time("2025-11-27T00:00:00")
        );
    }
}
