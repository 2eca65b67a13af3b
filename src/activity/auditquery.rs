//! Microsoft Purview's Audit Log Query API in Graph (v1.0
//! `/security/auditLog/queries`), the reconciler's independent reference:
//! create a query over a time range, read its status, read its records
//! page by page through `@odata.nextLink`. Every call goes through
//! [`Paced`]: a token from this client's request budget first, then the
//! tenant's [`ApiClient`] (its Graph token, host allow-list, retries
//! honouring `Retry-After`, request metrics as `api="graph"`).
//!
//! A records page is parsed for only what the comparison needs (each
//! record's id, time and type, and the extent of its `auditData`, which is
//! kept as the bytes Graph sent and read only for records to repair):
//! nothing of a page outlives it but the ids of missing records.

use super::paced::Paced;
use super::recent::key;
use super::record_types;
use crate::api::{Api, ApiClient, ApiError};
use crate::timefmt::parse_unix;
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;

/// Graph calls of one tenant's reconciler per minute at most: a query is
/// a create, a few status reads with backoff, and its record pages.
pub const REQUESTS_PER_MINUTE: u32 = 120;
/// A records page (Graph pages a few hundred records of 1–3 KB).
const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;
/// A query's status answer is small.
const MAX_QUERY_BYTES: usize = 1024 * 1024;

/// `status` of an `auditLogQuery`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatus {
    NotStarted,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// A value this version does not know (`unknownFutureValue`, …).
    Other(String),
}

impl QueryStatus {
    fn parse(s: &str) -> QueryStatus {
        // Graph's enums are camelCase; Microsoft's pages also print PascalCase.
        match s.to_ascii_lowercase().as_str() {
            "notstarted" => QueryStatus::NotStarted,
            "running" => QueryStatus::Running,
            "succeeded" => QueryStatus::Succeeded,
            "failed" => QueryStatus::Failed,
            "cancelled" | "canceled" => QueryStatus::Cancelled,
            _ => QueryStatus::Other(s.to_string()),
        }
    }

    /// Still being worked on by Microsoft.
    pub fn pending(&self) -> bool {
        matches!(self, QueryStatus::NotStarted | QueryStatus::Running)
    }
}

/// An `auditLogQuery`, as far as the reconciler reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInfo {
    pub id: String,
    pub status: QueryStatus,
    /// `isRecordCountLimitExceeded`: the query succeeded but holds only
    /// part of the records (Microsoft: "can complete successfully after
    /// exceeding its record-count limit"); never a complete reference.
    pub truncated: bool,
}

/// One record of the reference.
#[derive(Debug)]
pub struct RefRecord<'a> {
    /// Key of the unified audit log's `Id` ([`key`]): `auditData.Id`,
    /// else the record's own `id`.
    pub key: u128,
    /// `createdDateTime` (else `auditData.CreationTime`), Unix seconds.
    pub created: Option<i64>,
    /// The content type that delivers it ([`record_types`]).
    pub content_type: &'static str,
    /// `auditData` as Graph sent it (None when absent or not an object).
    pub audit_data: Option<&'a str>,
}

/// One page of a query's records.
#[derive(Debug)]
pub struct RecordsPage<'a> {
    pub records: Vec<RefRecord<'a>>,
    /// Records without any id: they cannot be compared.
    pub skipped: usize,
    /// `@odata.nextLink`.
    pub next: Option<String>,
}

pub struct AuditQueryClient {
    /// Calls to the Graph root (also the token audience).
    paced: Paced,
}

impl AuditQueryClient {
    pub fn new(api: Arc<ApiClient>, graph_root: &str) -> Self {
        AuditQueryClient {
            paced: Paced::new(api, Api::Graph, graph_root, REQUESTS_PER_MINUTE),
        }
    }

    fn queries_url(&self) -> String {
        format!("{}/v1.0/security/auditLog/queries", self.paced.root())
    }

    /// The first page of query `id`'s records.
    pub fn records_url(&self, id: &str) -> String {
        format!("{}/{}/records", self.queries_url(), url_segment(id))
    }

    pub fn api(&self) -> &ApiClient {
        self.paced.api()
    }

    fn parsed(&self, operation: &'static str, body: &[u8]) -> Result<QueryInfo, ApiError> {
        parse_query(body).map_err(|m| self.api().malformed(Api::Graph, operation, m))
    }

    /// `POST /security/auditLog/queries` over `[start, end)` (Unix seconds),
    /// without service or record-type filters: the records are mapped to
    /// content types here (the create and resource pages disagree on
    /// `serviceFilter` vs `serviceFilters`; sending neither is safe).
    pub async fn create(&self, start: i64, end: i64, name: &str) -> Result<QueryInfo, ApiError> {
        let body = create_body(start, end, name);
        let url = self.queries_url();
        let resp = self
            .paced
            .send(
                "audit_query_create",
                Method::POST,
                &url,
                MAX_QUERY_BYTES,
                Some(&body),
            )
            .await?;
        self.parsed("audit_query_create", &resp.body)
    }

