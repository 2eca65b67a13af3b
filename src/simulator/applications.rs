//! Graph `GET /v1.0/applications(appId='{id}')?$select=passwordCredentials,keyCredentials`:
//! the app registration's client secrets and certificates, as Graph shapes
//! them, for the `app_credentials` collector. `Faults::app_forbidden` answers
//! 403 `Authorization_RequestDenied`, as Graph does without `Application.Read.All`.

use super::faults::graph_error;
use super::graph::gate;
use super::SimState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::sync::Arc;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new().route("/v1.0/{entity}", get(application))
}

/// A `passwordCredential` or `keyCredential` (Graph's field names; the
/// certificate-only fields are left out of secrets).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimCredential {
    pub custom_key_identifier: Option<String>,
    pub display_name: String,
    pub end_date_time: String,
    pub key_id: String,
    pub start_date_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
}

/// The simulated app registration's credentials.
#[derive(Debug, Clone, Default)]
pub struct SimApplication {
    pub password_credentials: Vec<SimCredential>,
    pub key_credentials: Vec<SimCredential>,
}

const DAY: i64 = 86_400;

/// Per scenario: `healthy` has nothing expiring within 30 days; `incident`
/// a secret 20 days from expiry (the warning); `outage` one 5 days from it
/// (critical). Each also has a long-lived certificate, and an expired secret
/// that was never removed (it must not alert).
pub fn for_scenario(name: &str, base: i64) -> SimApplication {
    let ts = crate::timefmt::rfc3339;
    let secret_days = match name {
        "incident" => 20,
        "outage" => 5,
        _ => 300,
    };
    let secret = |key_id: &str, display: &str, start: i64, end: i64| SimCredential {
        custom_key_identifier: None,
        display_name: display.into(),
        end_date_time: ts(end),
        key_id: key_id.into(),
        start_date_time: ts(start),
        hint: Some("sim".into()),
        kind: None,
        usage: None,
    };
    SimApplication {
        password_credentials: vec![
            secret(
                "5e0b7c1a-2f4d-4e6a-9b8c-0d1e2f3a4b5c",
                "m365-exporter",
                base - 345 * DAY,
                base + secret_days * DAY,
            ),
            secret(
                "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                "m365-exporter (old, expired)",
                base - 400 * DAY,
                base - 10 * DAY,
            ),
        ],
        key_credentials: vec![SimCredential {
            custom_key_identifier: Some("3A1F0C9E8B7D6A5F4E3D2C1B0A9F8E7D6C5B4A39".into()),
            display_name: "CN=m365-exporter".into(),
            end_date_time: ts(base + 400 * DAY),
            key_id: "c4d5e6f7-0819-4a2b-9c3d-4e5f60718293".into(),
            start_date_time: ts(base - 330 * DAY),
            hint: None,
            kind: Some("AsymmetricX509Cert".into()),
            usage: Some("Verify".into()),
        }],
    }
}

async fn application(
    State(st): State<Arc<SimState>>,
    Path(entity): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = gate(&st, &headers).await {
        return r;
    }
    let Some(app_id) = entity
        .strip_prefix("applications(appId='")
        .and_then(|r| r.strip_suffix("')"))
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment '{entity}'."),
        );
    };
    if st.faults().app_forbidden {
        return graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    if !app_id.eq_ignore_ascii_case(&st.opts.client_id) {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{app_id}' does not exist or one of its queried reference-property objects are not present."),
        );
    }
    let app = st.scenario().application.clone();
    let body = serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications(passwordCredentials,keyCredentials)/$entity",
        "passwordCredentials": app.password_credentials,
        "keyCredentials": app.key_credentials,
    });
    (
        [(
            header::CONTENT_TYPE,
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
        )],
        body.to_string(),
    )
        .into_response()
}
