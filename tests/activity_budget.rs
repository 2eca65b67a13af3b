//! The in-flight byte budget of blob downloads (`activity.max_inflight_bytes`),
//! against wiremock over real sockets: a blob's bytes are reserved from the
//! budget before its body is read and stay reserved until the caller lets go,
//! so a second blob that does not fit waits; a blob larger than the budget
//! fails as too large instead of being buffered.

mod support;

use m365_exporter::activity::client::ManagementClient;
use m365_exporter::api::ApiError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use support::mock_api;

use mock_api::TENANT;

async fn setup() -> (MockServer, ManagementClient) {
    let s = MockServer::start().await;
    mock_api::token_endpoint().mount(&s).await;
    for (name, size) in [("a", 600usize), ("b", 600), ("huge", 5_000)] {
        Mock::given(method("GET"))
            .and(path(format!("/blob/{name}")))
            .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(size)))
            .mount(&s)
            .await;
    }
    let uri = s.uri();
    let (api, _) = mock_api::api_client(&uri);
    let client = ManagementClient::new(
        api,
        &uri,
        std::sync::Arc::new(m365_exporter::auth::tenant::TenantGuid::known(TENANT)),
        None,
        2_000,
    );
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
