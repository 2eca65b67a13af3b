//! m365-exporter: Prometheus metrics for Microsoft 365 service health and the
//! Office 365 Management Activity (audit) feed.
//!
//! Data flows one way: [`config`] → clients ([`auth`], [`api`]) → snapshots
//! ([`collect`], and the audit feed in [`activity`]) → text ([`metrics`]) →
//! HTTP ([`web`]); [`cli`] is the process that starts it all, and
//! [`simulator`] serves Microsoft's endpoints locally for `demo` and tests.
//! The leaf utilities the rooms share stay at the top: [`secret`],
//! [`timefmt`], [`buffers`], [`certificate`], and [`allocator`] (the
//! process's memory settings, which `buffers` is tuned to).

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
pub mod task;
pub mod timefmt;
pub mod web;

/// Version string reported by `--version` and `m365_exporter_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Git revision baked in at build time (`M365_EXPORTER_REVISION`), or "unknown".
pub const REVISION: &str = match option_env!("M365_EXPORTER_REVISION") {
    Some(r) => r,
    None => "unknown",
};
