//! Client secret credential: the secret inline, or read from its file at
//! every token request (a rotated secret is used without restart).

use crate::auth::grant::{post_grant, token_url, AuthError, Credential, IssuedToken};
use crate::secret::Secret;
use futures::future::BoxFuture;
use std::path::PathBuf;

/// Where the client secret lives.
pub enum SecretSource {
    Inline(Secret),
    /// Read on each token request so a rotated secret is used without restart.
    File(PathBuf),
}

impl SecretSource {
    fn read(&self) -> Result<Secret, AuthError> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map(|s| Secret::new(s.trim()))
                .map_err(|e| AuthError {
                    status: None,
                    code: None,
                    message: format!("cannot read client_secret_file {}: {e}", p.display()),
                }),
        }
    }
}

pub struct ClientSecretCredential {
    pub token_url: String,
    pub client_id: String,
    pub secret: SecretSource,
}

impl ClientSecretCredential {
    /// `{login}/{tenant}/oauth2/v2.0/token`.
    pub fn new(login_root: &str, tenant_id: &str, client_id: &str, secret: SecretSource) -> Self {
        ClientSecretCredential {
            token_url: token_url(login_root, tenant_id),
            client_id: client_id.to_string(),
            secret,
        }
    }
}

impl Credential for ClientSecretCredential {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<IssuedToken, AuthError>> {
        Box::pin(async move {
            let secret = self.secret.read()?;
            let scope = format!("{}/.default", audience.trim_end_matches('/'));
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", secret.expose()),
                ("scope", scope.as_str()),
            ];
            post_grant(http, &self.token_url, &form).await
        })
    }
}
