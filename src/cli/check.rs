//! `check-config`: the configuration validated and printed, secrets
//! redacted, with each tenant's GUID: a domain `tenant_id` is looked up at
//! its authority (the lookup the exporter makes at start, once, here with a
//! short timeout), so the operator sees the GUID the Management API will be
//! called with. A domain the authority says is no tenant's is a
//! configuration error (exit 2); an authority out of reach is a warning
//! (the exporter resolves it at start, and again with backoff).

use crate::auth::tenant::lookup;
use crate::config::{is_guid, Config, ConfigError};
use std::time::Duration;

/// How long one lookup may take here.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// What `check-config` prints: the YAML, and warnings for stderr.
pub struct Checked {
    pub yaml: String,
    pub warnings: Vec<String>,
}

/// Each tenant's GUID (None: not resolved now, with a warning), or the
/// error of a domain that names no tenant.
pub async fn check(config: &Config, http: &reqwest::Client) -> Result<Checked, ConfigError> {
    let mut guids = Vec::with_capacity(config.tenants.len());
    let mut warnings = Vec::new();
    for (i, t) in config.tenants.iter().enumerate() {
        if is_guid(&t.tenant_id) {
            guids.push(Some(t.tenant_id.to_ascii_lowercase()));
            continue;
        }
        let key = match config.source.as_str() {
            "environment" => "AZURE_TENANT_ID".to_string(),
            _ => format!("tenants[{i}].tenant_id"),
        };
        match lookup(http, &t.endpoints.login, &t.tenant_id, None).await {
            Ok(g) => guids.push(Some(g)),
            Err(e) if e.lasting => {
                return Err(ConfigError {
                    source: config.source.clone(),
                    key,
                    reason: format!("{:?} is no tenant the authority knows ({e})", t.tenant_id),
                })
            }
            Err(e) => {
                warnings.push(format!(
                    "{}: {key}: {:?} not resolved to its tenant GUID now ({e}); the exporter resolves it at start and retries with backoff",
                    config.source, t.tenant_id
                ));
                guids.push(None);
            }
        }
    }
    Ok(Checked {
        yaml: config.to_redacted_yaml_with_guids(&guids),
        warnings,
    })
}
