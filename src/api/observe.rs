//! The request metrics every exchange with Microsoft records
//! (`m365_api_requests_total`, `m365_api_request_duration_seconds`), token
//! requests included: [`crate::auth`] records its own here too, which is why
//! this is a module of its own that needs nothing else of `api`.

use crate::metrics::Live;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Graph,
    Management,
    Login,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Graph => "graph",
            Api::Management => "management",
            Api::Login => "login",
        }
    }
}
/// Record one HTTP exchange in `m365_api_requests_total` and the histogram.
pub fn observe(live: &Live, tenant: &str, api: Api, operation: &str, code: &str, took: Duration) {
    live.api_requests
        .with_label_values(&[tenant, api.as_str(), operation, code])
        .inc();
    // No tenant label: 13 series per (api, operation), not per tenant.
    live.api_duration
        .with_label_values(&[api.as_str(), operation])
        .observe(took.as_secs_f64());
}
