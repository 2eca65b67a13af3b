//! The Graph client against wiremock over real sockets: paging to the end,
//! error bodies, the host allow-list, the body cap.

mod support;

use m365_exporter::api::graph::GraphClient;
use m365_exporter::api::ApiError;
use m365_exporter::metrics::Live;
use serde_json::json;
use std::sync::Arc;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use support::mock_api;

const LIST: &str = "/v1.0/admin/serviceAnnouncement/healthOverviews";

fn exposition(live: &Live) -> String {
    let mut text = Vec::new();
    live.encode(None, &mut text);
    String::from_utf8(text).unwrap()
}

async fn server() -> MockServer {
    let s = MockServer::start().await;
    mock_api::token_endpoint().expect(1).mount(&s).await;
    s
}

fn client(uri: &str) -> (GraphClient, Arc<Live>) {
    let (api, live) = mock_api::api_client(uri);
    (GraphClient::new(api, uri), live)
}

fn svc(i: usize) -> serde_json::Value {
    json!({"service": format!("Service {i}"), "status": "serviceOperational", "id": format!("S{i}")})
}

#[tokio::test]
async fn follows_next_link_across_pages() {
    let s = server().await;
    let uri = s.uri();
    for (page, next) in [(0usize, Some(1usize)), (1, Some(2)), (2, None)] {
        let mut body =
            json!({"@odata.context": "ctx", "value": [svc(page * 2), svc(page * 2 + 1)]});
        if let Some(n) = next {
            body["@odata.nextLink"] = json!(format!("{uri}{LIST}?$skiptoken=p{n}"));
        }
        let m = Mock::given(method("GET"))
            .and(path(LIST))
            .and(header("authorization", "Bearer tok-1"));
        let m = if page == 0 {
            m.and(wiremock::matchers::query_param_is_missing("$skiptoken"))
        } else {
            m.and(query_param("$skiptoken", format!("p{page}")))
        };
        m.respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&s)
            .await;
    }
    let (g, _) = client(&uri);
    let all = g.health_overviews().await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[5].id, "S5");
    s.verify().await;
}

#[tokio::test]
async fn graph_error_body_is_reported_and_counted() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/admin/serviceAnnouncement/issues"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}})))
        .expect(1) // not retried: a 403 won't heal by itself
        .mount(&s)
        .await;
    let (g, live) = client(&s.uri());
    let e = g.issues().await.unwrap_err();
    assert_eq!(e.to_string(), "issues: HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation.");
    let text = exposition(&live);
    assert!(text.contains("m365_api_errors_total{tenant=\"t\",api=\"graph\",error_code=\"Authorization_RequestDenied\"} 1"), "{text}");
}

#[tokio::test]
async fn next_link_to_a_foreign_host_is_refused() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"value": [svc(0)], "@odata.nextLink": "https://attacker.example/steal"}),
        ))
        .mount(&s)
        .await;
    let (g, live) = client(&s.uri());
    let e = g.health_overviews().await.unwrap_err();
    assert!(matches!(e, ApiError::ForeignHost { .. }), "{e}");
    let text = exposition(&live);
    let want = "m365_api_errors_total{tenant=\"t\",api=\"graph\",error_code=\"ForeignHost\"} 1";
    assert!(text.contains(want), "{text}");
}

#[tokio::test]
async fn redirects_are_not_followed_off_host() {
    let s = server().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .expect(0)
        .mount(&elsewhere)
        .await;
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("Location", format!("{}/steal", elsewhere.uri())),
        )
        .mount(&s)
        .await;
    let (g, _) = client(&s.uri());
    let e = g.health_overviews().await.unwrap_err();
    assert_eq!(e.status(), Some(302), "{e}");
    elsewhere.verify().await;
}

#[tokio::test]
async fn retries_5xx_and_then_gives_up() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/admin/serviceAnnouncement/messages"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .expect(3)
        .mount(&s)
        .await;
    let (g, _) = client(&s.uri());
    let e = g.messages().await.unwrap_err();
    assert_eq!(e.status(), Some(502));
    assert!(e.to_string().contains("bad gateway"));
    s.verify().await;
}

/// A 2xx answer with `body` to the health overviews: its error and the exposition.
async fn unreadable_2xx(body: String) -> (ApiError, String) {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path(LIST))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&s)
        .await;
    let (g, live) = client(&s.uri());
    let e = g.health_overviews().await.unwrap_err();
    (e, exposition(&live))
}

const MALFORMED_COUNTED: &str =
    "m365_api_errors_total{tenant=\"t\",api=\"graph\",error_code=\"MalformedResponse\"} 1";

#[tokio::test]
async fn truncated_json_is_malformed_not_a_panic() {
    let (e, text) = unreadable_2xx("{\"value\": [{\"id\": \"S0\", \"serv".into()).await;
    assert!(matches!(e, ApiError::Malformed { .. }), "{e}");
    assert!(text.contains(MALFORMED_COUNTED), "{text}");
}

#[tokio::test]
async fn an_oversized_body_counts_as_malformed() {
    let (e, text) = unreadable_2xx(" ".repeat(17 * 1024 * 1024)).await;
    assert!(matches!(e, ApiError::TooLarge { .. }), "{e}");
    assert!(text.contains(MALFORMED_COUNTED), "{text}");
}
