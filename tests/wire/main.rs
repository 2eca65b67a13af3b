//! The wire-format reference suite: the example answers of Microsoft's own
//! documentation, rewritten as fixtures beside this file (one per file, the
//! page cited in its first lines), run through every parser the exporter
//! has for them. A fixture is an HTTP message as text: `#` lines (the
//! source, then notes), the status (or request) line, headers, a blank
//! line, the body; `management/errors.json` is the reference's error table.
//!
//! What each answer must come to is asserted here; the last test checks
//! that every fixture cites its page and is on the list the tests read.

#[path = "../support/mod.rs"]
mod support;

use m365_exporter::activity::auditquery::{parse_query, parse_records, push_record, QueryStatus};
use m365_exporter::activity::client::{
    next_page, parse_content_items, parse_content_page, with_publisher, ManagementClient,
    Subscription,
};
use m365_exporter::activity::problem::{classify, webhook_refused, Problem};
use m365_exporter::activity::recent::key;
use m365_exporter::activity::records::parse_blob;
use m365_exporter::api::error::{error_label, parse_error_body, KNOWN_ERROR_CODES};
use m365_exporter::api::graph::{parse_page, HealthOverview, Issue, Message, Page};
use m365_exporter::api::ApiError;
use m365_exporter::auth::credentials::managed::parse_mi_response;
use m365_exporter::auth::grant::parse_token_response;
use m365_exporter::auth::retry::TokenRetry;
use m365_exporter::auth::tenant::{lookup, parse_discovery, TenantGuid};
use m365_exporter::collect::history::{self, Window};
use m365_exporter::collect::{messages, service_health, Outcome};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wire")
}

