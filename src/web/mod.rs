//! The HTTP side: the listeners (plain or TLS, with the limits a slow or
//! hostile client must not get around), `--web.config.file` and basic auth,
//! the routes Prometheus and people use (`/metrics`, `/probe`, health,
//! reload, the status page), and the webhook receiver Microsoft posts to.
//! Everything served comes from the collectors' last snapshots
//! ([`crate::collect::Store`]): nothing here calls Microsoft.

pub mod basic_auth;
pub mod listener;
pub mod live_config;
pub mod receiver;
pub mod server;
pub mod status_page;
pub mod tls;
pub mod web_config;
