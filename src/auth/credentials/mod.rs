//! The credential kinds behind [`crate::auth::Credential`]: client secret,
//! certificate (JWT client assertion), workload identity (federated token
//! file) and managed identity (IMDS, App Service / Container Apps).
//!
//! [`build`] turns a tenant's configured credential into one of them;
//! [`crate::auth::TokenProvider`] caches whatever they return.

pub mod certificate;
pub mod federated;
pub mod managed;
pub mod secret;

use crate::auth::grant::{token_url, Credential};
use crate::config::{Credential as CredConfig, TenantConfig};
use crate::metrics::Live;
use std::sync::Arc;

pub use certificate::CertificateCredential;
pub use federated::FederatedTokenCredential;
pub use managed::{ManagedIdentityCredential, MiEndpoint};
pub use secret::{ClientSecretCredential, SecretSource};

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