    /// `GET /security/auditLog/queries/{id}`.
    pub async fn get(&self, id: &str) -> Result<QueryInfo, ApiError> {
        let url = format!("{}/{}", self.queries_url(), url_segment(id));
        let resp = self
            .paced
            .send("audit_query_get", Method::GET, &url, MAX_QUERY_BYTES, None)
            .await?;
        self.parsed("audit_query_get", &resp.body)
    }

    /// One page of records at `url` (the first page, or a nextLink), as
    /// bytes for [`parse_records`].
    pub async fn records(&self, url: &str) -> Result<Bytes, ApiError> {
        let resp = self
            .paced
            .send(
                "audit_query_records",
                Method::GET,
                url,
                MAX_PAGE_BYTES,
                None,
            )
            .await?;
        Ok(resp.body)
    }

    /// [`parse_records`], a failure counted as a malformed Graph answer.
    pub fn parse<'a>(&self, body: &'a [u8]) -> Result<RecordsPage<'a>, ApiError> {
        parse_records(body).map_err(|m| self.api().malformed(Api::Graph, "audit_query_records", m))
    }
}

/// An id as one path segment (Graph's ids are GUIDs; anything else is
/// escaped rather than trusted).
fn url_segment(id: &str) -> Cow<'_, str> {
    if id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(
            id.bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect(),
        )
    }
}

/// The create request's body.
pub fn create_body(start: i64, end: i64, name: &str) -> Vec<u8> {
    serde_json::json!({
        "@odata.type": "#microsoft.graph.security.auditLogQuery",
        "displayName": name,
        "filterStartDateTime": crate::timefmt::rfc3339(start),
        "filterEndDateTime": crate::timefmt::rfc3339(end),
    })
    .to_string()
    .into_bytes()
}

/// Parse an `auditLogQuery` (create's and get's answer): the object
/// itself, as the create page and OData show it, or inside `value`, as the
/// Get page's example prints it.
pub fn parse_query(body: &[u8]) -> Result<QueryInfo, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        is_record_count_limit_exceeded: Option<bool>,
        #[serde(default)]
        value: Option<Box<Wire>>,
    }
    let mut w: Wire = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if w.id.is_none() {
        if let Some(inner) = w.value.take() {
            w = *inner;
        }
    }
    let Some(id) = w.id.filter(|i| !i.is_empty()) else {
        return Err("auditLogQuery without an id".into());
    };
    Ok(QueryInfo {
        id,
        // Just created: Microsoft answers notStarted; absent means the same.
        status: w
            .status
            .as_deref()
            .map_or(QueryStatus::NotStarted, QueryStatus::parse),
        truncated: w.is_record_count_limit_exceeded.unwrap_or(false),
    })
}

/// Parse one page of `…/records`. `Err` only when the page is not a Graph
/// list; a record without any id is counted in `skipped`.
pub fn parse_records(body: &[u8]) -> Result<RecordsPage<'_>, String> {
    #[derive(Deserialize)]
    struct Page<'a> {
        #[serde(borrow)]
        value: Vec<Wire<'a>>,
        #[serde(rename = "@odata.nextLink", default)]
        next: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire<'a> {
        #[serde(borrow, default)]
        id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        created_date_time: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        audit_log_record_type: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        service: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        audit_data: Option<&'a RawValue>,
    }
    /// The unified audit log's common schema, inside `auditData`.
    #[derive(Deserialize, Default)]
    struct Common<'a> {
        #[serde(rename = "Id", borrow, default)]
        id: Option<Cow<'a, str>>,
        #[serde(rename = "Workload", borrow, default)]
        workload: Option<Cow<'a, str>>,
        #[serde(rename = "CreationTime", borrow, default)]
        creation_time: Option<Cow<'a, str>>,
    }
    let page: Page<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = RecordsPage {
        records: Vec::with_capacity(page.value.len()),
        skipped: 0,
        next: page.next.filter(|n| !n.is_empty()),
    };
    for w in page.value {
        let raw = w
            .audit_data
            .map(RawValue::get)
            .filter(|r| r.starts_with('{'));
        let common: Common<'_> = raw
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default();
        let Some(id) = common
            .id
            .as_deref()
            .or(w.id.as_deref())
            .filter(|i| !i.is_empty())
        else {
            out.skipped += 1;
            continue;
        };
        let created = w
            .created_date_time
            .as_deref()
            .or(common.creation_time.as_deref())
            .and_then(parse_unix)
            .map(|t| t as i64);
        let workload = common.workload.as_deref().or(w.service.as_deref());
        out.records.push(RefRecord {
            key: key(id),
            created,
            content_type: record_types::content_type(w.audit_log_record_type.as_deref(), workload),
            audit_data: raw,
        });
    }
    Ok(out)
}

