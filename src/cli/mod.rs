//! The process: the command line, defined here (exporter-toolkit
//! conventions: dotted long flags), and what its commands run: [`app`] (the
//! exporter assembled and started, for `serve` and `demo`, and for tests that
//! run it in-process), [`check`] (`check-config`), [`demo`], [`healthcheck`], [`logging`] (`--log.*`),
//! and [`docs`] (docs/configuration.md, from these flags and the config
//! schema). `main.rs` parses the line and calls them.
//!
//! [`app`] is here rather than in `web` because it wires every room together
//! (configuration, fleet, listeners, the feed's file locks) and only the
//! commands start it: it belongs at the top of the dependency order, which
//! is this room.

pub mod app;
pub mod check;
pub mod demo;
pub mod docs;
pub mod healthcheck;
pub mod logging;

use clap::{Args, Parser, Subcommand};
use logging::LogFormat;
use std::path::PathBuf;

/// `--web.listen-address` when not given: every interface, port 9865.
pub const DEFAULT_LISTEN: &str = ":9865";

#[derive(Debug, Parser)]
#[command(
    name = "m365-exporter",
    version,
    about = "Prometheus exporter for Microsoft 365 service health and the audit activity feed",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve` is the default command: its flags work without naming it.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter (the default).
    Serve(ServeArgs),
    /// Start the built-in simulator and the exporter against it: no account needed.
    Demo(DemoArgs),
    /// Serve simulated Microsoft endpoints (token, Graph, Management API).
    Simulator(SimulatorArgs),
    /// Validate the configuration and print it, secrets redacted; exit 0 or 2.
    CheckConfig(CheckConfigArgs),
    /// Ask a running exporter's /-/healthy; exit 0 when it answers 200, else 1.
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// Only log messages at or above this level: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info")]
    pub level: String,
    /// Log line format.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub format: LogFormat,
}

#[derive(Debug, Args, Clone)]
pub struct WebArgs {
    /// Address to listen on (`:9865` means every interface).
    #[arg(long = "web.listen-address", default_value = DEFAULT_LISTEN)]
    pub listen_address: String,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", default_value = "/metrics")]
    pub telemetry_path: String,
    /// exporter-toolkit web configuration: TLS, mutual TLS, basic auth, headers.
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,
    /// Concurrent HTTP requests served at most; more get 503.
    #[arg(long = "web.max-requests", default_value_t = 40)]
    pub max_requests: usize,
    /// Serve the audit feed webhook receiver (`POST /webhook/{tenant}`) on
    /// this address instead of the main listener.
    #[arg(long = "webhook.listen-address")]
    pub webhook_listen_address: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// YAML configuration file; without it one tenant comes from AZURE_* variables.
    #[arg(long = "config.file")]
    pub config_file: Option<PathBuf>,
    /// Keep only the tenants whose stable name hash falls in shard i of n
    /// (e.g. 0/3): n replicas split the tenants with no coordination.
    #[arg(long = "tenants.shard", value_parser = clap::value_parser!(crate::config::shard::Shard))]
    pub tenants_shard: Option<crate::config::shard::Shard>,
    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    #[command(flatten)]
    pub web: WebArgs,
    /// Simulator scenario: healthy, incident, outage.
    #[arg(long, default_value = "incident")]
    pub scenario: String,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args, Clone)]
pub struct SimulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18443")]
    pub listen: String,
    /// Scenario: healthy, incident, outage.
    #[arg(long, default_value = "incident")]
    pub scenario: String,
    /// Inject throttling, server errors, slow and malformed answers.
    #[arg(long)]
    pub faults: bool,
    /// Lifetime of issued tokens, e.g. 5s or 1h.
    #[arg(long = "token-lifetime", default_value = "1h")]
    pub token_lifetime: String,
    /// Audit feed: one new content blob per content type this often (e.g. 5s,
    /// at least 1s) for 6 hours, so a long soak's feed keeps flowing. Without
    /// it only the historical blobs are served.
    #[arg(long = "audit-live-every")]
    pub audit_live_every: Option<String>,
    /// Issue tokens for any tenant id (GUID or domain): one simulator for many tenants.
    #[arg(long = "any-tenant")]
    pub any_tenant: bool,
    /// PEM certificate(s) whose keys may sign certificate client assertions.
    #[arg(long = "client-certificate")]
    pub client_certificate: Option<PathBuf>,
    /// File holding the federated token (workload identity) to accept.
    #[arg(long = "federated-token-file")]
    pub federated_token_file: Option<PathBuf>,
    /// Answer `applications(appId=…)` with 403, as Graph does without the
    /// permission Application.Read.All.
    #[arg(long = "app-forbidden")]
    pub app_forbidden: bool,
    /// Graph enum values in PascalCase (`ServiceOperational`, `Incident`),
    /// as Microsoft's API pages print them, instead of the schema's camelCase.
    #[arg(long = "pascal-enums")]
    pub pascal_enums: bool,
    /// The Management API's continuation header: `NextPageUri` (the
    /// reference) or `NextPageUrl` (the troubleshooting guide).
    #[arg(long = "next-page-header", default_value = "NextPageUri", value_parser = ["NextPageUri", "NextPageUrl"])]
    pub next_page_header: String,
    /// The tenant's unified audit log is off: `subscriptions/start` answers
    /// "DataServiceException: Tenant … does not exist", the text split
    /// between the error's code and message where field reports show it:
    /// message, straddle, code.
    #[arg(long = "audit-off", num_args = 0..=1, default_missing_value = "message", value_parser = crate::simulator::AuditOffSplit::ALL)]
    pub audit_off: Option<String>,
    /// Refuse webhook addresses that are not https:// with AF20021 ("The
    /// address must begin with HTTPS"), as Microsoft does.
    #[arg(long = "https-webhooks")]
    pub https_webhooks: bool,
    /// Azure IMDS is being updated for this long after start (e.g. 10s):
    /// its token endpoint answers 404, then 410.
    #[arg(long = "imds-updating")]
    pub imds_updating: Option<String>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args, Clone)]
pub struct CheckConfigArgs {
    /// YAML configuration file; without it the AZURE_* variables are checked.
    #[arg(long = "config.file")]
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct HealthcheckArgs {
    /// The exporter's --web.listen-address (a wildcard address is asked on loopback).
    #[arg(long = "web.listen-address", default_value = DEFAULT_LISTEN)]
    pub listen_address: String,
    /// Give up after this long, e.g. 5s.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// The exporter's --web.config.file: with TLS the check asks over https.
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,
}

/// `:9865` → `0.0.0.0:9865`; anything else as given.
pub fn listen_addr(s: &str) -> String {
    match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_default() {
        let c = Cli::try_parse_from([
            "m365-exporter",
            "--config.file=x.yml",
            "--web.listen-address=:1",
        ])
        .unwrap();
        assert!(c.command.is_none());
        assert_eq!(
            c.serve.config_file.as_deref(),
            Some(std::path::Path::new("x.yml"))
        );
        assert_eq!(listen_addr(&c.serve.web.listen_address), "0.0.0.0:1");
        let c = Cli::try_parse_from(["m365-exporter", "demo", "--web.listen-address=127.0.0.1:5"])
            .unwrap();
        assert!(matches!(c.command, Some(Command::Demo(_))));
    }

    #[test]
    fn tenants_shard_flag() {
        let c = Cli::try_parse_from(["m365-exporter", "--tenants.shard=1/3"]).unwrap();
        assert_eq!(
            c.serve.tenants_shard,
            Some(crate::config::shard::Shard { index: 1, count: 3 })
        );
        let e = Cli::try_parse_from(["m365-exporter", "--tenants.shard=3/3"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("0 <= i < n"), "{e}");
    }
}