/// One fixture: its citation lines, status, headers and body.
struct Fixture {
    notes: Vec<String>,
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn text(rel: &str) -> String {
    std::fs::read_to_string(dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn fixture(rel: &str) -> Fixture {
    let text = text(rel);
    let (head, body) = text
        .split_once("\n\n")
        .expect("a blank line before the body");
    let mut lines = head.lines();
    let mut notes = Vec::new();
    let start = loop {
        let l = lines.next().expect("a status or request line");
        match l.strip_prefix('#') {
            Some(n) => notes.push(n.trim().to_string()),
            None => break l,
        }
    };
    // `HTTP/1.1 200 OK`, or a request line (`POST /path HTTP/1.1`): 0.
    let status = start
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.split(' ').next())
        .map_or(0, |s| s.parse().expect("status"));
    let mut headers = HeaderMap::new();
    for l in lines {
        let (k, v) = l.split_once(':').expect("a header line");
        headers.append(
            HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(v.trim()).unwrap(),
        );
    }
    Fixture {
        notes,
        status,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn api_error(f: &Fixture) -> ApiError {
    let (code, message) = parse_error_body(&f.body);
    ApiError::Status {
        operation: "subscriptions_start",
        status: f.status,
        code,
        message,
    }
}

/// The 30 days to 2020-12-01T00:00:00Z: the month of the pages' examples.
const DOCUMENTED_MONTH: Window = Window {
    end: 1_606_780_800.0,
    length: 30.0 * 86_400.0,
};

/// `service_health::render` with the track record of [`DOCUMENTED_MONTH`].
fn render_health(overviews: &[HealthOverview], issues: &[Issue]) -> Outcome {
    let track = history::compute(overviews, issues, DOCUMENTED_MONTH);
    service_health::render("t", overviews, issues, &track)
}

// ------------------------------------------------------------- Management

/// The tenant of the reference's samples.
const SAMPLE_TENANT: &str = "f28ab78a-d401-4060-8012-736e373933eb";
const SAMPLE_ID: &str = "492638008028$492638008028$f28ab78ad40140608012736e373933ebspo2015043022$4a81a7c326fc4aed89c62e6039ab833b$04";

/// The reference's subscriptions/list sample: the item without `status`
/// is listed (as not enabled), not dropped and not a parse failure.
#[test]
fn subscriptions_list() {
    let f = fixture("management/subscriptions_list.http");
    let list: Vec<Subscription> = serde_json::from_slice(&f.body).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].content_type, "Audit.SharePoint");
    assert_eq!(list[0].status, "enabled");
    let hook = list[0].webhook.as_ref().unwrap();
    assert_eq!(hook.address, "https://webhook.myapp.com/o365/");
    assert_eq!(hook.status, "enabled");
    assert_eq!(list[1].content_type, "Audit.Exchange");
    assert_eq!(list[1].status, "", "no status: listed, not enabled");
    assert!(list[1].webhook.is_none());
    let f = fixture("management/subscriptions_list_troubleshooting.http");
    let list: Vec<Subscription> = serde_json::from_slice(&f.body).unwrap();
    assert_eq!(list.len(), 2);
    // A webhook without `status` is still read (as not enabled).
    let hook = list[1].webhook.as_ref().unwrap();
    assert_eq!(hook.status, "");
    assert!(hook.address.starts_with("https://"));
}

/// The reference's content listing, its `NextPageUri` (with `/api/v1/`),
/// the troubleshooting guide's `NextPageUrl`, a lower-case name, the last
/// page without one.
#[test]
fn content_pages_and_their_continuation() {
    let next = "https://manage.office.com/api/v1/f28ab78a-d401-4060-8012-736e373933eb/activity/feed/subscriptions/content?contentType=Audit.SharePoint&startTime=2015-10-01&endTime=2015-10-02&nextPage=2015101900R022885001761";
    for (rel, want) in [
        ("management/content_page_next_page_uri.http", Some(next)),
        ("management/content_page_next_page_url.http", Some(next)),
        ("management/content_page_lower_case_header.http", Some(next)),
        ("management/content_page_last.http", None),
    ] {
        let f = fixture(rel);
        assert_eq!(f.status, 200);
        assert_eq!(next_page(&f.headers), want, "{rel}");
        let (items, skipped) = parse_content_page(&f.body).unwrap();
        assert_eq!(skipped, 0, "{rel}");
        assert_eq!(items.len(), 1);
        let c = &items[0];
        assert_eq!(c.content_type, "Audit.SharePoint");
        assert_eq!(c.content_id, SAMPLE_ID);
        assert!(c.content_uri.ends_with(SAMPLE_ID));
        assert_eq!(c.created, 1_432_402_500, "2015-05-23T17:35:00.000Z");
        assert_eq!(c.expiration, 1_432_402_500 + 7 * 86_400);
    }
    // The next page goes out with our PublisherIdentifier, the rest kept.
    let p = "46b472a7-c68e-4adf-8ade-3db49497518e";
    let out = with_publisher(next, p);
    assert!(
        out.starts_with("https://manage.office.com/api/v1/"),
        "{out}"
    );
    assert!(out.contains("nextPage=2015101900R022885001761"), "{out}");
    assert!(out.ends_with(&format!("&PublisherIdentifier={p}")), "{out}");
}

/// The listing client follows a chain of pages whose continuation header is
/// spelled each documented way, over a real socket (wiremock), to the end.
#[tokio::test]
async fn the_listing_client_follows_every_spelling() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let uri = server.uri();
    let tenant = m365_exporter::simulator::SIM_TENANT_ID;
    Mock::given(method("POST"))
        .and(path(format!("/{tenant}/oauth2/v2.0/token")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("identity/token.http").body, "application/json"),
        )
        .mount(&server)
        .await;
    let chain = [
        ("", "management/content_page_next_page_uri.http", "p2"),
        ("p2", "management/content_page_next_page_url.http", "p3"),
        ("p3", "management/content_page_lower_case_header.http", "p4"),
        ("p4", "management/content_page_last.http", ""),
    ];
    for (this, rel, next) in chain {
        let f = fixture(rel);
        let body = String::from_utf8(f.body.clone())
            .unwrap()
            .replace("https://manage.office.com", &uri);
        let mut answer = ResponseTemplate::new(200).set_body_raw(body, "application/json");
        for (name, value) in &f.headers {
            if name.as_str().eq_ignore_ascii_case("nextpageuri")
                || name.as_str().eq_ignore_ascii_case("nextpageurl")
            {
                let v = value
                    .to_str()
                    .unwrap()
                    .replace("https://manage.office.com", &uri)
                    .replace(
                        "nextPage=2015101900R022885001761",
                        &format!("nextPage={next}"),
                    );
                answer = answer.insert_header(name.clone(), v.as_str());
            }
        }
        let mut m = Mock::given(method("GET")).and(query_param("contentType", "Audit.SharePoint"));
        m = match this {
            "" => m.and(path(format!(
                "/api/v1.0/{tenant}/activity/feed/subscriptions/content"
            ))),
            page => m
                .and(path(format!(
                    "/api/v1/{SAMPLE_TENANT}/activity/feed/subscriptions/content"
                )))
                .and(query_param("nextPage", page)),
        };
        m.respond_with(answer).expect(1).mount(&server).await;
    }
    let (api, _) = support::sim_api("w", &uri, Duration::from_secs(5), Default::default());
    let client = ManagementClient::new(api, &uri, Arc::new(TenantGuid::known(tenant)), None, 2_000);
    let now = m365_exporter::timefmt::now_unix() as i64;
    let (items, skipped) = client
        .list_content("Audit.SharePoint", now - 3_600, now)
        .await
        .unwrap();
    assert_eq!((items.len(), skipped), (4, 0), "all four pages read");
    server.verify().await;
}

/// The reference's webhook notification: the content fields and the
/// tenant it names.
#[test]
fn notification() {
    let f = fixture("management/notification.http");
    assert_eq!(f.status, 0, "a request");
    assert_eq!(
        f.headers.get("webhook-authid").unwrap(),
        "o365activityapinotification"
    );
    let (items, skipped) = parse_content_items(&f.body).unwrap();
    assert_eq!(skipped, 0);
    assert_eq!(
        items[0].1.as_deref(),
        Some("f28ab78a-d401-4060-8012-736e373933eb")
    );
    assert_eq!(items[0].0.content_id, SAMPLE_ID);
}

/// The reference's blob of three Azure AD records.
#[test]
fn blob_records() {
    let f = fixture("management/blob_azure_active_directory.http");
    let records = parse_blob(&f.body).unwrap();
    let got: Vec<(&str, &str, &str, f64)> = records
        .iter()
        .map(|r| {
            (
                r.id.as_deref().unwrap(),
                r.workload.as_deref().unwrap(),
                r.operation.as_deref().unwrap(),
                r.creation_time.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "80c76bd2-9d81-4c57-a97a-accfc3443dca",
                "AzureActiveDirectory",
                "PasswordLogonInitialAuthUsingPassword",
                1_435_608_199.0
            ),
            (
                "4e655d3f-35fa-42e0-b050-264b2d255c7a",
                "AzureActiveDirectory",
                "PasswordLogonInitialAuthUsingPassword",
                1_435_608_214.0
            ),
            (
                "b567caf0-088e-4c1c-a4ea-633a1e3d66c8",
                "AzureActiveDirectory",
                "Add User.",
                1_435_608_230.0
            ),
        ]
    );
    // Each record's bytes as sent (the sink writes them).
    let first: serde_json::Value = serde_json::from_str(records[0].raw).unwrap();
    assert_eq!(first["ExtendedProperties"][0]["Name"], "LoginError");
}

/// The Audit Log Query API's pages: a query as created, as read back
/// (inside `value`, as the Get page prints it), and a records page whose
/// `auditData` carries its OData type, spaced as printed: matched on
/// `auditData.Id`, repaired as the bare record.
#[test]
fn audit_log_query_answers_as_documented() {
    let f = fixture("graph/audit_log_query_create.http");
    assert_eq!(f.status, 201);
    let q = parse_query(&f.body).unwrap();
    assert_eq!(q.id, "168ec429-084b-a489-90d8-504a87846305");
    assert_eq!(q.status, QueryStatus::NotStarted);
    assert!(!q.truncated);
    let q = parse_query(&fixture("graph/audit_log_query_get.http").body).unwrap();
    assert_eq!(q.id, "168ec429-084b-a489-90d8-504a87846305");
    assert_eq!(q.status, QueryStatus::Running);

    let f = fixture("graph/audit_log_records.http");
    let page = parse_records(&f.body).unwrap();
    assert_eq!(page.skipped, 0);
    assert!(page.next.as_deref().unwrap().ends_with("$skiptoken=1"));
    let [r] = &page.records[..] else {
        panic!("one record: {:?}", page.records)
    };
    assert_eq!(r.key, key("80c76bd2-9d81-4c57-a97a-accfc3443dca"));
    assert_eq!(r.created, Some(1_795_688_142));
    assert_eq!(r.content_type, "Audit.AzureActiveDirectory");
    let mut line = Vec::new();
    push_record(r.audit_data.unwrap(), &mut line);
    let got: serde_json::Value = serde_json::from_slice(&line).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
    let mut want = body["value"][0]["auditData"].clone();
    want.as_object_mut().unwrap().remove("@odata.type");
    assert_eq!(got, want, "the record as the Management API delivers it");
}

/// Every code of the reference's error table: kept as its own `error_code`
/// label, and the lasting ones classified as lasting.
#[test]
fn the_reference_error_table() {
    let table: serde_json::Value = serde_json::from_str(&text("management/errors.json")).unwrap();
    assert!(table["source"]
        .as_str()
        .unwrap()
        .starts_with("https://learn.microsoft.com/"));
    let errors = table["errors"].as_array().unwrap();
    assert!(errors.len() >= 21);
    for e in errors {
        let code = e["code"].as_str().unwrap();
        let status = e["status"].as_u64().unwrap() as u16;
        let body =
            serde_json::json!({"error": {"code": code, "message": e["message"]}}).to_string();
        let (parsed, message) = parse_error_body(body.as_bytes());
        assert_eq!(parsed.as_deref(), Some(code));
        assert_eq!(message, e["message"].as_str().unwrap());
        assert!(
            KNOWN_ERROR_CODES.contains(&code),
            "{code} in the bounded set"
        );
        assert_eq!(error_label(Some(code), status), code);
        let err = ApiError::Status {
            operation: "subscriptions_list",
            status,
            code: parsed,
            message,
        };
        let p = classify(&err);
        let want_lasting = matches!(
            code,
            "AF10001"
                | "AF20010"
                | "AF20011"
                | "AF20012"
                | "AF20013"
                | "AF20020"
                | "AF20022"
                | "AF20023"
        );
        assert_eq!(p.lasting(), want_lasting, "{code}: {p:?}");
        if code == "AF20021" {
            let address = if e["message"].as_str().unwrap().contains("HTTPS") {
                "http://webhook.myapp.com/o365/"
            } else {
                "https://webhook.myapp.com/o365/"
            };
            let why = webhook_refused(address, &err, &p.short());
            assert_eq!(
                why.contains("must begin with https://, not http://"),
                address.starts_with("http:"),
                "{why}"
            );
        }
    }
}

#[test]
fn error_answers() {
    let f = fixture("management/error_af50000.http");
    assert_eq!(f.status, 500);
    let (code, _) = parse_error_body(&f.body);
    assert_eq!(code.as_deref(), Some("AF50000"));
    // Printed with single quotes: still AF429, throttling.
    let f = fixture("management/error_af429_single_quoted.http");
    assert_eq!(f.status, 403);
    let (code, message) = parse_error_body(&f.body);
    assert_eq!(code.as_deref(), Some("AF429"));
    assert!(message.starts_with("Too many requests."), "{message}");
}

/// The unified-audit-log-off answer, split between code and message in
/// every way the field reports show (and the one left).
#[test]
fn audit_log_off_in_every_split() {
    for rel in [
        "management/audit_off_split_in_message.http",
        "management/audit_off_split_straddles.http",
        "management/audit_off_split_after_corr_id.http",
        "management/audit_off_split_in_code.http",
    ] {
        let f = fixture(rel);
        assert_eq!(f.status, 400);
        let e = api_error(&f);
        assert_eq!(classify(&e), Problem::AuditLogOff, "{rel}: {e}");
        assert_eq!(e.code(), None, "{rel}: no code, so the label is HTTP400");
    }
}

// ------------------------------------------------------------------ Graph

/// Both pages parsed, PascalCase as printed and camelCase as the schema:
/// the same values, the schema's spelling.
fn both<T: serde::de::DeserializeOwned + std::fmt::Debug + PartialEq>(name: &str) -> Page<T> {
    let pascal = fixture(&format!("graph/{name}_pascal.http"));
    let camel = fixture(&format!("graph/{name}_camel.http"));
    let (p, c) = (
        parse_page::<T>(&pascal.body).unwrap(),
        parse_page::<T>(&camel.body).unwrap(),
    );
    assert_eq!(p.value, c.value, "{name}: PascalCase reads as camelCase");
    assert_eq!(p.next_link, c.next_link);
    p
}

fn families(o: &Outcome) -> Vec<String> {
    o.rendered
        .families
        .iter()
        .map(|c| o.rendered.text(c).to_string())
        .collect()
}

#[test]
fn graph_lists_in_either_casing() {
    let overviews = both::<HealthOverview>("health_overviews").value;
    let statuses: Vec<&str> = overviews.iter().map(|o| o.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "serviceOperational",
            "serviceRestored",
            "serviceOperational"
        ]
    );
    let issues = both::<Issue>("issues");
    assert_eq!(
        issues.next_link.as_deref(),
        Some("https://graph.microsoft.com/v1.0/admin/serviceAnnouncement/issues?$skip=100")
    );
    let i = &issues.value[0];
    assert_eq!(
        (
            i.classification.as_str(),
            i.origin.as_deref(),
            i.status.as_str()
        ),
        ("incident", Some("microsoft"), "serviceRestored")
    );
    let o = render_health(&overviews, &issues.value);
    // The track record of the documented issue: an Exchange incident from
    // 2020-11-13T21:00:00Z to 2020-11-14T17:15:00Z, resolved (20 h 15 min).
    let track = history::compute(&overviews, &issues.value, DOCUMENTED_MONTH);
    let exchange = track
        .services
        .iter()
        .find(|s| s.service_id == "Exchange")
        .expect("Exchange");
    assert_eq!(exchange.incident.impact_seconds, 72_900.0);
    assert_eq!(
        (exchange.incident.started, exchange.incident.resolved),
        (1, 1)
    );
    assert_eq!(exchange.incident.time_to_resolve_max(), Some(72_900.0));
    assert!(o.services.iter().all(|s| s.operational), "{:?}", o.services);
    let info = String::from_utf8(
        o.rendered
            .get(m365_exporter::metrics::Family::IssueInfo)
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(info.contains("classification=\"advisory\""), "{info}");
    assert!(!info.contains("Advisory"), "{info}");
    // Rendered from the PascalCase page: what the camelCase page renders.
    let pascal: Page<Issue> = parse_page(&fixture("graph/issues_pascal.http").body).unwrap();
    let camel: Page<Issue> = parse_page(&fixture("graph/issues_camel.http").body).unwrap();
    assert_eq!(
        families(&render_health(&overviews, &pascal.value)),
        families(&render_health(&overviews, &camel.value))
    );
    let msgs = both::<Message>("messages").value;
    assert_eq!(
        (msgs[0].category.as_str(), msgs[0].severity.as_str()),
        ("stayInformed", "normal")
    );
    let text = families(&messages::render("t", &msgs, 0.0)).join("");
    assert!(
        text.contains(
            "m365_service_messages{tenant=\"t\",category=\"stayInformed\",severity=\"normal\"} 1"
        ),
        "{text}"
    );
    assert!(!text.contains("StayInformed"), "{text}");
}

// --------------------------------------------------------------- Identity

#[test]
fn token_endpoint_answers() {
    let f = fixture("identity/token.http");
    let t = parse_token_response(f.status, &f.body).unwrap();
    assert_eq!(t.lifetime, Duration::from_secs(3599));
    let f = fixture("identity/token_error.http");
    let e = parse_token_response(f.status, &f.body).err().unwrap();
    assert_eq!(e.code.as_deref(), Some("invalid_client"));
    assert!(
        e.message.starts_with("invalid_client: AADSTS7000215"),
        "{e}"
    );
    assert!(!e.message.contains("Trace ID"), "first line only: {e}");
}

/// The discovery document names the GUID; an unknown domain's answer is a
/// lasting failure (served over a socket, as the lookup reads it).
#[tokio::test]
async fn openid_discovery() {
    let f = fixture("identity/openid_configuration.http");
    assert_eq!(
        parse_discovery(&f.body).unwrap(),
        "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
    );
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    for (tenant, rel) in [
        (
            "contoso.onmicrosoft.com",
            "identity/openid_configuration.http",
        ),
        (
            "nowhere.example",
            "identity/openid_configuration_unknown_tenant.http",
        ),
    ] {
        let f = fixture(rel);
        Mock::given(path(format!(
            "/{tenant}/v2.0/.well-known/openid-configuration"
        )))
        .respond_with(ResponseTemplate::new(f.status).set_body_raw(f.body, "application/json"))
        .mount(&server)
        .await;
    }
    let http = reqwest::Client::new();
    let guid = lookup(&http, &server.uri(), "contoso.onmicrosoft.com", None).await;
    assert_eq!(guid.unwrap(), "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b");
    let e = lookup(&http, &server.uri(), "nowhere.example", None)
        .await
        .unwrap_err();
    assert!(e.lasting, "{e}");
    assert!(e.message.contains("AADSTS90002"), "{e}");
}

/// IMDS and App Service answers; IMDS's update statuses are retried by
/// the managed identity policy (404 with backoff, 410 for 70 s).
#[test]
fn managed_identity_answers() {
    let f = fixture("identity/imds_token.http");
    let t = parse_mi_response(f.status, &f.body).unwrap();
    assert_eq!(t.lifetime, Duration::from_secs(3599));
    let f = fixture("identity/app_service_token.http");
    assert!(
        parse_mi_response(f.status, &f.body).is_ok(),
        "expires_on only"
    );
    for (rel, status, gone) in [
        ("identity/imds_404_updating.http", 404, 0),
        ("identity/imds_410_updating.http", 410, 1),
    ] {
        let f = fixture(rel);
        assert_eq!(f.status, status);
        let e = parse_mi_response(f.status, &f.body).err().unwrap();
        assert_eq!(e.status, Some(status));
        let wait = TokenRetry::Imds.next(e.status, 1, gone, Duration::ZERO);
        assert!(wait.is_some(), "{rel}: retried");
        assert_eq!(
            TokenRetry::Imds
                .next(e.status, 2, gone, Duration::from_secs(71))
                .is_some(),
            status == 404,
            "{rel}: a 410 gives up only after 70 s"
        );
    }
}

/// Every fixture cites a page and is read by a test above.
#[test]
fn every_fixture_cites_its_source_and_is_used() {
    fn walk(d: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "http" || x == "json") {
                out.insert(p.strip_prefix(dir()).unwrap().display().to_string());
            }
        }
    }
    let mut all = BTreeSet::new();
    walk(&dir(), &mut all);
    assert!(all.len() >= 29, "{all:?}");
    for rel in &all {
        let t = std::fs::read_to_string(dir().join(rel)).unwrap();
        let cited = t
            .lines()
            .take(3)
            .any(|l| l.contains("Source: https://") || l.contains("\"source\": \"https://"));
        assert!(cited, "{rel} names no source page");
    }
    let used: BTreeSet<String> = [
        "management/subscriptions_list.http",
        "management/subscriptions_list_troubleshooting.http",
        "management/content_page_next_page_uri.http",
        "management/content_page_next_page_url.http",
        "management/content_page_lower_case_header.http",
        "management/content_page_last.http",
        "management/notification.http",
        "management/blob_azure_active_directory.http",
        "management/errors.json",
        "management/error_af50000.http",
        "management/error_af429_single_quoted.http",
        "management/audit_off_split_in_message.http",
        "management/audit_off_split_straddles.http",
        "management/audit_off_split_after_corr_id.http",
        "management/audit_off_split_in_code.http",
        "graph/health_overviews_pascal.http",
        "graph/health_overviews_camel.http",
        "graph/issues_pascal.http",
        "graph/issues_camel.http",
        "graph/messages_pascal.http",
        "graph/messages_camel.http",
        "identity/token.http",
        "identity/token_error.http",
        "identity/openid_configuration.http",
        "identity/openid_configuration_unknown_tenant.http",
        "identity/imds_token.http",
        "identity/imds_404_updating.http",
        "identity/imds_410_updating.http",
        "identity/app_service_token.http",
        "graph/audit_log_query_create.http",
        "graph/audit_log_query_get.http",
        "graph/audit_log_records.http",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        all, used,
        "a fixture no test reads, or a test reading a missing one"
    );
    // The notes of each fixture were parsed as such (not as headers).
    let f = fixture("management/subscriptions_list.http");
    assert!(f.notes[0].starts_with("Source: https://learn.microsoft.com/"));
}
