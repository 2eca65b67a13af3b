//! Fault switches. One-shot counters fail the next N data requests; the
//! `chaos` pattern fails a fixed, repeatable share of all of them.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Next N data requests: 429 with `Retry-After: retry_after_secs`.
    pub throttle_next: u32,
    pub retry_after_secs: u64,
    /// Next N data requests: 503.
    pub server_error_next: u32,
    /// Next N data requests: 200 with a truncated JSON body.
    pub malformed_next: u32,
    /// Every data request waits this long first.
    pub slow: Duration,
    /// Periodic pattern on all data requests (`simulator --faults`):
    /// every 7th throttled, every 11th 503, every 13th malformed.
    pub chaos: bool,
    /// Next N token requests: 503.
    pub token_error_next: u32,
    /// Management API: every Nth blob GET answers HTTP 403 AF429 (0: never).
    pub blob_af429_every: u32,
    /// Management API: every Nth content listing answers 429 with
    /// `Retry-After: 1` (0: never).
    pub listing_429_every: u32,
    /// Management API: every blob GET waits this long first.
    pub blob_delay: Duration,
    /// Management API: this share (percent, 0–100) of continuation pages
    /// (listings with a next-page token) answer 503, in a repeatable
    /// pattern spread over the requests.
    pub next_page_fail_percent: u32,
    /// Next N data requests: the connection breaks mid-body (headers
    /// promise more than is sent, then the stream errors: a reset).
    pub reset_next: u32,
    /// Next N data requests: never answered (the client's timeout must fire).
    pub hang_next: u32,
    /// Next N data requests: 200 with an HTML page instead of JSON.
    pub wrong_content_type_next: u32,
    /// Next N data requests: 200 with an endless body (the client's size cap must fire).
    pub huge_body_next: u32,
    /// Every data request answers 400 with an error code never seen before
    /// (`Unknown{n}`): the label space must stay bounded.
    pub unknown_error_codes: bool,
    /// Token answers say this `expires_in` (the token itself lives as usual).
    pub token_expires_in: Option<u64>,
    /// Graph `applications(appId=…)`: 403 Authorization_RequestDenied, as
    /// without the permission Application.Read.All.
    pub app_forbidden: bool,
    /// Management API: every call hangs (no answer) while this is set.
    pub management_hang: bool,
    /// Management API: content listings hang (no answer) while this is set.
    pub listing_hang: bool,
    /// Management API: `subscriptions/start` hangs (no answer) while this is set.
    pub start_hang: bool,
    /// Webhooks: every Nth notification is never sent (0: none missing).
    pub webhook_drop_every: u32,
    /// Webhooks: every notification is sent twice.
    pub webhook_duplicate: bool,
    /// Webhooks: every notification is sent this late.
    pub webhook_delay: Duration,
    /// Webhooks: notifications carry a wrong `Webhook-AuthID`.
    pub webhook_wrong_auth: bool,
    /// The OpenID discovery document answers 503 (the authority out of
    /// reach when a domain tenant id is resolved).
    pub discovery_down: bool,
}

/// What to do with one data request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    None,
    Throttle(u64),
    ServerError,
    Malformed,
    Reset,
    Hang,
    WrongContentType,
    HugeBody,
    UnknownCode(u64),
}

impl Injected {
    /// The kind's name in [`super::SimState::injected`] (none for `None`).
    pub fn kind(self) -> Option<&'static str> {
        Some(match self {
            Injected::None => return None,
            Injected::Throttle(_) => "throttled_429",
            Injected::ServerError => "server_error_503",
            Injected::Malformed => "truncated_body",
            Injected::Reset => "connection_reset",
            Injected::Hang => "hang",
            Injected::WrongContentType => "wrong_content_type",
            Injected::HugeBody => "huge_body",
            Injected::UnknownCode(_) => "unknown_error_code",
        })
    }
}

impl Faults {
    /// Decide for request number `n` (1-based), consuming one-shot counters.
    pub fn next(&mut self, n: u64) -> Injected {
        if self.throttle_next > 0 {
            self.throttle_next -= 1;
            return Injected::Throttle(self.retry_after_secs);
        }
        if self.server_error_next > 0 {
            self.server_error_next -= 1;
            return Injected::ServerError;
        }
        if self.malformed_next > 0 {
            self.malformed_next -= 1;
            return Injected::Malformed;
        }
        for (counter, inj) in [
            (&mut self.reset_next, Injected::Reset),
            (&mut self.hang_next, Injected::Hang),
            (
                &mut self.wrong_content_type_next,
                Injected::WrongContentType,
            ),
            (&mut self.huge_body_next, Injected::HugeBody),
        ] {
            if *counter > 0 {
                *counter -= 1;
                return inj;
            }
        }
        if self.unknown_error_codes {
            return Injected::UnknownCode(n);
        }
        if self.chaos {
            if n % 7 == 3 {
                return Injected::Throttle(1);
            }
            if n % 11 == 5 {
                return Injected::ServerError;
            }
            if n % 13 == 7 {
                return Injected::Malformed;
            }
        }
        Injected::None
    }
}

/// Graph-style error body.
pub fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message, "innerError": {"date": crate::timefmt::rfc3339(crate::timefmt::now_unix() as i64), "request-id": "00000000-0000-0000-0000-000000000000"}}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The response for an injected fault, if any (Graph flavour).
pub fn respond(inj: Injected) -> Option<Response> {
    match inj {
        Injected::None => None,
        Injected::Throttle(secs) => {
            let mut r = graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests.",
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Some(r)
        }
        Injected::ServerError => Some(graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Service is temporarily unavailable.",
        )),
        Injected::Malformed => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"value\": [{\"id\": \"trunc",
            )
                .into_response(),
        ),
        Injected::Reset => {
            let chunks: Vec<Result<&'static [u8], std::io::Error>> = vec![
                Ok(b"{\"value\": [{\"id\": \"" as &[u8]),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset",
                )),
            ];
            let mut r = Body::from_stream(futures::stream::iter(chunks)).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("4096"));
            Some(r)
        }
        Injected::Hang => Some(
            Body::from_stream(futures::stream::once(async {
                tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
                Ok::<_, std::io::Error>(bytes::Bytes::new())
            }))
            .into_response(),
        ),
        Injected::WrongContentType => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!doctype html><html><body><h1>Sign in to your account</h1></body></html>",
            )
                .into_response(),
        ),
        Injected::HugeBody => {
            // 1 GiB of JSON-looking bytes, produced lazily.
            let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
            let stream = futures::stream::iter(
                std::iter::repeat_n(chunk, 16 * 1024).map(Ok::<_, std::io::Error>),
            );
            let mut r = Body::from_stream(stream).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Some(r)
        }
        Injected::UnknownCode(n) => Some(graph_error(
            StatusCode::BAD_REQUEST,
            &format!("Unknown{n}"),
            "A code nobody documented.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shots_then_pattern() {
        let mut f = Faults {
            throttle_next: 1,
            retry_after_secs: 2,
            server_error_next: 1,
            chaos: true,
            ..Default::default()
        };
        assert_eq!(f.next(1), Injected::Throttle(2));
        assert_eq!(f.next(2), Injected::ServerError);
        assert_eq!(f.next(3), Injected::Throttle(1));
        assert_eq!(f.next(4), Injected::None);
        assert_eq!(f.next(5), Injected::ServerError);
        assert_eq!(f.next(7), Injected::Malformed);
        assert_eq!(Injected::Malformed.kind(), Some("truncated_body"));
        assert_eq!(Injected::None.kind(), None);
    }
}
