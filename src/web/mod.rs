//! The HTTP side: what Prometheus, people and Microsoft's webhook calls reach.
pub mod basic_auth;
pub mod listener;
pub mod receiver;
pub mod server;
pub mod status_page;
pub mod tls;
pub mod web_config;
