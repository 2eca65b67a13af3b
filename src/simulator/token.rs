//! `POST /{tenant}/oauth2/v2.0/token`: the v2 client-credentials grant.

use super::SimState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Router};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Issued {
    /// The scope's resource, e.g. `https://graph.microsoft.com`.
    pub audience: String,
    pub expires: Instant,
}

pub fn routes() -> Router<Arc<SimState>> {
    Router::new().route("/{tenant}/oauth2/v2.0/token", post(token))
}

fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = serde_json::json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: 00000000-0000-0000-0000-000000000000\r\nTimestamp: {}", crate::timefmt::rfc3339(crate::timefmt::now_unix() as i64)),
        "error_codes": [code],
        "timestamp": crate::timefmt::rfc3339(crate::timefmt::now_unix() as i64),
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn token(
    State(st): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    {
        let mut f = st.faults();
        if f.token_error_next > 0 {
            f.token_error_next -= 1;
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                50001,
                "The service is temporarily unavailable.",
            );
        }
    }
    let o = &st.opts;
    if tenant != o.tenant_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if form.get("client_id") != Some(&o.client_id) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    if form.get("client_secret") != Some(&o.client_secret) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    let Some(audience) = form.get("scope").and_then(|s| s.strip_suffix("/.default")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.");
    };
    let value = format!("sim.{}", uuid::Uuid::new_v4().simple());
    st.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(
        value.clone(),
        Issued {
            audience: audience.to_string(),
            expires: Instant::now() + o.token_lifetime,
        },
    );
    let secs = st
        .faults()
        .token_expires_in
        .unwrap_or(o.token_lifetime.as_secs());
    let body = serde_json::json!({"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": value});
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// Whether the request carries a live token this simulator issued.
pub fn bearer_ok(st: &SimState, headers: &HeaderMap) -> bool {
    let Some(tok) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    st.tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(tok)
        .is_some_and(|i| Instant::now() < i.expires)
}
