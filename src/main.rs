use clap::Parser;
use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::cli::{demo, logging};
use m365_exporter::cli::{Cli, Command, LogArgs, ServeArgs, SimulatorArgs, WebArgs};
use m365_exporter::collect::RuntimeOptions;
use m365_exporter::config::reload::spawn_sighup;
use m365_exporter::config::shard::Shard;
use m365_exporter::config::ConfigSource;
use m365_exporter::config::{parse_duration, Config, ConfigError};
use m365_exporter::simulator::{Faults, SimOptions, Simulator};
use m365_exporter::web::server;
use m365_exporter::web::web_config::WebConfig;
use std::process::ExitCode;

/// Bad configuration: one line on stderr naming file, key and reason; exit 2.
fn config_exit(e: ConfigError) -> ExitCode {
    eprintln!("m365-exporter: invalid configuration: {e}");
    ExitCode::from(2)
}

fn init_logging(log: &LogArgs) -> Result<(), ExitCode> {
    logging::init(&log.level, log.format).map_err(|e| {
        eprintln!("m365-exporter: {e}");
        ExitCode::from(2)
    })
}

fn source(path: Option<&std::path::Path>) -> ConfigSource {
    match path {
        Some(p) => ConfigSource::File(p.to_path_buf()),
        None => ConfigSource::Environment,
    }
}

fn load(path: Option<&std::path::Path>) -> Result<Config, ConfigError> {
    source(path).load(None)
}

fn web_options(web: &WebArgs) -> Result<WebOptions, ExitCode> {
    let web_config = match &web.web_config_file {
        Some(p) => WebConfig::load(p).map_err(config_exit)?,
        None => WebConfig::default(),
    };
    if !web.telemetry_path.starts_with('/') || web.telemetry_path == "/" {
        eprintln!("m365-exporter: invalid configuration: --web.telemetry-path: {:?} must start with / and not be /", web.telemetry_path);
        return Err(ExitCode::from(2));
    }
    Ok(WebOptions {
        listen: web.listen_address.clone(),
        telemetry_path: web.telemetry_path.clone(),
        max_requests: web.max_requests,
        webhook_listen: web.webhook_listen_address.clone(),
        web_config,
        ..WebOptions::default()
    })
}

async fn run_exporter(
    config: Config,
    source: ConfigSource,
    shard: Option<Shard>,
    web: WebOptions,
) -> ExitCode {
    if let Some(s) = shard {
        tracing::info!(shard = %s, tenants = config.tenants.len(), "serving one shard of the tenants");
        if config.tenants.is_empty() {
            tracing::warn!(shard = %s, "no configured tenant falls in this shard");
        }
    }
    let running =
        match Running::start_with(&config, source, shard, &web, &RuntimeOptions::default()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(address = %web.listen, error = %e, "cannot start");
                return ExitCode::FAILURE;
            }
        };
    tracing::info!(address = %running.addr, tenants = config.tenants.len(), version = m365_exporter::VERSION, "listening");
    if let Some(a) = running.webhook_addr {
        tracing::info!(address = %a, "webhook receiver listening");
    }
    spawn_sighup(running.reloader.clone());
    server::shutdown_signal().await;
    match running.stop().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    if let Err(c) = init_logging(&args.log) {
        return c;
    }
    let web = match web_options(&args.web) {
        Ok(w) => w,
        Err(c) => return c,
    };
    let source = source(args.config_file.as_deref());
    match source.load(args.tenants_shard) {
        Ok(config) => run_exporter(config, source, args.tenants_shard, web).await,
        Err(e) => config_exit(e),
    }
}

