//! What a credential is ([`Credential`]: a token for an audience, however
//! obtained) and the v2 token endpoint's wire: the request forms every kind
//! posts and the answer (token or OAuth error) they all read.

use crate::secret::Secret;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
#[error("token request failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct AuthError {
    pub status: Option<u16>,
    /// OAuth error (`invalid_client`, …) when the server said one.
    pub code: Option<String>,
    pub message: String,
}

impl AuthError {
    pub(super) fn transport(e: impl std::fmt::Display) -> Self {
        AuthError {
            status: None,
            code: None,
            message: e.to_string(),
        }
    }
}

/// A token as a credential returned it.
pub struct IssuedToken {
    pub value: Secret,
    pub lifetime: Duration,
}

/// How a tenant obtains a token for an audience. One implementation per
/// credential kind (secret now; certificate, workload identity and managed
/// identity slot in here).
pub trait Credential: Send + Sync {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<IssuedToken, AuthError>>;

    /// How a failed request is tried again (default: Entra ID's token
    /// endpoint; managed identity has its platform's policy).
    fn retry(&self) -> super::retry::TokenRetry {
        super::retry::TokenRetry::Standard
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: NumOrString,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(u64),
    Str(String),
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
    error_description: Option<String>,
}

/// POST a token request form and read the answer (any credential kind that
/// talks to the v2 token endpoint).
pub async fn post_grant(
    http: &reqwest::Client,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<IssuedToken, AuthError> {
    let resp = http
        .post(token_url)
        .form(form)
        .send()
        .await
        .map_err(AuthError::transport)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(AuthError::transport)?;
    parse_token_response(status, &body)
}

/// Parse the token endpoint's answer (success or OAuth error body).
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<IssuedToken, AuthError> {
    if (200..300).contains(&status) {
        let t: TokenResponse = serde_json::from_slice(body).map_err(|e| AuthError {
            status: Some(status),
            code: None,
            message: format!("malformed token response: {e}"),
        })?;
        let secs = match t.expires_in {
            NumOrString::Num(n) => n,
            NumOrString::Str(s) => s.parse().map_err(|_| AuthError {
                status: Some(status),
                code: None,
                message: format!("malformed expires_in {s:?}"),
            })?,
        };
        if t.access_token.is_empty() {
            return Err(AuthError {
                status: Some(status),
                code: None,
                message: "empty access_token".into(),
            });
        }
        return Ok(IssuedToken {
            value: Secret::new(t.access_token),
            // Microsoft issues 60–90 min tokens (24 h at most); a larger
            // value is a broken answer and must not overflow `Instant + lifetime`.
            lifetime: Duration::from_secs(secs.min(MAX_TOKEN_LIFETIME.as_secs())),
        });
    }
    let (code, message) = match serde_json::from_slice::<OAuthError>(body) {
        Ok(e) => (
            e.error,
            // First line only: AADSTS descriptions carry trace ids after it.
            e.error_description
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        Err(_) => (
            None,
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    };
    Err(AuthError {
        status: Some(status),
        message: match &code {
            Some(c) => format!("{c}: {message}"),
            None => message,
        },
        code,
    })
}

/// The longest token lifetime believed.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// `client_assertion_type` of a JWT bearer assertion (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `{login}/{tenant}/oauth2/v2.0/token`.
pub fn token_url(login_root: &str, tenant_id: &str) -> String {
    format!(
        "{}/{}/oauth2/v2.0/token",
        login_root.trim_end_matches('/'),
        tenant_id
    )
}

/// POST a client-credentials grant that proves the client with an assertion
/// (certificate JWT or federated token).
pub async fn assertion_grant(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    assertion: &str,
    audience: &str,
) -> Result<IssuedToken, AuthError> {
    let scope = format!("{}/.default", audience.trim_end_matches('/'));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
        ("scope", scope.as_str()),
    ];
    post_grant(http, token_url, &form).await
}

/// A failure before or without an HTTP status (file, transport).
pub fn local_error(message: impl Into<String>) -> AuthError {
    AuthError {
        status: None,
        code: None,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oauth_answers() {
        let ok = parse_token_response(
            200,
            br#"{"token_type":"Bearer","expires_in":"3599","access_token":"abc"}"#,
        )
        .unwrap();
        assert_eq!(ok.lifetime, Duration::from_secs(3599));
        let e = parse_token_response(401, br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#)
            .err()
            .unwrap();
        assert_eq!(e.code.as_deref(), Some("invalid_client"));
        assert_eq!(e.to_string(), "token request failed (HTTP 401): invalid_client: AADSTS7000215: Invalid client secret provided.");
        assert!(parse_token_response(200, b"{garbage").is_err());
        let huge = parse_token_response(
            200,
            br#"{"expires_in":18446744073709551615,"access_token":"abc"}"#,
        )
        .unwrap();
        assert_eq!(huge.lifetime, MAX_TOKEN_LIFETIME);
        let huge = parse_token_response(
            200,
            br#"{"expires_in":"18446744073709551615","access_token":"abc"}"#,
        )
        .unwrap();
        assert_eq!(huge.lifetime, MAX_TOKEN_LIFETIME);
    }
}
