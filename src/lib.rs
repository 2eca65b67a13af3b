//! m365-exporter: Prometheus metrics for Microsoft 365 service health and the
//! Office 365 Management Activity (audit) feed.
//!
//! Data flows one way: [`config`] → clients ([`auth`], [`http`], [`graph`]) →
//! snapshots ([`collect`]) → text ([`metrics`]) → HTTP ([`server`]).
//! [`simulator`] serves Microsoft's endpoints locally for `demo` and tests.

pub mod activity;
pub mod allocator;
pub mod api;
pub mod auth;
pub mod buffers;
pub mod certificate;
pub mod cli;
pub mod collect;
pub mod config;
pub mod metrics;
pub mod secret;
pub mod simulator;
pub mod timefmt;
pub mod web;

/// Version string reported by `--version` and `m365_exporter_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Git revision baked in at build time (`M365_EXPORTER_REVISION`), or "unknown".
pub const REVISION: &str = match option_env!("M365_EXPORTER_REVISION") {
    Some(r) => r,
    None => "unknown",
};