async fn run_demo(args: m365_exporter::cli::DemoArgs) -> ExitCode {
    if let Err(c) = init_logging(&args.log) {
        return c;
    }
    let web = match web_options(&args.web) {
        Ok(w) => w,
        Err(c) => return c,
    };
    let sim = match demo::start_simulator(&args.scenario).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("m365-exporter: {e}");
            return ExitCode::from(2);
        }
    };
    // The demo's webhook receiver listens on a loopback port of its own
    // (or --webhook.listen-address), where the simulator posts notifications.
    let mut web = web;
    let hook_listen = match web.webhook_listen.clone() {
        Some(a) => a,
        None => match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(a) => a.to_string(),
            Err(e) => {
                eprintln!("m365-exporter: cannot find a port for the demo webhook: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    web.webhook_listen = Some(hook_listen.clone());
    let hook_addr = format!(
        "http://{}/webhook/contoso",
        m365_exporter::cli::listen_addr(&hook_listen).replace("0.0.0.0", "127.0.0.1")
    );
    let config = demo::config(&sim.url(), Some(&hook_addr));
    let running = match Running::start(&config, &web, &demo::runtime_options()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("m365-exporter: cannot listen on {}: {e}", web.listen);
            return ExitCode::FAILURE;
        }
    };
    let base = match running.addr.ip().is_unspecified() {
        true => format!("{}://localhost:{}", running.scheme, running.addr.port()),
        false => running.url(),
    };
    println!(
        "m365-exporter demo (scenario {:?}), simulator at {}",
        args.scenario,
        sim.url()
    );
    println!("  metrics:     {base}{}", web.telemetry_path);
    println!("  status page: {base}/");
    println!("  one tenant:  {base}/probe?target=contoso");
    println!("  webhook:     {hook_addr} (the simulator posts audit notifications here)");
    println!("Press Ctrl-C to stop.");
    server::shutdown_signal().await;
    let _ = running.stop().await;
    sim.stop().await;
    ExitCode::SUCCESS
}

async fn run_simulator(args: SimulatorArgs) -> ExitCode {
    if let Err(c) = init_logging(&args.log) {
        return c;
    }
    let token_lifetime = match parse_duration(&args.token_lifetime) {
        // Bounded: the simulator adds it to the clock.
        Ok(d) if !d.is_zero() && d <= std::time::Duration::from_secs(7 * 86_400) => d,
        Ok(_) | Err(_) => {
            eprintln!(
                "m365-exporter: --token-lifetime: {:?} is not a duration like 5s or 1h (at most 7d)",
                args.token_lifetime
            );
            return ExitCode::from(2);
        }
    };
    let audit_live_every = match args.audit_live_every.as_deref().map(parse_duration) {
        None => None,
        Some(Ok(d)) if d >= std::time::Duration::from_secs(1) => Some(d),
        Some(_) => {
            eprintln!(
                "m365-exporter: --audit-live-every: {:?} is not a duration like 5s (at least 1s)",
                args.audit_live_every.as_deref().unwrap_or_default()
            );
            return ExitCode::from(2);
        }
    };
    let imds_updating = match args.imds_updating.as_deref().map(parse_duration) {
        None => std::time::Duration::ZERO,
        Some(Ok(d)) if d <= std::time::Duration::from_secs(3_600) => d,
        Some(_) => {
            eprintln!(
                "m365-exporter: --imds-updating: {:?} is not a duration like 10s (at most 1h)",
                args.imds_updating.as_deref().unwrap_or_default()
            );
            return ExitCode::from(2);
        }
    };
    let read = |flag: &str, p: &Option<std::path::PathBuf>| match p {
        None => Ok(None),
        Some(p) => std::fs::read_to_string(p)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|e| format!("--{flag}: cannot read {}: {e}", p.display())),
    };
    let (client_certificate, federated_token) = match (
        read("client-certificate", &args.client_certificate),
        read("federated-token-file", &args.federated_token_file),
    ) {
        (Ok(c), Ok(f)) => (c, f),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("m365-exporter: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = SimOptions {
        listen: args.listen.clone(),
        client_certificate,
        federated_token,
        scenario: args.scenario.clone(),
        token_lifetime,
        any_tenant: args.any_tenant,
        pascal_enums: args.pascal_enums,
        imds_updating,
        audit: m365_exporter::simulator::AuditOptions {
            live_every: audit_live_every,
            next_page_header: args.next_page_header.clone(),
            audit_log_off: args.audit_off.is_some(),
            audit_off_split: args
                .audit_off
                .as_deref()
                .and_then(m365_exporter::simulator::AuditOffSplit::parse)
                .unwrap_or(m365_exporter::simulator::AuditOffSplit::Message),
            https_webhooks: args.https_webhooks,
            ..Default::default()
        },
        // --faults: the periodic pattern on every data API, plus Microsoft's
        // own throttling shapes on the audit feed (AF429 as 403 on blobs,
        // 429 with Retry-After on listings).
        faults: Faults {
            app_forbidden: args.app_forbidden,
            ..match args.faults {
                true => Faults {
                    chaos: true,
                    blob_af429_every: 5,
                    listing_429_every: 7,
                    ..Faults::default()
                },
                false => Faults::default(),
            }
        },
        ..SimOptions::default()
    };
    let sim = match Simulator::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("m365-exporter: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "simulator listening on {} (scenario {:?}, faults {})",
        sim.url(),
        args.scenario,
        args.faults
    );
    println!(
        "  tenant_id:     {} (or its domain {})",
        m365_exporter::simulator::SIM_TENANT_ID,
        m365_exporter::simulator::SIM_TENANT_DOMAIN
    );
    println!(
        "  client_id:     {}",
        m365_exporter::simulator::SIM_CLIENT_ID
    );
    println!(
        "  client_secret: {}",
        m365_exporter::simulator::SIM_CLIENT_SECRET
    );
    println!(
        "  managed identity: IMDS at {url}/metadata/identity/oauth2/token, App Service at {url}/msi/token (IDENTITY_HEADER={})",
        m365_exporter::simulator::SIM_IDENTITY_HEADER,
        url = sim.url()
    );
    server::shutdown_signal().await;
    sim.stop().await;
    ExitCode::SUCCESS
}

async fn check_config(path: Option<&std::path::Path>) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(e) => return config_exit(e),
    };
    let http = m365_exporter::api::transport::client(
        m365_exporter::cli::check::LOOKUP_TIMEOUT,
        m365_exporter::cli::check::LOOKUP_TIMEOUT,
    );
    match m365_exporter::cli::check::check(&config, &http).await {
        Ok(checked) => {
            print!("{}", checked.yaml);
            for w in checked.warnings {
                eprintln!("m365-exporter: warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => config_exit(e),
    }
}

async fn healthcheck(args: m365_exporter::cli::HealthcheckArgs) -> ExitCode {
    let timeout = match parse_duration(&args.timeout) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            eprintln!(
                "m365-exporter: --timeout: {:?} is not a duration like 5s",
                args.timeout
            );
            return ExitCode::from(2);
        }
    };
    let web = match &args.web_config_file {
        Some(p) => match WebConfig::load(p) {
            Ok(w) => w,
            Err(e) => return config_exit(e),
        },
        None => WebConfig::default(),
    };
    match m365_exporter::cli::healthcheck::check(&args.listen_address, timeout, &web).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("m365-exporter: unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // Before the runtime starts its threads (see src/allocator.rs).
    let _allocator = m365_exporter::allocator::start();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("m365-exporter: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(a)) => serve(a).await,
        Some(Command::Demo(a)) => run_demo(a).await,
        Some(Command::Simulator(a)) => run_simulator(a).await,
        Some(Command::CheckConfig(a)) => check_config(a.config_file.as_deref()).await,
        Some(Command::Healthcheck(a)) => healthcheck(a).await,
    }
}
