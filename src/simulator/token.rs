//! `POST /{tenant}/oauth2/v2.0/token`: the v2 client-credentials grant, with
//! a client secret, a certificate client assertion (verified against the
//! configured certificate) or a federated token (compared with the
//! configured value); and `GET /{tenant}/v2.0/.well-known/openid-configuration`,
//! the discovery document whose `issuer` names the tenant's GUID.

use super::SimState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
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

/// Check a certificate JWT assertion (signature with the configured
/// certificate's key, thumbprint, claims) or a federated token; on refusal
/// the AADSTS code and description Entra ID would send.
fn verify_assertion(st: &SimState, token_url: &str, assertion: &str) -> Result<(), (u32, String)> {
    use crate::certificate::{parse_certificate, thumbprints, AssertionClaims};
    let o = &st.opts;
    let refuse = |code: u32, d: &str| Err((code, d.to_string()));
    let header = match jsonwebtoken::decode_header(assertion) {
        Ok(h) if h.x5t.is_some() || h.x5t_s256.is_some() => h,
        _ => {
            return match &o.federated_token {
                Some(expected) if expected == assertion => Ok(()),
                Some(_) => refuse(
                    70021,
                    "No matching federated identity record found for presented assertion.",
                ),
                None => refuse(700027, "Client assertion failed signature validation."),
            }
        }
    };
    // Entra's pages document two pairs: PS256 with x5t#S256 (current) and
    // RS256 with x5t (older); anything else is refused.
    if !crate::certificate::documented_pair(
        header.alg,
        header.x5t.is_some(),
        header.x5t_s256.is_some(),
    ) {
        return refuse(
            700027,
            &format!(
                "Client assertion failed signature validation: algorithm {:?} with {} is not a documented pair (PS256 with x5t#S256, or RS256 with x5t).",
                header.alg,
                match (header.x5t.is_some(), header.x5t_s256.is_some()) {
                    (true, true) => "x5t and x5t#S256",
                    (true, false) => "x5t",
                    _ => "x5t#S256",
                }
            ),
        );
    }
    let Some(pem) = &o.client_certificate else {
        return refuse(700027, "Client assertion contains an invalid signature. No certificate is registered for the application.");
    };
    // Like an app registration, the simulator may hold several certificates
    // (rotation); the assertion's thumbprint picks one.
    let registered = pem::parse_many(pem.as_bytes()).unwrap_or_default();
    let cert = registered
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .filter_map(|b| parse_certificate(pem::encode(b).as_bytes()).ok())
        .find(|c| {
            let (x5t, x5t_s256) = thumbprints(&c.der);
            match (&header.x5t_s256, &header.x5t) {
                (Some(s256), _) => *s256 == x5t_s256,
                (None, Some(t)) => *t == x5t,
                (None, None) => false,
            }
        });
    let Some(cert) = cert else {
        return refuse(
            700027,
            "Client assertion failed signature validation. The key was not found.",
        );
    };
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[token_url]);
    v.set_issuer(&[o.client_id.as_str()]);
    v.sub = Some(o.client_id.clone());
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    let claims = match jsonwebtoken::decode::<AssertionClaims>(assertion, &cert.public_key, &v) {
        Ok(d) => d.claims,
        Err(e) => {
            return refuse(
                700027,
                &format!("Client assertion failed signature validation: {e}"),
            )
        }
    };
    let now = crate::timefmt::now_unix() as i64;
    if claims.jti.is_empty() || claims.exp - now > 600 + 60 {
        return refuse(
            700024,
            "Client assertion is not within its valid time range.",
        );
    }
    Ok(())
}

/// Record and answer a freshly issued token for `audience`.
pub fn issue(st: &SimState, audience: &str) -> (String, u64) {
    let value = format!("sim.{}", uuid::Uuid::new_v4().simple());
    st.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(
        value.clone(),
        Issued {
            audience: audience.to_string(),
            expires: Instant::now() + st.opts.token_lifetime,
        },
    );
    (value, st.opts.token_lifetime.as_secs())
}

async fn token(
    State(st): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
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
    if !known_tenant(&st, &tenant) {
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
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str)
            != Some(crate::auth::grant::JWT_BEARER)
        {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        let token_url = format!("{}/{tenant}/oauth2/v2.0/token", super::base_url(&headers));
        if let Err((code, description)) = verify_assertion(&st, &token_url, assertion) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                code,
                &description,
            );
        }
    } else if form.get("client_secret") != Some(&o.client_secret) {
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
    let (value, secs) = issue(&st, audience);
    let secs = st.faults().token_expires_in.unwrap_or(secs);
    let body = serde_json::json!({"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": value});
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// Whether tokens are issued for `tenant`: the simulated tenant by GUID or
/// domain, or (with `any_tenant`) any GUID or domain.
fn known_tenant(st: &SimState, tenant: &str) -> bool {
    let o = &st.opts;
    tenant.eq_ignore_ascii_case(&o.tenant_id)
        || tenant.eq_ignore_ascii_case(&o.tenant_domain)
        || (o.any_tenant && (crate::config::is_guid(tenant) || tenant.contains('.')))
}

/// The OpenID Connect discovery document of the v2.0 endpoint, as Entra ID
/// serves it (the fields a client reads; `issuer` and `token_endpoint` name
/// the tenant GUID whichever name was asked). With `any_tenant`, a domain
/// is the simulated tenant's.
async fn discovery(
    State(st): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if st.faults().discovery_down {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            50001,
            "The service is temporarily unavailable.",
        );
    }
    if !known_tenant(&st, &tenant) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    let guid = match crate::config::is_guid(&tenant) {
        true => tenant.to_ascii_lowercase(),
        false => st.opts.tenant_id.clone(),
    };
    let base = super::base_url(&headers);
    let body = serde_json::json!({
        "token_endpoint": format!("{base}/{guid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{guid}/discovery/v2.0/keys"),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "issuer": format!("https://login.microsoftonline.com/{guid}/v2.0"),
        "request_uri_parameter_supported": false,
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    });
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
