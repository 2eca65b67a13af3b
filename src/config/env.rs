//! Without `--config.file`: one tenant from the azure-identity environment
//! variables, taken in azure-identity's order.

use super::collectors::RawCollectors;
use super::error::ConfigError;
use super::file::Config;
use super::tenants::{build_tenant, RawEndpoints, RawTenant};
use std::path::PathBuf;

impl Config {
    /// One tenant from the azure-identity environment variables.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let source = "environment";
        let err = |key: &str, reason: &str| ConfigError {
            source: source.into(),
            key: key.into(),
            reason: reason.into(),
        };
        let tenant_id = get("AZURE_TENANT_ID")
            .ok_or_else(|| err("AZURE_TENANT_ID", "not set (and no --config.file given)"))?;
        let client_id = get("AZURE_CLIENT_ID").ok_or_else(|| err("AZURE_CLIENT_ID", "not set"))?;
        // The azure-identity order: EnvironmentCredential (secret, then
        // certificate), then WorkloadIdentityCredential.
        let secret = get("AZURE_CLIENT_SECRET");
        let certificate = match secret {
            Some(_) => None,
            None => get("AZURE_CLIENT_CERTIFICATE_PATH").map(PathBuf::from),
        };
        let federated = match (&secret, &certificate) {
            (None, None) => get("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from),
            _ => None,
        };
        if secret.is_none() && certificate.is_none() && federated.is_none() {
            return Err(err(
                "AZURE_CLIENT_SECRET",
                "not set (nor AZURE_CLIENT_CERTIFICATE_PATH, nor AZURE_FEDERATED_TOKEN_FILE)",
            ));
        }
        let raw = RawTenant {
            name: Some("default".into()),
            tenant_id: Some(tenant_id),
            client_id: Some(client_id),
            client_secret: secret,
            client_secret_file: None,
            client_certificate_path: certificate,
            federated_token_file: federated,
            managed_identity: None,
            cloud: None,
            endpoints: get("AZURE_AUTHORITY_HOST").map(|h| RawEndpoints {
                login: Some(h),
                ..Default::default()
            }),
            service_health: None,
            messages: None,
            activity: None,
            app_credentials: None,
        };
        let t = build_tenant(raw, &RawCollectors::default(), "", source).map_err(|mut e| {
            e.key = env_key(&e.key);
            e
        })?;
        Ok(Config {
            source: source.into(),
            tenants: vec![t],
        })
    }
}

fn env_key(k: &str) -> String {
    match k.trim_start_matches('.') {
        "tenant_id" => "AZURE_TENANT_ID".into(),
        "client_id" => "AZURE_CLIENT_ID".into(),
        "endpoints.login" => "AZURE_AUTHORITY_HOST".into(),
        "client_secret" => "AZURE_CLIENT_SECRET".into(),
        "client_certificate_path" => "AZURE_CLIENT_CERTIFICATE_PATH".into(),
        "federated_token_file" => "AZURE_FEDERATED_TOKEN_FILE".into(),
        other => other.into(),
    }
}
