//! The in-flight byte budget of blob downloads (`activity.max_inflight_bytes`),
//! against wiremock over real sockets: a blob's bytes are reserved from the
//! budget before its body is read and stay reserved until the caller lets go,
//! so a second blob that does not fit waits; a blob larger than the budget
//! fails as too large instead of being buffered.

use m365_exporter::activity::client::ManagementClient;
use m365_exporter::auth::{ClientSecretCredential, SecretSource, TokenProvider};
use m365_exporter::http::{ApiClient, ApiError, RetryPolicy};
use m365_exporter::metrics::Live;
use m365_exporter::secret::Secret;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b";

async fn setup() -> (MockServer, ManagementClient) {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"token_type":"Bearer","expires_in":3599,"access_token":"tok-1"}),
            ),
        )
        .mount(&s)
        .await;
    for (name, size) in [("a", 600usize), ("b", 600), ("huge", 5_000)] {
        Mock::given(method("GET"))
            .and(path(format!("/blob/{name}")))
            .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(size)))
            .mount(&s)
            .await;
    }
    let uri = s.uri();
    let live = Arc::new(Live::new());
    let http = m365_exporter::http::client(Duration::from_secs(2), Duration::from_secs(5));
    let cred = ClientSecretCredential::new(
        &uri,
        TENANT,
        "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5",
        SecretSource::Inline(Secret::new("s")),
    );
    let tokens = Arc::new(TokenProvider::new(
        "t",
        Arc::new(cred),
        http.clone(),
        live.clone(),
    ));
    let policy = RetryPolicy {
        max_attempts: 1,
        base: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
    };
    let api = Arc::new(ApiClient::new("t", http, live, tokens, policy, &[&uri]));
    let client = ManagementClient::new(api, &uri, TENANT, TENANT, 2_000);
    (s, client)
}

#[tokio::test]
async fn blobs_wait_for_the_budget_and_never_exceed_it() {
    let (s, client) = setup().await;
    let budget = Arc::new(Semaphore::new(1_000));
    let a = format!("{}/blob/a", s.uri());
    let b = format!("{}/blob/b", s.uri());
    let (body, permit) = client.blob(&a, &budget, 1_000).await.unwrap();
    assert_eq!(body.len(), 600);
    assert_eq!(budget.available_permits(), 400, "its bytes are reserved");
    // The second 600-byte blob does not fit while the first is held...
    let second = client.blob(&b, &budget, 1_000);
    tokio::pin!(second);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut second)
            .await
            .is_err(),
        "waits for the budget"
    );
    // ...and goes on once the first is written (its permit dropped).
    drop(permit);
    let (body, permit) = second.await.unwrap();
    assert_eq!(body.len(), 600);
    assert_eq!(budget.available_permits(), 400);
    drop(permit);
    assert_eq!(budget.available_permits(), 1_000);
    // Larger than the whole budget: refused, not buffered.
    let huge = format!("{}/blob/huge", s.uri());
    match client.blob(&huge, &budget, 1_000).await {
        Err(ApiError::TooLarge { .. }) => {}
        other => panic!("{:?}", other.map(|(b, _)| b.len())),
    }
    assert_eq!(budget.available_permits(), 1_000, "nothing left reserved");
}
