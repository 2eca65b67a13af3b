//! The configuration file: `defaults` and `tenants`, read and validated
//! into a [`Config`] (or refused with the first problem found).

use super::collectors::RawCollectors;
use super::error::ConfigError;
use super::tenants::{build_tenant, unique_paths, RawTenant, TenantConfig};
use super::yaml;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawCollectors,
    tenants: Option<Vec<RawTenant>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file the config came from, or `environment`.
    #[serde(skip)]
    pub source: String,
    pub tenants: Vec<TenantConfig>,
}

impl Config {
    /// Read and validate a YAML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (text, source) = yaml::read_file(path)?;
        Self::parse(&text, &source)
    }

    /// Validate YAML text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Config, ConfigError> {
        let err = |key: &str, reason: String| ConfigError {
            source: source.to_string(),
            key: key.to_string(),
            reason,
        };
        let raw: RawFile = yaml::from_str(text, source)?;
        let tenants = raw
            .tenants
            .ok_or_else(|| err("tenants", "missing: at least one tenant is required".into()))?;
        if tenants.is_empty() {
            return Err(err(
                "tenants",
                "empty: at least one tenant is required".into(),
            ));
        }
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, t) in tenants.into_iter().enumerate() {
            let key = format!("tenants[{i}]");
            let tc = build_tenant(t, &raw.defaults, &key, source)?;
            if !names.insert(tc.name.clone()) {
                return Err(err(
                    &format!("{key}.name"),
                    format!("duplicate tenant name {:?}", tc.name),
                ));
            }
            out.push(tc);
        }
        unique_paths(&out, source)?;
        Ok(Config {
            source: source.to_string(),
            tenants: out,
        })
    }

    /// The effective configuration as YAML, secrets redacted.
    pub fn to_redacted_yaml(&self) -> String {
        yaml::to_string(self)
    }

    /// [`Self::to_redacted_yaml`] with each tenant's GUID as `check-config`
    /// found it (`guids[i]` for `tenants[i]`; None: not resolved):
    /// `tenant_guid` after `tenant_id`, and the GUID as the effective
    /// `activity.publisher_id` where that is unset.
    pub fn to_redacted_yaml_with_guids(&self, guids: &[Option<String>]) -> String {
        yaml::to_string_edited(self, |tree| {
            let Some(tenants) = tree
                .get_mut("tenants")
                .and_then(yaml::Tree::as_sequence_mut)
            else {
                return;
            };
            for (t, guid) in tenants.iter_mut().zip(guids) {
                let value = guid.clone().map_or(yaml::Tree::Null, yaml::Tree::String);
                if let Some(p) = t
                    .get_mut("activity")
                    .and_then(|a| a.get_mut("publisher_id"))
                    .filter(|p| p.is_null())
                {
                    *p = value.clone();
                }
                yaml::insert_after(t, "tenant_id", "tenant_guid", value);
            }
        })
    }
}
