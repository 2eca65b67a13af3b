//! Wiring: config → runtime → HTTP server, startable in-process (tests, demo).

use crate::collect::fleet::{Changes, Fleet};
use crate::collect::RuntimeOptions;
use crate::collect::Store;
use crate::config::reload::Reloader;
use crate::config::shard::Shard;
use crate::config::ConfigSource;
use crate::config::{Config, ConfigError};
use crate::metrics::Live;
use crate::web::listener::{Connections, ListenOptions};
use crate::web::live_config::LiveWebConfig;
use crate::web::receiver::{self, Hub};
use crate::web::server::{app, serve, AppState};
use crate::web::tls::Acceptor;
use crate::web::web_config::WebConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct WebOptions {
    pub listen: String,
    pub telemetry_path: String,
    pub max_requests: usize,
    /// `--webhook.listen-address`: the webhook receiver on a listener of its
    /// own (same TLS settings, no basic auth); None: on the main listener.
    pub webhook_listen: Option<String>,
    /// `--web.config.file`: TLS, basic auth, headers, as loaded at start.
    pub web_config: WebConfig,
    /// Where `web_config` came from: re-read when it changes and on reload.
    pub web_config_file: Option<std::path::PathBuf>,
    /// From accept to a request's complete headers (TLS handshake included).
    pub header_read_timeout: Duration,
    /// A TLS handshake must finish within this.
    pub tls_handshake_timeout: Duration,
    /// `--web.max-connections`: connections served at once, all listeners.
    pub max_connections: usize,
    /// A connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    /// `--web.enable-lifecycle`: serve `POST /-/reload`.
    pub enable_lifecycle: bool,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            listen: "127.0.0.1:0".into(),
            telemetry_path: "/metrics".into(),
            max_requests: 40,
            webhook_listen: None,
            web_config: WebConfig::default(),
            web_config_file: None,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: crate::web::listener::DEFAULT_MAX_CONNECTIONS,
            idle_timeout: ListenOptions::default().idle_timeout,
            enable_lifecycle: false,
        }
    }
}

/// A running exporter.
pub struct Running {
    pub addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    pub store: Arc<Store>,
    pub reloader: Arc<Reloader>,
    /// The webhook receiver's own listener, with `--webhook.listen-address`.
    pub webhook_addr: Option<SocketAddr>,
    /// The web configuration as served now.
    pub web: Arc<LiveWebConfig>,
    /// Open connections, every listener.
    pub connections: Arc<Connections>,
    fleet: Arc<Fleet>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    webhook_server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Run `config`; a reload re-applies it unchanged.
    pub async fn start(
        config: &Config,
        web: &WebOptions,
        opts: &RuntimeOptions,
    ) -> std::io::Result<Running> {
        Self::start_with(config, ConfigSource::Fixed(config.clone()), None, web, opts).await
    }

    /// Run `config` (already loaded from `source` and sharded); a reload
    /// re-reads `source`.
    pub async fn start_with(
        config: &Config,
        source: ConfigSource,
        shard: Option<Shard>,
        web: &WebOptions,
        opts: &RuntimeOptions,
    ) -> std::io::Result<Running> {
        // Before anything runs: a second exporter on the same feed files stops here.
        let locks = crate::activity::lock::acquire(config).map_err(std::io::Error::other)?;
        let tls = match &web.web_config.tls {
            None => None,
            Some(t) => Some(Arc::new(
                Acceptor::new(t.clone(), web.web_config.http2, web.tls_handshake_timeout).map_err(
                    |(key, reason)| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            format!("tls_server_config.{key}: {reason}"),
                        )
                    },
                )?,
            )),
        };
        let listen = ListenOptions {
            tls,
            header_read_timeout: web.header_read_timeout,
            idle_timeout: web.idle_timeout,
            connections: Connections::new(web.max_connections),
            ..ListenOptions::default()
        };
        let live_web = LiveWebConfig::new(
            web.web_config.clone(),
            web.web_config_file.clone(),
            listen.tls.clone(),
            listen.h2c.clone(),
        );
        let listen_connections = listen.connections.clone();
        let scheme = if listen.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let listener = TcpListener::bind(crate::cli::listen_addr(&web.listen)).await?;
        let addr = listener.local_addr()?;
        let webhook_listener = match &web.webhook_listen {
            Some(a) => Some(TcpListener::bind(crate::cli::listen_addr(a)).await?),
            None => None,
        };
        let webhook_addr = webhook_listener
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        // Every listener is bound before any tenant starts (here or on a
        // reload): Microsoft's validation POST during the feed's
        // `subscriptions/start` finds the receiver.
        let fleet = Arc::new(Fleet::new(Arc::new(Live::new()), opts.clone()));
        // The fleet holds each tenant's locks from here, with the tenant.
        fleet.hold(locks);
        fleet.apply(config).await;
        let store = fleet.store().clone();
        let reloader = Arc::new(Reloader::new(source, shard, fleet.clone()));
        reloader.loaded();
        let w = live_web.clone();
        reloader.also(Box::new(move || w.reload().map(|_| ())));
        let (stop, rx) = watch::channel(false);
        let state = AppState {
            store: store.clone(),
            telemetry_path: web.telemetry_path.clone(),
            reloader: reloader.clone(),
            lifecycle: web.enable_lifecycle,
            web: live_web.clone(),
        };
        let hub = Arc::new(Hub::new(fleet.inboxes().clone(), store.live.clone()));
        let stopped = |rx: &watch::Receiver<bool>| {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|v| *v).await;
            }
        };
        // Microsoft authenticates webhook calls with the authId and cannot do
        // basic auth: the receiver's routes stay outside `secured`, on either
        // listener; TLS applies to both.
        let (server, webhook_server) = match webhook_listener {
            None => {
                let app = app(state, web.max_requests).merge(receiver::routes(hub));
                (
                    tokio::spawn(crate::web::listener::serve(
                        listener,
                        app,
                        listen,
                        stopped(&rx),
                    )),
                    None,
                )
            }
            Some(wl) => {
                let main = serve(
                    listener,
                    state,
                    web.max_requests,
                    listen.clone(),
                    stopped(&rx),
                );
                let hooks = receiver::routes(hub)
                    .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "Not found\n") });
                (
                    tokio::spawn(main),
                    Some(tokio::spawn(crate::web::listener::serve(
                        wl,
                        hooks,
                        listen,
                        stopped(&rx),
                    ))),
                )
            }
        };
        Ok(Running {
            addr,
            scheme,
            store,
            reloader,
            webhook_addr,
            web: live_web,
            connections: listen_connections,
            fleet,
            stop,
            server,
            webhook_server,
        })
    }

    /// As SIGHUP: re-read the configuration and apply it.
    pub async fn reload(&self) -> Result<Changes, ConfigError> {
        self.reloader.reload().await
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// What tenant `tenant`'s audit feed last published (its polls, each
    /// type's state); None without a feed.
    pub async fn feed_status(&self, tenant: &str) -> Option<crate::activity::status::FeedStatus> {
        self.fleet.feed_status(tenant).await
    }

    /// Stop collectors and the server (in-flight requests complete).
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        self.fleet.stop_all().await;
        if let Some(w) = self.webhook_server {
            let _ = w.await;
        }
        match self.server.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}
