//! `app_credentials`: the exporter's own app registration, read from Graph
//! (`applications(appId='{client_id}')`), → the expiry of each client secret
//! and certificate, so that a secret is rotated before every collector of
//! the tenant stops. Needs the application permission `Application.Read.All`.

use super::{CollectError, Collector, CollectorKind, Outcome};
use crate::api::graph::{Application, GraphClient};
use crate::api::ApiError;
use crate::config::is_guid;
use crate::metrics::{Family, SnapshotWriter};
use crate::timefmt::parse_unix;
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The Graph permission the collector needs, as the admin center names it.
pub const PERMISSION: &str = "Application.Read.All";

pub struct AppCredentialsCollector {
    pub tenant: String,
    pub client_id: String,
    pub graph: Arc<GraphClient>,
    pub interval: Duration,
}

impl Collector for AppCredentialsCollector {
    fn kind(&self) -> CollectorKind {
        CollectorKind::AppCredentials
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>> {
        Box::pin(async move {
            match self.graph.application(&self.client_id).await {
                Ok(app) => Ok(render(&self.tenant, &app)),
                Err(e) => Err(explain(&e, &self.client_id)),
            }
        })
    }
}

/// The failures an operator fixes outside the exporter, said so in the one
/// line the run loop logs (it logs a failure once, when it starts or changes).
pub fn explain(e: &ApiError, client_id: &str) -> CollectError {
    match e.status() {
        Some(403) => CollectError(format!(
            "{e} (the app registration lacks the Microsoft Graph application permission \
             {PERMISSION}: add it and grant admin consent, or set app_credentials.enabled: false)"
        )),
        Some(404) => CollectError(format!(
            "{e} (this tenant has no application with appId {client_id}; a managed identity \
             has no app registration: set app_credentials.enabled: false)"
        )),
        _ => CollectError(e.to_string()),
    }
}

/// Pure: the application's credentials → one expiry series per credential.
/// `key_id` is the credential's GUID: bounded by the app's own credentials.
pub fn render(tenant: &str, app: &Application) -> Outcome {
    let mut w = SnapshotWriter::new();
    let mut seen = HashSet::new();
    for (kind, list) in [
        ("secret", &app.password_credentials),
        ("certificate", &app.key_credentials),
    ] {
        for c in list.iter().flatten() {
            let Some(key_id) = c.key_id.as_deref().filter(|k| is_guid(k)) else {
                continue;
            };
            let Some(end) = c.end_date_time.as_deref().and_then(parse_unix) else {
                continue;
            };
            if seen.insert((kind, key_id)) {
                w.sample(
                    Family::AppCredentialExpiry,
                    &[("tenant", tenant), ("type", kind), ("key_id", key_id)],
                    end,
                );
            }
        }
    }
    Outcome {
        rendered: w.finish(),
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::graph::AppCredential;

    fn cred(key_id: &str, end: Option<&str>) -> AppCredential {
        AppCredential {
            key_id: Some(key_id.into()),
            display_name: None,
            end_date_time: end.map(str::to_string),
        }
    }

    #[test]
    fn one_series_per_credential() {
        let app = Application {
            password_credentials: Some(vec![
                cred(
                    "11111111-1111-4111-8111-111111111111",
                    Some("1970-01-02T00:00:00Z"),
                ),
                cred("not-a-guid", Some("1970-01-02T00:00:00Z")),
                cred("22222222-2222-4222-8222-222222222222", None),
            ]),
            key_credentials: Some(vec![
                cred(
                    "33333333-3333-4333-8333-333333333333",
                    Some("1970-01-03T00:00:00.5Z"),
                ),
                cred(
                    "33333333-3333-4333-8333-333333333333",
                    Some("1970-01-03T00:00:00.5Z"),
                ),
            ]),
        };
        let o = render("t", &app);
        let text = std::str::from_utf8(o.rendered.get(Family::AppCredentialExpiry).unwrap())
            .unwrap()
            .to_string();
        assert_eq!(
            text,
            "m365_app_credential_expiry_timestamp_seconds{tenant=\"t\",type=\"secret\",key_id=\"11111111-1111-4111-8111-111111111111\"} 86400\n\
             m365_app_credential_expiry_timestamp_seconds{tenant=\"t\",type=\"certificate\",key_id=\"33333333-3333-4333-8333-333333333333\"} 172800.5\n"
        );
        assert!(render("t", &Application::default())
            .rendered
            .get(Family::AppCredentialExpiry)
            .is_none());
    }

    #[test]
    fn forbidden_names_the_permission() {
        let e = ApiError::Status {
            operation: "applications",
            status: 403,
            code: Some("Authorization_RequestDenied".into()),
            message: "Insufficient privileges to complete the operation.".into(),
        };
        let msg = explain(&e, "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5").0;
        assert!(msg.contains("Application.Read.All"), "{msg}");
        assert!(
            msg.contains("HTTP 403 Authorization_RequestDenied"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }
}
