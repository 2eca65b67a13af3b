//! Configuration: the YAML file, or one tenant from the azure-identity
//! environment variables. Everything is validated here, once, into plain
//! typed values; any problem is a [`ConfigError`] naming file, key and reason
//! (the binary exits 2 on it). Secrets are held as [`crate::secret::Secret`]
//! and never echo.
//!
//! One module per part of the file: [`file`](mod@file) (the whole file: `defaults`,
//! `tenants`), [`tenants`] (one tenant), [`credential`], [`collectors`]
//! (`service_health`, `messages`, `app_credentials`), [`activity`] (the audit
//! feed and its webhook); beside them the shared value types ([`values`]),
//! the one YAML reader ([`yaml`]), the cloud host table ([`cloud`]), where a
//! configuration comes from ([`source`]), sharding ([`shard`]), every key
//! documented ([`schema`]) and reload ([`reload`]).
//!
//! Everything here depends only on leaf utilities, except [`reload`], which
//! hands a validated configuration to the running fleet. Submodules import
//! each other directly, never through the re-exports below (those are for the
//! rest of the crate), so no module here depends on its parent.

pub mod activity;
pub mod cloud;
pub mod collectors;
pub mod credential;
pub mod env;
pub mod error;
pub mod file;
pub mod reload;
pub mod schema;

pub mod shard;
pub mod source;
pub mod tenants;
pub mod values;
pub mod yaml;

pub use activity::{
    ActivityConfig, ReconcileConfig, WebhookConfig, CONTENT_TYPES, DEFAULT_MAX_INFLIGHT_BYTES,
};
pub use collectors::{
    CollectorConfig, ServiceHealthConfig, ServiceSelection, DEFAULT_HISTORY_WINDOW,
};
pub use credential::Credential;
pub use error::ConfigError;
pub use file::Config;
pub use source::ConfigSource;
pub use tenants::{Endpoints, TenantConfig};
pub use values::{
    format_duration, is_guid, parse_duration, parse_history_window, MAX_HISTORY_WINDOW,
    MAX_INTERVAL, MAX_WEBHOOK_EXPIRATION, MIN_HISTORY_WINDOW,
};

#[cfg(test)]
mod tests;