/// Append `auditData` to `out` as the Management API delivers the record:
/// Graph annotates the object with its type (`"@odata.type":
/// "#microsoft.graph.security.defaultAuditData"`; the List records page
/// prints `"microsoft.graph.security.auditData"`). Every top-level
/// `@odata.` annotation is cut, wherever it stands and however the JSON is
/// spaced; the record's own members keep their bytes. Anything that does
/// not read as an object is appended as it is.
pub fn push_record(audit_data: &str, out: &mut Vec<u8>) {
    let members = audit_data
        .contains("\"@odata.")
        .then(|| members(audit_data))
        .flatten();
    match members {
        Some(members) if members.iter().any(|(annotation, _)| *annotation) => {
            out.push(b'{');
            for (n, (_, text)) in members.iter().filter(|(a, _)| !*a).enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(text.as_bytes());
            }
            out.push(b'}');
        }
        _ => out.extend_from_slice(audit_data.as_bytes()),
    }
}

/// A JSON object's members, each as its text (`"key": value`) and whether
/// it is an OData annotation; None when `obj` is not one object.
fn members(obj: &str) -> Option<Vec<(bool, &str)>> {
    let b = obj.as_bytes();
    let ws = |mut i: usize| {
        while b
            .get(i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    let mut out = Vec::new();
    if b.get(i) == Some(&b'}') {
        return (ws(i + 1) == b.len()).then_some(out);
    }
    loop {
        let start = i;
        let (key, after_key) = one_value::<Cow<'_, str>>(obj, i)?;
        i = ws(after_key);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let (_, after_value) = one_value::<&RawValue>(obj, i + 1)?;
        out.push((key.starts_with("@odata."), obj.get(start..after_value)?));
        i = ws(after_value);
        match b.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => return (ws(i + 1) == b.len()).then_some(out),
            _ => return None,
        }
    }
}

/// The JSON value starting at `at` (after any white space) and the offset
/// just past it.
fn one_value<'a, T: Deserialize<'a>>(s: &'a str, at: usize) -> Option<(T, usize)> {
    let mut values = serde_json::Deserializer::from_str(s.get(at..)?).into_iter::<T>();
    let v = values.next()?.ok()?;
    Some((v, at + values.byte_offset()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_status_and_truncation() {
        let q = parse_query(br#"{"@odata.context":"x","id":"168ec429-084b-a489-90d8-504a87846305","displayName":"d","filterStartDateTime":"2024-01-01T00:00:00Z","status":"notStarted"}"#).unwrap();
        assert_eq!(q.id, "168ec429-084b-a489-90d8-504a87846305");
        assert_eq!(q.status, QueryStatus::NotStarted);
        assert!(q.status.pending() && !q.truncated);
        let q = parse_query(
            br#"{"id":"a","status":"Succeeded","isRecordCountLimitExceeded":true,"recordCountLimit":50000}"#,
        )
        .unwrap();
        assert_eq!(q.status, QueryStatus::Succeeded);
        assert!(q.truncated);
        assert_eq!(
            parse_query(br#"{"id":"a","status":"unknownFutureValue"}"#)
                .unwrap()
                .status,
            QueryStatus::Other("unknownFutureValue".into())
        );
        assert_eq!(
            parse_query(br#"{"id":"a","status":"cancelled"}"#)
                .unwrap()
                .status,
            QueryStatus::Cancelled
        );
        // The Get page's example: the query inside "value".
        let q = parse_query(br##"{"value":{"@odata.type":"#microsoft.graph.security.auditLogQuery","id":"168ec429-084b-a489-90d8-504a87846305","status":"Running"}}"##).unwrap();
        assert_eq!(q.id, "168ec429-084b-a489-90d8-504a87846305");
        assert_eq!(q.status, QueryStatus::Running);
        assert!(parse_query(br#"{"value":[]}"#).is_err());
        assert!(parse_query(br#"{"value":{"status":"running"}}"#).is_err());
        assert!(parse_query(br#"{"id":""}"#).is_err());
        assert!(parse_query(b"{\"status\":\"running\"}").is_err());
        assert!(parse_query(b"[").is_err());
    }

    #[test]
    fn records_match_on_the_audit_data_id() {
        let body = br#"{"@odata.context":"x","value":[
          {"id":"40706737-7eca-f9a1-97a5-dedd3260e24a","createdDateTime":"2026-11-27T10:00:00Z","auditLogRecordType":"exchangeItem","service":"Exchange",
           "auditData":{"CreationTime":"2026-11-27T10:00:00","Id":"4c6f0b7e-0000-4000-8000-000000000001","Workload":"Exchange","Operation":"Send"}},
          {"id":"res-2","auditLogRecordType":"sharePointFileOperation","auditData":null},
          {"createdDateTime":"2026-11-27T10:00:00Z","auditData":{"Workload":"MicrosoftTeams"}},
          {"id":"res-4","auditLogRecordType":"somethingNew","service":"OneDrive","auditData":{"Id":"x","CreationTime":"2026-11-27T11:00:00"}}
        ],"@odata.nextLink":"https://graph.microsoft.com/v1.0/security/auditLog/queries/q/records?$skiptoken=2"}"#;
        let p = parse_records(body).unwrap();
        assert_eq!(p.skipped, 1, "no id at all");
        assert_eq!(p.records.len(), 3);
        let r = &p.records[0];
        assert_eq!(r.key, key("4c6f0b7e-0000-4000-8000-000000000001"));
        assert_ne!(r.key, key("40706737-7eca-f9a1-97a5-dedd3260e24a"));
        assert_eq!(r.created, Some(1_795_773_600));
        assert_eq!(r.content_type, "Audit.Exchange");
        assert!(r.audit_data.unwrap().contains("\"Operation\":\"Send\""));
        // Without auditData: the resource id, and nothing to repair from.
        assert_eq!(p.records[1].key, key("res-2"));
        assert!(p.records[1].audit_data.is_none());
        assert_eq!(p.records[1].content_type, "Audit.SharePoint");
        // The time from auditData when createdDateTime is absent; the
        // workload from `service` when auditData has none.
        assert_eq!(p.records[2].created, Some(1_795_777_200));
        assert_eq!(p.records[2].content_type, "Audit.SharePoint");
        assert!(p.next.unwrap().ends_with("$skiptoken=2"));
        assert!(parse_records(br#"{"value":[]}"#).unwrap().next.is_none());
        assert!(parse_records(br#"{"error":{}}"#).is_err());
        assert!(parse_records(br#"{"value":[{"id":5}]}"#).is_err());
    }

    fn record(audit_data: &str) -> String {
        let mut out = Vec::new();
        push_record(audit_data, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn type_annotations_are_cut_however_spaced() {
        let plain = r#"{"Id":"a","Workload":"Exchange"}"#;
        assert_eq!(record(plain), plain);
        let annotated = r##"{"@odata.type":"#microsoft.graph.security.auditData", "Id":"a"}"##;
        assert_eq!(record(annotated), r#"{"Id":"a"}"#);
        // As Python and the docs' examples space it (JSON allows it), and
        // as the List records page names the type (no `#`).
        let spaced = "{\n  \"@odata.type\" : \"microsoft.graph.security.auditData\",\n  \"CreationTime\": \"2026-11-27T10:00:00\", \"Id\": \"a\", \"N\": [1, {\"@odata.type\": \"kept\"}]\n}";
        assert_eq!(
            record(spaced),
            r#"{"CreationTime": "2026-11-27T10:00:00","Id": "a","N": [1, {"@odata.type": "kept"}]}"#,
            "top-level annotations only; the members' own bytes"
        );
        let last = r##"{"Id":"a", "Operation":"Send", "@odata.type":"#x"}"##;
        assert_eq!(record(last), r#"{"Id":"a","Operation":"Send"}"#);
        let alone = r##"{"@odata.type":"#x"}"##;
        assert_eq!(record(alone), "{}");
        for odd in [
            r##"{"@odata.type":"#x","Id":}"##,
            r##"{"@odata.type":"#x"} {}"##,
            "[1]",
            "",
        ] {
            assert_eq!(record(odd), odd, "left alone: {odd}");
        }
        let escaped = r##"{"@odata.type":"#x","Ob\"j":"\u00e9t\u00e9"}"##;
        assert_eq!(record(escaped), r#"{"Ob\"j":"\u00e9t\u00e9"}"#);
    }

    #[test]
    fn create_body_and_urls() {
        let b: serde_json::Value = serde_json::from_slice(&create_body(0, 3_600, "n")).unwrap();
        assert_eq!(b["filterStartDateTime"], "1970-01-01T00:00:00Z");
        assert_eq!(b["filterEndDateTime"], "1970-01-01T01:00:00Z");
        assert!(b.get("serviceFilter").is_none() && b.get("serviceFilters").is_none());
        assert_eq!(url_segment("a-b_C9"), "a-b_C9");
        assert_eq!(url_segment("a/b?c"), "a%2Fb%3Fc");
    }
}
