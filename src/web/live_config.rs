//! The web configuration as it is now: `--web.config.file` is re-read when
//! it changes (looked at, at most once a second, by the requests that use
//! it, as exporter-toolkit reads it per request) and on every reload (SIGHUP,
//! `POST /-/reload`). A changed file takes effect for the next request:
//! basic-auth users (with a fresh memory of verified credentials, so a
//! removed user or password is refused at once), response headers, the
//! TLS settings and whether HTTP/2 is served. A file that no longer
//! validates is refused with one log line and the last good one stays.
//! TLS cannot be switched on or off without a restart (the scheme of the
//! listeners); that part of a change is refused, the rest applied.

use crate::config::ConfigError;
use crate::web::basic_auth::{BasicAuth, BcryptSlots};
use crate::web::tls::Acceptor;
use crate::web::web_config::WebConfig;
use arc_swap::ArcSwap;
use axum::http::{HeaderName, HeaderValue};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A file change is noticed within this (plus the next request).
const RECHECK: Duration = Duration::from_secs(1);

/// One generation of the web configuration, ready to serve with.
pub struct Active {
    pub config: WebConfig,
    /// None: no `basic_auth_users`.
    pub auth: Option<Arc<BasicAuth>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub struct LiveWebConfig {
    path: Option<PathBuf>,
    active: ArcSwap<Active>,
    bcrypt: Arc<BcryptSlots>,
    /// When the file was last looked at, and the digest of what it held.
    seen: Mutex<(Instant, Option<Vec<u8>>)>,
    tls: Option<Arc<Acceptor>>,
    h2c: Arc<AtomicBool>,
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

impl LiveWebConfig {
    /// `config` as loaded from `path` at start (None: no file, nothing to
    /// re-read); `tls` is the listeners' acceptor, `h2c` the plain
    /// listeners' switch, both kept in step with the file.
    pub fn new(
        config: WebConfig,
        path: Option<PathBuf>,
        tls: Option<Arc<Acceptor>>,
        h2c: Arc<AtomicBool>,
    ) -> Arc<LiveWebConfig> {
        let bcrypt = Arc::new(BcryptSlots::default());
        let fp = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| digest(&b));
        h2c.store(config.h2c, Ordering::Relaxed);
        Arc::new(LiveWebConfig {
            active: ArcSwap::from_pointee(active(config, &bcrypt)),
            path,
            bcrypt,
            seen: Mutex::new((Instant::now(), fp)),
            tls,
            h2c,
        })
    }

    /// A fixed configuration (no file): tests, the demo.
    pub fn fixed(config: WebConfig) -> Arc<LiveWebConfig> {
        Self::new(config, None, None, Arc::new(AtomicBool::new(false)))
    }

    pub fn bcrypt(&self) -> &Arc<BcryptSlots> {
        &self.bcrypt
    }

    /// The configuration to serve this request with (the file looked at
    /// again when it is due).
    pub fn current(&self) -> Arc<Active> {
        let due = {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            self.path.is_some() && seen.0.elapsed() >= RECHECK
        };
        if due {
            if let Err(e) = self.refresh(false) {
                tracing::warn!(error = %e, "web configuration changed but is invalid: keeping the previous one");
            }
        }
        self.active.load_full()
    }

    /// Re-read the file now (a reload). `Ok(true)`: it changed and applies.
    pub fn reload(&self) -> Result<bool, ConfigError> {
        self.refresh(true)
    }

    fn refresh(&self, forced: bool) -> Result<bool, ConfigError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !forced && seen.0.elapsed() < RECHECK {
            return Ok(false);
        }
        seen.0 = Instant::now();
        let fp = std::fs::read(path).ok().map(|b| digest(&b));
        if fp == seen.1 && !forced {
            return Ok(false);
        }
        // Whatever the outcome, this content was looked at: a bad file is
        // logged once, not at every request.
        let changed_file = fp != seen.1;
        seen.1 = fp;
        drop(seen);
        let config = WebConfig::load(path)?;
        let old = self.active.load();
        if config == old.config {
            return Ok(false);
        }
        let mut config = config;
        match (&self.tls, &config.tls) {
            (Some(acceptor), Some(t)) => acceptor.update(t.clone(), config.http2),
            (None, None) => {}
            (had, _) => {
                tracing::warn!(
                    file = %path.display(),
                    "web configuration: tls_server_config cannot be added or removed without a restart; keeping TLS {}",
                    if had.is_some() { "on" } else { "off" }
                );
                config.tls = old.config.tls.clone();
            }
        }
        self.h2c.store(config.h2c, Ordering::Relaxed);
        tracing::info!(file = %path.display(), users = config.basic_auth_users.len(), changed_file, "web configuration reloaded");
        self.active.store(Arc::new(active(config, &self.bcrypt)));
        Ok(true)
    }
}

fn active(config: WebConfig, bcrypt: &Arc<BcryptSlots>) -> Active {
    let auth = (!config.basic_auth_users.is_empty())
        .then(|| BasicAuth::new(config.basic_auth_users.clone(), bcrypt.clone()));
    // Validated when the file was read.
    let headers = config
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.parse().ok()?)))
        .collect();
    Active {
        config,
        auth,
        headers,
    }
}
