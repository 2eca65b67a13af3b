//! Workload identity federation (AKS workload identity and the like): a
//! token projected into a file by the platform is sent as the
//! `client_assertion`. The file is read afresh for every token request: the
//! platform rotates it (hourly on AKS) and an old one is refused.

use crate::auth::grant::{assertion_grant, local_error, AuthError, Credential, IssuedToken};
use futures::future::BoxFuture;
use std::path::PathBuf;

pub struct FederatedTokenCredential {
    pub token_url: String,
    pub client_id: String,
    pub path: PathBuf,
}

impl Credential for FederatedTokenCredential {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<IssuedToken, AuthError>> {
        Box::pin(async move {
            let token = tokio::fs::read_to_string(&self.path).await.map_err(|e| {
                local_error(format!(
                    "cannot read federated_token_file {}: {e}",
                    self.path.display()
                ))
            })?;
            let token = token.trim();
            if token.is_empty() {
                return Err(local_error(format!(
                    "federated_token_file {} is empty",
                    self.path.display()
                )));
            }
            assertion_grant(http, &self.token_url, &self.client_id, token, audience).await
        })
    }
}
