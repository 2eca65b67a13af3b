//! Configuration reload (SIGHUP, `POST /-/reload`), as Prometheus does it:
//! the new file is validated completely before anything changes; a bad one
//! is refused with one log line and `m365_config_last_reload_successful` 0,
//! while the running tenants carry on. A valid file whose added or changed
//! tenant's audit feed files are locked by another process is applied for
//! every other tenant; that tenant is refused (not started, or kept running
//! as it was), and the reload reports failure (`…_successful` 0, `POST
//! /-/reload` 500) naming it, so that the next reload tries it again.
//!
//! The one module of `config` that looks past it: it hands the validated
//! configuration to the running [`Fleet`].

use super::error::ConfigError;
use super::shard::Shard;
use super::source::ConfigSource;
use crate::collect::fleet::{Changes, Fleet};
use crate::timefmt::now_unix;
use std::sync::Arc;

pub struct Reloader {
    source: ConfigSource,
    shard: Option<Shard>,
    fleet: Arc<Fleet>,
}

impl Reloader {
    pub fn new(source: ConfigSource, shard: Option<Shard>, fleet: Arc<Fleet>) -> Reloader {
        Reloader {
            source,
            shard,
            fleet,
        }
    }

    /// Record a successful load (start or reload).
    pub fn loaded(&self) {
        let live = &self.fleet.store().live;
        live.reload_successful.set(1.0);
        live.reload_success_timestamp.set(now_unix());
    }

    /// Re-read the configuration and apply it.
    pub async fn reload(&self) -> Result<Changes, ConfigError> {
        match self.source.load(self.shard) {
            Ok(config) => {
                let applied = self.fleet.apply(&config).await;
                if let Some((name, why)) = applied.refused.first() {
                    self.fleet.store().live.reload_successful.set(0.0);
                    tracing::error!(refused = applied.refused.len(), "configuration reload applied except for tenants whose feed files are locked elsewhere");
                    return Err(ConfigError {
                        source: "reload".into(),
                        key: format!("tenants[{name}].activity"),
                        reason: why.clone(),
                    });
                }
                self.loaded();
                tracing::info!(
                    added = applied.added.len(),
                    removed = applied.removed.len(),
                    changed = applied.changed.len(),
                    unchanged = applied.unchanged,
                    "configuration reloaded"
                );
                Ok(applied)
            }
            Err(e) => {
                self.fleet.store().live.reload_successful.set(0.0);
                tracing::error!(error = %e, "configuration reload refused: keeping the running configuration");
                Err(e)
            }
        }
    }
}

/// Reload on every SIGHUP until the process ends.
#[cfg(unix)]
pub fn spawn_sighup(reloader: Arc<Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let _ = reloader.reload().await;
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP; use POST /-/reload"),
    }
}

#[cfg(not(unix))]
pub fn spawn_sighup(_: Arc<Reloader>) {}
