//! Wiring: config → runtime → HTTP server, startable in-process (tests, demo).

use crate::collect::runtime::RuntimeOptions;
use crate::collect::{build, Store};
use crate::config::Config;
use crate::metrics::Live;
use crate::receiver::{self, Hub};
use crate::server::{router, serve, AppState};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct WebOptions {
    pub listen: String,
    pub telemetry_path: String,
    pub max_requests: usize,
    /// `--webhook.listen-address`: the webhook receiver on a listener of its
    /// own; None: on the main listener.
    pub webhook_listen: Option<String>,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            listen: "127.0.0.1:0".into(),
            telemetry_path: "/metrics".into(),
            max_requests: 40,
            webhook_listen: None,
        }
    }
}

/// A running exporter.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    /// The webhook receiver's own listener, with `--webhook.listen-address`.
    pub webhook_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    webhook_server: Option<JoinHandle<std::io::Result<()>>>,
    collectors: Vec<JoinHandle<()>>,
    /// Exclusive locks on the audit feed's files, held while running.
    _locks: crate::activity::lock::Locks,
}

impl Running {
    pub async fn start(
        config: &Config,
        web: &WebOptions,
        opts: &RuntimeOptions,
    ) -> std::io::Result<Running> {
        // Before anything runs: a second exporter on the same feed files stops here.
        let locks = crate::activity::lock::acquire(config).map_err(std::io::Error::other)?;
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
        let store = Arc::new(build(config, Arc::new(Live::new()), opts));
        let hub = Arc::new(webhook_hub(&store));
        let (stop, rx) = watch::channel(false);
        let state = AppState {
            store: store.clone(),
            telemetry_path: web.telemetry_path.clone(),
        };
        let stopped = |rx: &watch::Receiver<bool>| {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|v| *v).await;
            }
        };
        let (server, webhook_server) = match webhook_listener {
            None => {
                let app = router(state, web.max_requests).merge(receiver::routes(hub.clone()));
                (
                    tokio::spawn(serve_router(listener, app, stopped(&rx))),
                    None,
                )
            }
            Some(wl) => {
                let main = serve(listener, state, web.max_requests, stopped(&rx));
                let hooks = receiver::routes(hub.clone())
                    .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "Not found\n") });
                (
                    tokio::spawn(main),
                    Some(tokio::spawn(serve_router(wl, hooks, stopped(&rx)))),
                )
            }
        };
        // Both listeners are bound: Microsoft's validation POST during
        // `subscriptions/start` finds the receiver.
        hub.set_listening();
        let collectors = store.spawn(rx);
        Ok(Running {
            addr,
            store,
            webhook_addr,
            stop,
            server,
            webhook_server,
            collectors,
            _locks: locks,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop collectors and the server (in-flight requests complete).
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        for c in self.collectors {
            c.abort();
        }
        self.store.stop_collectors().await;
        if let Some(w) = self.webhook_server {
            let _ = w.await;
        }
        match self.server.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Every tenant's webhook inbox, for the receiver.
fn webhook_hub(store: &Store) -> Hub {
    let mut hub = Hub::new(store.live.clone());
    for slot in store.tenants.iter().flat_map(|t| &t.slots) {
        if let Some(inbox) = slot.collector.webhook_inbox() {
            hub.insert(inbox);
        }
    }
    hub
}

/// Serve `app` until `shutdown`; the one place a listener meets a router,
/// so that TLS (`--web.config.file`) wraps every listener alike.
async fn serve_router(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
