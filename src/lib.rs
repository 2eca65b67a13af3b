//! m365-exporter: Prometheus metrics for Microsoft 365 service health and the
//! Office 365 Management Activity (audit) feed.
//!
//! Data flows one way: [`config`] → clients ([`auth`], [`http`], [`graph`]) →
//! snapshots ([`collect`]) → text ([`metrics`]) → HTTP ([`server`]).
//! [`simulator`] serves Microsoft's endpoints locally for `demo` and tests.

pub mod activity;
pub mod allocator;
pub mod app;
pub mod auth;
pub mod basic_auth;
pub mod buffers;
pub mod cli;
pub mod cloud;
pub mod collect;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod graph;
pub mod healthcheck;
pub mod http;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod receiver;
pub mod reload;
pub mod secret;
pub mod server;
pub mod shard;
pub mod simulator;
pub mod status_page;
pub mod task;
pub mod timefmt;
pub mod tls;
pub mod web_config;
pub mod yaml;

/// Version string reported by `--version` and `m365_exporter_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Git revision baked in at build time (`M365_EXPORTER_REVISION`), or "unknown".
pub const REVISION: &str = match option_env!("M365_EXPORTER_REVISION") {
    Some(r) => r,
    None => "unknown",
};
