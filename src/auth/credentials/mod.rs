//! The credential kinds behind [`crate::auth::Credential`]: client secret,
//! certificate (JWT client assertion), workload identity (federated token
//! file) and managed identity (IMDS, App Service / Container Apps).
//!
//! [`build`] turns a tenant's configured credential into one of them;
//! [`crate::auth::TokenProvider`] caches whatever they return.

pub mod certificate;
pub mod federated;
pub mod managed;

use crate::auth::{
    post_grant, AuthError, ClientSecretCredential, Credential, IssuedToken, SecretSource,
};
use crate::config::{Credential as CredConfig, TenantConfig};
use crate::metrics::Live;
use std::sync::Arc;

pub use certificate::{CertificateCredential, CertificateMaterial};
pub use federated::FederatedTokenCredential;
pub use managed::{ManagedIdentityCredential, MiEndpoint};

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

/// The credential a tenant's configuration names.
pub fn build(t: &TenantConfig, live: Arc<Live>) -> Arc<dyn Credential> {
    let secret = |source| {
        Arc::new(ClientSecretCredential::new(
            &t.endpoints.login,
            &t.tenant_id,
            &t.client_id,
            source,
        )) as Arc<dyn Credential>
    };
    match &t.credential {
        CredConfig::ClientSecret(s) => secret(SecretSource::Inline(s.clone())),
        CredConfig::ClientSecretFile(p) => secret(SecretSource::File(p.clone())),
        CredConfig::ClientCertificate(p) => Arc::new(CertificateCredential::new(
            &t.name,
            token_url(&t.endpoints.login, &t.tenant_id),
            &t.client_id,
            p.clone(),
            live,
        )),
        CredConfig::FederatedTokenFile(p) => Arc::new(FederatedTokenCredential {
            token_url: token_url(&t.endpoints.login, &t.tenant_id),
            client_id: t.client_id.clone(),
            path: p.clone(),
        }),
        CredConfig::ManagedIdentity { client_id } => Arc::new(ManagedIdentityCredential::new(
            MiEndpoint::from_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty())),
            client_id.clone(),
        )),
    }
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
