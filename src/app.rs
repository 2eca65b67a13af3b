//! Wiring: config → runtime → HTTP server, startable in-process (tests, demo).

use crate::collect::runtime::RuntimeOptions;
use crate::collect::{build, Store};
use crate::config::Config;
use crate::metrics::Live;
use crate::server::{serve, AppState};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct WebOptions {
    pub listen: String,
    pub telemetry_path: String,
    pub max_requests: usize,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            listen: "127.0.0.1:0".into(),
            telemetry_path: "/metrics".into(),
            max_requests: 40,
        }
    }
}

/// A running exporter.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
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
        let store = Arc::new(build(config, Arc::new(Live::new()), opts));
        let (stop, rx) = watch::channel(false);
        let collectors = store.spawn(rx.clone());
        let state = AppState {
            store: store.clone(),
            telemetry_path: web.telemetry_path.clone(),
        };
        let mut srx = rx;
        let server = tokio::spawn(serve(listener, state, web.max_requests, async move {
            let _ = srx.wait_for(|v| *v).await;
        }));
        Ok(Running {
            addr,
            store,
            stop,
            server,
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
        match self.server.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}
