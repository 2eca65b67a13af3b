//! Managed identity: the platform's local token endpoint, chosen as the Azure
//! SDKs choose it:
//! - App Service / Container Apps / Functions when `IDENTITY_ENDPOINT` and
//!   `IDENTITY_HEADER` are set: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…`
//!   with the header `X-IDENTITY-HEADER: {IDENTITY_HEADER}`;
//! - else Azure IMDS: `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
//!   with `Metadata: true`. `AZURE_POD_IDENTITY_AUTHORITY_HOST` (the Azure
//!   SDKs' override) replaces the IMDS root; the tests point it at the simulator.
//!
//! `client_id` selects a user-assigned identity; without it the system-assigned
//! one answers. Failed requests are retried as azure-identity retries them
//! ([`TokenRetry::Imds`], [`TokenRetry::AppService`]): IMDS answers 404 and
//! 410 for minutes while its host is updated. These endpoints are local to the host: requests never go
//! through an HTTP proxy.

use crate::auth::grant::{local_error, parse_token_response, AuthError, Credential, IssuedToken};
use crate::auth::retry::TokenRetry;
use crate::secret::Secret;
use crate::timefmt::now_unix;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::time::Duration;

pub const IMDS_ROOT: &str = "http://169.254.169.254";
pub const IMDS_API_VERSION: &str = "2018-02-01";
pub const APP_SERVICE_API_VERSION: &str = "2019-08-01";
/// Environment variable overriding the IMDS root (the Azure SDKs' name).
pub const IMDS_OVERRIDE_ENV: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";

#[derive(Debug, Clone)]
pub enum MiEndpoint {
    Imds { root: String },
    AppService { endpoint: String, header: Secret },
}

impl MiEndpoint {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> MiEndpoint {
        match (get("IDENTITY_ENDPOINT"), get("IDENTITY_HEADER")) {
            (Some(endpoint), Some(header)) => MiEndpoint::AppService {
                endpoint,
                header: Secret::new(header),
            },
            _ => MiEndpoint::Imds {
                root: get(IMDS_OVERRIDE_ENV)
                    .map(|r| r.trim_end_matches('/').to_string())
                    .unwrap_or_else(|| IMDS_ROOT.to_string()),
            },
        }
    }
}

pub struct ManagedIdentityCredential {
    endpoint: MiEndpoint,
    client_id: Option<String>,
    http: reqwest::Client,
}

impl ManagedIdentityCredential {
    pub fn new(endpoint: MiEndpoint, client_id: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("m365-exporter/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        ManagedIdentityCredential {
            endpoint,
            client_id,
            http,
        }
    }

    pub fn endpoint(&self) -> &MiEndpoint {
        &self.endpoint
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(u64),
    Str(String),
}

impl NumOrString {
    fn get(&self) -> Option<u64> {
        match self {
            NumOrString::Num(n) => Some(*n),
            NumOrString::Str(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct MiToken {
    access_token: String,
    expires_in: Option<NumOrString>,
    /// Unix seconds (App Service 2019-08-01 sends only this).
    expires_on: Option<NumOrString>,
}

/// IMDS sends `expires_in`, App Service `expires_on`; both as strings.
pub fn parse_mi_response(status: u16, body: &[u8]) -> Result<IssuedToken, AuthError> {
    if !(200..300).contains(&status) {
        return parse_token_response(status, body);
    }
    let malformed = |m: String| AuthError {
        status: Some(status),
        code: None,
        message: format!("malformed managed identity token response: {m}"),
    };
    let t: MiToken = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    let lifetime = match (
        t.expires_in.as_ref().and_then(NumOrString::get),
        t.expires_on.as_ref().and_then(NumOrString::get),
    ) {
        (Some(secs), _) => secs,
        (None, Some(on)) => (on as f64 - now_unix()).max(0.0) as u64,
        (None, None) => return Err(malformed("no expires_in or expires_on".into())),
    };
    if t.access_token.is_empty() {
        return Err(malformed("empty access_token".into()));
    }
    Ok(IssuedToken {
        value: Secret::new(t.access_token),
        lifetime: Duration::from_secs(lifetime),
    })
}

impl Credential for ManagedIdentityCredential {
    fn retry(&self) -> TokenRetry {
        match self.endpoint {
            MiEndpoint::Imds { .. } => TokenRetry::Imds,
            MiEndpoint::AppService { .. } => TokenRetry::AppService,
        }
    }

    fn fetch<'a>(
        &'a self,
        _shared: &'a reqwest::Client,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<IssuedToken, AuthError>> {
        Box::pin(async move {
            let resource = audience.trim_end_matches('/');
            let req = match &self.endpoint {
                MiEndpoint::Imds { root } => self
                    .http
                    .get(format!("{root}/metadata/identity/oauth2/token"))
                    .header("Metadata", "true")
                    .query(&[("api-version", IMDS_API_VERSION), ("resource", resource)]),
                MiEndpoint::AppService { endpoint, header } => self
                    .http
                    .get(endpoint)
                    .header("X-IDENTITY-HEADER", header.expose())
                    .query(&[
                        ("api-version", APP_SERVICE_API_VERSION),
                        ("resource", resource),
                    ]),
            };
            let req = match &self.client_id {
                Some(id) => req.query(&[("client_id", id.as_str())]),
                None => req,
            };
            let resp = req
                .send()
                .await
                .map_err(|e| local_error(format!("managed identity endpoint: {e}")))?;
            let status = resp.status().as_u16();
            let body = resp
                .bytes()
                .await
                .map_err(|e| local_error(format!("managed identity endpoint: {e}")))?;
            parse_mi_response(status, &body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_like_the_azure_sdks() {
        let imds = MiEndpoint::from_env(|_| None);
        assert!(matches!(imds, MiEndpoint::Imds { root } if root == IMDS_ROOT));
        let overridden = MiEndpoint::from_env(|k| {
            (k == IMDS_OVERRIDE_ENV).then(|| "http://127.0.0.1:9/".to_string())
        });
        assert!(matches!(overridden, MiEndpoint::Imds { root } if root == "http://127.0.0.1:9"));
        let app = MiEndpoint::from_env(|k| match k {
            "IDENTITY_ENDPOINT" => Some("http://127.0.0.1:8/msi/token".into()),
            "IDENTITY_HEADER" => Some("h".into()),
            _ => None,
        });
        assert!(matches!(app, MiEndpoint::AppService { .. }));
        // Only one of the pair: IMDS, as the SDKs do.
        let half = MiEndpoint::from_env(|k| {
            (k == "IDENTITY_ENDPOINT").then(|| "http://127.0.0.1:8/msi/token".to_string())
        });
        assert!(matches!(half, MiEndpoint::Imds { .. }));
    }

    #[test]
    fn parses_both_response_forms() {
        let imds = parse_mi_response(
            200,
            br#"{"access_token":"a","expires_in":"3599","expires_on":"1","resource":"r","token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(imds.lifetime, Duration::from_secs(3599));
        let on = (now_unix() as u64 + 600).to_string();
        let app = parse_mi_response(
            200,
            format!(
                r#"{{"access_token":"a","expires_on":"{on}","resource":"r","token_type":"Bearer"}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(
            app.lifetime <= Duration::from_secs(600) && app.lifetime >= Duration::from_secs(590)
        );
        assert!(parse_mi_response(200, br#"{"access_token":"a"}"#).is_err());
        let e = parse_mi_response(400, br#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#).err().unwrap();
        assert_eq!(e.code.as_deref(), Some("invalid_request"));
    }
}
