//! Managed identity token endpoints, in their published forms:
//! - Azure IMDS: `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
//!   with `Metadata: true`; answers `expires_in`/`expires_on` as strings;
//!   while its host is updated (`imds_updating`), 404 and then 410.
//! - App Service / Container Apps: `GET /msi/token?api-version=2019-08-01&resource=…`
//!   with `X-IDENTITY-HEADER`; answers `expires_on` (Unix seconds, string).

use super::token::issue;
use super::{url_param, SimState};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/msi/token", get(app_service))
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn imds_error(description: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": "invalid_request", "error_description": description}),
    )
}

async fn imds(
    State(st): State<Arc<SimState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = q.unwrap_or_default();
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return imds_error("Required metadata header not specified");
    }
    if url_param(&q, "api-version").is_none() {
        return imds_error("Required query variable 'api-version' is missing");
    }
    let Some(resource) = url_param(&q, "resource") else {
        return imds_error("Required query variable 'resource' is missing");
    };
    let updating = st.opts.imds_updating;
    let since = st.started.elapsed();
    if since < updating {
        // Azure IMDS during a host update: first the identity is not found,
        // then the endpoint is gone until the update completes.
        let (status, what) = match since < updating / 3 {
            true => (
                StatusCode::NOT_FOUND,
                "Identity not found: IMDS is being updated",
            ),
            false => (StatusCode::GONE, "IMDS is undergoing updates"),
        };
        return json(
            status,
            serde_json::json!({"error": "unavailable", "error_description": what}),
        );
    }
    let (token, secs) = issue(&st, resource.trim_end_matches('/'));
    let now = crate::timefmt::now_unix() as u64;
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": token,
            "client_id": url_param(&q, "client_id").unwrap_or_else(|| st.opts.client_id.clone()),
            "expires_in": secs.to_string(),
            "expires_on": (now + secs).to_string(),
            "ext_expires_in": secs.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}

async fn app_service(
    State(st): State<Arc<SimState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = q.unwrap_or_default();
    let sent = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if sent != Some(st.opts.identity_header.as_str()) {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER missing or wrong."}),
        );
    }
    if url_param(&q, "api-version").as_deref() != Some("2019-08-01") {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"statusCode": 400, "message": "api-version must be 2019-08-01."}),
        );
    }
    let Some(resource) = url_param(&q, "resource") else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"statusCode": 400, "message": "resource is required."}),
        );
    };
    let (token, secs) = issue(&st, resource.trim_end_matches('/'));
    let now = crate::timefmt::now_unix() as u64;
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": token,
            "expires_on": (now + secs).to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": url_param(&q, "client_id").unwrap_or_else(|| st.opts.client_id.clone()),
        }),
    )
}
