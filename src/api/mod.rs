//! The one place requests leave for Microsoft's APIs (Graph and the
//! Management Activity API): bearer tokens, the allow-list of hosts, retries
//! with backoff and jitter honouring `Retry-After`, a cap on body size,
//! error-body parsing, and the `m365_api_*` metrics.
//!
//! - [`client`]: [`ApiClient`], a call tried attempt by attempt;
//! - [`retry`]: the retry policy and `Retry-After`;
//! - [`error`]: [`ApiError`], error bodies and the bounded `error_code` label;
//! - [`transport`]: the reqwest client, the request on the wire, capped reads;
//! - [`observe`]: the request metrics (also used for token requests);
//! - [`graph`]: the Graph calls built on [`ApiClient`] (the Management API's
//!   are the audit feed's own, in `crate::activity::client`).

pub mod client;
pub mod error;
pub mod graph;
pub mod observe;
pub mod retry;
pub mod transport;

pub use client::{ApiClient, Call, Response};
pub use error::ApiError;
pub use observe::Api;
pub use retry::RetryPolicy;
