//! One entry of `tenants:`: its name, directory and application ids, the
//! credential, the cloud and its endpoints, and each collector section
//! merged over `defaults`. Also the rule across tenants: no two feeds share
//! a file.

use super::activity::{activity, ActivityConfig, RawActivity};
use super::cloud::Cloud;
use super::collectors::{
    collector, service_health, CollectorConfig, RawCollector, RawCollectors, RawServiceHealth,
    ServiceHealthConfig,
};
use super::credential::{credential, Credential, RawCredential, RawManagedIdentity};
use super::error::ConfigError;
use super::values::{is_domain, is_guid};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    pub(super) name: Option<String>,
    pub(super) tenant_id: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) client_certificate_path: Option<PathBuf>,
    pub(super) federated_token_file: Option<PathBuf>,
    pub(super) managed_identity: Option<RawManagedIdentity>,
    pub(super) cloud: Option<String>,
    pub(super) endpoints: Option<RawEndpoints>,
    pub(super) service_health: Option<RawServiceHealth>,
    pub(super) messages: Option<RawCollector>,
    pub(super) activity: Option<RawActivity>,
    pub(super) app_credentials: Option<RawCollector>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoints {
    pub(super) login: Option<String>,
    pub(super) graph: Option<String>,
    pub(super) management: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TenantConfig {
    pub name: String,
    pub tenant_id: String,
    pub client_id: String,
    #[serde(flatten)]
    pub credential: Credential,
    pub cloud: Cloud,
    pub endpoints: Endpoints,
    pub service_health: ServiceHealthConfig,
    pub messages: CollectorConfig,
    pub activity: ActivityConfig,
    /// The app registration's own secrets and certificates (needs
    /// `Application.Read.All`; off by default).
    pub app_credentials: CollectorConfig,
}

/// Effective roots (`scheme://host[:port]`, no trailing slash).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Endpoints {
    pub login: String,
    pub graph: String,
    pub management: Option<String>,
}

/// One tenant validated, its collector sections merged over `defaults`;
/// `key` prefixes every error key (`tenants[3]`; empty from the environment).
pub(super) fn build_tenant(
    t: RawTenant,
    defaults: &RawCollectors,
    key: &str,
    source: &str,
) -> Result<TenantConfig, ConfigError> {
    let err = |k: &str, reason: String| ConfigError {
        source: source.to_string(),
        key: if key.is_empty() {
            k.to_string()
        } else {
            format!("{key}.{k}")
        },
        reason,
    };
    let name = t.name.ok_or_else(|| err("name", "missing".into()))?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(err(
            "name",
            format!("{name:?} must match [a-z0-9_-]+ (it becomes the `tenant` label)"),
        ));
    }
    let tenant_id = t
        .tenant_id
        .ok_or_else(|| err("tenant_id", "missing".into()))?;
    if !is_guid(&tenant_id) && !is_domain(&tenant_id) {
        return Err(err(
            "tenant_id",
            format!("{tenant_id:?} is neither a GUID nor a domain name"),
        ));
    }
    let client_id = t
        .client_id
        .ok_or_else(|| err("client_id", "missing".into()))?;
    if !is_guid(&client_id) {
        return Err(err(
            "client_id",
            format!("{client_id:?} is not a GUID (the application's client id)"),
        ));
    }

    let credential = credential(
        RawCredential {
            client_secret: t.client_secret,
            client_secret_file: t.client_secret_file,
            client_certificate_path: t.client_certificate_path,
            federated_token_file: t.federated_token_file,
            managed_identity: t.managed_identity,
        },
        &err,
    )?;

    let cloud = match t.cloud.as_deref() {
        None => Cloud::Global,
        Some(c) => Cloud::parse(c).ok_or_else(|| {
            err(
                "cloud",
                format!("{c:?} is not one of {}", Cloud::ALL.join(", ")),
            )
        })?,
    };
    let roots = cloud.roots();
    let ep = t.endpoints.unwrap_or_default();
    let management_overridden = ep.management.is_some();
    let root = |k: &str,
                v: Option<String>,
                default: Option<&str>|
     -> Result<Option<String>, ConfigError> {
        match v {
            Some(u) => {
                let trimmed = u.trim_end_matches('/').to_string();
                match reqwest::Url::parse(&trimmed) {
                    Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                        Ok(Some(trimmed))
                    }
                    _ => Err(err(
                        &format!("endpoints.{k}"),
                        format!("{u:?} is not an http(s) URL"),
                    )),
                }
            }
            None => Ok(default.map(str::to_string)),
        }
    };
    let endpoints = Endpoints {
        login: root("login", ep.login, Some(roots.login))?.unwrap_or_default(),
        graph: root("graph", ep.graph, Some(roots.graph))?.unwrap_or_default(),
        management: root("management", ep.management, roots.management)?,
    };

    let service_health = service_health(
        t.service_health.as_ref(),
        defaults.service_health.as_ref(),
        &err,
    )?;
    let messages = collector(
        "messages",
        t.messages.as_ref(),
        defaults.messages.as_ref(),
        true,
        Duration::from_secs(300),
        &err,
    )?;
    let app_credentials = collector(
        "app_credentials",
        t.app_credentials.as_ref(),
        defaults.app_credentials.as_ref(),
        false,
        Duration::from_secs(3_600),
        &err,
    )?;
    let activity = activity(
        t.activity.as_ref(),
        defaults.activity.as_ref(),
        management_overridden,
        &err,
    )?;
    if activity.enabled && endpoints.management.is_none() {
        return Err(err(
            "endpoints.management",
            format!("activity is enabled but Microsoft publishes no Management API host for cloud {:?}: set endpoints.management", t.cloud.unwrap_or_default()),
        ));
    }
    if activity.enabled && activity.reconcile.enabled && cloud != Cloud::Global {
        return Err(err(
            "activity.reconcile",
            format!(
                "Microsoft offers the Audit Log Query API in the global cloud only, not in cloud {:?}: set activity.reconcile.enabled: false for this tenant",
                t.cloud.unwrap_or_default()
            ),
        ));
    }
    Ok(TenantConfig {
        name,
        tenant_id,
        client_id,
        credential,
        cloud,
        endpoints,
        service_health,
        messages,
        activity,
        app_credentials,
    })
}

/// Every `activity.state_file` and `activity.output` of the tenants whose
/// feed is enabled names its own file: two writers on one file would
/// truncate each other's records.
pub(super) fn unique_paths(tenants: &[TenantConfig], source: &str) -> Result<(), ConfigError> {
    let mut seen: std::collections::HashMap<PathBuf, (String, &str)> = Default::default();
    for (i, t) in tenants.iter().enumerate() {
        if !t.activity.enabled {
            continue;
        }
        for (key, path) in [
            ("state_file", &t.activity.state_file),
            ("output", &t.activity.output),
        ] {
            let Some(p) = path else { continue };
            if let Some((other, other_key)) = seen.get(&normal_path(p)) {
                return Err(ConfigError {
                    source: source.to_string(),
                    key: format!("tenants[{i}].activity.{key}"),
                    reason: format!(
                        "{} is also tenant {other:?}'s activity.{other_key}; tenant {:?} needs a file of its own (every state_file and output must be unique)",
                        p.display(),
                        t.name
                    ),
                });
            }
            seen.insert(normal_path(p), (t.name.clone(), key));
        }
    }
    Ok(())
}

/// Absolute and without `.`/`..` steps (lexically: the file may not exist yet).
fn normal_path(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
